//! Arbitrary bytes as snapshot JSON: parsing, validation and compilation
//! ([`CompiledSnapshot::from_json`]), then evaluating every flag of what compiled.
//!
//! Beyond "never panics", it checks that compiling is deterministic (the same flags and the
//! same warnings twice), that every flag gets exactly one well-formed result and that the
//! evaluation entry points agree ([`edgeflags_fuzz::check::evaluate_all`]), and that bytes that
//! also parse as a [`Snapshot`] model compile exactly like it: `from_json`'s fast path and its
//! per-flag fallback must not answer differently from [`CompiledSnapshot::compile`], whose
//! warnings are [`validate_snapshot`]'s.
#![no_main]

use edgeflags_fuzz::{check, fixtures};
use evaluator_core::model::Snapshot;
use evaluator_core::{validate_snapshot, validate_snapshot_bytes, CompiledSnapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The size budget packs the bytes: it must not panic on anything either.
    let _ = validate_snapshot_bytes(data);

    let Ok((snapshot, warnings)) = CompiledSnapshot::from_json(data) else {
        return;
    };
    let Ok((again, warnings_again)) = CompiledSnapshot::from_json(data) else {
        panic!("compiled once, then failed");
    };
    assert_eq!(warnings, warnings_again, "warnings are deterministic");
    assert!(
        snapshot.flag_keys().eq(again.flag_keys()),
        "flags are deterministic"
    );

    let contexts = fixtures::contexts();
    for (i, ctx) in contexts.iter().enumerate() {
        let now = fixtures::INSTANTS[i % fixtures::INSTANTS.len()];
        let results = check::evaluate_all(&snapshot, ctx, now);
        assert_eq!(results, again.evaluate_all(ctx, now), "compiling twice");
    }

    // The model path. Only where serde reads the bytes as a model (no duplicate members, the
    // right shape everywhere): then both paths hold the same snapshot.
    if let Ok(model) = serde_json::from_slice::<Snapshot>(data) {
        assert_eq!(
            validate_snapshot(&model),
            warnings,
            "validate_snapshot and from_json's warnings"
        );
        let (compiled, model_warnings) = CompiledSnapshot::compile(model);
        assert_eq!(model_warnings, warnings, "compile and from_json's warnings");
        assert!(
            compiled.flag_keys().eq(snapshot.flag_keys()),
            "compile and from_json keep the same flags"
        );
        assert_eq!(compiled.environment(), snapshot.environment());
        assert_eq!(compiled.version(), snapshot.version());
        for (i, ctx) in contexts.iter().enumerate() {
            let now = fixtures::INSTANTS[i % fixtures::INSTANTS.len()];
            assert_eq!(
                compiled.evaluate_all(ctx, now),
                snapshot.evaluate_all(ctx, now),
                "compile and from_json evaluate alike"
            );
        }
    }
});
