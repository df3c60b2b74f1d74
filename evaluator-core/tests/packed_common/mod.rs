//! The subset property of packed snapshots (`docs/flag-model.md`, "Packed snapshots"), shared by
//! `packed.rs` and the generated snapshots of `properties.rs`: for every key set `K`, the subset
//! for `K` evaluates every key of `K` exactly like the whole snapshot.

use evaluator_core::packed::{pack, Packed};
use evaluator_core::{CompiledSnapshot, EvaluationContext};
use serde_json::Value;

/// A context and the `now` to evaluate it at.
pub(crate) type Probe = (EvaluationContext, i64);

/// Packs `json` and checks everything the property promises for each key set: packing fails
/// exactly when compiling does, the directory agrees with the compiled snapshot, and every key of
/// every set evaluates the same in its subset for every probe.
pub(crate) fn assert_subsets_agree(json: &[u8], key_sets: &[Vec<&str>], probes: &[Probe]) {
    let whole = CompiledSnapshot::from_json(json);
    let packed_bytes = pack(json);
    assert_eq!(
        whole.is_err(),
        packed_bytes.is_err(),
        "pack and from_json disagree on {}: {:?} / {:?}",
        String::from_utf8_lossy(json),
        whole.as_ref().err(),
        packed_bytes.as_ref().err()
    );
    let (Ok((whole, _)), Ok(packed_bytes)) = (whole, packed_bytes) else {
        return;
    };
    let packed = Packed::parse(&packed_bytes).expect("a fresh pack parses");
    assert_eq!(packed.json(), json);
    assert_eq!(packed.environment(), whole.environment());
    assert_eq!(packed.version(), whole.version());
    assert_eq!(packed.flag_count(), whole.len());
    for key in whole.flag_keys() {
        assert!(packed.contains_flag(key), "directory lacks {key:?}");
    }
    for key in ["", "no-such-flag", "zzz"] {
        assert_eq!(
            packed.contains_flag(key),
            whole.contains_flag(key),
            "{key:?}"
        );
    }
    let hashes = client_key_probes(json);

    for keys in key_sets {
        let subset_json = packed.subset_json(keys);
        let text = String::from_utf8_lossy(&subset_json);
        let (subset, _) = CompiledSnapshot::from_json(&subset_json)
            .unwrap_or_else(|e| panic!("subset for {keys:?} does not compile: {e}\n{text}"));
        assert_eq!(subset.environment(), whole.environment());
        assert_eq!(subset.version(), whole.version());
        assert_eq!(subset.generated_at(), whole.generated_at());
        assert_eq!(subset.has_client_keys(), whole.has_client_keys());
        for hash in &hashes {
            assert_eq!(
                subset.client_key_hash_allowed(hash),
                whole.client_key_hash_allowed(hash),
                "client key {hash}"
            );
        }
        for key in keys {
            assert_eq!(
                subset.contains_flag(key),
                whole.contains_flag(key),
                "{key:?}"
            );
            for (ctx, now) in probes {
                assert_eq!(
                    rendered(&subset, key, ctx, *now),
                    rendered(&whole, key, ctx, *now),
                    "flag {key:?} of subset {keys:?}, context {ctx:?}, now {now}\nsubset: {text}"
                );
            }
        }
    }
}

/// The evaluation as served: its JSON, error message included.
pub(crate) fn rendered(
    snapshot: &CompiledSnapshot,
    key: &str,
    ctx: &EvaluationContext,
    now: i64,
) -> String {
    serde_json::to_string(&snapshot.evaluate(key, ctx, now)).expect("evaluations serialize")
}

/// Hashes worth asking `client_key_hash_allowed` about: the snapshot's own (as written and
/// upper-cased), and ones it does not hold.
fn client_key_probes(json: &[u8]) -> Vec<String> {
    let mut out = vec!["0".repeat(64), String::from("xyz")];
    let keys = serde_json::from_slice::<Value>(json)
        .ok()
        .and_then(|v| v.get("clientKeys").cloned());
    for key in keys
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(hash) = key.get("sha256").and_then(Value::as_str) {
            out.push(hash.to_string());
            out.push(hash.to_uppercase());
        }
    }
    out
}
