//! A deterministic generator of realistic snapshots, for benchmarks and tests (feature
//! `testdata`). The same seed always yields the same snapshot, on every platform.
//!
//! The mix imitates a mature environment: most flags are plain kill switches, the rest use
//! user lists, segments, countries, percentages, ordered rules with several operators, weighted
//! multivariate rollouts, overrides and prerequisites.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::{json, Value};

use crate::context::EvaluationContext;
use crate::model::{
    Clause, Flag, Override, Prerequisite, Rollout, Rule, Segment, SegmentRule, Snapshot,
    TargetingRules, Variation, WeightedVariation,
};

/// A boolean flag without any targeting (the cheapest evaluation).
pub const SIMPLE_FLAG: &str = "bench-simple-bool";
/// A boolean flag with 10 rules of 3 clauses and a 25 % percentage rollout, the worst case:
/// for every [`context`] the first two clauses of every rule match and the third does not, so
/// evaluation tests all 30 clauses before the rollout.
pub const RULES_FLAG: &str = "bench-ten-rules";
/// The same shape (10 rules × 3 clauses + 25 %) as usually written: each rule targets another
/// country and plan, so most rules fail at their first clause.
pub const RULES_TYPICAL_FLAG: &str = "bench-ten-rules-typical";

/// In [`shapes_snapshot`]: one rule of one clause, `userId in ["7"]`, serving `on`.
pub const ONE_CLAUSE_FLAG: &str = "bench-one-clause";
/// In [`shapes_snapshot`]: one rule of two clauses, `userId in ["7"]` and `country notIn ["CN"]`.
pub const TWO_CLAUSES_FLAG: &str = "bench-two-clauses";
/// In [`shapes_snapshot`]: a 50 % rollout by user id, no other targeting.
pub const ROLLOUT_FLAG: &str = "bench-rollout-50";

const COUNTRIES: &[&str] = &["US", "CA", "GB", "DE", "FR", "JP", "BR", "IN", "AU", "NL"];
const PLANS: &[&str] = &["free", "starter", "pro", "enterprise"];

/// SplitMix64: tiny, deterministic, good enough to vary generated data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items
            .get(self.below(items.len()))
            .copied()
            .unwrap_or_default()
    }
}

/// The benchmark snapshot: 1,000 flags and 200 segments.
#[must_use]
pub fn realistic_snapshot() -> Snapshot {
    snapshot(1_000, 200)
}

/// A snapshot with `flags` flags (at least the three named ones) and `segments` segments.
#[must_use]
pub fn snapshot(flags: usize, segments: usize) -> Snapshot {
    let mut rng = Rng(0x5eed_f1a9);
    let segments: Vec<Segment> = (0..segments).map(|i| segment(&mut rng, i)).collect();
    let mut list = Vec::with_capacity(flags.max(3));
    list.push(simple_flag());
    list.push(rules_flag());
    list.push(typical_rules_flag());
    for i in 3..flags {
        list.push(flag(&mut rng, i, segments.len()));
    }
    Snapshot {
        environment: String::from("production"),
        version: 1,
        generated_at: String::from("2026-11-24T10:00:00Z"),
        flags: list,
        segments,
        client_keys: Vec::new(),
    }
}

/// The small shapes the engines are compared on (issue 15): [`SIMPLE_FLAG`],
/// [`ONE_CLAUSE_FLAG`], [`TWO_CLAUSES_FLAG`] and [`ROLLOUT_FLAG`], evaluated for
/// [`shapes_context`] (which every clause matches).
#[must_use]
pub fn shapes_snapshot() -> Snapshot {
    let one_rule = |flag_key: &str, clauses: Vec<Clause>| Flag {
        flag_key: String::from(flag_key),
        enabled: true,
        version: 1,
        targeting_rules: Some(TargetingRules {
            rules: Vec::from([Rule {
                clauses,
                variation: Some(String::from("on")),
                ..Rule::default()
            }]),
            ..TargetingRules::default()
        }),
        ..Flag::default()
    };
    let rollout = Flag {
        flag_key: String::from(ROLLOUT_FLAG),
        enabled: true,
        version: 1,
        targeting_rules: Some(TargetingRules {
            percentage: Some(50.0),
            ..TargetingRules::default()
        }),
        ..Flag::default()
    };
    Snapshot {
        environment: String::from("production"),
        version: 1,
        generated_at: String::from("2026-11-24T10:00:00Z"),
        flags: Vec::from([
            simple_flag(),
            one_rule(
                ONE_CLAUSE_FLAG,
                Vec::from([clause("userId", "in", strings(&["7"]))]),
            ),
            one_rule(
                TWO_CLAUSES_FLAG,
                Vec::from([
                    clause("userId", "in", strings(&["7"])),
                    clause("country", "notIn", strings(&["CN"])),
                ]),
            ),
            rollout,
        ]),
        segments: Vec::new(),
        client_keys: Vec::new(),
    }
}

/// The context of [`shapes_snapshot`]: user `7` in `US`.
#[must_use]
pub fn shapes_context() -> EvaluationContext {
    EvaluationContext::with_targeting_key("7").with_attribute("country", "US")
}

