//! Snapshots in Workers KV, and what each isolate keeps of them in memory.
//!
//! KV layout, per environment `E`:
//! - `snapshot:E` — the snapshot in evaluator-core's packed form (`evaluator_core::packed`: the
//!   JSON exactly as published, behind a directory of its flags and segments and what each
//!   depends on). A plain JSON snapshot (written by hand, or by an older worker) is read too;
//! - `version:E`  — its version in decimal, written after the snapshot.
//!
//! Why packed: a fresh isolate's first request must fit the free plan's 10 ms of CPU, and
//! compiling a whole 1,000-flag snapshot there costs several times that (V8 runs it in baseline
//! code). The packed form lets an isolate compile only the flags a request names, with their
//! prerequisites and segments, from a directory it reads without parsing any JSON. Requests for
//! every flag (bulk), batches of many, or many distinct single flags compile the whole snapshot
//! once, and from then on it serves everything.
//!
//! The small version key lets an isolate re-check freshness every `SNAPSHOT_TTL_SECONDS` with a
//! read of a few bytes and reload only when the version changed. Any failure on the way (KV
//! error, missing or corrupt snapshot) keeps the last good snapshot; the version read is the only
//! hint, the stored snapshot's own version is the truth, and an isolate never goes back to an
//! older version than the one it serves.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use evaluator_core::packed::{self, Packed, PackedSnapshot};
use evaluator_core::CompiledSnapshot;
use worker::kv::KvStore;
use worker::{console_error, console_warn};

use crate::error::Result;

/// Most flags a request may name and still be served from a compiled subset; more compile the
/// whole snapshot (a subset that large costs about as much, and is not reused as often).
const MAX_SUBSET_KEYS: usize = 8;
/// Subsets an isolate compiles per snapshot version before it compiles the whole snapshot
/// instead (var `SUBSET_CACHE_LIMIT`): bounds the memory of cached subsets and the CPU of
/// compiling shared segments again. 0 always compiles the whole snapshot.
pub(crate) const DEFAULT_SUBSET_LIMIT: usize = 32;

thread_local! {
    /// Environment → loaded snapshot. Workers run one request at a time per isolate thread,
    /// interleaved only at `await`s, so a `RefCell` borrowed between awaits is enough.
    static CACHE: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

struct Cached {
    snapshot: Option<Rc<Loaded>>,
    /// When KV was last consulted (Unix ms), whatever the outcome.
    checked_at_ms: u64,
}

/// One environment's snapshot as this isolate holds it.
pub(crate) struct Loaded {
    environment: String,
    version: u64,
    form: Form,
}

enum Form {
    /// Packed bytes, compiled on demand (see [`Loaded::compiled_for`]).
    Packed {
        snapshot: PackedSnapshot,
        compiled: RefCell<Compiled>,
    },
    /// A plain JSON snapshot, compiled whole when it was loaded.
    Whole(Rc<CompiledSnapshot>),
}

#[derive(Default)]
struct Compiled {
    whole: Option<Rc<CompiledSnapshot>>,
    /// Compiled subsets by their sorted, deduplicated flag keys joined with `\n`.
    subsets: HashMap<String, Rc<CompiledSnapshot>>,
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
        })
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// A compiled snapshot that answers a request evaluating `keys` (`None`: every flag)
    /// exactly as the whole snapshot would: the whole one if compiled or needed, else the
    /// subset of those flags and everything they depend on.
    pub(crate) fn compiled_for(
        &self,
        keys: Option<&[&str]>,
        subset_limit: usize,
        timing: &mut Timing,
    ) -> Result<Rc<CompiledSnapshot>, String> {
        let (snapshot, compiled) = match &self.form {
            Form::Whole(whole) => return Ok(Rc::clone(whole)),
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
        if let Some(subset) = cache_key.as_ref().and_then(|k| compiled.subsets.get(k)) {
            return Ok(Rc::clone(subset));
        }
        // Checked when it was loaded: viewing it again costs nothing.
        let view = snapshot.view();
        match (subset_keys, cache_key) {
            (Some(keys), Some(cache_key)) if compiled.subsets_compiled < subset_limit => {
                let subset = compile(&self.environment, &view.subset_json(&keys), timing)?;
                let subset = Rc::new(subset);
                compiled.subsets_compiled += 1;
                compiled.subsets.insert(cache_key, Rc::clone(&subset));
                Ok(subset)
            }
            _ => {
                let whole = Rc::new(compile(&self.environment, view.json(), timing)?);
                compiled.subsets.clear();
                compiled.whole = Some(Rc::clone(&whole));
                Ok(whole)
            }
        }
    }
}

