//! The packed layout as the module documentation describes it, and how damaged packed bytes fail.

use super::*;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::Error;

const SNAPSHOT: &str = r#"{
  "environment": "prod\u0075ction", "version": 42, "generatedAt": "2026-11-24T10:00:00Z",
  "clientKeys": [{"name": "web", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}],
  "flags": [
    {"flagKey": "b", "enabled": true, "prerequisites": [{"flagKey": "a", "variation": "on"}]},
    {"flagKey": "a", "enabled": true, "targetingRules": {"segments": ["s2"]}},
    {"flagKey": "b", "enabled": false},
    {"flagKey": "é", "enabled": "broken"}
  ],
  "segments": [
    {"segmentKey": "s2", "rules": [{"clauses": [{"operator": "segmentMatch", "values": ["s1"]}]}]},
    {"segmentKey": "s1", "included": ["u1"]},
    {"segmentKey": "s1", "included": ["u2"]}
  ]
}"#;

fn packed() -> Vec<u8> {
    pack(SNAPSHOT.as_bytes()).unwrap()
}

fn word_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn directory_len(bytes: &[u8]) -> usize {
    word_at(bytes, 8) as usize
}

/// Writes the checksum a damaged directory would need to pass it, so that the checks behind
/// the checksum can be tested.
fn reseal(bytes: &mut [u8]) {
    let end = directory_len(bytes).min(bytes.len()).max(CHECKSUM_LEN);
    let sum = checksum(&bytes[..end - CHECKSUM_LEN], &bytes[end..]);
    bytes[end - CHECKSUM_LEN..end].copy_from_slice(&sum.to_le_bytes());
}

fn assert_corrupt(bytes: &[u8], what: &str) {
    match Packed::parse(bytes) {
        Err(Error::Parse { message }) => assert!(
            message.contains(what),
            "expected an error about {what:?}, got {message:?}"
        ),
        Ok(_) => panic!("damaged bytes parsed; expected an error about {what:?}"),
    }
    // The owned form runs the same checks.
    match PackedSnapshot::new(bytes.to_vec()) {
        Err(Error::Parse { message }) => assert!(
            message.contains(what),
            "expected an error about {what:?}, got {message:?}"
        ),
        Ok(_) => panic!("damaged bytes were kept; expected an error about {what:?}"),
    }
}

#[test]
fn packed_bytes_start_with_the_magic_and_snapshot_json_does_not() {
    assert!(is_packed(&packed()));
    assert!(!is_packed(SNAPSHOT.as_bytes()));
    assert!(!is_packed(b" \n\t{}"));
    assert!(!is_packed(b""));
    assert!(!is_packed(&MAGIC[..3]));
}

