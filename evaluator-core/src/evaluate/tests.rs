//! The evaluation order, reasons and result shape of `docs/flag-model.md`, through the public
//! interface (JSON snapshot in, `Evaluation` out).

use super::*;
use crate::bucketing::bucket;
use alloc::vec;
use serde_json::json;

const NOW: i64 = 1_795_514_400_000; // 2026-11-24T10:00:00Z

fn compile(flags: Value, segments: Value) -> CompiledSnapshot {
    let document =
        json!({"environment": "test", "version": 1, "flags": flags, "segments": segments});
    let (snapshot, warnings) =
        CompiledSnapshot::from_json(&serde_json::to_vec(&document).unwrap()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    snapshot
}

fn one(flag: Value) -> CompiledSnapshot {
    compile(json!([flag]), json!([]))
}

/// The flag `base` and a flag `f` whose prerequisite is that `base` serves `variation`.
fn with_prerequisite(base: Value, variation: &str) -> CompiledSnapshot {
    compile(
        json!([base, {"flagKey": "f", "enabled": true, "prerequisites": [{"flagKey": "base", "variation": variation}]}]),
        json!([]),
    )
}

fn user(id: &str) -> EvaluationContext {
    EvaluationContext::with_targeting_key(id)
}

/// The detail of evaluating flag `f` of `s` for `ctx`.
fn detail(s: &CompiledSnapshot, ctx: &EvaluationContext) -> &'static str {
    s.evaluate("f", ctx, NOW).detail
}

/// Flag `f` of `s` has the detail `expected` for every one of `contexts`.
#[track_caller]
fn assert_detail_for_each(s: &CompiledSnapshot, expected: &str, contexts: &[EvaluationContext]) {
    for ctx in contexts {
        assert_eq!(detail(s, ctx), expected, "{ctx:?}");
    }
}

/// `(value, variant, reason, detail)` of an evaluation.
fn summary<'a>(e: &Evaluation<'a>) -> (Value, Option<&'a str>, Reason, &'static str) {
    (e.value.clone(), e.variant, e.reason, e.detail)
}

fn colours() -> Value {
    json!([{"key": "red", "value": "#f00"}, {"key": "green", "value": "#0f0"}, {"key": "blue", "value": "#00f"}])
}

// Evaluation order, step 1.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn a_disabled_flag_serves_its_off_variation() {
    let s = one(json!({"flagKey": "f", "enabled": false, "targetingRules": {"userIds": ["u1"]}}));
    let e = s.evaluate("f", &user("u1"), NOW);
    assert_eq!(
        summary(&e),
        (json!(false), Some("off"), Reason::Disabled, "flag-disabled")
    );
    assert!(!e.enabled);
    assert_eq!(e.version, Some(0));
}

// Step 2.
#[test]
fn a_prerequisite_serving_the_required_variation_lets_evaluation_continue() {
    let s = with_prerequisite(json!({"flagKey": "base", "enabled": true}), "on");
    assert_eq!(
        summary(&s.evaluate("f", &user("u"), NOW)),
        (json!(true), Some("on"), Reason::Static, "static")
    );
}

#[test]
fn a_failing_prerequisite_serves_the_off_variation() {
    let s = with_prerequisite(
        json!({"flagKey": "base", "enabled": true, "defaultValue": false, "targetingRules": {"userIds": ["vip"]}}),
        "on",
    );
    let failed = (
        json!(false),
        Some("off"),
        Reason::Default,
        "prerequisite-failed",
    );
    assert_eq!(summary(&s.evaluate("f", &user("u"), NOW)), failed);
    assert_eq!(summary(&s.evaluate("f", &user("vip"), NOW)).3, "static");
}

#[test]
fn a_disabled_prerequisite_fails_even_when_its_off_variation_is_the_required_one() {
    let s = with_prerequisite(json!({"flagKey": "base", "enabled": false}), "off");
    assert_eq!(detail(&s, &user("u")), "prerequisite-failed");
}

