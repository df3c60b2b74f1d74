//! The receiver's Workers KV layout, per environment `E`:
//! - [`snapshot_key`] `snapshot:E`: the snapshot (evaluator-core's packed form: the JSON exactly
//!   as published behind a directory of its flags and segments; plain snapshot JSON is read too);
//! - [`version_key`] `version:E`: its version in decimal.
//!
//! A publish writes the snapshot first, then the version, so a reader that sees a version always
//! finds a snapshot at least that new. The version key is only a hint (a few bytes to re-check
//! freshness with); the stored snapshot's own version is the truth.
//!
//! The snapshot key carries [`SnapshotMetadata`] (KV metadata, at most 1,024 bytes): its version
//! and the first [`KEY_PREFIX_HEX`] hex characters of each client key's SHA-256. Listing the
//! `snapshot:` keys returns every environment with its metadata in one KV operation: the
//! environment index an isolate screens requests with before it reads any environment's keys.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// Prefix of the key holding an environment's snapshot.
pub const SNAPSHOT_KEY_PREFIX: &str = "snapshot:";

/// Prefix of the key holding the version of an environment's snapshot.
pub const VERSION_KEY_PREFIX: &str = "version:";

/// `snapshot:{environment}`.
#[must_use]
pub fn snapshot_key(environment: &str) -> String {
    format!("{SNAPSHOT_KEY_PREFIX}{environment}")
}

/// `version:{environment}`.
#[must_use]
pub fn version_key(environment: &str) -> String {
    format!("{VERSION_KEY_PREFIX}{environment}")
}

/// Hex characters of a client key's SHA-256 kept in the index: 64 bits, enough to refuse a
/// guessed key without reading anything (the snapshot still checks the whole hash).
pub const KEY_PREFIX_HEX: usize = 16;

/// Most client keys whose prefixes the metadata lists; an environment with more lists none, and
/// every well-formed key of it reaches the snapshot's own check. 48 keeps the metadata under
/// KV's 1,024 bytes.
pub const MAX_INDEXED_KEYS: usize = 48;

/// The metadata of `snapshot:E`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMetadata {
    /// The stored snapshot's version.
    pub version: u64,
    /// [`KEY_PREFIX_HEX`]-character prefixes of the environment's client-key hashes (lowercase
    /// hex), or `None` when it has more than [`MAX_INDEXED_KEYS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
}

impl SnapshotMetadata {
    /// The metadata of a snapshot at `version` whose client keys hash to `hashes` (hex SHA-256
    /// as snapshots list them, in either case; the prefixes are kept in lowercase).
    pub fn new<'a>(version: u64, hashes: impl ExactSizeIterator<Item = &'a str>) -> Self {
        let keys = (hashes.len() <= MAX_INDEXED_KEYS).then(|| {
            hashes
                .map(|hash| {
                    hash.get(..KEY_PREFIX_HEX)
                        .unwrap_or(hash)
                        .to_ascii_lowercase()
                })
                .collect()
        });
        Self { version, keys }
    }

    /// Whether a request presenting a key that hashes to `sha256_hex` may be one of this
    /// environment's: its prefix is listed, or the keys are not listed at all.
    #[must_use]
    pub fn may_hold(&self, sha256_hex: &str) -> bool {
        self.keys.as_ref().is_none_or(|keys| {
            let prefix = sha256_hex.get(..KEY_PREFIX_HEX).unwrap_or(sha256_hex);
            keys.iter().any(|listed| listed == prefix)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lists_key_prefixes_and_stays_under_the_kv_limit() {
        let hash = "8ea1b6fea071e237e0facd3020a1096c514dd7a0b71ed7dff3319816011817ba";
        let metadata = SnapshotMetadata::new(7, [hash].into_iter());
        assert_eq!(
            metadata.keys.as_deref(),
            Some(&[String::from("8ea1b6fea071e237")][..])
        );
        assert!(metadata.may_hold(hash));
        assert!(!metadata.may_hold(&"f".repeat(64)));
        let hashes: Vec<String> = (0..MAX_INDEXED_KEYS).map(|i| format!("{i:064x}")).collect();
        let full = SnapshotMetadata::new(u64::MAX, hashes.iter().map(String::as_str));
        assert!(serde_json::to_vec(&full).unwrap().len() <= 1024);
        let hashes: Vec<String> = (0..=MAX_INDEXED_KEYS)
            .map(|i| format!("{i:064x}"))
            .collect();
        let unlisted = SnapshotMetadata::new(3, hashes.iter().map(String::as_str));
        assert_eq!(unlisted.keys, None);
        assert!(unlisted.may_hold(&"f".repeat(64)));
        assert_eq!(
            serde_json::to_string(&unlisted).unwrap(),
            r#"{"version":3}"#
        );
        let read: SnapshotMetadata = serde_json::from_str(r#"{"version":3}"#).unwrap();
        assert_eq!(read, unlisted);
    }

    #[test]
    fn keys_are_the_prefix_and_the_environment() {
        assert_eq!(snapshot_key("production"), "snapshot:production");
        assert_eq!(version_key("production"), "version:production");
    }
}
