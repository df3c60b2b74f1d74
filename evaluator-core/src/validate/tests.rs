//! "Validation" of `docs/flag-model.md`: every check, with the exact path and message.

use super::*;
use alloc::string::ToString;
use alloc::vec;
use serde_json::{json, Value};

fn snapshot(flags: Value, segments: Value) -> Snapshot {
    serde_json::from_value(
        json!({"environment": "e", "version": 1, "flags": flags, "segments": segments}),
    )
    .unwrap()
}

/// The errors as `path: message` lines.
fn messages(errors: &[ValidationError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

fn errors_of(flags: Value, segments: Value) -> Vec<String> {
    messages(&validate_snapshot(&snapshot(flags, segments)))
}

fn flag_errors(flag: Value) -> Vec<String> {
    let flag: Flag = serde_json::from_value(flag).unwrap();
    messages(&validate_flag(&flag, &[], &[]))
}

#[test]
fn a_valid_snapshot_has_no_errors() {
    let errors = errors_of(
        json!([
            {"flagKey": "new-checkout-flow", "enabled": true, "defaultValue": false,
             "targetingRules": {"percentage": 25, "segments": ["beta-users"], "userIds": ["user123"], "countries": ["US"]}},
            {"flagKey": "banner", "enabled": true,
             "variations": [{"key": "a", "value": {"text": "A"}}, {"key": "b", "value": ["B"]}],
             "defaultVariation": "a", "prerequisites": [{"flagKey": "new-checkout-flow", "variation": "on"}],
             "targetingRules": {"rules": [{"clauses": [{"attribute": "email", "operator": "matches", "values": ["@x\\.com$"]}],
                                           "rollout": {"weights": [{"variation": "a", "weight": 33.333}, {"variation": "b", "weight": 66.667}]}}]}}
        ]),
        json!([{"segmentKey": "beta-users", "included": ["u1"]}]),
    );
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn paths_name_the_field_from_the_snapshot_root() {
    let rules = json!({"rules": [
        {"clauses": [], "variation": "on"},
        {"clauses": [], "variation": "on"},
        {"clauses": [{"attribute": "a", "operator": "regexx", "values": []}], "variation": "on"}
    ]});
    let flags: Vec<Value> = (0..4)
        .map(|i| json!({"flagKey": format!("f{i}"), "enabled": true, "targetingRules": if i == 3 { rules.clone() } else { json!({}) }}))
        .collect();
    assert_eq!(
        errors_of(json!(flags), json!([])),
        ["flags[3].targetingRules.rules[2].clauses[0].operator: unknown operator \"regexx\""]
    );
}

#[test]
fn keys_must_be_1_to_255_letters_digits_dashes_or_underscores() {
    assert!(validate_flag_key("new_checkout-flow-2").is_ok());
    assert_eq!(
        validate_flag_key("").unwrap_err().to_string(),
        "flagKey: must not be empty"
    );
    assert_eq!(
        validate_flag_key("a b").unwrap_err().to_string(),
        "flagKey: invalid character ' ' in \"a b\": use letters, digits, '-' and '_'"
    );
    assert!(validate_flag_key(&"k".repeat(255)).is_ok());
    assert_eq!(
        validate_flag_key(&"k".repeat(256)).unwrap_err().message,
        "256 characters exceed the limit of 255"
    );
    assert!(validate_flag_key("caf\u{e9}").is_err());
}

#[test]
fn duplicate_flag_and_segment_keys_are_reported() {
    let errors = errors_of(
        json!([{"flagKey": "f", "enabled": true}, {"flagKey": "f", "enabled": false}]),
        json!([{"segmentKey": "s"}, {"segmentKey": "s"}]),
    );
    assert_eq!(
        errors,
        [
            "segments[1].segmentKey: duplicate segment key \"s\"; dropped",
            "flags[1].flagKey: duplicate flag key \"f\" (first at flags[0]); dropped"
        ]
    );
}

#[test]
fn variation_references_must_exist() {
    let errors = flag_errors(json!({
        "flagKey": "f", "enabled": true, "variations": [{"key": "a", "value": 1}, {"key": "b", "value": 2}],
        "defaultVariation": "a", "onVariation": "c", "offVariation": "d",
        "overrides": [{"userId": "u", "variation": "e"}],
        "targetingRules": {"rules": [{"clauses": [], "variation": "g"},
                                     {"clauses": [], "rollout": {"weights": [{"variation": "h", "weight": 100}]}}]}
    }));
    assert_eq!(
        errors,
        [
            "offVariation: unknown variation \"d\"",
            "onVariation: unknown variation \"c\"",
            "overrides[0].variation: unknown variation \"e\"",
            "targetingRules.rules[0].variation: unknown variation \"g\"",
            "targetingRules.rules[1].rollout.weights[0].variation: unknown variation \"h\""
        ]
    );
}

#[test]
fn variations_are_1_to_100_of_one_type_with_unique_keys() {
    assert_eq!(
        flag_errors(
            json!({"flagKey": "f", "enabled": true, "variations": [], "targetingRules": {"rules": []}})
        )[0],
        "variations: a flag needs 1 to 100 variations, got 0"
    );
    let errors = flag_errors(json!({
        "flagKey": "f", "enabled": true, "defaultVariation": "a", "onVariation": "a",
        "variations": [{"key": "a", "value": "x"}, {"key": "a", "value": 1}, {"key": "c", "value": null}]
    }));
    assert_eq!(
        errors,
        [
            "variations[1].key: duplicate variation key \"a\"",
            "variations[1].value: expected a string like variations[0], got a number",
            "variations[2].value: null is not a flag value"
        ]
    );
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"key": format!("v{i}"), "value": i}))
        .collect();
    let errors = flag_errors(
        json!({"flagKey": "f", "enabled": true, "variations": many, "defaultVariation": "v0", "onVariation": "v1"}),
    );
    assert_eq!(
        errors,
        ["variations: a flag needs 1 to 100 variations, got 101"]
    );
}