// Step 3.
#[test]
fn an_unexpired_override_serves_its_variation() {
    let s = one(json!({
        "flagKey": "f", "enabled": true, "variations": colours(), "defaultVariation": "red", "onVariation": "green",
        "overrides": [
            {"userId": "u1", "variation": "blue", "expiresAt": "2026-11-24T10:00:00.001Z"},
            {"userId": "u2", "variation": "blue", "expiresAt": "2026-11-24T10:00:00Z"},
            {"userId": "u3", "variation": "blue"}
        ]
    }));
    let overridden = (
        json!("#00f"),
        Some("blue"),
        Reason::TargetingMatch,
        "user-override",
    );
    assert_eq!(summary(&s.evaluate("f", &user("u1"), NOW)), overridden);
    assert_eq!(summary(&s.evaluate("f", &user("u3"), NOW)), overridden);
    // Expiring at `now` is expired: the override must be later than now.
    assert_eq!(detail(&s, &user("u2")), "static");
}

#[test]
fn an_enabled_override_of_a_boolean_flag_serves_on_or_off() {
    let s = one(json!({
        "flagKey": "f", "enabled": true, "targetingRules": {"userIds": ["u1"]},
        "overrides": [{"userId": "u1", "enabled": false}, {"userId": "u2", "enabled": true}]
    }));
    assert_eq!(
        summary(&s.evaluate("f", &user("u1"), NOW)),
        (
            json!(false),
            Some("off"),
            Reason::TargetingMatch,
            "user-override"
        )
    );
    assert!(!s.evaluate("f", &user("u1"), NOW).enabled);
    assert_eq!(
        summary(&s.evaluate("f", &user("u2"), NOW)),
        (
            json!(true),
            Some("on"),
            Reason::TargetingMatch,
            "user-override"
        )
    );
}

// Steps 4 and 5.
#[test]
fn excluded_users_get_the_default_variation_before_user_targeting() {
    let s = one(json!({
        "flagKey": "f", "enabled": true, "targetingRules": {"userIds": ["u1", "u2"], "excludedUserIds": ["u1"]}
    }));
    assert_eq!(
        summary(&s.evaluate("f", &user("u1"), NOW)),
        (
            json!(false),
            Some("off"),
            Reason::TargetingMatch,
            "user-excluded"
        )
    );
    assert_eq!(
        summary(&s.evaluate("f", &user("u2"), NOW)),
        (
            json!(true),
            Some("on"),
            Reason::TargetingMatch,
            "user-targeted"
        )
    );
    assert_eq!(
        summary(&s.evaluate("f", &user("u3"), NOW)),
        (json!(false), Some("off"), Reason::Default, "default")
    );
}

#[test]
fn steps_needing_a_targeting_key_are_skipped_without_one() {
    let s = one(json!({
        "flagKey": "f", "enabled": true, "targetingRules": {"countries": ["US"], "excludedUserIds": ["u1"]},
        "overrides": [{"userId": "u1", "enabled": false}]
    }));
    let anonymous = EvaluationContext::default().with_attribute("country", "US");
    assert_eq!(
        summary(&s.evaluate("f", &anonymous, NOW)),
        (
            json!(true),
            Some("on"),
            Reason::TargetingMatch,
            "country-targeted"
        )
    );
}

// Step 6.
#[test]
fn users_in_a_targeted_segment_get_the_on_variation() {
    let s = compile(
        json!([{"flagKey": "f", "enabled": true, "targetingRules": {"segments": ["beta"]}}]),
        json!([{"segmentKey": "beta", "included": ["u1", "u2"], "excluded": ["u2"],
                "rules": [{"clauses": [{"attribute": "plan", "operator": "in", "values": ["pro"]}]}]}]),
    );
    let in_segment = (
        json!(true),
        Some("on"),
        Reason::TargetingMatch,
        "user-in-segment",
    );
    assert_eq!(summary(&s.evaluate("f", &user("u1"), NOW)), in_segment);
    assert_eq!(
        summary(&s.evaluate("f", &user("u3").with_attribute("plan", "pro"), NOW)),
        in_segment
    );
    // excluded wins over included and over rules.
    assert_detail_for_each(
        &s,
        "default",
        &[user("u2").with_attribute("plan", "pro"), user("u3")],
    );
}