fn snapshot_key(environment: &str) -> String {
    format!("snapshot:{environment}")
}

fn version_key(environment: &str) -> String {
    format!("version:{environment}")
}

/// Where a request's time went when it consulted KV or compiled, reported as `Server-Timing`.
/// Workers on Cloudflare freeze the clock between I/O events, so there `parse`/`compile` read
/// 0; under local workerd (Miniflare, `wrangler dev`) they are the CPU time spent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Timing {
    /// Milliseconds waiting for KV reads, if KV was consulted.
    kv_ms: Option<f64>,
    /// Milliseconds checking a packed directory KV returned, if the request loaded one.
    parse_ms: Option<f64>,
    /// Milliseconds compiling snapshot JSON (a subset or the whole), if any.
    compile_ms: Option<f64>,
    /// Milliseconds from the request's arrival to its answer, KV waits included.
    total_ms: Option<f64>,
}

impl Timing {
    fn add_kv(&mut self, ms: f64) {
        self.kv_ms = Some(self.kv_ms.unwrap_or(0.0) + ms);
    }

    fn add_parse(&mut self, ms: f64) {
        self.parse_ms = Some(self.parse_ms.unwrap_or(0.0) + ms);
    }

    fn add_compile(&mut self, ms: f64) {
        self.compile_ms = Some(self.compile_ms.unwrap_or(0.0) + ms);
    }

    pub(crate) fn set_total(&mut self, ms: f64) {
        self.total_ms = Some(ms);
    }

    /// The `Server-Timing` value, e.g. `kv;dur=1.000, parse;dur=0.000, compile;dur=4.000,
    /// total;dur=6.000` (`total - kv` is the request's CPU); `None` when the request neither read
    /// KV nor compiled.
    pub(crate) fn header(&self) -> Option<String> {
        if self.kv_ms.is_none() && self.compile_ms.is_none() && self.parse_ms.is_none() {
            return None;
        }
        let parts: Vec<String> = [
            ("kv", self.kv_ms),
            ("parse", self.parse_ms.or(self.compile_ms.map(|_| 0.0))),
            ("compile", self.compile_ms),
            ("total", self.total_ms),
        ]
        .into_iter()
        .filter_map(|(name, ms)| Some(format!("{name};dur={:.3}", ms?)))
        .collect();
        Some(parts.join(", "))
    }
}

/// `performance.now()`: sub-millisecond and monotonic (falls back to `Date.now()`).
pub(crate) fn clock_ms() -> f64 {
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
/// `ttl_ms`; `None` only when this isolate never loaded one.
pub(crate) async fn snapshot(
    kv: &KvStore,
    environment: &str,
    now_ms: u64,
    ttl_ms: u64,
    timing: &mut Timing,
) -> Option<Rc<Loaded>> {
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
        return cached;
    }
    let refreshed = refresh(kv, environment, cached.as_deref(), timing).await;
    let current = match refreshed {
        Some(fresh) => Some(Rc::new(fresh)),
        None => cached,
    };
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let entry = cache.entry(environment.to_owned()).or_insert(Cached {
            snapshot: None,
            checked_at_ms: now_ms,
        });
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
    })
}

