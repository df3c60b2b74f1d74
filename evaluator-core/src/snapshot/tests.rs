//! Loading snapshots: JSON parsing, degradation of bad flags, accessors, client keys.

use super::*;
use crate::context::EvaluationContext;
use crate::reason::{ErrorCode, Reason};
use alloc::format;
use alloc::string::String;
use serde_json::json;

fn load(document: Value) -> (CompiledSnapshot, Vec<String>) {
    let (snapshot, warnings) =
        CompiledSnapshot::from_json(&serde_json::to_vec(&document).unwrap()).unwrap();
    (snapshot, warnings.iter().map(ToString::to_string).collect())
}

/// `warnings` start with one warning starting with each of `prefixes`, in order.
#[track_caller]
fn assert_warning_prefixes(warnings: &[String], prefixes: &[&str]) {
    assert!(warnings.len() >= prefixes.len(), "{warnings:?}");
    for (warning, prefix) in warnings.iter().zip(prefixes) {
        assert!(warning.starts_with(prefix), "{warning}");
    }
}

#[test]
fn bytes_that_are_not_a_snapshot_are_a_parse_error() {
    for bad in [
        &b"not json"[..],
        b"[]",
        b"{}",
        b"{\"environment\": \"e\"}",
        b"{\"environment\": 1, \"version\": 1}",
    ] {
        let err = CompiledSnapshot::from_json(bad).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err}");
        assert!(err.to_string().starts_with("not a snapshot: "));
    }
}

#[test]
fn accessors_report_the_snapshot_header_and_flags() {
    let (s, warnings) = load(json!({
        "environment": "production", "version": 42, "generatedAt": "2026-11-24T10:00:00Z", "future": {"ignored": true},
        "flags": [{"flagKey": "b", "enabled": true}, {"flagKey": "a", "enabled": true}]
    }));
    assert!(warnings.is_empty());
    assert_eq!(
        (s.environment(), s.version(), s.generated_at()),
        ("production", 42, "2026-11-24T10:00:00Z")
    );
    assert_eq!((s.len(), s.is_empty()), (2, false));
    assert_eq!(s.flag_keys().collect::<Vec<_>>(), ["b", "a"]);
    assert!(s.contains_flag("a") && !s.contains_flag("c"));
    assert!(!s.has_client_keys());
}

#[test]
fn a_flag_with_the_wrong_shape_degrades_alone() {
    let (s, warnings) = load(json!({"environment": "e", "version": 1, "flags": [
        {"flagKey": "good", "enabled": true},
        {"flagKey": "bad", "enabled": true, "defaultValue": true, "targetingRules": {"percentage": "lots"}},
        {"enabled": true},
        "not an object"
    ]}));
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert_warning_prefixes(
        &warnings,
        &[
            "flags[1]: invalid type: string \"lots\"",
            "flags[2]: missing field `flagKey`",
        ],
    );
    assert_eq!(s.len(), 2);
    let ctx = EvaluationContext::with_targeting_key("u");
    assert_eq!(s.evaluate("good", &ctx, 0).reason, Reason::Static);
    let bad = s.evaluate("bad", &ctx, 0);
    assert_eq!(
        (bad.reason, bad.error_code, bad.value),
        (Reason::Error, Some(ErrorCode::ParseError), &json!(true))
    );
}

#[test]
fn of_duplicate_flag_keys_the_first_wins() {
    let (s, warnings) = load(json!({"environment": "e", "version": 1, "flags": [
        {"flagKey": "f", "enabled": true}, {"flagKey": "f", "enabled": false}
    ]}));
    assert_eq!(warnings.len(), 1);
    assert_eq!(s.len(), 1);
    assert_eq!(
        s.evaluate("f", &EvaluationContext::default(), 0).reason,
        Reason::Static
    );
}

#[test]
fn flags_on_a_prerequisite_cycle_are_errors_and_their_dependents_fail_the_prerequisite() {
    let (s, warnings) = load(json!({"environment": "e", "version": 1, "flags": [
        {"flagKey": "a", "enabled": true, "prerequisites": [{"flagKey": "b", "variation": "on"}]},
        {"flagKey": "b", "enabled": true, "prerequisites": [{"flagKey": "a", "variation": "on"}]},
        {"flagKey": "c", "enabled": true, "prerequisites": [{"flagKey": "a", "variation": "on"}]}
    ]}));
    assert_eq!(warnings.len(), 2);
    let ctx = EvaluationContext::with_targeting_key("u");
    let a = s.evaluate("a", &ctx, 0);
    assert_eq!(
        (a.reason, a.error_code),
        (Reason::Error, Some(ErrorCode::ParseError))
    );
    assert_eq!(
        a.error_message.as_deref(),
        Some("invalid flag configuration: prerequisite cycle: a -> b -> a")
    );
    assert_eq!(s.evaluate("c", &ctx, 0).detail, "prerequisite-failed");
}