#[test]
fn the_context_may_declare_its_segments_itself() {
    let s = compile(
        json!([{"flagKey": "f", "enabled": true, "targetingRules": {"segments": ["beta"]}}]),
        json!([{"segmentKey": "beta", "excluded": ["banned"]}]),
    );
    assert_detail_for_each(
        &s,
        "user-in-segment",
        &[
            user("u").with_attribute("userSegment", "beta"),
            user("u").with_attribute("segments", json!(["x", "beta"])),
        ],
    );
    assert_detail_for_each(
        &s,
        "default",
        &[
            user("banned").with_attribute("userSegment", "beta"),
            user("u").with_attribute("userSegment", "alpha"),
        ],
    );
}

#[test]
fn segment_match_clauses_follow_nested_segments() {
    let s = compile(
        json!([{"flagKey": "f", "enabled": true, "defaultValue": false, "targetingRules": {"rules": [
            {"clauses": [{"operator": "segmentMatch", "values": ["outer"]}], "variation": "on"}
        ]}}]),
        json!([
            {"segmentKey": "outer", "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["inner"]}]}]},
            {"segmentKey": "inner", "included": ["u1"]}
        ]),
    );
    assert_eq!(detail(&s, &user("u1")), "rule-match");
    assert_eq!(detail(&s, &user("u2")), "default");
}

#[test]
fn the_first_matching_rule_wins() {
    let s = one(json!({
        "flagKey": "f", "enabled": true, "variations": colours(), "defaultVariation": "red",
        "targetingRules": {"rules": [
            {"clauses": [{"attribute": "plan", "operator": "in", "values": ["pro"]},
                         {"attribute": "country", "operator": "in", "values": ["US"]}], "variation": "green"},
            {"clauses": [{"attribute": "plan", "operator": "in", "values": ["pro"]}], "variation": "blue"},
            {"clauses": [], "variation": "red"}
        ]}
    }));
    let pro_us = user("u")
        .with_attribute("plan", "pro")
        .with_attribute("country", "US");
    assert_eq!(
        summary(&s.evaluate("f", &pro_us, NOW)),
        (
            json!("#0f0"),
            Some("green"),
            Reason::TargetingMatch,
            "rule-match"
        )
    );
    assert_eq!(
        s.evaluate("f", &user("u").with_attribute("plan", "pro"), NOW)
            .variant,
        Some("blue")
    );
    // A rule without clauses matches everyone.
    assert_eq!(s.evaluate("f", &user("u"), NOW).variant, Some("red"));
    assert_eq!(detail(&s, &user("u")), "rule-match");
}

#[test]
fn targeted_segments_come_before_rules() {
    let s = compile(
        json!([{"flagKey": "f", "enabled": true, "variations": colours(), "defaultVariation": "red", "onVariation": "green",
                "targetingRules": {"segments": ["beta"], "rules": [{"clauses": [], "variation": "blue"}]}}]),
        json!([{"segmentKey": "beta", "included": ["u1"]}]),
    );
    assert_eq!(s.evaluate("f", &user("u1"), NOW).variant, Some("green"));
    assert_eq!(s.evaluate("f", &user("u2"), NOW).variant, Some("blue"));
}

#[test]
fn a_rule_rollout_serves_by_cumulative_weight_of_the_bucket() {
    let s = one(json!({
        "flagKey": "f", "enabled": true, "variations": colours(), "defaultVariation": "red",
        "targetingRules": {"rules": [{"clauses": [], "rollout": {"weights": [
            {"variation": "red", "weight": 33.333}, {"variation": "green", "weight": 33.334}, {"variation": "blue", "weight": 33.333}
        ]}}]}
    }));
    for i in 0..300 {
        let id = format!("user-{i}");
        let b = bucket("f", &id);
        let expected = if b < 33_333 {
            "red"
        } else if b < 66_667 {
            "green"
        } else {
            "blue"
        };
        let e = s.evaluate("f", &user(&id), NOW);
        assert_eq!(
            (e.variant, e.reason, e.detail),
            (Some(expected), Reason::Split, "rule-rollout"),
            "{id} in bucket {b}"
        );
    }
}

#[test]
fn a_rollout_without_its_bucketing_attribute_is_an_error_serving_the_default() {
    let s = one(json!({
        "flagKey": "f", "enabled": true, "variations": colours(), "defaultVariation": "red",
        "targetingRules": {"rules": [
            {"clauses": [{"attribute": "plan", "operator": "exists"}],
             "rollout": {"bucketBy": "orgId", "weights": [{"variation": "green", "weight": 100}]}},
            {"clauses": [], "rollout": {"weights": [{"variation": "blue", "weight": 100}]}}
        ]}
    }));
    let e = s.evaluate("f", &EvaluationContext::default(), NOW);
    assert_eq!(
        summary(&e),
        (json!("#f00"), Some("red"), Reason::Error, "error")
    );
    assert_eq!(e.error_code, Some(ErrorCode::TargetingKeyMissing));
    assert!(!e.enabled);
    let e = s.evaluate("f", &user("u").with_attribute("plan", "pro"), NOW);
    assert_eq!(
        (e.reason, e.error_code),
        (Reason::Error, Some(ErrorCode::InvalidContext))
    );
    assert_eq!(
        e.error_message.as_deref(),
        Some("the rollout buckets by attribute \"orgId\", which the context lacks (or is not a string, integer or boolean)")
    );
    let e = s.evaluate(
        "f",
        &user("u")
            .with_attribute("plan", "pro")
            .with_attribute("orgId", 7),
        NOW,
    );
    assert_eq!((e.variant, e.detail), (Some("green"), "rule-rollout"));
}

// Step 7.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn the_percentage_serves_on_to_users_whose_bucket_is_below_it() {
    let s = one(json!({"flagKey": "f", "enabled": true, "targetingRules": {"percentage": 25}}));
    let mut inside = 0;
    for i in 0..2000 {
        let id = format!("u{i}");
        let e = s.evaluate("f", &user(&id), NOW);
        if bucket("f", &id) < 25_000 {
            inside += 1;
            assert_eq!(
                summary(&e),
                (json!(true), Some("on"), Reason::Split, "percentage-rollout")
            );
        } else {
            assert_eq!(
                summary(&e),
                (json!(false), Some("off"), Reason::Default, "default")
            );
        }
    }
    assert!((400..600).contains(&inside), "{inside} of 2000 at 25 %");
}

