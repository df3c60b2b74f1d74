//! Invariants of evaluation that hold for every compiled snapshot and context, whatever the
//! snapshot says (`docs/flag-model.md`, "Evaluation order" and "Result"). A violation panics,
//! which libFuzzer reports as a crash with the input that caused it.

use evaluator_core::{CompiledSnapshot, Evaluation, EvaluationContext, Reason};

/// Evaluates every flag of `snapshot` for `ctx` at `now_ms` and checks that:
/// - [`CompiledSnapshot::evaluate_all`] gives exactly one result per flag key, in snapshot order;
/// - evaluating again gives the same results (evaluation is a pure function);
/// - [`CompiledSnapshot::evaluate`] and [`CompiledSnapshot::evaluate_many`] agree with it for
///   every key (the memo they share between flags changes nothing);
/// - each result has a version and is well-formed (see [`well_formed`]).
///
/// Returns the results.
///
/// # Panics
/// When one of these does not hold.
pub fn evaluate_all<'a>(
    snapshot: &'a CompiledSnapshot,
    ctx: &EvaluationContext,
    now_ms: i64,
) -> Vec<Evaluation<'a>> {
    let all = snapshot.evaluate_all(ctx, now_ms);
    let keys: Vec<&str> = snapshot.flag_keys().collect();
    assert_eq!(all.len(), snapshot.len(), "one result per flag");
    assert_eq!(keys.len(), snapshot.len(), "one key per flag");
    for (result, key) in all.iter().zip(&keys) {
        assert_eq!(result.flag_key, *key, "results in snapshot order");
        assert!(
            snapshot.contains_flag(key),
            "{key:?} is listed but not found"
        );
        assert!(
            result.version.is_some(),
            "a found flag has a version: {result:?}"
        );
        well_formed(result);
    }
    let mut unique = keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "flag keys are unique");

    assert_eq!(snapshot.evaluate_all(ctx, now_ms), all, "evaluating twice");
    assert_eq!(
        snapshot.evaluate_many(&keys, ctx, now_ms),
        all,
        "evaluate_many of every key"
    );
    for (result, key) in all.iter().zip(&keys) {
        assert_eq!(
            &snapshot.evaluate(key, ctx, now_ms),
            result,
            "evaluate({key:?})"
        );
    }
    all
}

/// Checks one result: `errorCode` (and a message) exactly when the reason is `ERROR`, and that
/// it serialises (the REST API renders it byte for byte) with its key and value.
///
/// # Panics
/// When one of these does not hold.
pub fn well_formed(result: &Evaluation<'_>) {
    let is_error = result.reason == Reason::Error;
    assert_eq!(
        result.error_code.is_some(),
        is_error,
        "errorCode exactly when the reason is ERROR: {result:?}"
    );
    assert_eq!(
        result.error_message.is_some(),
        is_error,
        "errorMessage exactly when the reason is ERROR: {result:?}"
    );
    let json = serde_json::to_value(result)
        .unwrap_or_else(|e| panic!("a result does not serialise: {e}: {result:?}"));
    assert_eq!(json["flagKey"], result.flag_key, "{json}");
    assert_eq!(&json["value"], result.value, "{json}");
}
