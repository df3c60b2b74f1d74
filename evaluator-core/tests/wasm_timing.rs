//! Loading and evaluation timings on wasm32 under Node, printed, never asserted (speed is a
//! benchmark, not a test). Ignored by default; `scripts/bench-core-wasm` runs it in release.
#![cfg(target_arch = "wasm32")]

use evaluator_core::{testdata, CompiledSnapshot};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

#[wasm_bindgen]
extern "C" {
    /// Node's monotonic clock, in milliseconds with sub-millisecond fractions.
    #[wasm_bindgen(js_namespace = performance)]
    fn now() -> f64;
}

/// Runs `f` `runs` times after `runs / 5` warm-up runs; returns (min, median, mean) in ms.
fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..runs / 5 {
        f();
    }
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = now();
            f();
            now() - start
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    (samples[0], samples[samples.len() / 2], mean)
}

#[wasm_bindgen_test]
#[ignore = "prints timings; run with scripts/bench-core-wasm"]
fn timings_of_the_realistic_snapshot_on_wasm32() {
    let json = serde_json::to_vec(&testdata::realistic_snapshot()).unwrap();
    let (compiled, warnings) = CompiledSnapshot::from_json(&json).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");

    // Each load is timed alone; dropping it is not part of loading.
    let mut samples: Vec<f64> = (0..36)
        .map(|_| {
            let start = now();
            let loaded = CompiledSnapshot::from_json(&json).unwrap();
            let elapsed = now() - start;
            drop(loaded);
            elapsed
        })
        .skip(6)
        .collect();
    samples.sort_by(f64::total_cmp);
    let (min, median) = (samples[0], samples[samples.len() / 2]);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    console_log!("from_json (1,000 flags, 200 segments, {} bytes): min {min:.2} ms, median {median:.2} ms, mean {mean:.2} ms", json.len());

    let ctx = testdata::context(42);
    const N: usize = 100_000;
    for (name, key) in [
        ("simple_bool", testdata::SIMPLE_FLAG),
        ("10_rules_x_3_clauses_25pct", testdata::RULES_FLAG),
        (
            "10_rules_x_3_clauses_25pct_typical",
            testdata::RULES_TYPICAL_FLAG,
        ),
    ] {
        let (min, median, _) = time(10, || {
            for _ in 0..N {
                std::hint::black_box(
                    compiled
                        .evaluate(std::hint::black_box(key), &ctx, 0)
                        .enabled,
                );
            }
        });
        console_log!(
            "evaluate/{name}: min {:.1} ns, median {:.1} ns",
            min * 1e6 / N as f64,
            median * 1e6 / N as f64
        );
    }
    let (min, median, _) = time(20, || {
        std::hint::black_box(compiled.evaluate_all(&ctx, 0).len());
    });
    console_log!(
        "evaluate_all/1000_flags: min {:.1} us, median {:.1} us",
        min * 1e3,
        median * 1e3
    );
}
