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
use worker::js_sys::{Array, Function, Object, Promise, Reflect, JSON};
use worker::kv::KvStore;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

use crate::cache::Store;
use crate::error::{Error, Result};
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

/// Workers KV as the cache and the index read it: the typed store for reads, the namespace's JS
/// object for the two calls whose typed wrappers go through `serde_wasm_bindgen` (a listing's
/// metadata as `serde_json::Value`, metadata on a put), which cost about 20 KB of gzipped wasm for
/// what `JSON.stringify` / `JSON.parse` and serde_json, already in the module, do.
pub(crate) struct Kv<'a> {
    store: &'a KvStore,
    raw: Result<Object, String>,
}

impl<'a> Kv<'a> {
    pub(crate) fn new(store: &'a KvStore, env: &Env) -> Self {
        Self {
            store,
            raw: raw_namespace(env),
        }
    }
}

/// The KV binding's JS object.
fn raw_namespace(env: &Env) -> Result<Object, String> {
    Reflect::get(env, &JsValue::from_str(BINDING))
        .ok()
        .and_then(|binding| binding.dyn_into::<Object>().ok())
        .ok_or_else(|| format!("no KV binding {BINDING}"))
}

/// Calls `method` of the namespace object with `args` and awaits its promise.
async fn call(namespace: &Object, method: &str, args: &Array) -> Result<JsValue, String> {
    let describe = |e: JsValue| {
        e.as_string()
            .or_else(|| JSON::stringify(&e).ok().and_then(|s| s.as_string()))
            .unwrap_or_else(|| format!("KV {method} failed"))
    };
    let function: Function = Reflect::get(namespace, &JsValue::from_str(method))
        .map_err(describe)?
        .dyn_into()
        .map_err(describe)?;
    let promise: Promise = function
        .apply(namespace, args)
        .map_err(describe)?
        .dyn_into()
        .map_err(describe)?;
    JsFuture::from(promise).await.map_err(describe)
}

/// `object[name]` as a string.
fn string_member(object: &JsValue, name: &str) -> Option<String> {
    Reflect::get(object, &JsValue::from_str(name))
        .ok()?
        .as_string()
}

impl Store for Kv<'_> {
    async fn version(&self, environment: &str) -> Result<Option<String>, String> {
        self.store
            .get(&version_key(environment))
            .text()
            .await
            .map_err(|e| e.to_string())
    }

    async fn snapshot(&self, environment: &str) -> Result<Option<Vec<u8>>, String> {
        // Bytes, not text: the packed form is binary, and a JSON snapshot skips a UTF-16 round
        // trip through a JS string.
        self.store
            .get(&snapshot_key(environment))
            .bytes()
            .await
            .map_err(|e| e.to_string())
    }
}

impl Listing for Kv<'_> {
    async fn environments(&self) -> Result<Vec<(String, Option<SnapshotMetadata>)>, String> {
        let namespace = self.raw.as_ref().map_err(Clone::clone)?;
        let mut environments = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LISTING_PAGES {
            let options = Object::new();
            let set = |name: &str, value: &str| {
                Reflect::set(
                    &options,
                    &JsValue::from_str(name),
                    &JsValue::from_str(value),
                )
            };
            set("prefix", SNAPSHOT_KEY_PREFIX).map_err(|_| "KV list options".to_owned())?;
            if let Some(cursor) = cursor.take() {
                set("cursor", &cursor).map_err(|_| "KV list options".to_owned())?;
            }
            let page = call(namespace, "list", &Array::of1(&options)).await?;
            let keys: Array = Reflect::get(&page, &JsValue::from_str("keys"))
                .ok()
                .and_then(|keys| keys.dyn_into().ok())
                .ok_or_else(|| "KV list answered without keys".to_owned())?;
            for key in keys.iter() {
                let Some(name) = string_member(&key, "name") else {
                    continue;
                };
                let Some(environment) = name.strip_prefix(SNAPSHOT_KEY_PREFIX) else {
                    continue;
                };
                // Metadata that does not read (hand-written, another writer) lists no keys.
                let metadata = Reflect::get(&key, &JsValue::from_str("metadata"))
                    .ok()
                    .filter(|m| m.is_object())
                    .and_then(|m| JSON::stringify(&m).ok()?.as_string())
                    .and_then(|json| serde_json::from_str::<SnapshotMetadata>(&json).ok());
                environments.push((environment.to_owned(), metadata));
            }
            let complete = Reflect::get(&page, &JsValue::from_str("list_complete"))
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            match string_member(&page, "cursor") {
                Some(next) if !complete && !next.is_empty() => cursor = Some(next),
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
    env: &Env,
    kv: &KvStore,
    environment: &str,
    packed: &[u8],
    metadata: &SnapshotMetadata,
) -> Result<()> {
    let namespace = raw_namespace(env).map_err(|message| Error::Storage { message })?;
    let storage = |message: String| Error::Storage { message };
    let metadata_json = serde_json::to_string(metadata).map_err(|e| storage(e.to_string()))?;
    let options = Object::new();
    let parsed = JSON::parse(&metadata_json).map_err(|_| storage("metadata JSON".to_owned()))?;
    Reflect::set(&options, &JsValue::from_str("metadata"), &parsed)
        .map_err(|_| storage("KV put options".to_owned()))?;
    let value = worker::js_sys::Uint8Array::from(packed);
    let args = Array::of3(
        &JsValue::from_str(&snapshot_key(environment)),
        &value,
        &options,
    );
    call(&namespace, "put", &args).await.map_err(storage)?;
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