#[test]
fn the_header_holds_the_documented_fields_at_their_offsets() {
    let bytes = packed();
    let json = SNAPSHOT.as_bytes();
    assert_eq!(bytes[..4], MAGIC);
    assert_eq!(bytes[4..8], [FORMAT_VERSION, 0, 0, 0]);
    let (d, j) = (directory_len(&bytes), word_at(&bytes, 12) as usize);
    assert_eq!(d + j, bytes.len());
    assert_eq!(&bytes[d..], json);
    // Flags "a", "b", "é" (the second "b" is dropped); segments s1, s1, s2; dependency words
    // a → s2, b → a, s2 → s1 ×2; key bytes "production", the flag and the segment keys.
    assert_eq!([4, 5, 6, 7].map(|i| word_at(&bytes, 4 * i)), [3, 3, 4, 20]);
    assert_eq!(u64::from_le_bytes(bytes[32..40].try_into().unwrap()), 42);
    assert_eq!(d, HEADER_LEN + 6 * ENTRY_LEN + 4 * 4 + 20 + CHECKSUM_LEN);
    let member = |i: usize| {
        let (start, len) = (word_at(&bytes, 48 + 8 * i), word_at(&bytes, 52 + 8 * i));
        &SNAPSHOT[start as usize..(start + len) as usize]
    };
    assert_eq!(member(0), r#""prod\u0075ction""#);
    assert_eq!(member(1), "42");
    assert_eq!(member(2), r#""2026-11-24T10:00:00Z""#);
    assert!(member(3).starts_with(r#"[{"name": "web""#));
    let sum = checksum(&bytes[..d - CHECKSUM_LEN], json);
    assert_eq!(bytes[d - CHECKSUM_LEN..d], sum.to_le_bytes());
}

#[test]
fn damage_inside_the_json_is_a_checksum_mismatch() {
    let bytes = packed();
    let d = directory_len(&bytes);
    // A byte inside a string value: the JSON would still parse, with another value.
    let at = d + SNAPSHOT.find("web").unwrap();
    let mut damaged = bytes.clone();
    damaged[at] = b'x';
    assert_corrupt(&damaged, "checksum mismatch");
    // Every single-bit flip anywhere in the value is caught.
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x20;
        assert!(
            Packed::parse(&flipped).is_err(),
            "flip at {at} of {}",
            bytes.len()
        );
    }
}

#[test]
fn format_version_1_values_are_read_with_their_directory_checksum() {
    let mut bytes = packed();
    let d = directory_len(&bytes);
    bytes[4] = 1;
    let sum = directory_checksum(&bytes[..d - CHECKSUM_LEN]);
    bytes[d - CHECKSUM_LEN..d].copy_from_slice(&sum.to_le_bytes());
    let old = Packed::parse(&bytes).unwrap();
    assert_eq!((old.environment(), old.version()), ("production", 42));
    assert_eq!(old.json(), SNAPSHOT.as_bytes());
    // A version 2 checksum under a version 1 header is refused, and the other way round.
    let mut mixed = packed();
    mixed[4] = 1;
    assert_corrupt(&mixed, "checksum mismatch");
    bytes[4] = FORMAT_VERSION;
    assert_corrupt(&bytes, "checksum mismatch");
}

#[test]
fn the_lanes_hash_every_length_and_position() {
    // Lengths around the 32-byte blocks and the 8-byte words; one flipped bit at each position.
    for len in [0, 1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100] {
        let data: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
        let base = checksum(b"dir", &data);
        for at in 0..len {
            let mut flipped = data.clone();
            flipped[at] ^= 1;
            assert_ne!(checksum(b"dir", &flipped), base, "len {len}, at {at}");
        }
        assert_ne!(checksum(b"diR", &data), base, "len {len}");
    }
}

#[test]
fn entries_are_sorted_by_key_with_their_dependencies_as_entry_indexes() {
    let bytes = packed();
    let packed = Packed::parse(&bytes).unwrap();
    let keys = |table: &[u8]| -> alloc::vec::Vec<&str> {
        (0..table.len() / ENTRY_LEN)
            .map(|i| {
                Entry::read(table, i)
                    .unwrap()
                    .key
                    .of(packed.keys)
                    .map(|key| core::str::from_utf8(key).unwrap())
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(keys(packed.flags), ["a", "b", "é"]);
    assert_eq!(keys(packed.segments), ["s1", "s1", "s2"]);
    let dependencies = |table: &[u8], i: usize| {
        let e = Entry::read(table, i).unwrap();
        let words = |from: u32, n: u32| -> alloc::vec::Vec<u32> {
            (from..from + n).map(|w| packed.word(w).unwrap()).collect()
        };
        let flag_end = e.first_dependency + e.flag_dependencies;
        (
            words(e.first_dependency, e.flag_dependencies),
            words(flag_end, e.segment_dependencies),
        )
    };
    assert_eq!(dependencies(packed.flags, 0), (vec![], vec![2])); // a → s2
    assert_eq!(dependencies(packed.flags, 1), (vec![0], vec![])); // b → a
    assert_eq!(dependencies(packed.flags, 2), (vec![], vec![])); // é: unparsable, no references
    assert_eq!(dependencies(packed.segments, 2), (vec![], vec![0, 1])); // s2 → both s1
                                                                        // The second s1 follows the first in the document.
    let raw = |i| Entry::read(packed.segments, i).unwrap().raw.start;
    assert!(raw(0) < raw(1));
}

#[test]
fn the_view_reads_environment_version_json_and_keys() {
    let bytes = packed();
    let packed = Packed::parse(&bytes).unwrap();
    assert_eq!(packed.environment(), "production");
    assert_eq!(packed.version(), 42);
    assert_eq!(packed.json(), SNAPSHOT.as_bytes());
    assert_eq!(packed.flag_count(), 3);
    for key in ["a", "b", "é"] {
        assert!(packed.contains_flag(key), "{key}");
    }
    for key in ["", "c", "s1", "B", "e"] {
        assert!(!packed.contains_flag(key), "{key}");
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = packed();
    for len in 0..bytes.len() {
        assert!(
            Packed::parse(&bytes[..len]).is_err(),
            "truncated to {len} bytes"
        );
    }
    assert!(Packed::parse(&bytes).is_ok());
}

#[test]
fn appended_bytes_are_an_error() {
    let mut bytes = packed();
    bytes.push(b' ');
    assert_corrupt(&bytes, "trailing");
}

#[test]
fn every_bit_flip_in_the_directory_is_an_error() {
    let bytes = packed();
    for at in 0..directory_len(&bytes) {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << bit;
            assert!(Packed::parse(&damaged).is_err(), "bit {bit} of byte {at}");
        }
    }
}

#[test]
fn bit_flips_in_the_json_behind_a_valid_checksum_never_panic() {
    // The checksum catches them (`damage_inside_the_json_is_a_checksum_mismatch`); resealed, the
    // subsets of damaged JSON must still be safe to compile.
    let bytes = packed();
    for at in directory_len(&bytes)..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x20;
        assert!(Packed::parse(&damaged).is_err(), "flip at {at}");
        reseal(&mut damaged);
        let packed = Packed::parse(&damaged).unwrap();
        for keys in [&["a"][..], &["b", "é"], &["x"]] {
            let subset = packed.subset_json(keys);
            let _ = crate::CompiledSnapshot::from_json(&subset);
        }
    }
}

#[test]
fn a_newer_format_version_is_an_error() {
    let mut bytes = packed();
    bytes[4] = FORMAT_VERSION + 1;
    reseal(&mut bytes);
    assert_corrupt(&bytes, "format version");
}

/// Rewrites word `index` of entry `entry` (flags first, then segments) and reseals.
fn with_entry_word(entry: usize, index: usize, value: u32) -> Vec<u8> {
    let mut bytes = packed();
    let at = HEADER_LEN + entry * ENTRY_LEN + index * 4;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    reseal(&mut bytes);
    bytes
}

#[test]
fn directory_damage_behind_a_valid_checksum_is_still_an_error() {
    let bytes = packed();
    let d = directory_len(&bytes);
    let j = (bytes.len() - d) as u32;
    // Key range past the key bytes, or splitting "é" (two bytes in UTF-8).
    assert_corrupt(&with_entry_word(0, 1, 1000), "key range");
    let e = Entry::read(&bytes[HEADER_LEN..], 2).unwrap();
    assert_corrupt(&with_entry_word(2, 1, e.key.len - 1), "key range");
    // JSON range past the JSON, or empty.
    assert_corrupt(&with_entry_word(0, 2, j), "JSON range");
    assert_corrupt(&with_entry_word(0, 3, 0), "JSON range");
    // Unknown bits; a segment with flag dependencies.
    assert_corrupt(&with_entry_word(0, 7, 2), "bits");
    assert_corrupt(&with_entry_word(3, 5, 1), "bits");
    // Dependencies not contiguous, or pointing past the tables.
    assert_corrupt(&with_entry_word(1, 4, 0), "dependency words");
    assert_corrupt(&with_entry_word(0, 6, 2), "dependency words");
    let words_at = HEADER_LEN + 6 * ENTRY_LEN;
    let mut damaged = bytes.clone();
    damaged[words_at..words_at + 4].copy_from_slice(&3u32.to_le_bytes()); // a → segment 3 of 3
    reseal(&mut damaged);
    assert_corrupt(&damaged, "dependency index");
    // Keys out of order: swap the key ranges of flags "a" and "b".
    let (a, b) = (
        Entry::read(&bytes[HEADER_LEN..], 0).unwrap(),
        Entry::read(&bytes[HEADER_LEN..], 1).unwrap(),
    );
    let mut damaged = with_entry_word(0, 0, b.key.start);
    let at = HEADER_LEN + ENTRY_LEN;
    damaged[at..at + 4].copy_from_slice(&a.key.start.to_le_bytes());
    reseal(&mut damaged);
    assert_corrupt(&damaged, "out of order");
    // Two flags of one key.
    assert_corrupt(&with_entry_word(1, 0, a.key.start), "out of order");
}

#[test]
fn header_damage_behind_a_valid_checksum_is_still_an_error() {
    let damaged_word = |at: usize, value: u32| {
        let mut bytes = packed();
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        reseal(&mut bytes);
        bytes
    };
    assert_corrupt(&damaged_word(16, 4), "directory length");
    assert_corrupt(&damaged_word(16, u32::MAX), "directory length");
    assert_corrupt(&damaged_word(24, 3), "directory length");
    assert_corrupt(&damaged_word(44, 1000), "environment");
    assert_corrupt(&damaged_word(52, 0), "member range");
    assert_corrupt(&damaged_word(72, 1 << 20), "member range");
    let mut bytes = packed();
    bytes[5] = 1;
    reseal(&mut bytes);
    assert_corrupt(&bytes, "format version");
}

#[test]
fn an_empty_snapshot_packs_and_subsets_to_an_empty_snapshot() {
    let bytes = pack(br#"{"environment": "e", "version": 1}"#).unwrap();
    let packed = Packed::parse(&bytes).unwrap();
    assert_eq!(packed.flag_count(), 0);
    assert!(!packed.contains_flag(""));
    assert_eq!(
        String::from_utf8(packed.subset_json(&["a"])).unwrap(),
        r#"{"environment":"e","version":1,"flags":[],"segments":[]}"#
    );
}

#[test]
fn an_owned_snapshot_views_its_bytes_exactly_as_parse_does() {
    let bytes = packed();
    let parsed = Packed::parse(&bytes).unwrap();
    let owned = PackedSnapshot::new(bytes.clone()).unwrap();
    let view = owned.view();
    assert_eq!(view.environment(), "production");
    assert_eq!(view.environment(), parsed.environment());
    assert_eq!(view.version(), parsed.version());
    assert_eq!(view.json(), parsed.json());
    assert_eq!(view.flag_count(), parsed.flag_count());
    for key in ["a", "b", "é", "s1", "missing", ""] {
        assert_eq!(
            view.contains_flag(key),
            parsed.contains_flag(key),
            "{key:?}"
        );
    }
    for keys in [&["a"][..], &["b"], &["é", "a"], &["missing"], &[]] {
        assert_eq!(view.subset_json(keys), parsed.subset_json(keys), "{keys:?}");
    }
}

#[test]
fn pack_valid_writes_what_pack_writes_without_compiling_again() {
    assert_eq!(pack_valid(SNAPSHOT.as_bytes()).unwrap(), packed());
    // It still refuses what is not a snapshot document; only the compile is skipped.
    assert!(matches!(pack_valid(b"[1, 2]"), Err(Error::Parse { .. })));
    assert!(matches!(
        pack_valid(br#"{"version": 1}"#),
        Err(Error::Parse { .. })
    ));
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Parsing reached the end of its checks: whatever it accepted must be usable.
    fn use_all_of(packed: &Packed<'_>) {
        for key in ["a", "b", "é", "", "zz"] {
            let _ = packed.contains_flag(key);
        }
        let _ = packed.subset_json(&["a", "b", "é", "zz"]);
        let _ = (
            packed.environment(),
            packed.version(),
            packed.json(),
            packed.flag_count(),
        );
    }

    /// Whatever parsing accepts, the owned form keeps and views alike (and nothing else).
    fn use_all_of_both(bytes: &[u8]) {
        let parsed = Packed::parse(bytes);
        let owned = PackedSnapshot::new(bytes.to_vec());
        assert_eq!(parsed.is_ok(), owned.is_ok());
        if let (Ok(parsed), Ok(owned)) = (parsed, owned) {
            let view = owned.view();
            use_all_of(&parsed);
            use_all_of(&view);
            assert_eq!(view.environment(), parsed.environment());
            assert_eq!(view.json(), parsed.json());
            assert_eq!(view.flag_count(), parsed.flag_count());
            let keys = ["a", "b", "é", "zz"];
            assert_eq!(view.subset_json(&keys), parsed.subset_json(&keys));
        }
    }

    proptest! {
        #[test]
        fn damaged_directories_never_panic_even_with_a_valid_checksum(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut bytes = packed();
            let d = directory_len(&bytes);
            for (at, value) in &edits {
                let at = at.index(d - CHECKSUM_LEN);
                bytes[at] = *value;
            }
            reseal(&mut bytes);
            use_all_of_both(&bytes);
        }

        #[test]
        fn arbitrary_bytes_after_the_magic_never_panic(
            tail in prop::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend(tail);
            prop_assert!(Packed::parse(&bytes).is_err());
        }

        /// Consistent lengths and a valid checksum around small random words: gets past the
        /// length checks into the checks of every range and index.
        #[test]
        fn arbitrary_directories_with_consistent_lengths_never_panic(
            (flags, segments, words, keys) in (0usize..4, 0usize..4, 0usize..8, 0usize..12),
            small in prop::collection::vec(0u32..48, 10 + 8 * 8 + 8),
            key_bytes in prop::collection::vec(prop::sample::select(&b"ab\xc3\xa9s"[..]), 12),
            json in prop::collection::vec(any::<u8>(), 0..48),
        ) {
            let mut words_of_directory: Vec<u32> = small[..10].to_vec();
            words_of_directory.extend(&small[10..10 + 8 * (flags + segments)]);
            words_of_directory.extend(&small[10 + 64..10 + 64 + words]);
            let d = HEADER_LEN + (flags + segments) * ENTRY_LEN + words * 4 + keys + CHECKSUM_LEN;
            let mut bytes = MAGIC.to_vec();
            bytes.extend([FORMAT_VERSION, 0, 0, 0]);
            let counts = [d, json.len(), flags, segments, words, keys].map(|n| n as u32);
            bytes.extend(counts.iter().flat_map(|w| w.to_le_bytes()));
            bytes.extend(7u64.to_le_bytes());
            bytes.extend(words_of_directory.iter().flat_map(|w| w.to_le_bytes()));
            bytes.extend(&key_bytes[..keys]);
            bytes.extend([0; CHECKSUM_LEN]);
            prop_assert_eq!(bytes.len(), d);
            bytes.extend(&json);
            reseal(&mut bytes);
            use_all_of_both(&bytes);
        }

        #[test]
        fn truncated_or_flipped_packed_values_are_errors_and_never_panic(
            cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), bit in 0u8..8,
        ) {
            let bytes = packed();
            prop_assert!(Packed::parse(&bytes[..cut.index(bytes.len())]).is_err());
            let mut flipped = bytes.clone();
            let at = flip.index(bytes.len());
            flipped[at] ^= 1 << bit;
            prop_assert!(Packed::parse(&flipped).is_err());
        }
    }
}