#[test]
fn the_percentage_buckets_by_the_salt_and_bucket_by_attribute() {
    let s = one(json!({"flagKey": "f", "enabled": true, "salt": "s1",
                       "targetingRules": {"percentage": 50, "bucketBy": "orgId"}}));
    for org in 0..200 {
        let e = s.evaluate("f", &user("same-user").with_attribute("orgId", org), NOW);
        assert_eq!(
            e.enabled,
            bucket("s1", &format!("{org}")) < 50_000,
            "org {org}"
        );
    }
    // Integers render in decimal whether written 7 or 7.0; booleans as true/false.
    let seven = s.evaluate("f", &user("u").with_attribute("orgId", 7), NOW);
    let seven_float = s.evaluate("f", &user("u").with_attribute("orgId", 7.0), NOW);
    let seven_text = s.evaluate("f", &user("u").with_attribute("orgId", "7"), NOW);
    assert_eq!(
        (seven.enabled, seven_float.enabled),
        (seven_text.enabled, seven_text.enabled)
    );
    let fraction = s.evaluate("f", &user("u").with_attribute("orgId", 7.5), NOW);
    assert_eq!(fraction.error_code, Some(ErrorCode::InvalidContext));
}

#[test]
fn countries_restrict_the_percentage() {
    let s = one(
        json!({"flagKey": "f", "enabled": true, "targetingRules": {"percentage": 100, "countries": ["US", "CA"]}}),
    );
    let us = user("u").with_attribute("country", "CA");
    assert_eq!(
        summary(&s.evaluate("f", &us, NOW)),
        (json!(true), Some("on"), Reason::Split, "percentage-rollout")
    );
    assert_detail_for_each(
        &s,
        "default",
        &[user("u").with_attribute("country", "FR"), user("u")],
    );
}

#[test]
fn countries_without_percentage_target_by_country_alone() {
    let s = one(json!({"flagKey": "f", "enabled": true, "targetingRules": {"countries": ["US"]}}));
    let e = s.evaluate(
        "f",
        &EvaluationContext::default().with_attribute("country", "US"),
        NOW,
    );
    assert_eq!(
        summary(&e),
        (
            json!(true),
            Some("on"),
            Reason::TargetingMatch,
            "country-targeted"
        )
    );
}

