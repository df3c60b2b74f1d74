//! What an isolate keeps of the snapshots in memory, and when it asks KV again.
//!
//! Pure Rust on purpose: KV ([`Store`]), the clock and the console ([`Host`]) and the time of
//! the request (`now_ms`) come in from outside, so the whole policy is unit-tested natively with
//! a fake store and a fake clock (`cargo test -p edge-worker`), not only through Miniflare.
//!
//! The policy, per environment:
//! - **Freshness.** KV is consulted at most once per TTL (var `SNAPSHOT_TTL_SECONDS`): first the
//!   version key (a few bytes), and only when it differs from the version held, the snapshot.
//!   The request that finds the TTL over claims the check at once, so requests interleaving with
//!   its KV reads keep using the cached copy.
//! - **Never back.** The version key is only a hint; the stored snapshot's own version is the
//!   truth, and a snapshot older than (or as old as) the one held is never adopted.
//! - **Last good.** Any failure on the way (KV error, missing, corrupt or another environment's
//!   snapshot) keeps the snapshot held; an isolate that never loaded one has none, and the
//!   evaluation API answers its fallback.
//! - **Hints.** A request that names a version newer than the one held (an OFREP bulk request's
//!   `flagConfigEtag`, sent after a stream announced the version) makes that request consult KV
//!   at once instead of at the end of the TTL ([`Cache::expect`]); at most once per
//!   [`HINT_CHECK_INTERVAL_MS`] per environment, so a forged hint on every request costs one
//!   version-key read per interval, not one per request.
//! - **Subsets.** A packed snapshot is compiled on demand: a request naming at most
//!   [`MAX_SUBSET_KEYS`] flags compiles only those flags and what they depend on, and the subset
//!   is kept for the next request naming the same flags. After `SUBSET_CACHE_LIMIT` distinct
//!   subsets of one version ([`DEFAULT_SUBSET_LIMIT`]), or for any request for more flags or all
//!   of them, the whole snapshot is compiled once and from then on serves everything.
//!
//! Why packed and subsets: a fresh isolate's first request must fit the free plan's 10 ms of
//! CPU, and compiling a whole 1,000-flag snapshot there costs several times that (V8 runs it in
//! baseline code).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use evaluator_core::packed::{self, PackedSnapshot};
use evaluator_core::CompiledSnapshot;
use publish_protocol::{snapshot_key, version_key};

use crate::timing::Timing;

/// Most flags a request may name and still be served from a compiled subset; more compile the
/// whole snapshot (a subset that large costs about as much, and is not reused as often).
pub(crate) const MAX_SUBSET_KEYS: usize = 8;

/// Subsets an isolate compiles per snapshot version before it compiles the whole snapshot
/// instead (var `SUBSET_CACHE_LIMIT`): bounds the memory of cached subsets and the CPU of
/// compiling shared segments again. 0 always compiles the whole snapshot.
pub(crate) const DEFAULT_SUBSET_LIMIT: usize = 32;

/// Reads of the two KV keys of an environment (`kv` implements it over Workers KV). An `Err` is
/// KV failing, with its message.
pub(crate) trait Store {
    /// The text of the version key, `None` when it is absent.
    async fn version(&self, environment: &str) -> Result<Option<String>, String>;
    /// The stored snapshot's bytes, `None` when it is absent.
    async fn snapshot(&self, environment: &str) -> Result<Option<Vec<u8>>, String>;
}

/// What the cache needs of its runtime besides KV.
pub(crate) trait Host {
    /// Milliseconds on a monotonic clock, for the durations reported in `Server-Timing`.
    fn clock_ms(&self) -> f64;
    /// Logs a problem that still leaves the request an answer.
    fn warn(&self, message: &str);
    /// Logs a failure (the last good snapshot stays in service).
    fn error(&self, message: &str);
}

/// What an isolate keeps of its snapshots, by default (var `CACHE_MIB`): a quarter of the 128 MB
/// an isolate may use, so that evaluations and a publish being compiled have the rest.
pub(crate) const DEFAULT_CACHE_BYTES: usize = 32 << 20;