#[test]
fn the_default_value_must_select_exactly_one_variation() {
    let variations =
        json!([{"key": "a", "value": "x"}, {"key": "b", "value": "y"}, {"key": "c", "value": "y"}]);
    let flag = |extra: Value| {
        let mut f =
            json!({"flagKey": "f", "enabled": true, "variations": variations, "onVariation": "a"});
        f.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        flag_errors(f)
    };
    assert_eq!(flag(json!({"defaultValue": "x"})), Vec::<String>::new());
    assert_eq!(
        flag(json!({"defaultValue": "z"})),
        ["defaultValue: equals the value of no variation"]
    );
    assert_eq!(
        flag(json!({"defaultValue": "y"})),
        ["defaultValue: equals the value of several variations; name one with defaultVariation"]
    );
    assert_eq!(
        flag(json!({"defaultValue": "y", "defaultVariation": "c"})),
        Vec::<String>::new()
    );
    assert_eq!(
        flag(json!({"defaultValue": "x", "defaultVariation": "c"})),
        ["defaultVariation: variation \"c\" does not hold defaultValue"]
    );
    assert_eq!(
        flag(json!({})),
        ["defaultVariation: required for a flag that does not serve booleans (or give defaultValue)"]
    );
}

#[test]
fn a_flag_without_variations_needs_a_boolean_default() {
    assert_eq!(
        flag_errors(json!({"flagKey": "f", "enabled": true, "defaultValue": "yes"})),
        ["defaultValue: a flag without variations serves booleans, got a string"]
    );
}

