//! Properties of evaluation and bucketing over generated input: evaluation never panics on any
//! snapshot (valid or not) or context, bucketing is deterministic, monotonic, uniform and
//! honours 0.001 % steps.
#![cfg(not(target_arch = "wasm32"))]

use evaluator_core::model::{
    Clause, Flag, Override, Prerequisite, Rollout, Rule, Segment, SegmentRule, Snapshot,
    TargetingRules, Variation, WeightedVariation,
};
use evaluator_core::operators::OPERATORS;
use evaluator_core::{
    bucket, validate_snapshot, CompiledSnapshot, ErrorCode, EvaluationContext, Reason, BUCKETS,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

mod packed_common;

// ---------------------------------------------------------------------------------------------
// Generators. Names come from small pools so references, duplicates and cycles happen often.

const KEYS: &[&str] = &["a", "b", "c", "d", "bad key", ""];
const SEGMENTS: &[&str] = &["s1", "s2", "s3", "missing"];
const VARIANTS: &[&str] = &["on", "off", "x", "y", "nope"];
const ATTRIBUTES: &[&str] = &[
    "userId", "key", "country", "plan", "version", "signup", "tags", "n", "",
];

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(pool).prop_map(String::from)
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop::sample::select(
            &[
                "US",
                "CA",
                "pro",
                "1.2.3",
                "v2.0",
                "1.0.0-beta.1",
                "2026-01-01T00:00:00Z",
                "not a date",
                "^a.*b$",
                "(unclosed",
                "a{1000}{1000}",
                "",
                "42",
                "-1.5e3",
                "inf",
                "s1",
                "s2",
            ][..]
        )
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((pick(ATTRIBUTES), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn operator() -> impl Strategy<Value = String> {
    prop_oneof![8 => prop::sample::select(OPERATORS).prop_map(String::from), 1 => Just(String::from("regexx"))]
}

fn clause() -> impl Strategy<Value = Clause> {
    (
        pick(ATTRIBUTES),
        operator(),
        prop::collection::vec(scalar(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(attribute, operator, values, negate)| Clause {
            attribute,
            operator,
            values,
            negate,
        })
}

/// Percentages: mostly well-formed (3 decimals), sometimes out of range or too fine.
fn percentage() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..=100_000).prop_map(|units| f64::from(units) / 1000.0),
        (-10_000i32..120_000).prop_map(|units| f64::from(units) / 1000.0),
        (0u32..1_000_000).prop_map(|tenths_of_units| f64::from(tenths_of_units) / 10_000.0),
    ]
}

fn rollout() -> impl Strategy<Value = Rollout> {
    (
        prop::option::of(pick(ATTRIBUTES)),
        prop::collection::vec((pick(VARIANTS), percentage()), 0..4),
    )
        .prop_map(|(bucket_by, weights)| Rollout {
            bucket_by,
            weights: weights
                .into_iter()
                .map(|(variation, weight)| WeightedVariation { variation, weight })
                .collect(),
        })
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::collection::vec(clause(), 0..4),
        prop::option::of(pick(VARIANTS)),
        prop::option::of(rollout()),
    )
        .prop_map(|(clauses, variation, rollout)| Rule {
            id: None,
            description: None,
            clauses,
            variation,
            rollout,
        })
}

fn targeting() -> impl Strategy<Value = TargetingRules> {
    (
        prop::option::of(percentage()),
        prop::collection::vec(pick(SEGMENTS), 0..3),
        prop::collection::vec(pick(&["u1", "u2", "u3"]), 0..3),
        prop::collection::vec(pick(&["US", "CA"]), 0..2),
        prop::collection::vec(pick(&["u1", "u2"]), 0..2),
        prop::collection::vec(rule(), 0..4),
        prop::option::of(pick(ATTRIBUTES)),
    )
        .prop_map(
            |(percentage, segments, user_ids, countries, excluded_user_ids, rules, bucket_by)| {
                TargetingRules {
                    percentage,
                    segments,
                    user_ids,
                    countries,
                    excluded_user_ids,
                    rules,
                    bucket_by,
                }
            },
        )
}

fn variations() -> impl Strategy<Value = Option<Vec<Variation>>> {
    prop::option::of(
        prop::collection::vec((pick(VARIANTS), json_value()), 0..4).prop_map(|list| {
            list.into_iter()
                .map(|(key, value)| Variation {
                    key,
                    value,
                    description: None,
                })
                .collect()
        }),
    )
}

fn flag() -> impl Strategy<Value = Flag> {
    (
        (
            pick(KEYS),
            any::<bool>(),
            prop::option::of(json_value()),
            variations(),
        ),
        (
            prop::option::of(pick(VARIANTS)),
            prop::option::of(pick(VARIANTS)),
            prop::option::of(pick(VARIANTS)),
        ),
        prop::collection::vec((pick(KEYS), pick(VARIANTS)), 0..3),
        prop::collection::vec(
            (
                pick(&["u1", "u2", ""]),
                prop::option::of(pick(VARIANTS)),
                prop::option::of(any::<bool>()),
                prop::option::of(pick(&[
                    "2026-01-01T00:00:00Z",
                    "2030-01-01T00:00:00+02:00",
                    "soon",
                ])),
            ),
            0..3,
        ),
        prop::option::of(targeting()),
        prop::option::of(".{0,8}"),
    )
        .prop_map(
            |(
                (flag_key, enabled, default_value, variations),
                (on, default, off),
                prerequisites,
                overrides,
                targeting,
                salt,
            )| {
                Flag {
                    flag_key,
                    enabled,
                    default_value,
                    variations,
                    on_variation: on,
                    default_variation: default,
                    off_variation: off,
                    prerequisites: prerequisites
                        .into_iter()
                        .map(|(flag_key, variation)| Prerequisite {
                            flag_key,
                            variation,
                        })
                        .collect(),
                    overrides: overrides
                        .into_iter()
                        .map(|(user_id, variation, enabled, expires_at)| Override {
                            user_id,
                            variation,
                            enabled,
                            expires_at,
                        })
                        .collect(),
                    targeting_rules: targeting,
                    salt,
                    ..Flag::default()
                }
            },
        )
}

fn segment() -> impl Strategy<Value = Segment> {
    (
        pick(SEGMENTS),
        prop::collection::vec(pick(&["u1", "u2", "u3"]), 0..3),
        prop::collection::vec(pick(&["u1", "u2"]), 0..2),
        prop::collection::vec(prop::collection::vec(clause(), 0..3), 0..3),
    )
        .prop_map(|(segment_key, included, excluded, rules)| Segment {
            segment_key,
            included,
            excluded,
            rules: rules
                .into_iter()
                .map(|clauses| SegmentRule { clauses })
                .collect(),
            ..Segment::default()
        })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (
        prop::collection::vec(flag(), 0..6),
        prop::collection::vec(segment(), 0..4),
    )
        .prop_map(|(flags, segments)| Snapshot {
            environment: String::from("e"),
            version: 1,
            flags,
            segments,
            ..Snapshot::default()
        })
}

fn context() -> impl Strategy<Value = EvaluationContext> {
    (
        prop::option::of(pick(&["u1", "u2", "u3", "", "someone"])),
        prop::collection::vec(
            (
                pick(&[
                    "country",
                    "plan",
                    "version",
                    "signup",
                    "tags",
                    "n",
                    "userSegment",
                    "segments",
                ]),
                json_value(),
            ),
            0..6,
        ),
    )
        .prop_map(|(targeting_key, attributes)| EvaluationContext {
            targeting_key,
            attributes: attributes.into_iter().collect::<Map<String, Value>>(),
        })
}

proptest! {
    #[test]
    fn a_context_built_from_an_owned_json_object_equals_one_built_from_a_borrowed_one(
        ctx in context(), alias in any::<bool>()
    ) {
        let mut object = ctx.attributes.clone();
        if let Some(key) = &ctx.targeting_key {
            object.insert(String::from(if alias { "userId" } else { "targetingKey" }), Value::from(key.as_str()));
        }
        let value = Value::Object(object);
        let borrowed = EvaluationContext::from_json_object(&value);
        prop_assert_eq!(&EvaluationContext::from_json_value(value), &borrowed);
    }
}

fn now() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), Just(1_795_514_400_000), any::<i64>()]
}

