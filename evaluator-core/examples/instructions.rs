//! A driver for counting instructions with callgrind (`scripts/bench-core-instructions`):
//! builds the realistic snapshot of `evaluator_core::testdata`, compiles it, then runs one shape
//! `count` times. Callgrind counts are exact and repeatable on a shared machine where times are
//! not, so the script runs every shape twice (`count` 0 and N) and reports the difference / N:
//! the instructions of one operation, set-up excluded.
//!
//! `cargo run --release -p evaluator-core --features testdata --example instructions -- <shape> <count>`
//! with shape `simple`, `rules`, `typical`, `all`, `from_json` or `none` (on the realistic
//! snapshot, for `testdata::context(42)`), or `one_clause`, `two_clauses`, `rollout` (on
//! `testdata::shapes_snapshot()`, for `testdata::shapes_context()`); each evaluation shape also
//! as `<shape>_at` (by `flag_position`, looked up before counting), and `all_prepared`
//! (`prepare` once, then `evaluate_prepared` every flag).

use std::hint::black_box;
use std::process::ExitCode;

use evaluator_core::{testdata, CompiledSnapshot, EvaluationContext};

/// The evaluation time the benches use (2026-11-22).
const NOW: i64 = 1_795_514_400_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(shape), Some(Ok(count))) = (args.first(), args.get(1).map(|c| c.parse::<usize>()))
    else {
        eprintln!("usage: instructions <shape>[_at] <count>, shape simple|one_clause|two_clauses|rollout|rules|typical|all|all_prepared|from_json|none");
        return ExitCode::FAILURE;
    };
    let model = testdata::realistic_snapshot();
    let Ok(json) = serde_json::to_vec(&model) else {
        eprintln!("the model does not serialise");
        return ExitCode::FAILURE;
    };
    // Names the input, so two builds can be checked to measure the same snapshot.
    eprintln!(
        "snapshot: {} bytes, FNV-1a {:016x}",
        json.len(),
        fnv1a(&json)
    );
    let (compiled, _) = CompiledSnapshot::compile(model);
    let ctx = testdata::context(42);
    let (shapes, _) = CompiledSnapshot::compile(testdata::shapes_snapshot());
    let shapes_ctx = testdata::shapes_context();
    let shape_of = |key: &str| {
        usize::from(
            shapes
                .evaluate(black_box(key), black_box(&shapes_ctx), NOW)
                .enabled,
        )
    };
    // The same flags by position (looked up once, as a caller holding the snapshot would).
    let simple_at = at(&compiled, testdata::SIMPLE_FLAG, &ctx);
    let one_clause_at = at(&shapes, testdata::ONE_CLAUSE_FLAG, &shapes_ctx);
    let two_clauses_at = at(&shapes, testdata::TWO_CLAUSES_FLAG, &shapes_ctx);
    let rollout_at = at(&shapes, testdata::ROLLOUT_FLAG, &shapes_ctx);
    let rules_at = at(&compiled, testdata::RULES_FLAG, &ctx);
    let typical_at = at(&compiled, testdata::RULES_TYPICAL_FLAG, &ctx);
    let positions: Vec<_> = compiled
        .flag_keys()
        .filter_map(|k| compiled.flag_position(k))
        .collect();
    let mut served = 0_usize;
    for _ in 0..count {
        served += match shape.as_str() {
            "simple" => usize::from(
                compiled
                    .evaluate(black_box(testdata::SIMPLE_FLAG), black_box(&ctx), NOW)
                    .enabled,
            ),
            "rules" => usize::from(
                compiled
                    .evaluate(black_box(testdata::RULES_FLAG), black_box(&ctx), NOW)
                    .enabled,
            ),
            "typical" => usize::from(
                compiled
                    .evaluate(
                        black_box(testdata::RULES_TYPICAL_FLAG),
                        black_box(&ctx),
                        NOW,
                    )
                    .enabled,
            ),
            "one_clause" => shape_of(testdata::ONE_CLAUSE_FLAG),
            "two_clauses" => shape_of(testdata::TWO_CLAUSES_FLAG),
            "rollout" => shape_of(testdata::ROLLOUT_FLAG),
            "simple_at" => simple_at(),
            "one_clause_at" => one_clause_at(),
            "two_clauses_at" => two_clauses_at(),
            "rollout_at" => rollout_at(),
            "rules_at" => rules_at(),
            "typical_at" => typical_at(),
            // What a bulk caller does with the prepared API: one context, every flag.
            "all_prepared" => {
                let prepared = compiled.prepare(black_box(&ctx), NOW);
                positions
                    .iter()
                    .map(|&p| usize::from(compiled.evaluate_prepared(p, &prepared).enabled))
                    .sum()
            }
            "all" => compiled.evaluate_all(black_box(&ctx), NOW).len(),
            "from_json" => usize::from(CompiledSnapshot::from_json(black_box(&json)).is_ok()),
            "none" => 0,
            other => {
                eprintln!("unknown shape {other:?}");
                return ExitCode::FAILURE;
            }
        };
    }
    println!("{served}");
    ExitCode::SUCCESS
}

/// Evaluates flag `key` by its position, looked up once here.
fn at<'a>(
    snapshot: &'a CompiledSnapshot,
    key: &str,
    ctx: &'a EvaluationContext,
) -> impl Fn() -> usize + 'a {
    let position = snapshot.flag_position(key);
    move || {
        position.map_or(0, |p| {
            usize::from(
                snapshot
                    .evaluate_at(black_box(p), black_box(ctx), NOW)
                    .enabled,
            )
        })
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