#[test]
fn a_multivariate_flag_using_basic_targeting_needs_an_on_variation() {
    let errors = flag_errors(json!({
        "flagKey": "f", "enabled": true, "variations": [{"key": "a", "value": 1}], "defaultVariation": "a",
        "targetingRules": {"userIds": ["u"]}
    }));
    assert_eq!(
        errors,
        ["onVariation: required when the flag uses percentage, segments, userIds or countries, or has no targeting"]
    );
    // Rules alone do not need it.
    let errors = flag_errors(json!({
        "flagKey": "f", "enabled": true, "variations": [{"key": "a", "value": 1}], "defaultVariation": "a",
        "targetingRules": {"rules": [{"clauses": [], "variation": "a"}]}
    }));
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn weights_sum_to_exactly_100_with_at_most_3_decimals() {
    let rollout = |weights: Value| {
        flag_errors(json!({"flagKey": "f", "enabled": true,
            "targetingRules": {"rules": [{"clauses": [], "rollout": {"weights": weights}}]}}))
    };
    assert_eq!(
        rollout(
            json!([{"variation": "on", "weight": 0.001}, {"variation": "off", "weight": 99.999}])
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        rollout(json!([{"variation": "on", "weight": 50}, {"variation": "off", "weight": 49.5}])),
        ["targetingRules.rules[0].rollout.weights: weights sum to 99.5, not 100"]
    );
    assert_eq!(
        rollout(json!([{"variation": "on", "weight": 50.0001}, {"variation": "off", "weight": 49.9999}])),
        [
            "targetingRules.rules[0].rollout.weights[0].weight: must be a percentage from 0 to 100 with at most 3 decimals, got 50.0001",
            "targetingRules.rules[0].rollout.weights[1].weight: must be a percentage from 0 to 100 with at most 3 decimals, got 49.9999"
        ]
    );
    assert_eq!(
        rollout(json!([{"variation": "on", "weight": -10}, {"variation": "off", "weight": 110}]))[0],
        "targetingRules.rules[0].rollout.weights[0].weight: must be a percentage from 0 to 100 with at most 3 decimals, got -10"
    );
    assert_eq!(
        rollout(json!([])),
        ["targetingRules.rules[0].rollout.weights: weights sum to 0, not 100"]
    );
}

#[test]
fn the_targeting_percentage_has_at_most_3_decimals() {
    assert_eq!(
        flag_errors(json!({"flagKey": "f", "enabled": true, "targetingRules": {"percentage": 12.3456}})),
        ["targetingRules.percentage: must be a percentage from 0 to 100 with at most 3 decimals, got 12.3456"]
    );
}

#[test]
fn a_rule_serves_a_variation_or_a_rollout() {
    let errors = flag_errors(
        json!({"flagKey": "f", "enabled": true, "targetingRules": {"rules": [
            {"clauses": []},
            {"clauses": [], "variation": "on", "rollout": {"weights": [{"variation": "on", "weight": 100}]}}
        ]}}),
    );
    assert_eq!(
        errors,
        [
            "targetingRules.rules[0]: needs variation or rollout",
            "targetingRules.rules[1]: give variation or rollout, not both"
        ]
    );
}

#[test]
fn references_to_missing_segments_and_flags_are_reported() {
    let flag: Flag = serde_json::from_value(json!({
        "flagKey": "f", "enabled": true,
        "prerequisites": [{"flagKey": "ghost", "variation": "on"}, {"flagKey": "other", "variation": "maybe"}],
        "targetingRules": {"segments": ["known", "unknown"],
                           "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["nowhere"]}], "variation": "on"}]}
    }))
    .unwrap();
    let segments: Vec<Segment> = serde_json::from_value(json!([{"segmentKey": "known"}])).unwrap();
    let others: Vec<Flag> =
        serde_json::from_value(json!([{"flagKey": "other", "enabled": true}])).unwrap();
    let errors = messages(&validate_flag(&flag, &segments, &others));
    assert_eq!(
        errors,
        [
            "prerequisites[0].flagKey: unknown flag \"ghost\"",
            "prerequisites[1].variation: flag \"other\" has no variation \"maybe\"",
            "targetingRules.segments[1]: unknown segment \"unknown\"",
            "targetingRules.rules[0].clauses[0].values[0]: unknown segment \"nowhere\""
        ]
    );
}

#[test]
fn prerequisite_cycles_are_reported_on_every_edge_of_the_cycle() {
    let errors = errors_of(
        json!([
            {"flagKey": "a", "enabled": true, "prerequisites": [{"flagKey": "b", "variation": "on"}]},
            {"flagKey": "b", "enabled": true, "prerequisites": [{"flagKey": "c", "variation": "on"}]},
            {"flagKey": "c", "enabled": true, "prerequisites": [{"flagKey": "a", "variation": "on"}]},
            {"flagKey": "d", "enabled": true, "prerequisites": [{"flagKey": "a", "variation": "on"}, {"flagKey": "d", "variation": "on"}]}
        ]),
        json!([]),
    );
    assert_eq!(
        errors,
        [
            "flags[0].prerequisites[0].flagKey: prerequisite cycle: a -> b -> c -> a",
            "flags[1].prerequisites[0].flagKey: prerequisite cycle: b -> c -> a -> b",
            "flags[2].prerequisites[0].flagKey: prerequisite cycle: c -> a -> b -> c",
            "flags[3].prerequisites[1].flagKey: prerequisite cycle: d -> d"
        ]
    );
}

#[test]
fn validate_flag_checks_cycles_against_the_other_flags_ignoring_its_old_version() {
    let others: Vec<Flag> = serde_json::from_value(json!([
        {"flagKey": "a", "enabled": true, "prerequisites": [{"flagKey": "b", "variation": "on"}]},
        {"flagKey": "b", "enabled": true}
    ]))
    .unwrap();
    let new_b: Flag = serde_json::from_value(json!(
        {"flagKey": "b", "enabled": true, "prerequisites": [{"flagKey": "a", "variation": "on"}]}
    ))
    .unwrap();
    let errors = messages(&validate_flag(&new_b, &[], &others));
    assert_eq!(
        errors,
        ["prerequisites[0].flagKey: prerequisite cycle: b -> a -> b"]
    );
}

#[test]
fn segment_cycles_are_reported_at_the_segment_match_value() {
    let errors = errors_of(
        json!([]),
        json!([
            {"segmentKey": "x", "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["y"]}]}]},
            {"segmentKey": "y", "rules": [{"clauses": [{"attribute": "a", "operator": "exists"},
                                                       {"operator": "segmentMatch", "values": ["z", "x"]}]}]},
            {"segmentKey": "z"}
        ]),
    );
    assert_eq!(
        errors,
        [
            "segments[0].rules[0].clauses[0].values[0]: segment cycle: x -> y -> x",
            "segments[1].rules[0].clauses[1].values[1]: segment cycle: y -> x -> y"
        ]
    );
    let others: Vec<Segment> = serde_json::from_value(json!([
        {"segmentKey": "x", "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["y"]}]}]}
    ]))
    .unwrap();
    let y: Segment = serde_json::from_value(json!(
        {"segmentKey": "y", "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["x"]}]}]}
    ))
    .unwrap();
    let errors = messages(&validate_segment(&y, &others));
    assert_eq!(
        errors,
        ["rules[0].clauses[0].values[0]: segment cycle: y -> x -> y"]
    );
}

#[test]
fn segments_are_validated_with_paths_relative_to_the_segment() {
    let segment: Segment = serde_json::from_value(json!({
        "segmentKey": "bad key", "rules": [{"clauses": [{"attribute": "v", "operator": "semverGt", "values": ["x"]}]}]
    }))
    .unwrap();
    let errors = messages(&validate_segment(&segment, &[]));
    assert_eq!(
        errors,
        [
            "segmentKey: invalid character ' ' in \"bad key\": use letters, digits, '-' and '_'",
            "rules[0].clauses[0].values[0]: operator \"semverGt\" needs a semantic version such as \"1.2.3\", got \"x\""
        ]
    );
}

#[test]
fn overrides_are_checked() {
    let errors = flag_errors(json!({
        "flagKey": "f", "enabled": true,
        "overrides": [
            {"userId": "", "enabled": true},
            {"userId": "u", "enabled": true, "variation": "on"},
            {"userId": "u"},
            {"userId": "u", "enabled": false, "expiresAt": "next week"}
        ]
    }));
    assert_eq!(
        errors,
        [
            "overrides[0].userId: must not be empty",
            "overrides[1]: give variation or enabled, not both",
            "overrides[2]: needs variation or enabled",
            "overrides[3].expiresAt: not an RFC 3339 timestamp: \"next week\""
        ]
    );
    let errors = flag_errors(json!({
        "flagKey": "f", "enabled": true, "variations": [{"key": "a", "value": 1}], "defaultVariation": "a", "onVariation": "a",
        "overrides": [{"userId": "u", "enabled": true}]
    }));
    assert_eq!(
        errors,
        ["overrides[0].enabled: only boolean flags take enabled overrides; use variation"]
    );
}

#[test]
fn size_limits_are_enforced() {
    let rules: Vec<Value> = (0..1001)
        .map(|_| json!({"clauses": [], "variation": "on"}))
        .collect();
    assert_eq!(
        flag_errors(json!({"flagKey": "f", "enabled": true, "targetingRules": {"rules": rules}})),
        ["targetingRules.rules: 1001 rules exceed the limit of 1000"]
    );
    let clauses: Vec<Value> = (0..101)
        .map(|_| json!({"attribute": "a", "operator": "exists"}))
        .collect();
    assert_eq!(
        flag_errors(
            json!({"flagKey": "f", "enabled": true, "targetingRules": {"rules": [{"clauses": clauses, "variation": "on"}]}})
        ),
        ["targetingRules.rules[0].clauses: 101 clauses exceed the limit of 100"]
    );
    let users: Vec<String> = (0..100_001).map(|i| format!("u{i}")).collect();
    assert_eq!(
        flag_errors(json!({"flagKey": "f", "enabled": true, "targetingRules": {"userIds": users}})),
        ["targetingRules.userIds: 100001 entries exceed the limit of 100000"]
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let errors = flag_errors(
        json!({"flagKey": "", "enabled": true, "targetingRules": {"percentage": 101, "rules": [
            {"clauses": [{"attribute": "a", "operator": "lt", "values": ["x"]}, {"attribute": "b", "operator": "nope"}], "variation": "on"}
        ]}}),
    );
    assert_eq!(errors.len(), 4, "{errors:?}");
}

#[test]
fn snapshot_validation_equals_compile_warnings() {
    let s = snapshot(
        json!([{"flagKey": "f", "enabled": true, "targetingRules": {"segments": ["s"]}}]),
        json!([{"segmentKey": "s", "rules": [{"clauses": [{"attribute": "a", "operator": "bogus"}]}]}]),
    );
    let (_, warnings) = crate::CompiledSnapshot::compile(s.clone());
    assert_eq!(validate_snapshot(&s), warnings);
    let texts: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        vec![
            "segments[0].rules[0].clauses[0].operator: unknown operator \"bogus\"".to_string(),
            "flags[0].targetingRules: uses segment \"s\", which is invalid".to_string()
        ]
    );
}

#[test]
fn a_snapshot_text_whose_packed_form_fits_one_kv_value_is_within_budget() {
    let json = serde_json::to_vec(&snapshot(json!([{"flagKey": "f"}]), json!([]))).unwrap();
    assert!(validate_snapshot_bytes(&json).is_empty());
}

#[test]
fn a_snapshot_text_over_25_mib_once_packed_is_refused_with_its_size() {
    // Just under the limit as JSON: the packed directory takes it over.
    let filler = limits::SNAPSHOT_BYTES - 100;
    let document = json!({"environment": "e", "version": 1,
        "flags": [{"flagKey": "f", "description": "x".repeat(filler)}]});
    let json = serde_json::to_vec(&document).unwrap();
    assert!(json.len() <= limits::SNAPSHOT_BYTES);
    let packed = crate::packed::pack_valid(&json).unwrap().len();
    let errors = validate_snapshot_bytes(&json);
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "snapshot: the snapshot would take {packed} bytes at the edge (packed), beyond the \
             limit of 26214400 bytes (25 MiB, one Workers KV value): remove flags, segments or \
             user lists"
        )]
    );
}

/// A change of one flag that deepens the flags above it beyond the limit is refused at the
/// changed flag (found by the `admin_decode` fuzz target: each flag alone was valid, the
/// environment was not).
#[test]
fn a_flag_change_that_deepens_the_flags_above_it_too_far_is_refused() {
    let limit = limits::PREREQUISITE_DEPTH;
    // f0 -> f1 -> ... -> f{limit}: f0 is exactly `limit` levels deep.
    let chain: Vec<Flag> = (0..=limit)
        .map(|i| {
            let prerequisites: Vec<Value> = if i < limit {
                vec![json!({"flagKey": format!("f{}", i + 1), "variation": "on"})]
            } else {
                vec![]
            };
            serde_json::from_value(json!({"flagKey": format!("f{i}"), "enabled": true, "prerequisites": prerequisites}))
                .unwrap()
        })
        .collect();
    let last = &chain[limit];
    assert!(validate_flag(last, &[], &chain).is_empty());
    let extra: Flag = serde_json::from_value(json!({"flagKey": "extra", "enabled": true})).unwrap();
    let mut others = chain.clone();
    others.push(extra);
    let deeper: Flag = serde_json::from_value(json!({
        "flagKey": format!("f{limit}"), "enabled": true,
        "prerequisites": [{"flagKey": "extra", "variation": "on"}]
    }))
    .unwrap();
    let errors = messages(&validate_flag(&deeper, &[], &others));
    assert_eq!(
        errors,
        [format!(
            "prerequisites: would make the prerequisites of flag \"f0\" nest {} levels deep, beyond the limit of {limit}",
            limit + 1
        )]
    );
    // A change that does not lengthen the chain stays valid.
    let same: Flag =
        serde_json::from_value(json!({"flagKey": format!("f{limit}"), "enabled": false})).unwrap();
    assert!(validate_flag(&same, &[], &others).is_empty());
}

#[test]
fn a_segment_change_that_deepens_the_segments_matching_it_too_far_is_refused() {
    let limit = limits::SEGMENT_DEPTH;
    // s0 matches s1 ... matches s{limit-1}: s0 is exactly `limit` segments deep.
    let chain: Vec<Segment> = (0..limit)
        .map(|i| {
            let rules: Vec<Value> = if i + 1 < limit {
                vec![json!({"clauses": [{"attribute": "userId", "operator": "segmentMatch", "values": [format!("s{}", i + 1)]}]})]
            } else {
                vec![]
            };
            serde_json::from_value(json!({"segmentKey": format!("s{i}"), "rules": rules})).unwrap()
        })
        .collect();
    let mut others = chain.clone();
    others.push(serde_json::from_value(json!({"segmentKey": "extra"})).unwrap());
    let deeper: Segment = serde_json::from_value(json!({
        "segmentKey": format!("s{}", limit - 1),
        "rules": [{"clauses": [{"attribute": "userId", "operator": "segmentMatch", "values": ["extra"]}]}]
    }))
    .unwrap();
    let errors = messages(&validate_segment(&deeper, &others));
    assert_eq!(
        errors,
        [format!(
            "rules: would make segment \"s0\" nest segmentMatch {} segments deep, beyond the limit of {limit}",
            limit + 1
        )]
    );
    assert!(validate_segment(&chain[limit - 1], &others).is_empty());
}
