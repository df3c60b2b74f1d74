//! Snapshots in Workers KV, and the compiled copy each isolate keeps in memory.
//!
//! KV layout, per environment `E`:
//! - `snapshot:E` — the snapshot JSON exactly as published;
//! - `version:E`  — its version in decimal, written after the snapshot.
//!
//! The small version key lets an isolate re-check freshness every `SNAPSHOT_TTL_SECONDS` with a
//! read of a few bytes and re-parse only when the version changed. Any failure on the way (KV
//! error, missing or corrupt snapshot) keeps the last good snapshot; the version read is the only
//! hint, the parsed snapshot's own version is the truth, and an isolate never goes back to an
//! older version than the one it serves.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use evaluator_core::CompiledSnapshot;
use worker::kv::KvStore;
use worker::{console_error, console_warn};

use crate::error::Result;

thread_local! {
    /// Environment → compiled snapshot. Workers run one request at a time per isolate thread,
    /// interleaved only at `await`s, so a `RefCell` borrowed between awaits is enough.
    static CACHE: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

struct Cached {
    snapshot: Option<Rc<CompiledSnapshot>>,
    /// When KV was last consulted (Unix ms), whatever the outcome.
    checked_at_ms: u64,
}

fn snapshot_key(environment: &str) -> String {
    format!("snapshot:{environment}")
}

fn version_key(environment: &str) -> String {
    format!("version:{environment}")
}

/// Where a request's time went when it consulted KV, reported as `Server-Timing`. Workers on
/// Cloudflare freeze the clock between I/O events, so there `parse`/`compile` read 0; under
/// local workerd (Miniflare, `wrangler dev`) they are the CPU time of loading a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Timing {
    /// Milliseconds waiting for KV reads.
    kv_ms: f64,
    /// Milliseconds parsing the snapshot JSON into the model, if a snapshot was loaded.
    parse_ms: Option<f64>,
    /// Milliseconds compiling the model (indexes, regexes, ...), if a snapshot was loaded.
    compile_ms: Option<f64>,
}

impl Timing {
    /// The `Server-Timing` header value, e.g. `kv;dur=1.000, parse;dur=9.000, compile;dur=4.000`.
    pub(crate) fn header(&self) -> String {
        let mut header = format!("kv;dur={:.3}", self.kv_ms);
        if let (Some(parse), Some(compile)) = (self.parse_ms, self.compile_ms) {
            header.push_str(&format!(", parse;dur={parse:.3}, compile;dur={compile:.3}"));
        }
        header
    }
}

/// `performance.now()`: sub-millisecond and monotonic (falls back to `Date.now()`).
fn clock_ms() -> f64 {
    use worker::js_sys::{global, Date, Function, Reflect};
    use worker::wasm_bindgen::JsCast;
    Reflect::get(&global(), &"performance".into())
        .ok()
        .and_then(|performance| {
            let now: Function = Reflect::get(&performance, &"now".into())
                .ok()?
                .dyn_into()
                .ok()?;
            now.call0(&performance).ok()?.as_f64()
        })
        .unwrap_or_else(Date::now)
}

/// The snapshot to evaluate `environment` with at `now_ms`, consulting KV at most every
/// `ttl_ms` (and then with the [`Timing`] of that); `None` only when this isolate never loaded
/// one.
pub(crate) async fn snapshot(
    kv: &KvStore,
    environment: &str,
    now_ms: u64,
    ttl_ms: u64,
) -> (Option<Rc<CompiledSnapshot>>, Option<Timing>) {
    let (cached, due) = CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        match cache.get_mut(environment) {
            Some(entry) if now_ms.saturating_sub(entry.checked_at_ms) < ttl_ms => {
                (entry.snapshot.clone(), false)
            }
            Some(entry) => {
                // Claim the refresh: requests interleaving with it keep using the cached copy.
                entry.checked_at_ms = now_ms;
                (entry.snapshot.clone(), true)
            }
            None => (None, true),
        }
    });
    if !due {
        return (cached, None);
    }
    let mut timing = Timing::default();
    let refreshed = refresh(kv, environment, cached.as_deref(), &mut timing).await;
    let current = match refreshed {
        Some(fresh) => Some(Rc::new(fresh)),
        None => cached,
    };
    let current = CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let entry = cache.entry(environment.to_owned()).or_insert(Cached {
            snapshot: None,
            checked_at_ms: now_ms,
        });
        // An interleaved request (or a publish) may have installed a newer one meanwhile.
        let newer_installed = matches!(
            (&entry.snapshot, &current),
            (Some(installed), Some(ours)) if installed.version() > ours.version()
        );
        if !newer_installed {
            entry.snapshot.clone_from(&current);
        }
        entry.checked_at_ms = entry.checked_at_ms.max(now_ms);
        entry.snapshot.clone()
    });
    (current, Some(timing))
}

