//! The packed snapshot format (`evaluator_core::packed`), from both sides.
//!
//! - Arbitrary bytes as a packed value: [`Packed::parse`] and [`PackedSnapshot::new`] accept
//!   and refuse the same bytes and read the same header; for accepted ones,
//!   [`Packed::subset_json`] of keys taken from the input compiles or fails without panicking.
//!   Where the value is exactly what [`pack`] writes for its JSON, the subsets must evaluate
//!   like the whole snapshot.
//! - Arbitrary bytes as snapshot JSON: when they compile, [`pack`] must succeed (it fails
//!   exactly when compiling does), agree with [`pack_valid`], and parse back with the same
//!   environment, version, JSON and flags; the subset of any flag keys, compiled, evaluates
//!   every one of them exactly like the whole snapshot (`docs/flag-model.md`, "Packed
//!   snapshots").
//!
//! Only the format's public API is used, so the target holds for any format version.
#![no_main]

use std::collections::HashSet;

use edgeflags_fuzz::fixtures;
use evaluator_core::packed::{is_packed, pack, pack_valid, Packed, PackedSnapshot};
use evaluator_core::CompiledSnapshot;
use libfuzzer_sys::fuzz_target;

/// Most flag keys one subset asks for: enough for transitive dependencies to matter, few enough
/// to keep runs fast on snapshots of many flags.
const SUBSET_KEYS: usize = 8;

fuzz_target!(|data: &[u8]| {
    as_packed(data);
    if !is_packed(data) {
        as_json(data);
    }
});

fn as_packed(data: &[u8]) {
    let parsed = Packed::parse(data);
    let owned = PackedSnapshot::new(data.to_vec());
    let (packed, owned) = match (parsed, owned) {
        (Ok(packed), Ok(owned)) => (packed, owned),
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "parse and new refuse alike");
            return;
        }
        (a, b) => panic!("parse and new disagree: {:?} / {:?}", a.is_ok(), b.is_ok()),
    };
    assert!(is_packed(data), "accepted bytes start with the magic");
    let view = owned.view();
    assert_eq!(view.environment(), packed.environment());
    assert_eq!(view.version(), packed.version());
    assert_eq!(view.json(), packed.json());
    assert_eq!(view.flag_count(), packed.flag_count());

    let candidates = strings(packed.json());
    let keys: Vec<&str> = candidates.iter().map(String::as_str).collect();
    for key in &keys {
        assert_eq!(view.contains_flag(key), packed.contains_flag(key));
    }
    let subset = packed.subset_json(&keys);
    assert_eq!(subset, view.subset_json(&keys), "subsets are deterministic");
    let subset = CompiledSnapshot::from_json(&subset);

    // Bytes exactly as packing writes them for their JSON: every guarantee of the format holds.
    let faithful = pack_valid(packed.json()).is_ok_and(|repacked| repacked == data);
    let whole = CompiledSnapshot::from_json(packed.json());
    if let (true, Ok((whole, _))) = (faithful, whole) {
        let Ok((subset, _)) = subset else {
            panic!("the subset of a snapshot that compiles does not compile");
        };
        let found: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| whole.contains_flag(k))
            .take(SUBSET_KEYS)
            .collect();
        same_answers(&whole, &subset, &found);
    }
}

fn as_json(data: &[u8]) {
    let Ok((whole, _)) = CompiledSnapshot::from_json(data) else {
        assert!(pack(data).is_err(), "pack accepts what does not compile");
        return;
    };
    let packed = match pack(data) {
        Ok(packed) => packed,
        Err(e) => panic!("a snapshot that compiles does not pack: {e}"),
    };
    // `pack` is a compile then `pack_valid`: equal values also mean packing is deterministic.
    assert_eq!(
        pack_valid(data).ok().as_ref(),
        Some(&packed),
        "pack and pack_valid"
    );
    assert!(is_packed(&packed));
    let view = match Packed::parse(&packed) {
        Ok(view) => view,
        Err(e) => panic!("a packed snapshot does not parse back: {e}"),
    };
    assert_eq!(view.environment(), whole.environment());
    assert_eq!(view.version(), whole.version());
    assert_eq!(view.json(), data);
    assert_eq!(view.flag_count(), whole.len());
    let keys: Vec<&str> = whole.flag_keys().collect();
    for key in &keys {
        assert!(
            view.contains_flag(key),
            "{key:?} is missing from the directory"
        );
    }
    assert!(!view.contains_flag("\u{0}not-a-flag"));

    // Each of the first keys alone, the first keys together, and every flag at once (which must
    // keep every flag), plus an unknown key (ignored).
    let first: Vec<&str> = keys.iter().copied().take(SUBSET_KEYS).collect();
    let mut subsets: Vec<Vec<&str>> = first.iter().map(|k| vec![*k]).collect();
    subsets.push(first.clone());
    subsets.push(keys.clone());
    subsets.push(vec!["\u{0}not-a-flag"]);
    // Small snapshots give the same subset for several key lists: compile each one once.
    let mut compiled: HashSet<Vec<u8>> = HashSet::new();
    for asked in &subsets {
        let json = view.subset_json(asked);
        if !compiled.insert(json.clone()) {
            continue;
        }
        let subset = match CompiledSnapshot::from_json(&json) {
            Ok((subset, _)) => subset,
            Err(e) => panic!("the subset of {asked:?} does not compile: {e}"),
        };
        assert!(subset.len() <= whole.len(), "a subset adds flags");
        assert!(!subset.contains_flag("\u{0}not-a-flag"));
        let checked: Vec<&str> = asked.iter().copied().take(SUBSET_KEYS * 4).collect();
        same_answers(&whole, &subset, &checked);
    }
}

/// Every key evaluates alike in both snapshots, for each fixed context and instant.
fn same_answers(whole: &CompiledSnapshot, subset: &CompiledSnapshot, keys: &[&str]) {
    assert_eq!(subset.environment(), whole.environment());
    assert_eq!(subset.version(), whole.version());
    for (i, ctx) in fixtures::contexts().iter().enumerate() {
        let now = fixtures::INSTANTS[i % fixtures::INSTANTS.len()];
        for key in keys {
            assert_eq!(
                subset.evaluate(key, ctx, now),
                whole.evaluate(key, ctx, now),
                "flag {key:?}: the subset and the whole snapshot answer differently"
            );
        }
    }
}

/// Candidate flag keys: the JSON string literals without escapes in `json` (flag keys among
/// them), at most 64.
fn strings(json: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = json;
    while out.len() < 64 {
        let Some(start) = rest.iter().position(|&b| b == b'"') else {
            break;
        };
        rest = &rest[start + 1..];
        let Some(end) = rest.iter().position(|&b| b == b'"') else {
            break;
        };
        if let Ok(text) = std::str::from_utf8(&rest[..end]) {
            if !text.contains('\\') {
                out.push(text.to_owned());
            }
        }
        rest = &rest[end + 1..];
    }
    out
}