// ---------------------------------------------------------------------------------------------
// Evaluation never panics.

fn evaluate_everything(compiled: &CompiledSnapshot, ctx: &EvaluationContext, now: i64) {
    let keys: Vec<String> = compiled.flag_keys().map(String::from).collect();
    let prepared = compiled.prepare(ctx, now);
    for key in keys.iter().map(String::as_str).chain(["unknown", ""]) {
        let e = compiled.evaluate(key, ctx, now);
        // Every result serialises, and an error always carries its code.
        serde_json::to_value(&e).unwrap();
        assert_eq!(e.reason == Reason::Error, e.error_code.is_some(), "{e:?}");
        // The served variation's index comes with its key.
        assert_eq!(e.variant.is_some(), e.variation_index.is_some(), "{e:?}");
        // By position, and through a context prepared once for all flags: the same answer.
        if let Some(position) = compiled.flag_position(key) {
            assert_eq!(compiled.flag_key_at(position), Some(key));
            assert_eq!(compiled.evaluate_at(position, ctx, now), e);
            assert_eq!(compiled.evaluate_prepared(position, &prepared), e);
        }
    }
    // All flags at once (attributes looked up once for the batch): each as on its own.
    let all = compiled.evaluate_all(ctx, now);
    assert_eq!(all.len(), compiled.len());
    for e in all {
        assert_eq!(e, compiled.evaluate(e.flag_key, ctx, now));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn evaluation_never_panics_on_generated_snapshots_and_contexts(
        snapshot in snapshot(), contexts in prop::collection::vec(context(), 1..4), now in now()
    ) {
        let warnings = validate_snapshot(&snapshot);
        let (compiled, compile_warnings) = CompiledSnapshot::compile(snapshot.clone());
        prop_assert_eq!(&warnings, &compile_warnings);
        for ctx in &contexts {
            evaluate_everything(&compiled, ctx, now);
            // A snapshot without warnings has no flag that fails to parse.
            if warnings.is_empty() {
                for e in compiled.evaluate_all(ctx, now) {
                    prop_assert_ne!(e.error_code, Some(ErrorCode::ParseError));
                }
            }
        }
        // The JSON route compiles to the same result as the model route.
        let (from_json, json_warnings) = CompiledSnapshot::from_json(&serde_json::to_vec(&snapshot).unwrap()).unwrap();
        prop_assert_eq!(json_warnings, warnings);
        for ctx in &contexts {
            prop_assert_eq!(from_json.evaluate_all(ctx, now), compiled.evaluate_all(ctx, now));
        }
    }

    #[test]
    fn from_json_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok((compiled, _)) = CompiledSnapshot::from_json(&bytes) {
            evaluate_everything(&compiled, &EvaluationContext::default(), 0);
        }
    }

    #[test]
    fn from_json_never_panics_on_arbitrary_json_shaped_like_a_snapshot(
        flags in prop::collection::vec(json_value(), 0..4),
        segments in prop::collection::vec(json_value(), 0..3),
        keys in prop::collection::vec(json_value(), 0..2),
        ctx in context(),
    ) {
        let document = json!({"environment": "e", "version": 1, "flags": flags, "segments": segments, "clientKeys": keys});
        let (compiled, _) = CompiledSnapshot::from_json(&serde_json::to_vec(&document).unwrap()).unwrap();
        evaluate_everything(&compiled, &ctx, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Packed snapshots: a subset evaluates its keys like the whole snapshot.

/// A flag or segment as JSON, sometimes with one member replaced by junk so that it no longer
/// fits the model but keeps its key and (most of) its references.
fn damaged(
    item: impl Strategy<Value = Value>,
    members: &'static [&'static str],
) -> impl Strategy<Value = Value> {
    (
        item,
        prop::option::weighted(0.3, (pick(members), json_value())),
    )
        .prop_map(|(mut item, junk)| {
            if let (Some((member, junk)), Some(object)) = (junk, item.as_object_mut()) {
                object.insert(member, junk);
            }
            item
        })
}

fn damaged_flag() -> impl Strategy<Value = Value> {
    let flag = flag().prop_map(|f| serde_json::to_value(f).unwrap());
    damaged(
        flag,
        &[
            "enabled",
            "variations",
            "defaultValue",
            "targetingRules",
            "overrides",
            "prerequisites",
            "flagKey",
            "version",
        ],
    )
}

fn damaged_segment() -> impl Strategy<Value = Value> {
    let segment = segment().prop_map(|s| serde_json::to_value(s).unwrap());
    damaged(segment, &["included", "rules", "segmentKey"])
}

/// Key `i` of `prefix`; past `n`, a key nothing has.
fn linked_key(prefix: &str, i: usize, n: usize) -> String {
    if i < n {
        format!("{prefix}{i}")
    } else {
        String::from("missing")
    }
}

/// Indexes to refer to from item `i` of `n`: mostly later items (chains), sometimes any item
/// (cycles) or a missing one.
fn links(i: usize, n: usize, max: usize) -> impl Strategy<Value = Vec<usize>> {
    let later = if i + 1 < n {
        (i + 1..n).boxed()
    } else {
        Just(n).boxed()
    };
    let target = prop_oneof![8 => later, 1 => 0..n, 1 => Just(n)];
    prop::collection::vec(target, 0..max)
}

const LINKED_FLAGS: usize = 6;
const LINKED_SEGMENTS: usize = 5;

/// Flag `f{i}`: boolean and valid unless what it refers to is not, leaning on prerequisites,
/// `targetingRules.segments` and `segmentMatch`.
fn linked_flag(i: usize) -> impl Strategy<Value = Value> {
    (
        prop::bool::weighted(0.8),
        links(i, LINKED_FLAGS, 3),
        prop::collection::vec(pick(&["on", "on", "off"]), 3),
        links(0, LINKED_SEGMENTS, 3),
        prop::collection::vec((links(0, LINKED_SEGMENTS, 3), any::<bool>()), 0..3),
    )
        .prop_map(move |(enabled, prerequisites, variations, segments, rules)| {
            let prerequisites: Vec<Value> = prerequisites
                .iter()
                .zip(&variations)
                .map(|(&p, v)| json!({"flagKey": linked_key("f", p, LINKED_FLAGS), "variation": v}))
                .collect();
            let segment = |s: &usize| linked_key("s", *s, LINKED_SEGMENTS);
            let rules: Vec<Value> = rules
                .iter()
                .map(|(values, negate)| {
                    let values: Vec<String> = values.iter().map(segment).collect();
                    json!({"clauses": [{"attribute": "", "operator": "segmentMatch", "values": values, "negate": negate}], "variation": "on"})
                })
                .collect();
            let segments: Vec<String> = segments.iter().map(segment).collect();
            json!({"flagKey": linked_key("f", i, LINKED_FLAGS), "enabled": enabled,
                   "prerequisites": prerequisites,
                   "targetingRules": {"segments": segments, "rules": rules}})
        })
}

/// Segment `s{i}`: users, and rules matching other segments.
fn linked_segment(i: usize) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(pick(&["u1", "u2", "u3"]), 0..3),
        prop::collection::vec(links(i, LINKED_SEGMENTS, 2), 0..3),
    )
        .prop_map(move |(included, rules)| {
            let rules: Vec<Value> = rules
                .iter()
                .map(|values| {
                    let values: Vec<String> = values.iter().map(|&s| linked_key("s", s, LINKED_SEGMENTS)).collect();
                    json!({"clauses": [{"operator": "segmentMatch", "values": values}]})
                })
                .collect();
            json!({"segmentKey": linked_key("s", i, LINKED_SEGMENTS), "included": included, "rules": rules})
        })
}