/// Least time between two checks of one environment's KV keys forced by version hints.
pub(crate) const HINT_CHECK_INTERVAL_MS: u64 = 250;

/// Heap bytes a compiled snapshot takes per byte of its JSON: 3.8 to 4.0 measured natively
/// (64-bit) on the realistic 1,000-flag snapshot and generated ones of 100 and 2,000 flags;
/// wasm32's 4-byte pointers make it less there, so this overestimates.
const COMPILED_BYTES_PER_JSON_BYTE: usize = 4;

/// Environment → loaded snapshot. Workers run one request at a time per isolate thread,
/// interleaved only at `await`s, so a `RefCell` borrowed between awaits is enough.
#[derive(Default)]
pub(crate) struct Cache {
    entries: RefCell<HashMap<String, Entry>>,
}

struct Entry {
    snapshot: Option<Rc<Loaded>>,
    /// When KV was last consulted (Unix ms), whatever the outcome.
    checked_at_ms: u64,
    /// When a request last used the entry (Unix ms): the least recently used goes first when
    /// the cache is over its bytes.
    used_at_ms: u64,
    /// A version hint asked for a KV check before the TTL is over.
    recheck: bool,
    /// When a version hint last forced a check (Unix ms).
    hinted_at_ms: Option<u64>,
}

impl Entry {
    fn new(now_ms: u64) -> Self {
        Self {
            snapshot: None,
            checked_at_ms: now_ms,
            used_at_ms: now_ms,
            recheck: false,
            hinted_at_ms: None,
        }
    }
}

thread_local! {
    static ISOLATE: Rc<Cache> = Rc::default();
}

/// This isolate's cache (one per isolate thread, for its lifetime).
pub(crate) fn isolate() -> Rc<Cache> {
    ISOLATE.with(Rc::clone)
}

impl Cache {
    /// The snapshot to evaluate `environment` with at `now_ms` (Unix ms), consulting `store` at
    /// most every `ttl_ms`; `None` only when this cache never loaded one.
    pub(crate) async fn snapshot(
        &self,
        store: &impl Store,
        host: &impl Host,
        environment: &str,
        now_ms: u64,
        ttl_ms: u64,
        timing: &mut Timing,
    ) -> Option<Rc<Loaded>> {
        let (cached, due) = {
            let mut entries = self.entries.borrow_mut();
            match entries.get_mut(environment) {
                Some(entry)
                    if !entry.recheck && now_ms.saturating_sub(entry.checked_at_ms) < ttl_ms =>
                {
                    entry.used_at_ms = entry.used_at_ms.max(now_ms);
                    (entry.snapshot.clone(), false)
                }
                Some(entry) => {
                    // Claim the refresh: requests interleaving with it keep using the cached copy.
                    entry.checked_at_ms = now_ms;
                    entry.recheck = false;
                    entry.used_at_ms = entry.used_at_ms.max(now_ms);
                    (entry.snapshot.clone(), true)
                }
                None => (None, true),
            }
        };
        if !due {
            return cached;
        }
        let refreshed = refresh(store, host, environment, cached.as_deref(), timing).await;
        let current = match refreshed {
            Some(fresh) => Some(Rc::new(fresh)),
            None => cached,
        };
        let mut entries = self.entries.borrow_mut();
        let entry = entries
            .entry(environment.to_owned())
            .or_insert_with(|| Entry::new(now_ms));
        // An interleaved request (or a publish) may have installed a newer one meanwhile.
        let newer_installed = matches!(
            (&entry.snapshot, &current),
            (Some(installed), Some(ours)) if installed.version > ours.version
        );
        if !newer_installed {
            entry.snapshot.clone_from(&current);
        }
        entry.checked_at_ms = entry.checked_at_ms.max(now_ms);
        entry.snapshot.clone()
    }