/// A newer snapshot than `cached` from KV, or `None` to keep `cached`.
async fn refresh(
    kv: &KvStore,
    environment: &str,
    cached: Option<&CompiledSnapshot>,
    timing: &mut Timing,
) -> Option<CompiledSnapshot> {
    if let Some(current) = cached {
        let started = clock_ms();
        let version = kv.get(&version_key(environment)).text().await;
        timing.kv_ms += clock_ms() - started;
        match version {
            Ok(Some(text)) if text.trim().parse::<u64>().ok() == Some(current.version()) => {
                return None
            }
            // Missing or unreadable version key: the snapshot itself decides below.
            Ok(_) => {}
            Err(e) => {
                console_error!(
                    "KV read of {} failed, keeping version {}: {e}",
                    version_key(environment),
                    current.version()
                );
                return None;
            }
        }
    }
    let started = clock_ms();
    // Bytes, not text: skips a UTF-16 round trip of the whole snapshot through a JS string.
    let stored = kv.get(&snapshot_key(environment)).bytes().await;
    timing.kv_ms += clock_ms() - started;
    let bytes = match stored {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(e) => {
            console_error!("KV read of {} failed: {e}", snapshot_key(environment));
            return None;
        }
    };
    match compile(environment, &bytes, timing) {
        Ok(fresh) if cached.is_none_or(|current| fresh.version() > current.version()) => {
            Some(fresh)
        }
        Ok(_) => None,
        Err(message) => {
            console_error!(
                "{}: {message}; keeping the last good snapshot",
                snapshot_key(environment)
            );
            None
        }
    }
}

/// Parses and compiles a stored snapshot; invalid flags degrade (logged), a body that is not a
/// snapshot of `environment` at all is refused.
fn compile(
    environment: &str,
    bytes: &[u8],
    timing: &mut Timing,
) -> Result<CompiledSnapshot, String> {
    // One pass: `from_json` fills the compiled indexes straight from the bytes (no owned model
    // in between), which is most of a cold isolate's first-request CPU. It is timed as a whole
    // and reported as "compile", with "parse" 0, so Server-Timing keeps its two fields.
    let started = clock_ms();
    let (snapshot, warnings) = CompiledSnapshot::from_json(bytes).map_err(|e| e.to_string())?;
    timing.parse_ms = Some(0.0);
    timing.compile_ms = Some(clock_ms() - started);
    if snapshot.environment() != environment {
        return Err(format!("holds environment {:?}", snapshot.environment()));
    }
    if let Some(first) = warnings.first() {
        console_warn!(
            "snapshot {environment} v{} has {} invalid part(s), served as errors; first: {first}",
            snapshot.version(),
            warnings.len()
        );
    }
    Ok(snapshot)
}

/// The snapshot this isolate holds for `environment`, without consulting KV.
pub(crate) fn cached(environment: &str) -> Option<Rc<CompiledSnapshot>> {
    CACHE.with(|cache| {
        cache
            .borrow()
            .get(environment)
            .and_then(|entry| entry.snapshot.clone())
    })
}

/// Makes `snapshot` this isolate's current one for its environment (after a publish), unless
/// a newer one is already installed.
pub(crate) fn install(snapshot: CompiledSnapshot, now_ms: u64) {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let entry = cache
            .entry(snapshot.environment().to_owned())
            .or_insert(Cached {
                snapshot: None,
                checked_at_ms: now_ms,
            });
        if entry
            .snapshot
            .as_ref()
            .is_none_or(|current| current.version() < snapshot.version())
        {
            entry.snapshot = Some(Rc::new(snapshot));
            entry.checked_at_ms = now_ms;
        }
    });
}

/// `(environment, version)` of every snapshot this isolate holds, sorted (for `/healthz`).
pub(crate) fn cached_versions() -> Vec<(String, u64)> {
    CACHE.with(|cache| {
        let mut versions: Vec<(String, u64)> = cache
            .borrow()
            .iter()
            .filter_map(|(environment, entry)| {
                Some((environment.clone(), entry.snapshot.as_ref()?.version()))
            })
            .collect();
        versions.sort();
        versions
    })
}

/// The version stored for `environment`: the version key, or, if that is missing or corrupt,
/// the stored snapshot's own `version`. `None` when nothing valid is stored.
pub(crate) async fn stored_version(kv: &KvStore, environment: &str) -> Result<Option<u64>> {
    if let Some(text) = kv.get(&version_key(environment)).text().await? {
        if let Ok(version) = text.trim().parse::<u64>() {
            return Ok(Some(version));
        }
    }
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: u64,
    }
    let stored = kv.get(&snapshot_key(environment)).text().await?;
    Ok(stored
        .and_then(|text| serde_json::from_str::<VersionOnly>(&text).ok())
        .map(|v| v.version))
}

/// Writes a validated snapshot: body first, then the version key, so a reader that sees the new
/// version always finds a body at least as new.
pub(crate) async fn write(kv: &KvStore, environment: &str, body: &str, version: u64) -> Result<()> {
    kv.put(&snapshot_key(environment), body)?.execute().await?;
    kv.put(&version_key(environment), version.to_string())?
        .execute()
        .await?;
    Ok(())
}