/// Every linked flag and segment, some damaged, some twice, in any order.
fn linked_snapshot() -> impl Strategy<Value = Value> {
    let flags: Vec<_> = (0..LINKED_FLAGS)
        .map(|i| {
            damaged(
                linked_flag(i),
                &["enabled", "targetingRules", "prerequisites"],
            )
            .boxed()
        })
        .collect();
    let segments: Vec<_> = (0..LINKED_SEGMENTS)
        .map(|i| damaged(linked_segment(i), &["included", "rules"]).boxed())
        .collect();
    let extra_flags = prop::collection::vec((0..LINKED_FLAGS).prop_flat_map(linked_flag), 0..2);
    let extra_segments =
        prop::collection::vec((0..LINKED_SEGMENTS).prop_flat_map(linked_segment), 0..2);
    (flags, segments, extra_flags, extra_segments)
        .prop_flat_map(|(mut flags, mut segments, extra_flags, extra_segments)| {
            flags.extend(extra_flags);
            segments.extend(extra_segments);
            (Just(flags).prop_shuffle(), Just(segments).prop_shuffle())
        })
        .prop_map(|(flags, segments)| json!({"environment": "e", "version": 1, "flags": flags, "segments": segments}))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn packed_subsets_of_linked_flags_and_segments_evaluate_their_keys_like_the_whole_snapshot(
        document in linked_snapshot(),
        keys in prop::sample::subsequence(&["f0", "f1", "f2", "f3", "f4", "f5", "missing"][..], 1..3),
        contexts in prop::collection::vec(context(), 1..4),
    ) {
        let probes: Vec<_> = contexts.into_iter().map(|ctx| (ctx, 0)).collect();
        packed_common::assert_subsets_agree(&serde_json::to_vec(&document).unwrap(), &[keys], &probes);
    }

    #[test]
    fn packed_subsets_of_generated_snapshots_evaluate_their_keys_like_the_whole_snapshot(
        snapshot in snapshot(),
        keys in prop::sample::subsequence(KEYS, 1..=KEYS.len()),
        contexts in prop::collection::vec(context(), 1..4),
        now in now(),
    ) {
        let json = serde_json::to_vec(&snapshot).unwrap();
        let probes: Vec<_> = contexts.into_iter().map(|ctx| (ctx, now)).collect();
        packed_common::assert_subsets_agree(&json, &[keys], &probes);
    }

    #[test]
    fn packed_subsets_of_snapshots_with_entries_that_do_not_fit_the_model_evaluate_alike(
        flags in prop::collection::vec(damaged_flag(), 0..6),
        segments in prop::collection::vec(damaged_segment(), 0..4),
        keys in prop::sample::subsequence(KEYS, 1..=KEYS.len()),
        contexts in prop::collection::vec(context(), 1..4),
    ) {
        let document = json!({"environment": "e", "version": 1, "flags": flags, "segments": segments});
        let probes: Vec<_> = contexts.into_iter().map(|ctx| (ctx, 1_795_514_400_000)).collect();
        packed_common::assert_subsets_agree(&serde_json::to_vec(&document).unwrap(), &[keys], &probes);
    }
}

