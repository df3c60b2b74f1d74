//! The one list of conformance files, shared by both runners.
//!
//! wasm32 has no filesystem, so its runner embeds these files at compile time; the native runner
//! reads them at run time and also checks that this list names every JSON file in
//! `tests/conformance/`, so a file added there but forgotten here fails loudly instead of being
//! silently skipped on wasm32.

/// Calls `$callback!` with one `test_name => "file.json",` pair per conformance file.
macro_rules! for_each_conformance_file {
    ($callback:ident) => {
        $callback! {
            bucketing_vectors_match_the_python_reference => "00-bucketing.json",
            static_and_disabled_flags_conform => "01-static-and-disabled.json",
            equality_operators_conform => "02-operators-equality.json",
            string_operators_conform => "03-operators-strings.json",
            numeric_operators_conform => "04-operators-numeric.json",
            semver_operators_conform => "05-operators-semver.json",
            date_operators_conform => "06-operators-dates.json",
            exists_and_segment_match_operators_conform => "07-operators-exists-segmentmatch.json",
            rules_and_clauses_conform => "08-rules-and-clauses.json",
            evaluation_order_conforms => "09-evaluation-order.json",
            overrides_conform => "10-overrides.json",
            prerequisites_conform => "11-prerequisites.json",
            segments_conform => "12-segments.json",
            percentage_rollouts_conform => "13-percentage-rollout.json",
            weighted_rollouts_conform => "14-weighted-rollouts.json",
            multivariate_flags_conform => "15-multivariate.json",
            a_flag_with_every_basic_targeting_field_conforms => "16-all-basic-targeting-fields.json",
            error_results_conform => "17-errors.json",
            degraded_flags_conform => "18-degraded-flags.json",
            validation_conforms => "19-validation.json",
            validation_limits_conform => "20-validation-limits.json",
            resource_budgets_conform => "21-budgets.json",
            nesting_at_the_depth_limits_costs_linear_time => "22-nesting.json",
        }
    };
}

pub(crate) use for_each_conformance_file;