#[test]
fn a_percentage_without_a_targeting_key_is_an_error() {
    let s = one(json!({"flagKey": "f", "enabled": true, "targetingRules": {"percentage": 100}}));
    let e = s.evaluate("f", &EvaluationContext::default(), NOW);
    assert_eq!(
        (e.reason, e.error_code, e.variant),
        (
            Reason::Error,
            Some(ErrorCode::TargetingKeyMissing),
            Some("off")
        )
    );
}

// Step 8.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn a_flag_without_targeting_is_static_and_one_with_targeting_defaults() {
    let s = compile(
        json!([
            {"flagKey": "plain", "enabled": true},
            {"flagKey": "targeted", "enabled": true, "defaultValue": true, "targetingRules": {"userIds": ["x"]}}
        ]),
        json!([]),
    );
    assert_eq!(
        summary(&s.evaluate("plain", &user("u"), NOW)),
        (json!(true), Some("on"), Reason::Static, "static")
    );
    let e = s.evaluate("targeted", &user("u"), NOW);
    assert_eq!(
        summary(&e),
        (json!(true), Some("on"), Reason::Default, "default")
    );
    // For a boolean flag `enabled` is the value, whatever the reason.
    assert!(e.enabled);
}

#[test]
fn a_multivariate_flag_is_enabled_only_for_actively_targeted_users() {
    let s = one(json!({
        "flagKey": "f", "enabled": true, "variations": colours(), "defaultValue": "#f00", "onVariation": "green",
        "targetingRules": {"userIds": ["in", "out"], "excludedUserIds": ["out"]}
    }));
    let targeted = s.evaluate("f", &user("in"), NOW);
    assert_eq!((targeted.variant, targeted.enabled), (Some("green"), true));
    let defaulted = s.evaluate("f", &user("other"), NOW);
    assert_eq!((defaulted.variant, defaulted.enabled), (Some("red"), false));
    let excluded = s.evaluate("f", &user("out"), NOW);
    assert_eq!(
        (excluded.variant, excluded.reason, excluded.enabled),
        (Some("red"), Reason::TargetingMatch, false)
    );
}

// Result.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn an_unknown_flag_is_flag_not_found_with_a_null_value() {
    let s = one(json!({"flagKey": "f", "enabled": true}));
    let e = s.evaluate("nope", &user("u"), NOW);
    assert_eq!(summary(&e), (Value::Null, None, Reason::Error, "error"));
    assert_eq!(
        (e.error_code, e.version, e.enabled),
        (Some(ErrorCode::FlagNotFound), None, false)
    );
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"flagKey": "nope", "enabled": false, "value": null, "reason": "error", "openFeatureReason": "ERROR",
               "errorCode": "FLAG_NOT_FOUND", "errorMessage": "flag \"nope\" not found"})
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn results_serialize_as_the_rest_api_flag_result_json() {
    let s = compile(
        json!([{"flagKey": "new-checkout-flow", "enabled": true, "version": 3, "targetingRules": {"segments": ["beta-users"]}}]),
        json!([{"segmentKey": "beta-users", "included": ["user123"]}]),
    );
    let e = s.evaluate("new-checkout-flow", &user("user123"), NOW);
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"flagKey": "new-checkout-flow", "enabled": true, "value": true, "variant": "on",
               "reason": "user-in-segment", "version": 3, "openFeatureReason": "TARGETING_MATCH"})
    );
}