// ---------------------------------------------------------------------------------------------
// Bucketing.

fn percentage_flag(units: u32) -> CompiledSnapshot {
    let document = json!({"environment": "e", "version": 1, "flags": [
        {"flagKey": "rollout", "enabled": true, "targetingRules": {"percentage": f64::from(units) / 1000.0}}
    ]});
    let (compiled, warnings) =
        CompiledSnapshot::from_json(&serde_json::to_vec(&document).unwrap()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    compiled
}

fn included(snapshot: &CompiledSnapshot, user: &str) -> bool {
    snapshot
        .evaluate("rollout", &EvaluationContext::with_targeting_key(user), 0)
        .enabled
}

proptest! {
    #[test]
    fn bucketing_is_deterministic_and_in_range(salt in ".{0,20}", value in ".{0,40}") {
        let b = bucket(&salt, &value);
        prop_assert!(b < BUCKETS);
        prop_assert_eq!(b, bucket(&salt, &value));
    }

    #[test]
    fn a_user_in_the_rollout_at_p_stays_in_at_every_q_above_p(
        p in 0u32..=100_000, extra in 0u32..=100_000, users in prop::collection::vec("[a-z0-9-]{1,16}", 1..20)
    ) {
        let q = p.saturating_add(extra).min(100_000);
        let (at_p, at_q) = (percentage_flag(p), percentage_flag(q));
        for user in &users {
            if included(&at_p, user) {
                prop_assert!(included(&at_q, user), "{} in at {} but not at {}", user, p, q);
            }
        }
    }
}

#[test]
fn buckets_of_100000_ids_are_uniform_by_chi_square() {
    // Deterministic ids, so the test is reproducible. 100 bins of 1,000 buckets; with 99 degrees
    // of freedom the chi-square statistic exceeds 148.23 with probability 0.001 if uniform.
    const IDS: u32 = 100_000;
    const BINS: usize = 100;
    for salt in ["new-checkout-flow", "dark-mode", "x"] {
        let mut counts = [0u32; BINS];
        for i in 0..IDS {
            let b = bucket(salt, &format!("user-{i}"));
            counts[(b / (BUCKETS / BINS as u32)) as usize] += 1;
        }
        let expected = f64::from(IDS) / BINS as f64;
        let chi_square: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - expected).powi(2) / expected)
            .sum();
        assert!(
            chi_square < 148.23,
            "salt {salt}: chi-square {chi_square:.1} over 99 df"
        );
    }
}

#[test]
fn sequential_ids_do_not_correlate_across_flags() {
    // Two salts must place users independently: about a quarter of users is in both 50 % halves.
    let both = (0..10_000).filter(|i| {
        let id = format!("{i}");
        bucket("flag-a", &id) < 50_000 && bucket("flag-b", &id) < 50_000
    });
    let n = both.count();
    assert!((2_300..2_700).contains(&n), "{n} of 10000 in both halves");
}

#[test]
fn percentages_are_honoured_to_a_thousandth_of_a_percent() {
    // Find users whose bucket is exactly k; they are out at k/1000 % and in at (k+1)/1000 %.
    for k in [0u32, 1, 7, 12_344, 12_345, 99_998, 99_999] {
        let user = (0u64..)
            .map(|i| format!("fine-{i}"))
            .find(|id| bucket("rollout", id) == k)
            .expect("some id lands in every bucket");
        assert!(
            !included(&percentage_flag(k), &user),
            "bucket {k} must be out at {k} units"
        );
        assert!(
            included(&percentage_flag(k + 1), &user),
            "bucket {k} must be in at {} units",
            k + 1
        );
    }
}
