//! The receiver's Workers KV layout, per environment `E`:
//! - [`snapshot_key`] `snapshot:E`: the snapshot (evaluator-core's packed form: the JSON exactly
//!   as published behind a directory of its flags and segments; plain snapshot JSON is read too);
//! - [`version_key`] `version:E`: its version in decimal.
//!
//! A publish writes the snapshot first, then the version, so a reader that sees a version always
//! finds a snapshot at least that new. The version key is only a hint (a few bytes to re-check
//! freshness with); the stored snapshot's own version is the truth.

use alloc::format;
use alloc::string::String;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_prefix_and_the_environment() {
        assert_eq!(snapshot_key("production"), "snapshot:production");
        assert_eq!(version_key("production"), "version:production");
    }
}
