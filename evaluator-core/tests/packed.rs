//! Packed snapshots: a subset evaluates its keys like the whole snapshot (`docs/flag-model.md`,
//! "Packed snapshots"), over the generated snapshot, every conformance snapshot and hand-written
//! edge cases; and a subset holds only what its keys depend on.
#![cfg(not(target_arch = "wasm32"))]

mod packed_common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use evaluator_core::packed::{pack, Packed};
use evaluator_core::{testdata, CompiledSnapshot, EvaluationContext};
use packed_common::{assert_subsets_agree, Probe};
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// 2026-11-24T10:00:00Z: before some override expiries of the edge cases, after others.
const NOW: i64 = 1_795_514_400_000;

/// Every flag and segment problem `CompiledSnapshot::from_json` tolerates, and every way of
/// referencing: `targetingRules.segments`, `segmentMatch` in flags and segments, prerequisites, chains,
/// cycles, duplicates, unparsable entries, entries without or with non-string keys, escapes,
/// duplicate members inside an object, client keys.
const EDGE_CASES: &str = r##"{
  "environment": "prod\u0075ction",
  "version": 7,
  "generatedAt": "2026-11-24T10:00:00Z",
  "unknownTopLevel": {"ignored": [1, 2, 3]},
  "clientKeys": [
    {"name": "web", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
    {"name": "broken", "sha256": "not hex"}
  ],
  "flags": [
    {"flagKey": "plain", "enabled": true, "version": 1},
    {"flagKey": "uses-s1", "enabled": true, "version": 2, "targetingRules": {"segments": ["s1"]}},
    {"flagKey": "matches-s2", "enabled": true,
     "targetingRules": {"rules": [{"clauses": [{"attribute": "", "operator": "segmentMatch", "values": ["s2"]}], "variation": "on"}]}},
    {"flagKey": "not-in-s2", "enabled": true,
     "targetingRules": {"rules": [{"clauses": [{"operator": "segmentMatch", "values": ["s2"], "negate": true}], "variation": "on"}]}},
    {"flagKey": "uses-cyclic-segment", "enabled": true, "targetingRules": {"segments": ["s3"]}},
    {"flagKey": "uses-segment-matching-invalid", "enabled": true, "targetingRules": {"segments": ["s6"]}},
    {"flagKey": "uses-invalid-segment", "enabled": true, "targetingRules": {"segments": ["s5"]}},
    {"flagKey": "uses-duplicate-segment", "enabled": true, "targetingRules": {"segments": ["sd"]}},
    {"flagKey": "uses-duplicate-after-unparsable", "enabled": true, "targetingRules": {"segments": ["sx"]}},
    {"flagKey": "uses-unparsable-segment", "enabled": true, "targetingRules": {"segments": ["su"]}},
    {"flagKey": "uses-missing-segment", "enabled": true, "targetingRules": {"segments": ["nope"]}},
    {"flagKey": "uses-escaped-segment", "enabled": true, "targetingRules": {"segments": ["s\u0031"]}},
    {"flagKey": "chain-a", "enabled": true, "prerequisites": [{"flagKey": "chain-b", "variation": "on"}]},
    {"flagKey": "chain-b", "enabled": true, "prerequisites": [{"flagKey": "chain-c", "variation": "on"}]},
    {"flagKey": "chain-c", "enabled": true, "targetingRules": {"segments": ["s2"]}},
    {"flagKey": "cycle-x", "enabled": true, "prerequisites": [{"flagKey": "cycle-y", "variation": "on"}]},
    {"flagKey": "cycle-y", "enabled": true, "prerequisites": [{"flagKey": "cycle-z", "variation": "on"}, {"flagKey": "cycle-x", "variation": "on"}]},
    {"flagKey": "cycle-z", "enabled": true, "prerequisites": [{"flagKey": "cycle-y", "variation": "on"}]},
    {"flagKey": "self", "enabled": true, "prerequisites": [{"flagKey": "self", "variation": "on"}]},
    {"flagKey": "needs-cycle", "enabled": true, "prerequisites": [{"flagKey": "cycle-x", "variation": "on"}]},
    {"flagKey": "needs-missing", "enabled": true, "prerequisites": [{"flagKey": "ghost", "variation": "on"}]},
    {"flagKey": "needs-unparsable", "enabled": true, "prerequisites": [{"flagKey": "unparsable", "variation": "on"}]},
    {"flagKey": "needs-unknown-variation", "enabled": true, "prerequisites": [{"flagKey": "plain", "variation": "blue"}]},
    {"flagKey": "unparsable", "enabled": "yes", "defaultValue": true,
     "prerequisites": [{"flagKey": "plain", "variation": "on"}], "targetingRules": {"segments": ["s1"]}},
    {"flagKey": "unparsable-with-references", "defaultValue": false,
     "targetingRules": {"percentage": "half", "segments": ["s2"],
                        "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["s3", 5]}]}]},
     "prerequisites": [{"flagKey": "chain-a"}]},
    {"flagKey": "invalid-clause", "enabled": true,
     "targetingRules": {"rules": [{"clauses": [{"attribute": "plan", "operator": "regexx", "values": ["x"]}], "variation": "on"}]}},
    {"flagKey": "invalid-variations", "enabled": true, "variations": [{"key": "a", "value": 1}, {"key": "b", "value": "two"}]},
    {"flagKey": "dup", "enabled": true, "version": 1},
    {"flagKey": "dup", "enabled": false, "version": 2},
    {"flagKey": "needs-dup", "enabled": true, "prerequisites": [{"flagKey": "dup", "variation": "on"}]},
    {"flagKey": "dup-unparsable-first", "enabled": "no"},
    {"flagKey": "dup-unparsable-first", "enabled": true},
    {"enabled": true},
    {"flagKey": 5, "enabled": true},
    "not even an object",
    {"flagKey": "esc\u0061ped", "enabled": true, "version": 3,
     "prerequisites": [{"flagKey": "pl\u0061in", "variation": "on"}]},
    {"flagKey": "twice", "flagKey": "twice-last", "enabled": true, "targetingRules": {"segments": ["s1"]}},
    {"flagKey": "operator-twice", "enabled": true,
     "targetingRules": {"rules": [{"clauses": [{"operator": "in", "operator": "segmentMatch", "values": ["s2"]}], "variation": "on"}]}},
    {"flagKey": "multivariate", "enabled": true, "version": 4,
     "variations": [{"key": "red", "value": "#f00"}, {"key": "green", "value": "#0f0"}, {"key": "blue", "value": "#00f"}],
     "defaultVariation": "red", "offVariation": "blue", "onVariation": "green",
     "overrides": [{"userId": "u3", "variation": "blue", "expiresAt": "2030-01-01T00:00:00Z"},
                   {"userId": "u1", "variation": "green", "expiresAt": "2020-01-01T00:00:00Z"}],
     "prerequisites": [{"flagKey": "chain-c", "variation": "on"}],
     "targetingRules": {"excludedUserIds": ["u4"], "segments": ["sd", "s1"],
                        "rules": [{"clauses": [{"attribute": "plan", "operator": "in", "values": ["pro"]}],
                                   "rollout": {"weights": [{"variation": "red", "weight": 50}, {"variation": "blue", "weight": 50}]}},
                                  {"clauses": [{"operator": "segmentMatch", "values": ["s2"]}], "variation": "blue"}],
                        "percentage": 30}},
    {"flagKey": "", "enabled": true},
    {"flagKey": "bad key", "enabled": true},
    {"flagKey": "disabled-with-segments", "enabled": false, "targetingRules": {"segments": ["s3"]}}
  ],
  "segments": [
    {"segmentKey": "s1", "included": ["u1"]},
    {"segmentKey": "s2", "included": ["u2"],
     "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["s1"]}]}]},
    {"segmentKey": "s3", "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["s4"]}]}]},
    {"segmentKey": "s4", "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["s3"]}]}]},
    {"segmentKey": "s5", "rules": [{"clauses": [{"attribute": "plan", "operator": "regexx", "values": []}]}]},
    {"segmentKey": "s6", "included": ["u1", "u3"],
     "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["s5"]}]}]},
    {"segmentKey": "sd", "included": ["u1"]},
    {"segmentKey": "sd", "included": ["u2"]},
    {"segmentKey": "sx", "included": "u1"},
    {"segmentKey": "sx", "included": ["u1"]},
    {"segmentKey": "su", "included": "u1"},
    {"segmentKey": 7},
    {"included": ["u1"]},
    {"segmentKey": "unused", "included": ["u3"]},
    {"segmentKey": "pro-users", "rules": [{"clauses": [{"attribute": "plan", "operator": "in", "values": ["pro"]}]}]}
  ]
}"##;

fn probes() -> Vec<Probe> {
    let mut out: Vec<Probe> = ["u1", "u2", "u3", "u4", "someone"]
        .iter()
        .flat_map(|user| {
            [
                EvaluationContext::with_targeting_key(*user),
                EvaluationContext::with_targeting_key(*user)
                    .with_attribute("plan", "pro")
                    .with_attribute("country", "US"),
            ]
        })
        .map(|ctx| (ctx, NOW))
        .collect();
    out.push((EvaluationContext::default(), NOW));
    out.push((EvaluationContext::with_targeting_key("u3"), 0));
    out.extend((0..10).map(|n| (testdata::context(n), NOW)));
    out
}

/// Every key alone, every key together, and some unknown ones.
fn key_sets(keys: &[String]) -> Vec<Vec<&str>> {
    let mut sets: Vec<Vec<&str>> = keys.iter().map(|k| vec![k.as_str()]).collect();
    sets.push(keys.iter().map(String::as_str).collect());
    sets.push(vec!["no-such-flag"]);
    sets.push(vec![]);
    sets
}

fn kept_keys(json: &[u8]) -> Vec<String> {
    match CompiledSnapshot::from_json(json) {
        Ok((compiled, _)) => compiled.flag_keys().map(String::from).collect(),
        Err(_) => Vec::new(),
    }
}

fn subset(json: &[u8], keys: &[&str]) -> Value {
    let packed = pack(json).unwrap();
    let subset = Packed::parse(&packed).unwrap().subset_json(keys);
    serde_json::from_slice(&subset).unwrap()
}

/// `field` of every flag or segment of a subset, in order (`null` when missing).
fn listed(subset: &Value, list: &str, field: &str) -> Vec<Value> {
    subset[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item.get(field).cloned().unwrap_or(Value::Null))
        .collect()
}

#[test]
fn subsets_of_the_edge_cases_evaluate_their_keys_like_the_whole_snapshot() {
    let json = EDGE_CASES.as_bytes();
    let keys = kept_keys(json);
    assert!(keys.len() > 30, "{keys:?}");
    let mut sets = key_sets(&keys);
    sets.push(vec!["needs-cycle", "uses-s1"]);
    sets.push(vec!["multivariate", "plain", "ghost"]);
    assert_subsets_agree(json, &sets, &probes());
}

#[test]
fn subsets_of_the_generated_snapshot_evaluate_their_keys_like_the_whole_snapshot() {
    let json = serde_json::to_vec(&testdata::snapshot(300, 60)).unwrap();
    let keys = kept_keys(&json);
    assert_eq!(keys.len(), 300);
    let mut sets = key_sets(&keys);
    sets.extend(
        keys.chunks(7)
            .map(|c| c.iter().map(String::as_str).collect()),
    );
    let probes: Vec<Probe> = (0..50).map(|n| (testdata::context(n), NOW)).collect();
    assert_subsets_agree(&json, &sets, &probes);
}

fn conformance_files() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The contexts and times of a conformance file's cases, and the flag keys they ask for.
fn conformance_probes(doc: &Value) -> (Vec<Probe>, Vec<String>) {
    let file_now = doc.get("now").and_then(Value::as_str);
    let mut probes = Vec::new();
    let mut asked = Vec::new();
    for case in doc
        .get("cases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let now = case
            .get("now")
            .and_then(Value::as_str)
            .or(file_now)
            .unwrap();
        let ctx = EvaluationContext::from_json_object(&case["context"]).unwrap();
        probes.push((ctx, evaluator_core::parse_rfc3339_millis(now).unwrap()));
        asked.push(case["flagKey"].as_str().unwrap().to_string());
    }
    (probes, asked)
}

#[test]
fn subsets_of_every_conformance_snapshot_evaluate_their_keys_like_the_whole_snapshot() {
    let mut snapshots = 0;
    for (name, text) in conformance_files() {
        // The snapshots as written (whitespace, member order, escapes), not re-serialized.
        let members: HashMap<String, &RawValue> = serde_json::from_str(&text).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let (mut probes, asked) = conformance_probes(&doc);
        probes.extend(probes_without_cases());
        let mut raw_snapshots: Vec<&RawValue> =
            members.get("snapshot").copied().into_iter().collect();
        if let Some(cases) = members.get("validationCases") {
            let cases: Vec<HashMap<String, &RawValue>> = serde_json::from_str(cases.get()).unwrap();
            raw_snapshots.extend(cases.iter().filter_map(|c| c.get("snapshot").copied()));
        }
        for raw in raw_snapshots {
            let json = raw.get().as_bytes();
            let keys = kept_keys(json);
            let mut sets = key_sets(&keys);
            sets.extend(asked.iter().map(|k| vec![k.as_str()]));
            assert_subsets_agree(json, &sets, &probes);
            snapshots += 1;
        }
        println!("{name}: checked");
    }
    assert!(
        snapshots > 50,
        "only {snapshots} conformance snapshots found"
    );
}

fn probes_without_cases() -> Vec<Probe> {
    (0..5)
        .map(|n| (testdata::context(n), NOW))
        .chain([(EvaluationContext::with_targeting_key("user-1"), NOW)])
        .collect()
}

#[test]
fn a_flag_that_value_cannot_hold_takes_the_whole_snapshot_and_others_stay_small() {
    // The fast path of compiling skips unknown members unparsed, so a number beyond f64 there
    // compiles; packing cannot read such a flag's references and keeps everything for it.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let json = format!(
        r#"{{"environment": "e", "version": 1, "flags": [
            {{"flagKey": "huge", "enabled": true, "extra": 1e400, "targetingRules": {{"segments": ["s1"]}}}},
            {{"flagKey": "deep", "enabled": true, "extra": {deep}}},
            {{"flagKey": "other", "enabled": true}}
        ], "segments": [{{"segmentKey": "s1", "included": ["u1"], "extra": -1e999}}, {{"segmentKey": "s2"}}]}}"#
    );
    let json = json.as_bytes();
    assert!(
        serde_json::from_slice::<Value>(json).is_err(),
        "the test needs JSON Value rejects"
    );
    let keys = kept_keys(json);
    assert_eq!(keys, ["huge", "deep", "other"]);
    assert_subsets_agree(json, &key_sets(&keys), &probes());
    let packed = pack(json).unwrap();
    let packed = Packed::parse(&packed).unwrap();
    assert_eq!(packed.subset_json(&["huge"]), json);
    assert_eq!(packed.subset_json(&["deep"]), json);
    let other: Value = serde_json::from_slice(&packed.subset_json(&["other"])).unwrap();
    assert_eq!(
        other["flags"],
        json!([{"flagKey": "other", "enabled": true}])
    );
    assert_eq!(other["segments"], json!([]));
}

#[test]
fn packing_fails_exactly_where_compiling_fails() {
    let documents: &[&[u8]] = &[
        b"",
        b"not json",
        b"[]",
        b"{}",
        b"  {\"environment\": \"e\", \"version\": 1}  ",
        b"{\"environment\": \"e\"}",
        b"{\"environment\": 1, \"version\": 1}",
        b"{\"environment\": \"e\", \"version\": -1}",
        b"{\"environment\": \"e\", \"version\": 1.5}",
        b"{\"environment\": \"e\", \"version\": 1, \"generatedAt\": null}",
        b"{\"environment\": \"e\", \"version\": 1, \"generatedAt\": 5}",
        b"{\"environment\": \"e\", \"version\": 1, \"flags\": null}",
        b"{\"environment\": \"e\", \"version\": 1, \"flags\": {}}",
        b"{\"environment\": \"e\", \"version\": 1, \"segments\": 3}",
        b"{\"environment\": \"e\", \"version\": 1, \"clientKeys\": null}",
        b"{\"environment\": \"e\", \"version\": 1, \"clientKeys\": [5]}",
        b"{\"environment\": \"e\", \"version\": 1, \"version\": 2}",
        b"{\"environment\": \"e\", \"version\": 1} trailing",
        b"{\"environment\": \"e\", \"version\": 1, \"flags\": [1e400]}",
        b"{\"environment\": \"e\", \"version\": 1, \"flags\": [{\"flagKey\": \"a\", \"x\": 1e400}, 5]}",
        b"{\"environment\": \"e\", \"version\": 1, \"flags\": [{\"flagKey\": \"a\", \"x\": 1e400}]}",
        b"{\"environment\": \"e\", \"version\": 1, \"unknown\": \"\xff\xfe\"}",
        b"{\"environment\": \"\xff\", \"version\": 1}",
        b"\xef\xbb\xbf{\"environment\": \"e\", \"version\": 1}",
    ];
    // Asserts first that packing and compiling fail alike, then (when both succeed) that the
    // packed JSON is the document verbatim and its subsets agree.
    for document in documents {
        assert_subsets_agree(document, &[vec!["a"]], &probes());
    }
}

#[test]
fn a_subset_holds_the_named_flags_and_everything_they_depend_on_in_document_order() {
    let json = EDGE_CASES.as_bytes();
    // `targetingRules.segments`, then segments matched by segments.
    let s = subset(json, &["uses-s1"]);
    assert_eq!(listed(&s, "flags", "flagKey"), [json!("uses-s1")]);
    assert_eq!(listed(&s, "segments", "segmentKey"), [json!("s1")]);
    let s = subset(json, &["matches-s2"]);
    assert_eq!(
        listed(&s, "segments", "segmentKey"),
        [json!("s1"), json!("s2")]
    );
    let s = subset(json, &["uses-cyclic-segment"]);
    assert_eq!(
        listed(&s, "segments", "segmentKey"),
        [json!("s3"), json!("s4")]
    );
    let s = subset(json, &["uses-segment-matching-invalid"]);
    assert_eq!(
        listed(&s, "segments", "segmentKey"),
        [json!("s5"), json!("s6")]
    );
    // Prerequisites, transitively, in document order whatever order the keys were asked in.
    let s = subset(json, &["chain-a"]);
    let chain = [json!("chain-a"), json!("chain-b"), json!("chain-c")];
    assert_eq!(listed(&s, "flags", "flagKey"), chain);
    assert_eq!(
        listed(&s, "segments", "segmentKey"),
        [json!("s1"), json!("s2")]
    );
    let s = subset(json, &["chain-c", "chain-a", "plain"]);
    let flags = [
        json!("plain"),
        json!("chain-a"),
        json!("chain-b"),
        json!("chain-c"),
    ];
    assert_eq!(listed(&s, "flags", "flagKey"), flags);
    // The first of duplicate flags only; every segment of a key.
    let s = subset(json, &["needs-dup"]);
    assert_eq!(listed(&s, "flags", "version"), [json!(1), Value::Null]);
    let s = subset(json, &["uses-duplicate-segment"]);
    assert_eq!(
        listed(&s, "segments", "included"),
        [json!(["u1"]), json!(["u2"])]
    );
    // What an unparsable flag names still counts; non-string operands do not name anything.
    let s = subset(json, &["unparsable-with-references"]);
    let flags = listed(&s, "flags", "flagKey");
    assert_eq!(
        flags,
        [
            json!("chain-a"),
            json!("chain-b"),
            json!("chain-c"),
            json!("unparsable-with-references")
        ]
    );
    let segments = [json!("s1"), json!("s2"), json!("s3"), json!("s4")];
    assert_eq!(listed(&s, "segments", "segmentKey"), segments);
    // Keys as compiling reads them: unescaped, and the last of duplicate members.
    let s = subset(json, &["escaped"]);
    assert_eq!(
        listed(&s, "flags", "flagKey"),
        [json!("plain"), json!("escaped")]
    );
    let s = subset(json, &["twice-last", "twice"]);
    assert_eq!(listed(&s, "segments", "segmentKey"), [json!("s1")]);
    let s = subset(json, &["operator-twice"]);
    assert_eq!(
        listed(&s, "segments", "segmentKey"),
        [json!("s1"), json!("s2")]
    );
}

#[test]
fn a_subset_repeats_the_top_level_members_verbatim_and_copies_entries_byte_for_byte() {
    let json = EDGE_CASES.as_bytes();
    let packed = pack(json).unwrap();
    let packed = Packed::parse(&packed).unwrap();
    let subset = String::from_utf8(packed.subset_json(&["uses-escaped-segment"])).unwrap();
    assert!(subset.starts_with(r#"{"environment":"prod\u0075ction","version":7,"generatedAt":"2026-11-24T10:00:00Z","clientKeys":["#));
    let flag = r#"{"flagKey": "uses-escaped-segment", "enabled": true, "targetingRules": {"segments": ["s\u0031"]}}"#;
    assert!(subset.contains(&format!(r#""flags":[{flag}]"#)), "{subset}");
    assert!(
        subset.contains(r#""segments":[{"segmentKey": "s1", "included": ["u1"]}]}"#),
        "{subset}"
    );
    assert!(!subset.contains("unknownTopLevel"));
    assert_eq!(packed.environment(), "production");

    let bare = br#"{"version": 3, "environment": "e", "flags": [{"flagKey": "a"}]}"#;
    let packed = pack(bare).unwrap();
    let subset = Packed::parse(&packed).unwrap().subset_json(&["a"]);
    assert_eq!(
        subset,
        br#"{"environment":"e","version":3,"flags":[{"flagKey": "a"}],"segments":[]}"#
    );
}

#[test]
fn the_directory_agrees_with_compiling_on_which_flags_exist() {
    let json = EDGE_CASES.as_bytes();
    let (compiled, _) = CompiledSnapshot::from_json(json).unwrap();
    let packed = pack(json).unwrap();
    let packed = Packed::parse(&packed).unwrap();
    assert_eq!(packed.flag_count(), compiled.len());
    for key in [
        "dup",
        "twice-last",
        "escaped",
        "",
        "bad key",
        "unparsable",
        "dup-unparsable-first",
    ] {
        assert!(
            packed.contains_flag(key) && compiled.contains_flag(key),
            "{key:?}"
        );
    }
    for key in ["twice", "esc\\u0061ped", "5", "ghost", "s1"] {
        assert!(
            !packed.contains_flag(key) && !compiled.contains_flag(key),
            "{key:?}"
        );
    }
}

/// An invalid flag's served message names the offending field from the flag, not from the
/// snapshot (`flags[25]…`): a subset moves flags, and the message must not move with them.
#[test]
fn served_error_messages_do_not_depend_on_the_flag_position() {
    let json = EDGE_CASES.as_bytes();
    let (whole, _) = CompiledSnapshot::from_json(json).unwrap();
    let packed = pack(json).unwrap();
    let subset_json = Packed::parse(&packed)
        .unwrap()
        .subset_json(&["invalid-clause"]);
    let (subset, _) = CompiledSnapshot::from_json(&subset_json).unwrap();
    let ctx = EvaluationContext::with_targeting_key("u1");
    let message = |s: &CompiledSnapshot| s.evaluate("invalid-clause", &ctx, NOW).error_message;
    let expected = "invalid flag configuration: targetingRules.rules[0].clauses[0].operator: unknown operator \"regexx\"";
    assert_eq!(message(&whole).as_deref(), Some(expected));
    assert_eq!(message(&subset).as_deref(), Some(expected));
}

fn edge_case_keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = kept_keys(EDGE_CASES.as_bytes());
        keys.extend(["ghost", "twice", "s1"].map(String::from));
        keys
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_key_subsets_of_the_edge_cases_evaluate_like_the_whole_snapshot(
        picked in prop::sample::subsequence(edge_case_keys(), 1..8)
    ) {
        let keys: Vec<&str> = picked.iter().map(String::as_str).collect();
        assert_subsets_agree(EDGE_CASES.as_bytes(), &[keys], &probes());
    }

    #[test]
    fn random_key_subsets_of_the_generated_snapshot_evaluate_like_the_whole_snapshot(
        picked in prop::collection::vec(0usize..120, 1..6), contexts in prop::collection::vec(0u64..1000, 1..4)
    ) {
        static JSON: OnceLock<Vec<u8>> = OnceLock::new();
        let json = JSON.get_or_init(|| serde_json::to_vec(&testdata::snapshot(120, 30)).unwrap());
        let names: Vec<String> = picked.iter().map(|i| format!("flag-{i:04}")).collect();
        let keys: Vec<&str> = names.iter().map(String::as_str).collect();
        let probes: Vec<Probe> = contexts.iter().map(|&n| (testdata::context(n), NOW)).collect();
        assert_subsets_agree(json, &[keys], &probes);
    }
}