/// A newer snapshot than `cached` from KV, or `None` to keep `cached`.
async fn refresh(
    kv: &KvStore,
    environment: &str,
    cached: Option<&Loaded>,
    timing: &mut Timing,
) -> Option<Loaded> {
    if let Some(current) = cached {
        let started = clock_ms();
        let version = kv.get(&version_key(environment)).text().await;
        timing.add_kv(clock_ms() - started);
        match version {
            Ok(Some(text)) if text.trim().parse::<u64>().ok() == Some(current.version) => {
                return None
            }
            // Missing or unreadable version key: the snapshot itself decides below.
            Ok(_) => {}
            Err(e) => {
                console_error!(
                    "KV read of {} failed, keeping version {}: {e}",
                    version_key(environment),
                    current.version
                );
                return None;
            }
        }
    }
    let started = clock_ms();
    // Bytes, not text: the packed form is binary, and a JSON snapshot skips a UTF-16 round
    // trip through a JS string.
    let stored = kv.get(&snapshot_key(environment)).bytes().await;
    timing.add_kv(clock_ms() - started);
    let bytes = match stored {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(e) => {
            console_error!("KV read of {} failed: {e}", snapshot_key(environment));
            return None;
        }
    };
    match load(environment, bytes, timing) {
        Ok(fresh) if cached.is_none_or(|current| fresh.version > current.version) => Some(fresh),
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

/// Reads a stored snapshot of `environment`: packed (directory checked, nothing compiled yet)
/// or plain JSON (compiled whole). Anything else, or another environment's, is refused.
fn load(environment: &str, bytes: Vec<u8>, timing: &mut Timing) -> Result<Loaded, String> {
    let loaded = if packed::is_packed(&bytes) {
        let started = clock_ms();
        let loaded = Loaded::packed(bytes, None)?;
        timing.add_parse(clock_ms() - started);
        loaded
    } else {
        let whole = compile(environment, &bytes, timing)?;
        Loaded {
            environment: whole.environment().to_owned(),
            version: whole.version(),
            form: Form::Whole(Rc::new(whole)),
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
    environment: &str,
    json: &[u8],
    timing: &mut Timing,
) -> Result<CompiledSnapshot, String> {
    let started = clock_ms();
    let compiled = CompiledSnapshot::from_json(json).map_err(|e| e.to_string());
    timing.add_compile(clock_ms() - started);
    let (snapshot, warnings) = compiled?;
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
pub(crate) fn cached(environment: &str) -> Option<Rc<Loaded>> {
    CACHE.with(|cache| {
        cache
            .borrow()
            .get(environment)
            .and_then(|entry| entry.snapshot.clone())
    })
}

/// Makes a just-published snapshot (its packed bytes, and the compiled form validation made)
/// this isolate's current one for its environment, unless a newer one is already installed.
pub(crate) fn install(packed: Vec<u8>, whole: CompiledSnapshot, now_ms: u64) {
    let loaded = match Loaded::packed(packed, Some(whole)) {
        Ok(loaded) => loaded,
        Err(message) => {
            // Cannot happen for bytes `packed::pack_valid` just made; the KV copy is still good.
            console_error!("a freshly packed snapshot does not read back: {message}");
            return;
        }
    };
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let entry = cache.entry(loaded.environment.clone()).or_insert(Cached {
            snapshot: None,
            checked_at_ms: now_ms,
        });
        if entry
            .snapshot
            .as_ref()
            .is_none_or(|current| current.version < loaded.version)
        {
            entry.snapshot = Some(Rc::new(loaded));
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
                Some((environment.clone(), entry.snapshot.as_ref()?.version))
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
    let Some(stored) = kv.get(&snapshot_key(environment)).bytes().await? else {
        return Ok(None);
    };
    if packed::is_packed(&stored) {
        return Ok(Packed::parse(&stored).ok().map(|view| view.version()));
    }
    Ok(serde_json::from_slice::<VersionOnly>(&stored)
        .ok()
        .map(|v| v.version))
}

/// Writes a validated, packed snapshot: body first, then the version key, so a reader that
/// sees the new version always finds a body at least as new.
pub(crate) async fn write(
    kv: &KvStore,
    environment: &str,
    packed: &[u8],
    version: u64,
) -> Result<()> {
    kv.put_bytes(&snapshot_key(environment), packed)?
        .execute()
        .await?;
    kv.put(&version_key(environment), version.to_string())?
        .execute()
        .await?;
    Ok(())
}