#[test]
fn an_invalid_flag_is_a_parse_error_serving_its_default() {
    let document = json!({"environment": "test", "version": 1, "flags": [
        {"flagKey": "f", "enabled": true, "defaultValue": true, "targetingRules": {"rules": [
            {"clauses": [{"attribute": "a", "operator": "regexx", "values": ["x"]}], "variation": "on"}]}},
        {"flagKey": "g", "enabled": true, "variations": "not-a-list"}
    ]});
    let (s, warnings) =
        CompiledSnapshot::from_json(&serde_json::to_vec(&document).unwrap()).unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let e = s.evaluate("f", &user("u"), NOW);
    assert_eq!(
        summary(&e),
        (json!(true), Some("on"), Reason::Error, "error")
    );
    assert_eq!(e.error_code, Some(ErrorCode::ParseError));
    assert_eq!(
        e.error_message.as_deref(),
        Some("invalid flag configuration: targetingRules.rules[0].clauses[0].operator: unknown operator \"regexx\"")
    );
    let e = s.evaluate("g", &user("u"), NOW);
    assert_eq!(
        (e.value, e.variant, e.error_code),
        (&Value::Null, None, Some(ErrorCode::ParseError))
    );
}

#[test]
fn expect_type_turns_a_mismatch_into_an_error_keeping_the_value() {
    let s = one(
        json!({"flagKey": "f", "enabled": true, "variations": colours(), "defaultVariation": "red", "onVariation": "blue"}),
    );
    let e = s
        .evaluate("f", &user("u"), NOW)
        .expect_type(ValueType::Boolean);
    assert_eq!(
        summary(&e),
        (json!("#00f"), Some("blue"), Reason::Error, "error")
    );
    assert_eq!(e.error_code, Some(ErrorCode::TypeMismatch));
    assert_eq!(
        e.error_message.as_deref(),
        Some("flag \"f\" serves a string, not boolean")
    );
    let ok = s
        .evaluate("f", &user("u"), NOW)
        .expect_type(ValueType::String);
    assert_eq!(ok.reason, Reason::Static);
    let missing = s
        .evaluate("nope", &user("u"), NOW)
        .expect_type(ValueType::String);
    assert_eq!(missing.error_code, Some(ErrorCode::FlagNotFound));
}

#[test]
fn evaluate_all_follows_snapshot_order_and_evaluate_many_the_given_order() {
    let s = compile(
        json!([{"flagKey": "b", "enabled": true}, {"flagKey": "a", "enabled": false}, {"flagKey": "c", "enabled": true}]),
        json!([]),
    );
    let all: Vec<&str> = s
        .evaluate_all(&user("u"), NOW)
        .iter()
        .map(|e| e.flag_key)
        .collect();
    assert_eq!(all, ["b", "a", "c"]);
    assert_eq!(s.flag_keys().collect::<Vec<_>>(), ["b", "a", "c"]);
    let many = s.evaluate_many(&["c", "zz", "a"], &user("u"), NOW);
    let got: Vec<(&str, Reason)> = many.iter().map(|e| (e.flag_key, e.reason)).collect();
    assert_eq!(
        got,
        vec![
            ("c", Reason::Static),
            ("zz", Reason::Error),
            ("a", Reason::Disabled)
        ]
    );
}

#[test]
fn the_served_variation_index_points_into_the_flag_variations() {
    let snapshot = one(json!({
        "flagKey": "f", "enabled": true,
        "variations": [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}, {"key": "c", "value": "C"}],
        "onVariation": "c", "offVariation": "a", "defaultVariation": "b",
        "targetingRules": {"userIds": ["u1"]}
    }));
    let targeted = snapshot.evaluate("f", &EvaluationContext::with_targeting_key("u1"), NOW);
    assert_eq!(
        (targeted.variant, targeted.variation_index),
        (Some("c"), Some(2))
    );
    let other = snapshot.evaluate("f", &EvaluationContext::with_targeting_key("u2"), NOW);
    assert_eq!((other.variant, other.variation_index), (Some("b"), Some(1)));
    let missing = snapshot.evaluate("g", &EvaluationContext::default(), NOW);
    assert_eq!((missing.variant, missing.variation_index), (None, None));
}