/// Context number `n`: targeting key `user-n` plus typical attributes.
#[must_use]
pub fn context(n: u64) -> EvaluationContext {
    let mut rng = Rng(n);
    EvaluationContext::with_targeting_key(format!("user-{n}"))
        .with_attribute("country", rng.pick(COUNTRIES))
        .with_attribute("plan", rng.pick(PLANS))
        .with_attribute("email", format!("user{n}@example.com"))
        .with_attribute(
            "appVersion",
            format!("2.{}.{}", rng.below(20), rng.below(10)),
        )
        .with_attribute("age", 18 + rng.below(60))
}

fn clause(attribute: &str, operator: &str, values: Vec<Value>) -> Clause {
    Clause {
        attribute: String::from(attribute),
        operator: String::from(operator),
        values,
        negate: false,
    }
}

fn strings(items: &[&str]) -> Vec<Value> {
    items.iter().map(|s| json!(s)).collect()
}

fn simple_flag() -> Flag {
    Flag {
        flag_key: String::from(SIMPLE_FLAG),
        enabled: true,
        version: 1,
        ..Flag::default()
    }
}

fn rules_flag() -> Flag {
    // Every rule's first clause matches typical users, a later one does not: realistic work.
    ten_rules_flag(RULES_FLAG, |r| {
        Vec::from([
            clause("country", "in", strings(COUNTRIES)),
            clause("email", "endsWith", strings(&["@example.com"])),
            clause("plan", "in", strings(&[&*format!("internal-{r}")])),
        ])
    })
}

fn typical_rules_flag() -> Flag {
    ten_rules_flag(RULES_TYPICAL_FLAG, |r| {
        Vec::from([
            clause(
                "country",
                "in",
                strings(&[COUNTRIES.get(r).copied().unwrap_or("US")]),
            ),
            clause(
                "plan",
                "in",
                strings(&[PLANS.get(r % PLANS.len()).copied().unwrap_or("pro")]),
            ),
            clause("appVersion", "semverGt", strings(&["2.15.0"])),
        ])
    })
}

/// An enabled flag with ten rules `r0`..`r9` serving `on`, whose clauses `clauses(r)` builds,
/// and a 25% rollout for everyone else.
fn ten_rules_flag(flag_key: &str, clauses: impl Fn(usize) -> Vec<Clause>) -> Flag {
    let rules = (0..10)
        .map(|r| Rule {
            id: Some(format!("r{r}")),
            clauses: clauses(r),
            variation: Some(String::from("on")),
            ..Rule::default()
        })
        .collect();
    Flag {
        flag_key: String::from(flag_key),
        enabled: true,
        version: 1,
        targeting_rules: Some(TargetingRules {
            percentage: Some(25.0),
            rules,
            ..TargetingRules::default()
        }),
        ..Flag::default()
    }
}

fn segment(rng: &mut Rng, i: usize) -> Segment {
    let included = (0..20 + rng.below(180))
        .map(|_| format!("user-{}", rng.below(100_000)))
        .collect();
    let excluded = (0..rng.below(5))
        .map(|_| format!("user-{}", rng.below(100_000)))
        .collect();
    let mut rules = Vec::new();
    if i % 2 == 0 {
        rules.push(SegmentRule {
            clauses: Vec::from([
                clause("plan", "in", strings(&[rng.pick(PLANS)])),
                clause(
                    "country",
                    "in",
                    strings(&[rng.pick(COUNTRIES), rng.pick(COUNTRIES)]),
                ),
            ]),
        });
    }
    if i % 5 == 1 {
        rules.push(SegmentRule {
            clauses: Vec::from([clause("appVersion", "semverGt", strings(&["2.10.0"]))]),
        });
    }
    if i % 7 == 3 && i > 0 {
        // Only earlier segments: nested, never cyclic.
        let other = format!("segment-{:03}", rng.below(i));
        rules.push(SegmentRule {
            clauses: Vec::from([clause("", "segmentMatch", Vec::from([json!(other)]))]),
        });
    }
    Segment {
        segment_key: format!("segment-{i:03}"),
        included,
        excluded,
        rules,
        ..Segment::default()
    }
}