    /// A request at `now_ms` says `environment` has reached `version`. When the snapshot held is
    /// older (or none was loaded yet), the next [`Cache::snapshot`] consults KV at once instead
    /// of waiting for the TTL, unless a hint already forced a check in the last
    /// [`HINT_CHECK_INTERVAL_MS`]. An environment without an entry is read by its next request
    /// anyway. Returns whether a check was forced.
    pub(crate) fn expect(&self, environment: &str, version: u64, now_ms: u64) -> bool {
        let mut entries = self.entries.borrow_mut();
        let Some(entry) = entries.get_mut(environment) else {
            return false;
        };
        let held_is_as_new = entry
            .snapshot
            .as_ref()
            .is_some_and(|held| held.version >= version);
        let hinted_recently = entry
            .hinted_at_ms
            .is_some_and(|at| now_ms.saturating_sub(at) < HINT_CHECK_INTERVAL_MS);
        if held_is_as_new || hinted_recently {
            return false;
        }
        entry.hinted_at_ms = Some(now_ms);
        entry.recheck = true;
        true
    }

    /// The snapshot held for `environment`, without consulting KV.
    pub(crate) fn cached(&self, environment: &str) -> Option<Rc<Loaded>> {
        self.entries
            .borrow()
            .get(environment)
            .and_then(|entry| entry.snapshot.clone())
    }

    /// Makes a just-published snapshot (its packed bytes, and the compiled form validation made)
    /// the current one for its environment at `now_ms`, unless a newer one is already held.
    pub(crate) fn install(
        &self,
        host: &impl Host,
        packed: Vec<u8>,
        whole: CompiledSnapshot,
        now_ms: u64,
    ) {
        let loaded = match Loaded::packed(packed, Some(whole)) {
            Ok(loaded) => loaded,
            Err(message) => {
                // Cannot happen for bytes `packed::pack_valid` just made; the KV copy is still good.
                host.error(&format!(
                    "a freshly packed snapshot does not read back: {message}"
                ));
                return;
            }
        };
        let mut entries = self.entries.borrow_mut();
        let entry = entries
            .entry(loaded.environment.clone())
            .or_insert_with(|| Entry::new(now_ms));
        if entry
            .snapshot
            .as_ref()
            .is_none_or(|current| current.version < loaded.version)
        {
            entry.snapshot = Some(Rc::new(loaded));
            entry.checked_at_ms = now_ms;
        }
    }

    /// Drops the least recently used snapshots until what the cache holds is within
    /// `budget_bytes` (estimated: stored bytes plus compiled forms), never the one of `keep`,
    /// which the current request is using. A dropped environment is read from KV again by the
    /// next request that names it (after the index admits it).
    pub(crate) fn trim(&self, host: &impl Host, keep: &str, budget_bytes: usize) {
        let mut entries = self.entries.borrow_mut();
        let bytes = |entry: &Entry| entry.snapshot.as_ref().map_or(0, |loaded| loaded.bytes());
        let mut total: usize = entries.values().map(bytes).sum();
        while total > budget_bytes {
            // Few entries (one per environment served): a scan per eviction, no sort.
            let oldest = entries
                .iter()
                .filter(|(name, _)| name.as_str() != keep)
                .min_by_key(|(_, entry)| entry.used_at_ms)
                .map(|(name, entry)| (name.clone(), bytes(entry)));
            let Some((name, size)) = oldest else {
                break;
            };
            entries.remove(&name);
            total -= size;
            host.warn(&format!(
                "snapshot cache over {budget_bytes} bytes: dropped {name} ({size} bytes)"
            ));
        }
    }

    /// Estimated bytes of everything the cache holds.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.entries
            .borrow()
            .values()
            .filter_map(|entry| entry.snapshot.as_ref())
            .map(|loaded| loaded.bytes())
            .sum()
    }

    /// `(environment, version)` of every snapshot held, sorted (for `/healthz`).
    pub(crate) fn versions(&self) -> Vec<(String, u64)> {
        let mut versions: Vec<(String, u64)> = self
            .entries
            .borrow()
            .iter()
            .filter_map(|(environment, entry)| {
                Some((environment.clone(), entry.snapshot.as_ref()?.version))
            })
            .collect();
        versions.sort();
        versions
    }
}