#[test]
fn a_position_the_snapshot_does_not_have_is_flag_not_found_and_a_foreign_prepared_context_still_answers(
) {
    let small = one(json!({"flagKey": "f", "enabled": true}));
    let large = compile(
        json!([{"flagKey": "x", "enabled": false}, {"flagKey": "y", "enabled": true}]),
        json!([]),
    );
    let ctx = EvaluationContext::with_targeting_key("u1");
    let y = large.flag_position("y").unwrap();
    assert_eq!(small.flag_key_at(y), None);
    let e = small.evaluate_at(y, &ctx, NOW);
    assert_eq!(
        (e.flag_key, e.error_code),
        ("", Some(ErrorCode::FlagNotFound))
    );
    // A context prepared for `large`, used with `small`: evaluated afresh, same answer.
    let prepared = large.prepare(&ctx, NOW);
    let f = small.flag_position("f").unwrap();
    assert_eq!(
        small.evaluate_prepared(f, &prepared),
        small.evaluate("f", &ctx, NOW)
    );
    assert_eq!(
        large.evaluate_prepared(y, &prepared),
        large.evaluate("y", &ctx, NOW)
    );
}

#[test]
fn a_batch_reads_declared_segments_countries_and_clause_attributes_like_one_evaluation() {
    let s = compile(
        json!([
            {"flagKey": "seg", "enabled": true, "targetingRules": {"segments": ["beta"]}},
            {"flagKey": "country", "enabled": true, "targetingRules": {"countries": ["FR"]}},
            {"flagKey": "rule", "enabled": true, "defaultValue": false, "targetingRules": {"rules": [
                {"clauses": [{"attribute": "plan", "operator": "in", "values": ["pro"]}], "variation": "on"}
            ]}}
        ]),
        json!([{"segmentKey": "beta"}]),
    );
    let contexts = [
        user("u")
            .with_attribute("userSegment", "beta")
            .with_attribute("country", "FR")
            .with_attribute("plan", "pro"),
        user("u").with_attribute("segments", json!(["beta"])),
        user("u")
            .with_attribute("country", "DE")
            .with_attribute("plan", "free"),
        user("u"),
    ];
    let details = |ctx: &EvaluationContext| -> Vec<&'static str> {
        s.evaluate_all(ctx, NOW).iter().map(|e| e.detail).collect()
    };
    assert_eq!(
        details(&contexts[0]),
        ["user-in-segment", "country-targeted", "rule-match"]
    );
    assert_eq!(
        details(&contexts[1]),
        ["user-in-segment", "default", "default"]
    );
    assert_eq!(details(&contexts[2]), ["default", "default", "default"]);
    for ctx in &contexts {
        let prepared = s.prepare(ctx, NOW);
        for key in ["seg", "country", "rule"] {
            let single = s.evaluate(key, ctx, NOW);
            let position = s.flag_position(key).unwrap();
            assert_eq!(s.evaluate_prepared(position, &prepared), single);
        }
    }
}

#[test]
fn a_batch_parses_a_version_attribute_once_with_the_answers_of_one_evaluation() {
    let rule = |op: &str, v: &str| json!({"clauses": [{"attribute": "appVersion", "operator": op, "values": [v]}], "variation": "on"});
    let s = compile(
        json!([
            {"flagKey": "gt", "enabled": true, "defaultValue": false, "targetingRules": {"rules": [rule("semverGt", "2.15.0")]}},
            {"flagKey": "lt", "enabled": true, "defaultValue": false, "targetingRules": {"rules": [rule("semverLt", "2.15.0")]}},
            {"flagKey": "eq", "enabled": true, "defaultValue": false, "targetingRules": {"rules": [rule("semverEq", "v2.16")]}}
        ]),
        json!([]),
    );
    let cases = [
        (json!("2.16.0"), ["rule-match", "default", "rule-match"]),
        (json!("2.1.0"), ["default", "rule-match", "default"]),
        (json!("not-a-version"), ["default", "default", "default"]),
        (
            json!(["1.0.0", "2.16.0"]),
            ["rule-match", "rule-match", "rule-match"],
        ),
        (json!(216), ["default", "default", "default"]),
    ];
    for (version, expected) in cases {
        let ctx = user("u").with_attribute("appVersion", version.clone());
        let all: Vec<&str> = s.evaluate_all(&ctx, NOW).iter().map(|e| e.detail).collect();
        assert_eq!(all, expected, "{version}");
        for key in ["gt", "lt", "eq"] {
            assert_eq!(
                s.evaluate_prepared(s.flag_position(key).unwrap(), &s.prepare(&ctx, NOW)),
                s.evaluate(key, &ctx, NOW),
                "{key} {version}"
            );
        }
    }
}