fn flag(rng: &mut Rng, i: usize, segments: usize) -> Flag {
    let mut flag = Flag {
        flag_key: format!("flag-{i:04}"),
        description: Some(format!("Generated flag {i}")),
        enabled: rng.below(10) != 0,
        version: 1 + rng.below(20) as u64,
        ..Flag::default()
    };
    let mut targeting = TargetingRules::default();
    match i % 10 {
        0..=3 => {}
        4 => {
            targeting.user_ids = (0..10 + rng.below(90))
                .map(|_| format!("user-{}", rng.below(100_000)))
                .collect();
            targeting.percentage = Some(rng.below(100_001) as f64 / 1000.0);
        }
        5 if segments > 0 => {
            targeting.segments = (0..1 + rng.below(3))
                .map(|_| format!("segment-{:03}", rng.below(segments)))
                .collect();
            targeting.countries = Vec::from([String::from(rng.pick(COUNTRIES))]);
        }
        6 => {
            targeting.rules = (0..1 + rng.below(10))
                .map(|r| boolean_rule(rng, r))
                .collect();
            if rng.below(2) == 0 {
                targeting.percentage = Some(rng.below(101) as f64);
            }
        }
        7 => {
            flag.variations = Some(
                ["control", "treatment-a", "treatment-b"]
                    .iter()
                    .map(|k| Variation {
                        key: String::from(*k),
                        value: json!(k),
                        description: None,
                    })
                    .collect(),
            );
            flag.default_variation = Some(String::from("control"));
            targeting.rules = Vec::from([Rule {
                clauses: Vec::from([clause("plan", "in", strings(&["pro", "enterprise"]))]),
                rollout: Some(Rollout {
                    bucket_by: None,
                    weights: Vec::from([
                        WeightedVariation {
                            variation: String::from("control"),
                            weight: 33.334,
                        },
                        WeightedVariation {
                            variation: String::from("treatment-a"),
                            weight: 33.333,
                        },
                        WeightedVariation {
                            variation: String::from("treatment-b"),
                            weight: 33.333,
                        },
                    ]),
                }),
                ..Rule::default()
            }]);
        }
        8 => {
            flag.variations = Some(Vec::from([
                Variation {
                    key: String::from("small"),
                    value: json!({"limit": 10, "tier": "s"}),
                    description: None,
                },
                Variation {
                    key: String::from("large"),
                    value: json!({"limit": 1000, "tier": "l"}),
                    description: None,
                },
            ]));
            flag.default_value = Some(json!({"limit": 10, "tier": "s"}));
            flag.overrides = (0..rng.below(4))
                .map(|_| Override {
                    user_id: format!("user-{}", rng.below(100_000)),
                    variation: Some(String::from("large")),
                    enabled: None,
                    expires_at: Some(String::from("2027-01-01T00:00:00Z")),
                })
                .collect();
            targeting.rules = Vec::from([Rule {
                clauses: Vec::from([
                    clause("plan", "in", strings(&["enterprise"])),
                    clause("age", "gte", Vec::from([json!(21)])),
                ]),
                variation: Some(String::from("large")),
                ..Rule::default()
            }]);
        }
        _ => {
            let mut earlier = 3 + rng.below(i.saturating_sub(3).max(1));
            if matches!(earlier % 10, 7 | 8) {
                // Those serve strings and objects; prerequisites here require a boolean "on".
                earlier -= 3;
            }
            flag.prerequisites = Vec::from([Prerequisite {
                flag_key: if earlier < i {
                    format!("flag-{earlier:04}")
                } else {
                    String::from(SIMPLE_FLAG)
                },
                variation: String::from("on"),
            }]);
            targeting.excluded_user_ids = (0..rng.below(20))
                .map(|_| format!("user-{}", rng.below(100_000)))
                .collect();
            targeting.percentage = Some(50.0);
        }
    }
    if targeting != TargetingRules::default() {
        flag.targeting_rules = Some(targeting);
    }
    flag
}

fn boolean_rule(rng: &mut Rng, r: usize) -> Rule {
    let candidates = [
        clause(
            "country",
            "in",
            strings(&[rng.pick(COUNTRIES), rng.pick(COUNTRIES)]),
        ),
        clause("plan", "notIn", strings(&["free"])),
        clause(
            "email",
            "endsWith",
            strings(&["@example.com", "@example.org"]),
        ),
        clause("appVersion", "semverGt", strings(&["2.5.0"])),
        clause("age", "lt", Vec::from([json!(30 + rng.below(40))])),
        clause(
            "email",
            "matches",
            strings(&[&*format!("^user[0-9]*{}@", rng.below(10))]),
        ),
        clause("createdAt", "before", strings(&["2026-01-01T00:00:00Z"])),
    ];
    let count = 1 + rng.below(3);
    let clauses = (0..count)
        .filter_map(|_| candidates.get(rng.below(candidates.len())).cloned())
        .collect();
    Rule {
        id: Some(format!("rule-{r}")),
        clauses,
        variation: Some(String::from(if r % 2 == 0 { "on" } else { "off" })),
        ..Rule::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CompiledSnapshot;

    #[test]
    fn the_generated_snapshot_is_valid_and_deterministic() {
        let first = realistic_snapshot();
        assert_eq!(first, realistic_snapshot());
        assert_eq!((first.flags.len(), first.segments.len()), (1000, 200));
        let (compiled, warnings) = CompiledSnapshot::compile(first);
        assert!(warnings.is_empty(), "{warnings:?}");
        let ctx = context(1);
        let evaluations = compiled.evaluate_all(&ctx, 0);
        assert!(evaluations.iter().all(|e| e.error_code.is_none()));
        // The rules flag walks all rules, then decides by percentage.
        let e = compiled.evaluate(RULES_FLAG, &ctx, 0);
        assert!(
            e.detail == "percentage-rollout" || e.detail == "default",
            "{e:?}"
        );
    }
}
