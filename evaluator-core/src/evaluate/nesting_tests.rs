//! Issue 11, "Resource budgets": nesting costs time linear in the snapshot, never exponential.
//! A chain of segments that each match the next one twice, and a lattice of prerequisites where
//! every flag needs every flag of the level below, are worked out once per segment and flag
//! (counted by `memo::count`, not timed); chains deeper than the limits are refused.

use super::*;
use crate::memo::count;
use crate::validate::limits;
use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;
use serde_json::json;

const NOW: i64 = 1_795_514_400_000;

/// Segments `s0` … `s{n-1}`: `s{i}` has two rules that match `s{i+1}` (fan-out 2); the last
/// matches users whose `plan` is `gold`. Flag `f` targets `s0`.
fn segment_chain(n: usize) -> Value {
    let segments: Vec<Value> = (0..n)
        .map(|i| {
            let rules = if i + 1 < n {
                let next = format!("s{}", i + 1);
                json!([
                    {"clauses": [{"operator": "segmentMatch", "values": [next]}]},
                    {"clauses": [{"operator": "segmentMatch", "values": [next]},
                                 {"attribute": "country", "operator": "in", "values": ["US"]}]},
                ])
            } else {
                json!([{"clauses": [{"attribute": "plan", "operator": "in", "values": ["gold"]}]}])
            };
            json!({"segmentKey": format!("s{i}"), "rules": rules})
        })
        .collect();
    json!({"environment": "test", "version": 1, "segments": segments,
           "flags": [{"flagKey": "f", "enabled": true, "targetingRules": {"segments": ["s0"]}}]})
}

/// `levels` levels of `width` flags below flag `top`; every flag needs every flag of the next
/// level to serve `on`; the last level has no prerequisites.
fn prerequisite_lattice(levels: usize, width: usize) -> Value {
    let key = |level: usize, i: usize| format!("l{level}-{i}");
    let needs = |level: usize| -> Vec<Value> {
        if level >= levels {
            return Vec::new();
        }
        (0..width)
            .map(|i| json!({"flagKey": key(level, i), "variation": "on"}))
            .collect()
    };
    let mut flags =
        Vec::from([json!({"flagKey": "top", "enabled": true, "prerequisites": needs(0)})]);
    for level in 0..levels {
        for i in 0..width {
            flags.push(json!({"flagKey": key(level, i), "enabled": true, "prerequisites": needs(level + 1)}));
        }
    }
    json!({"environment": "test", "version": 1, "flags": flags, "segments": []})
}

fn compile(document: &Value) -> (CompiledSnapshot, Vec<String>) {
    let (snapshot, warnings) =
        CompiledSnapshot::from_json(&serde_json::to_vec(document).unwrap()).unwrap();
    (snapshot, warnings.iter().map(ToString::to_string).collect())
}

fn gold(country: &str) -> EvaluationContext {
    let mut ctx = EvaluationContext::with_targeting_key("u1");
    ctx.attributes.insert("country".into(), json!(country));
    ctx.attributes.insert("plan".into(), json!("bronze"));
    ctx
}

#[test]
fn a_64_level_segment_chain_with_fan_out_2_is_refused_by_validation() {
    let (snapshot, warnings) = compile(&segment_chain(64));
    // s0 … s31 are deeper than 32 segments; s32 … s63 are fine.
    assert_eq!(
        warnings.first().map(String::as_str),
        Some("segments[0].rules: segmentMatch nests 64 segments deep, beyond the limit of 32")
    );
    assert!(warnings.contains(
        &"segments[31].rules: segmentMatch nests 33 segments deep, beyond the limit of 32".into()
    ));
    assert!(!warnings.iter().any(|w| w.starts_with("segments[32]")));
    assert!(
        warnings.contains(&"flags[0].targetingRules: uses segment \"s0\", which is invalid".into())
    );
    count::take();
    let e = snapshot.evaluate("f", &gold("US"), NOW);
    assert_eq!(
        (e.reason, e.error_code),
        (Reason::Error, Some(ErrorCode::ParseError))
    );
    assert_eq!(count::take(), (0, 0), "a refused chain is never walked");
}