/// A newer snapshot than `cached` from the store, or `None` to keep `cached`.
async fn refresh(
    store: &impl Store,
    host: &impl Host,
    environment: &str,
    cached: Option<&Loaded>,
    timing: &mut Timing,
) -> Option<Loaded> {
    if let Some(current) = cached {
        let started = host.clock_ms();
        let version = store.version(environment).await;
        timing.add_kv(host.clock_ms() - started);
        match version {
            Ok(Some(text)) if text.trim().parse::<u64>().ok() == Some(current.version) => {
                return None
            }
            // Missing or unreadable version key: the snapshot itself decides below.
            Ok(_) => {}
            Err(e) => {
                host.error(&format!(
                    "KV read of {} failed, keeping version {}: {e}",
                    version_key(environment),
                    current.version
                ));
                return None;
            }
        }
    }
    let started = host.clock_ms();
    let stored = store.snapshot(environment).await;
    timing.add_kv(host.clock_ms() - started);
    let bytes = match stored {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(e) => {
            host.error(&format!(
                "KV read of {} failed: {e}",
                snapshot_key(environment)
            ));
            return None;
        }
    };
    match load(host, environment, bytes, timing) {
        Ok(fresh) if cached.is_none_or(|current| fresh.version > current.version) => Some(fresh),
        Ok(_) => None,
        Err(message) => {
            host.error(&format!(
                "{}: {message}; keeping the last good snapshot",
                snapshot_key(environment)
            ));
            None
        }
    }
}

/// Reads a stored snapshot of `environment`: packed (directory checked, nothing compiled yet)
/// or plain JSON (compiled whole). Anything else, or another environment's, is refused.
fn load(
    host: &impl Host,
    environment: &str,
    bytes: Vec<u8>,
    timing: &mut Timing,
) -> Result<Loaded, String> {
    let loaded = if packed::is_packed(&bytes) {
        let started = host.clock_ms();
        let loaded = Loaded::packed(bytes, None)?;
        timing.add_parse(host.clock_ms() - started);
        loaded
    } else {
        let whole = compile(host, environment, &bytes, timing)?;
        Loaded {
            environment: whole.environment().to_owned(),
            version: whole.version(),
            form: Form::Whole {
                compiled: Rc::new(whole),
                json: bytes,
            },
            etag: std::cell::OnceCell::new(),
        }
    };
    if loaded.environment != environment {
        return Err(format!("holds environment {:?}", loaded.environment));
    }
    Ok(loaded)
}

/// Compiles snapshot JSON (whole or a subset); invalid flags degrade (logged), a body that is
/// not a snapshot of `environment` at all is refused.
fn compile(
    host: &impl Host,
    environment: &str,
    json: &[u8],
    timing: &mut Timing,
) -> Result<CompiledSnapshot, String> {
    let started = host.clock_ms();
    let compiled = CompiledSnapshot::from_json(json).map_err(|e| e.to_string());
    timing.add_compile(host.clock_ms() - started);
    let (snapshot, warnings) = compiled?;
    if snapshot.environment() != environment {
        return Err(format!("holds environment {:?}", snapshot.environment()));
    }
    if let Some(first) = warnings.first() {
        host.warn(&format!(
            "snapshot {environment} v{} has {} invalid part(s), served as errors; first: {first}",
            snapshot.version(),
            warnings.len()
        ));
    }
    Ok(snapshot)
}

/// One environment's snapshot as this isolate holds it.
pub(crate) struct Loaded {
    environment: String,
    version: u64,
    form: Form,
    /// The snapshot route's ETag of the JSON (`docs/sdk.md`), hashed at its first download.
    etag: std::cell::OnceCell<String>,
}

enum Form {
    /// Packed bytes, compiled on demand (see [`Loaded::compiled_for`]).
    Packed {
        snapshot: PackedSnapshot,
        compiled: RefCell<Compiled>,
    },
    /// A plain JSON snapshot, compiled whole when it was loaded; the JSON is kept for the
    /// snapshot route.
    Whole {
        compiled: Rc<CompiledSnapshot>,
        json: Vec<u8>,
    },
}

#[derive(Default)]
struct Compiled {
    whole: Option<Rc<CompiledSnapshot>>,
    /// Compiled subsets (and the bytes of the JSON each was compiled from) by their sorted,
    /// deduplicated flag keys joined with `\n`.
    subsets: HashMap<String, (Rc<CompiledSnapshot>, usize)>,
    subsets_compiled: usize,
}

