//! Evaluation and loading speed on the realistic 1,000-flag / 200-segment snapshot.
//!
//! `baseline/*` measures a plain `HashMap` lookup in the same run, so results from a shared,
//! noisy machine can be compared as ratios. Run: `cargo bench -p evaluator-core`.

// criterion does not build for wasm32; wasm timings come from `tests/wasm_timing.rs`
// (`scripts/bench-core-wasm`).
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::collections::HashMap;
    use std::hint::black_box;

    use criterion::{criterion_group, Criterion};
    use evaluator_core::{testdata, CompiledSnapshot};

    const NOW: i64 = 1_795_514_400_000;

    fn evaluation(c: &mut Criterion) {
        let snapshot = testdata::realistic_snapshot();
        let (compiled, warnings) = CompiledSnapshot::compile(snapshot);
        assert!(warnings.is_empty(), "{warnings:?}");
        let ctx = testdata::context(42);

        let map: HashMap<String, usize> = compiled
            .flag_keys()
            .enumerate()
            .map(|(i, k)| (k.to_owned(), i))
            .collect();
        c.bench_function("baseline/std_hashmap_lookup", |b| {
            b.iter(|| map.get(black_box("flag-0500")).copied())
        });

        c.bench_function("evaluate/simple_bool", |b| {
            b.iter(|| {
                compiled
                    .evaluate(black_box(testdata::SIMPLE_FLAG), black_box(&ctx), NOW)
                    .enabled
            })
        });
        c.bench_function("evaluate/10_rules_x_3_clauses_25pct", |b| {
            b.iter(|| {
                compiled
                    .evaluate(black_box(testdata::RULES_FLAG), black_box(&ctx), NOW)
                    .enabled
            })
        });
        c.bench_function("evaluate/10_rules_x_3_clauses_25pct_typical", |b| {
            b.iter(|| {
                compiled
                    .evaluate(
                        black_box(testdata::RULES_TYPICAL_FLAG),
                        black_box(&ctx),
                        NOW,
                    )
                    .enabled
            })
        });
        c.bench_function("evaluate_all/1000_flags", |b| {
            b.iter(|| compiled.evaluate_all(black_box(&ctx), NOW).len())
        });
        // A bulk caller with the prepared API: one context, every flag by position.
        let positions: Vec<_> = compiled
            .flag_keys()
            .filter_map(|k| compiled.flag_position(k))
            .collect();
        c.bench_function("evaluate_prepared/1000_flags", |b| {
            b.iter(|| {
                let prepared = compiled.prepare(black_box(&ctx), NOW);
                positions
                    .iter()
                    .filter(|&&p| compiled.evaluate_prepared(p, &prepared).enabled)
                    .count()
            })
        });
        for (name, key) in [
            ("simple_bool", testdata::SIMPLE_FLAG),
            ("10_rules_x_3_clauses_25pct", testdata::RULES_FLAG),
            (
                "10_rules_x_3_clauses_25pct_typical",
                testdata::RULES_TYPICAL_FLAG,
            ),
        ] {
            let position = compiled.flag_position(key).expect("the flag is there");
            c.bench_function(&format!("evaluate_at/{name}"), |b| {
                b.iter(|| {
                    compiled
                        .evaluate_at(black_box(position), black_box(&ctx), NOW)
                        .enabled
                })
            });
        }
    }

    /// The small shapes of issue 15's comparison with other engines, by key and by position.
    fn shapes(c: &mut Criterion) {
        let (compiled, warnings) = CompiledSnapshot::compile(testdata::shapes_snapshot());
        assert!(warnings.is_empty(), "{warnings:?}");
        let ctx = testdata::shapes_context();
        for (name, key) in [
            ("one_clause_in", testdata::ONE_CLAUSE_FLAG),
            ("two_clauses_in_not_in", testdata::TWO_CLAUSES_FLAG),
            ("rollout_50pct", testdata::ROLLOUT_FLAG),
        ] {
            c.bench_function(&format!("evaluate/{name}"), |b| {
                b.iter(|| {
                    compiled
                        .evaluate(black_box(key), black_box(&ctx), NOW)
                        .enabled
                })
            });
            let position = compiled.flag_position(key).expect("the flag is there");
            c.bench_function(&format!("evaluate_at/{name}"), |b| {
                b.iter(|| {
                    compiled
                        .evaluate_at(black_box(position), black_box(&ctx), NOW)
                        .enabled
                })
            });
        }
    }

    /// Nesting at the depth limits (issue 11): a `segmentMatch` chain of 32 segments that each
    /// match the next twice, and 16 levels of 4 prerequisites each needing all 4 below. Without
    /// memoising, 2^32 and 4^16 steps; with it, one per segment or flag.
    fn nesting(c: &mut Criterion) {
        let json = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/conformance/22-nesting.json"
        ))
        .expect("the conformance file is there");
        let file: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        let snapshot = serde_json::to_vec(&file["snapshot"]).expect("serialises");
        let (compiled, warnings) = CompiledSnapshot::from_json(&snapshot).expect("a snapshot");
        assert!(warnings.is_empty(), "{warnings:?}");
        let ctx = testdata::context(42);
        c.bench_function("nested/segment_chain_32_fan_out_2", |b| {
            b.iter(|| {
                compiled
                    .evaluate(black_box("in-chain"), black_box(&ctx), NOW)
                    .enabled
            })
        });
        c.bench_function("nested/prerequisites_16_levels_x_4", |b| {
            b.iter(|| {
                compiled
                    .evaluate(black_box("top"), black_box(&ctx), NOW)
                    .enabled
            })
        });
    }

    fn loading(c: &mut Criterion) {
        let json =
            serde_json::to_vec(&testdata::realistic_snapshot()).expect("the model serialises");
        println!("snapshot JSON: {} bytes", json.len());
        // Dropping the result is not part of loading: it happens outside the timed routine.
        c.bench_function("from_json/1000_flags_200_segments", |b| {
            b.iter_with_large_drop(|| CompiledSnapshot::from_json(black_box(&json)))
        });
        // The two halves of `compile(model)`: parsing into the public model, then compiling it.
        // (`from_json` reads its own wire types instead, with user lists parsed straight into
        // their sets, so it costs less than the sum of these two.)
        c.bench_function("from_json_parts/parse_only", |b| {
            b.iter_with_large_drop(|| {
                serde_json::from_slice::<evaluator_core::model::Snapshot>(black_box(&json))
            })
        });
        let model = testdata::realistic_snapshot();
        c.bench_function("from_json_parts/compile_only", |b| {
            b.iter_batched(
                || model.clone(),
                CompiledSnapshot::compile,
                criterion::BatchSize::LargeInput,
            )
        });
    }

    criterion_group!(benches, evaluation, shapes, nesting, loading);
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

#[cfg(target_arch = "wasm32")]
fn main() {}