#[test]
fn a_32_level_segment_chain_with_fan_out_2_works_out_each_segment_once() {
    let (snapshot, warnings) = compile(&segment_chain(limits::SEGMENT_DEPTH));
    assert!(warnings.is_empty(), "{warnings:?}");
    count::take();
    // Not in the segment: every rule of every segment is tried, 2^32 walks without the memo.
    let e = snapshot.evaluate("f", &gold("US"), NOW);
    assert_eq!(e.detail, detail::DEFAULT);
    assert_eq!(count::take(), (limits::SEGMENT_DEPTH, 0));
    // In it, through the whole chain.
    let mut member = gold("US");
    member.attributes.insert("plan".into(), json!("gold"));
    assert_eq!(
        snapshot.evaluate("f", &member, NOW).detail,
        detail::USER_IN_SEGMENT
    );
    assert_eq!(count::take(), (limits::SEGMENT_DEPTH, 0));
}

#[test]
fn a_prerequisite_lattice_16_levels_deep_resolves_each_flag_once() {
    let (width, levels) = (4, limits::PREREQUISITE_DEPTH);
    let (snapshot, warnings) = compile(&prerequisite_lattice(levels, width));
    assert!(warnings.is_empty(), "{warnings:?}");
    count::take();
    // 4^16 resolutions without the memo; one per flag with it.
    let e = snapshot.evaluate("top", &gold("US"), NOW);
    assert_eq!((e.value, e.detail), (&json!(true), detail::STATIC));
    assert_eq!(count::take(), (0, width * levels));
}

#[test]
fn evaluating_every_flag_shares_one_memo() {
    let (snapshot, _) = compile(&prerequisite_lattice(limits::PREREQUISITE_DEPTH, 3));
    count::take();
    let all = snapshot.evaluate_all(&gold("US"), NOW);
    assert!(all.iter().all(|e| e.detail == detail::STATIC));
    // every flag but `top` and the last level is somebody's prerequisite, resolved once
    assert_eq!(count::take(), (0, 3 * limits::PREREQUISITE_DEPTH));
}

#[test]
fn prerequisites_nested_17_levels_deep_are_refused_by_validation() {
    let (snapshot, warnings) = compile(&prerequisite_lattice(limits::PREREQUISITE_DEPTH + 1, 1));
    assert_eq!(
        warnings,
        ["flags[0].prerequisites: prerequisites nest 17 levels deep, beyond the limit of 16"]
    );
    let e = snapshot.evaluate("top", &gold("US"), NOW);
    assert_eq!(
        (e.reason, e.error_code),
        (Reason::Error, Some(ErrorCode::ParseError))
    );
    assert_eq!(
        e.error_message.as_deref(),
        Some(
            "invalid flag configuration: prerequisites nest 17 levels deep, beyond the limit of 16"
        )
    );
    // one level less below it: fine
    assert_eq!(
        snapshot.evaluate("l0-0", &gold("US"), NOW).detail,
        detail::STATIC
    );
}

#[test]
fn validating_one_flag_or_segment_applies_the_depth_limits_too() {
    let lattice: crate::model::Snapshot =
        serde_json::from_value(prerequisite_lattice(limits::PREREQUISITE_DEPTH + 1, 1)).unwrap();
    let (top, others) = lattice.flags.split_first().unwrap();
    let errors = crate::validate_flag(top, &[], others);
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["prerequisites: prerequisites nest 17 levels deep, beyond the limit of 16"]
    );
    assert!(crate::validate_flag(others.first().unwrap(), &[], &lattice.flags).is_empty());

    let chain: crate::model::Snapshot = serde_json::from_value(segment_chain(33)).unwrap();
    let (first, rest) = chain.segments.split_first().unwrap();
    let errors = crate::validate_segment(first, rest);
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["rules: segmentMatch nests 33 segments deep, beyond the limit of 32"]
    );
    assert!(crate::validate_segment(rest.first().unwrap(), &chain.segments).is_empty());
}