impl Loaded {
    /// Packed bytes whose directory has been checked (the JSON inside is compiled later).
    fn packed(bytes: Vec<u8>, whole: Option<CompiledSnapshot>) -> Result<Self, String> {
        let snapshot = PackedSnapshot::new(bytes).map_err(|e| e.to_string())?;
        let view = snapshot.view();
        Ok(Self {
            environment: view.environment().to_owned(),
            version: view.version(),
            form: Form::Packed {
                snapshot,
                compiled: RefCell::new(Compiled {
                    whole: whole.map(Rc::new),
                    ..Compiled::default()
                }),
            },
            etag: std::cell::OnceCell::new(),
        })
    }

    /// The snapshot JSON, byte for byte as published.
    pub(crate) fn json(&self) -> &[u8] {
        match &self.form {
            Form::Whole { json, .. } => json,
            Form::Packed { snapshot, .. } => snapshot.view().json(),
        }
    }

    /// [`evaluation_api::snapshot::snapshot_etag`] of [`Loaded::json`], hashed once.
    pub(crate) fn etag(&self) -> &str {
        self.etag
            .get_or_init(|| evaluation_api::snapshot::snapshot_etag(self.version, self.json()))
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Estimated heap bytes: the stored bytes, and each compiled form at
    /// [`COMPILED_BYTES_PER_JSON_BYTE`] per byte of the JSON it was compiled from.
    fn bytes(&self) -> usize {
        match &self.form {
            Form::Whole { json, .. } => json.len() * (COMPILED_BYTES_PER_JSON_BYTE + 1),
            Form::Packed { snapshot, compiled } => {
                let compiled = compiled.borrow();
                let whole = compiled
                    .whole
                    .as_ref()
                    .map_or(0, |_| snapshot.view().json().len());
                let subsets: usize = compiled.subsets.values().map(|(_, len)| len).sum();
                snapshot.byte_len() + (whole + subsets) * COMPILED_BYTES_PER_JSON_BYTE
            }
        }
    }

    /// A compiled snapshot that answers a request evaluating `keys` (`None`: every flag)
    /// exactly as the whole snapshot would: the whole one if compiled or needed, else the
    /// subset of those flags and everything they depend on.
    pub(crate) fn compiled_for(
        &self,
        host: &impl Host,
        keys: Option<&[&str]>,
        subset_limit: usize,
        timing: &mut Timing,
    ) -> Result<Rc<CompiledSnapshot>, String> {
        let (snapshot, compiled) = match &self.form {
            Form::Whole { compiled, .. } => return Ok(Rc::clone(compiled)),
            Form::Packed { snapshot, compiled } => (snapshot, compiled),
        };
        let mut compiled = compiled.borrow_mut();
        if let Some(whole) = &compiled.whole {
            return Ok(Rc::clone(whole));
        }
        let subset_keys = keys
            .filter(|keys| keys.len() <= MAX_SUBSET_KEYS)
            .map(|keys| {
                let mut sorted: Vec<&str> = keys.to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                sorted
            });
        let cache_key = subset_keys.as_ref().map(|keys| keys.join("\n"));
        if let Some((subset, _)) = cache_key.as_ref().and_then(|k| compiled.subsets.get(k)) {
            return Ok(Rc::clone(subset));
        }
        // Checked when it was loaded: viewing it again costs nothing.
        let view = snapshot.view();
        match (subset_keys, cache_key) {
            (Some(keys), Some(cache_key)) if compiled.subsets_compiled < subset_limit => {
                let json = view.subset_json(&keys);
                let subset = Rc::new(compile(host, &self.environment, &json, timing)?);
                compiled.subsets_compiled += 1;
                compiled
                    .subsets
                    .insert(cache_key, (Rc::clone(&subset), json.len()));
                Ok(subset)
            }
            _ => {
                let whole = Rc::new(compile(host, &self.environment, view.json(), timing)?);
                compiled.subsets.clear();
                compiled.whole = Some(Rc::clone(&whole));
                Ok(whole)
            }
        }
    }
}

#[cfg(test)]
mod tests;