#[test]
fn flags_using_an_invalid_segment_are_errors() {
    let (s, warnings) = load(json!({"environment": "e", "version": 1,
    "flags": [{"flagKey": "f", "enabled": true, "defaultValue": false,
               "targetingRules": {"rules": [{"clauses": [{"operator": "segmentMatch", "values": ["outer"]}], "variation": "on"}]}}],
    "segments": [
        {"segmentKey": "outer", "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["inner"]}]}]},
        {"segmentKey": "inner", "rules": [{"clauses": [{"attribute": "n", "operator": "lt", "values": ["x"]}]}]}
    ]}));
    assert_eq!(
        warnings,
        [
            "segments[1].rules[0].clauses[0].values[0]: operator \"lt\" needs a number, got \"x\"",
            "segments[0]: matches segment \"inner\", which is invalid",
            "flags[0].targetingRules: uses segment \"outer\", which is invalid"
        ]
    );
    let e = s.evaluate("f", &EvaluationContext::with_targeting_key("u"), 0);
    assert_eq!((e.reason, e.value), (Reason::Error, &json!(false)));
}

#[test]
fn client_keys_are_matched_by_hash_in_either_case() {
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let (s, warnings) = load(json!({"environment": "e", "version": 1,
        "clientKeys": [{"name": "web", "sha256": hash}, {"name": "broken", "sha256": "xyz"}]}));
    assert_eq!(
        warnings,
        ["clientKeys[1].sha256: expected 64 hexadecimal characters (a SHA-256)"]
    );
    assert!(s.has_client_keys());
    assert!(s.client_key_hash_allowed(hash));
    assert!(s.client_key_hash_allowed(&hash.to_uppercase()));
    assert!(!s.client_key_hash_allowed(&hash.replace('9', "8")));
    assert!(!s.client_key_hash_allowed("xyz"));
}

#[test]
fn compiling_a_model_snapshot_equals_loading_its_json() {
    let document = json!({"environment": "e", "version": 7, "flags": [
        {"flagKey": "f", "enabled": true, "targetingRules": {"percentage": 40}}
    ]});
    let model: Snapshot = serde_json::from_value(document.clone()).unwrap();
    let (from_model, _) = CompiledSnapshot::compile(model);
    let (from_json, _) = load(document);
    for i in 0..100 {
        let ctx = EvaluationContext::with_targeting_key(format!("u{i}"));
        assert_eq!(
            from_model.evaluate("f", &ctx, 0),
            from_json.evaluate("f", &ctx, 0)
        );
    }
}

#[test]
fn loading_json_equals_compiling_the_model_on_a_realistic_snapshot() {
    let mut model = crate::testdata::snapshot(300, 60);
    // Duplicates, an escaped id and a description in the lists read straight into sets.
    if let Some(segment) = model.segments.first_mut() {
        segment
            .included
            .extend([String::from("dup"), String::from("dup")]);
        segment.excluded.push(String::from("caf\u{e9} \"quoted\""));
        segment.description = Some(String::from("first"));
    }
    let json = serde_json::to_vec(&model).unwrap();
    let (from_json, json_warnings) = CompiledSnapshot::from_json(&json).unwrap();
    let (from_model, model_warnings) = CompiledSnapshot::compile(model.clone());
    assert_eq!(json_warnings, model_warnings);
    // Every listed user, plus generated contexts that mostly match none of the lists.
    let listed = model
        .segments
        .iter()
        .flat_map(|s| s.included.iter().chain(&s.excluded));
    let targeted = model
        .flags
        .iter()
        .filter_map(|f| f.targeting_rules.as_ref())
        .flat_map(|t| t.user_ids.iter().chain(&t.excluded_user_ids));
    let mut contexts: Vec<EvaluationContext> = listed
        .chain(targeted)
        .step_by(7)
        .map(|user| EvaluationContext::with_targeting_key(user.as_str()))
        .collect();
    contexts.extend((0..50).map(crate::testdata::context));
    assert!(contexts.len() > 500, "{}", contexts.len());
    for ctx in &contexts {
        assert_eq!(
            from_json.evaluate_all(ctx, 1_795_514_400_000),
            from_model.evaluate_all(ctx, 1_795_514_400_000)
        );
    }
}

#[test]
fn user_lists_and_descriptions_of_the_wrong_shape_degrade_like_the_model() {
    let (_, warnings) = load(json!({"environment": "e", "version": 1, "flags": [
        {"flagKey": "ids", "enabled": true, "targetingRules": {"userIds": ["a", 1]}},
        {"flagKey": "text", "enabled": true, "description": 5},
        {"flagKey": "ok", "enabled": true}
    ], "segments": [{"segmentKey": "s", "included": "a"}]}));
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert_warning_prefixes(
        &warnings,
        &[
            "segments[0]: invalid type: string \"a\", expected a sequence",
            "flags[0]: invalid type: integer `1`, expected a string",
            "flags[1]: invalid type: integer `5`, expected a string",
        ],
    );
}
