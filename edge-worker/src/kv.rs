//! Workers KV access: the reads and writes of an environment's two keys, `snapshot:E` and
//! `version:E` (names, format and write order are the publish protocol's:
//! `publish_protocol::kv`; `docs/architecture.md`, "KV layout").
//!
//! The snapshot is stored in evaluator-core's packed form (the JSON exactly as published, behind
//! a directory of its flags and segments and what each depends on); a plain JSON snapshot
//! (written by hand, or by an older worker) is read too. The cache decides when to read
//! (`cache`); this module only knows how.

use evaluator_core::packed::{self, Packed};
use publish_protocol::kv::SNAPSHOT_KEY_PREFIX;
use publish_protocol::{snapshot_key, version_key, SnapshotMetadata};
use worker::kv::KvStore;
use worker::Env;

use crate::cache::Store;
use crate::error::Result;
use crate::index::Listing;

/// Pages of 1,000 keys one listing reads at most: 100,000 environments, far beyond any
/// deployment, and a bound on the work a listing can cost.
const MAX_LISTING_PAGES: usize = 100;

/// KV namespace binding holding the snapshots (`wrangler.toml`).
pub(crate) const BINDING: &str = "FLAGS";

/// The KV namespace; an error means the binding is missing (a deployment mistake).
pub(crate) fn namespace(env: &Env) -> worker::Result<KvStore> {
    env.kv(BINDING)
}

/// Workers KV as the cache reads it.
pub(crate) struct Kv<'a>(pub(crate) &'a KvStore);

impl Store for Kv<'_> {
    async fn version(&self, environment: &str) -> Result<Option<String>, String> {
        self.0
            .get(&version_key(environment))
            .text()
            .await
            .map_err(|e| e.to_string())
    }

    async fn snapshot(&self, environment: &str) -> Result<Option<Vec<u8>>, String> {
        // Bytes, not text: the packed form is binary, and a JSON snapshot skips a UTF-16 round
        // trip through a JS string.
        self.0
            .get(&snapshot_key(environment))
            .bytes()
            .await
            .map_err(|e| e.to_string())
    }
}

impl Listing for Kv<'_> {
    async fn environments(&self) -> Result<Vec<(String, Option<SnapshotMetadata>)>, String> {
        let mut environments = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LISTING_PAGES {
            let mut list = self.0.list().prefix(SNAPSHOT_KEY_PREFIX.to_owned());
            if let Some(cursor) = cursor.take() {
                list = list.cursor(cursor);
            }
            let page = list.execute().await.map_err(|e| e.to_string())?;
            for key in page.keys {
                let Some(environment) = key.name.strip_prefix(SNAPSHOT_KEY_PREFIX) else {
                    continue;
                };
                // Metadata that does not read (hand-written, another writer) lists no keys.
                let metadata = key
                    .metadata
                    .and_then(|value| serde_json::from_value::<SnapshotMetadata>(value).ok());
                environments.push((environment.to_owned(), metadata));
            }
            match page.cursor {
                Some(next) if !page.list_complete && !next.is_empty() => cursor = Some(next),
                _ => return Ok(environments),
            }
        }
        Ok(environments)
    }
}

/// The version stored for `environment`: the version key, or, if that is missing or corrupt,
/// the stored snapshot's own `version`. `None` when nothing valid is stored.
pub(crate) async fn stored_version(kv: &KvStore, environment: &str) -> Result<Option<u64>> {
    if let Some(text) = kv.get(&version_key(environment)).text().await? {
        if let Ok(version) = text.trim().parse::<u64>() {
            return Ok(Some(version));
        }
    }
    let stored = kv.get(&snapshot_key(environment)).bytes().await?;
    Ok(stored.as_deref().and_then(snapshot_version))
}

/// The `version` of stored snapshot bytes (packed or JSON), `None` when they are neither.
fn snapshot_version(stored: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: u64,
    }
    if packed::is_packed(stored) {
        return Packed::parse(stored).ok().map(|view| view.version());
    }
    serde_json::from_slice::<VersionOnly>(stored)
        .ok()
        .map(|v| v.version)
}

/// Writes a validated, packed snapshot with its index metadata: body first, then the version
/// key, so a reader that sees the new version always finds a body at least as new.
pub(crate) async fn write(
    kv: &KvStore,
    environment: &str,
    packed: &[u8],
    metadata: &SnapshotMetadata,
) -> Result<()> {
    kv.put_bytes(&snapshot_key(environment), packed)?
        .metadata(metadata)?
        .execute()
        .await?;
    kv.put(&version_key(environment), metadata.version.to_string())?
        .execute()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::snapshot_version;

    #[test]
    fn the_version_of_a_stored_snapshot_is_read_from_packed_or_json_bytes() {
        let json = br#"{"environment":"production","version":7,"flags":[]}"#;
        assert_eq!(snapshot_version(json), Some(7));
        let packed = evaluator_core::packed::pack(json).unwrap();
        assert_eq!(snapshot_version(&packed), Some(7));
        assert_eq!(snapshot_version(b"not json"), None);
        assert_eq!(snapshot_version(&packed[..40]), None);
    }
}
