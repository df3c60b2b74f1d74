//! The compiled snapshots the origin's evaluation API answers from.
//!
//! Loaded from the outbox at start-up ([`LiveSnapshots::load`]), replaced by every local commit
//! ([`LiveSnapshots::install_snapshot`]), and kept current with other replicas' commits by
//! [`spawn_follower`], which follows the replica's outbox listener ([`crate::outbox`]). The
//! listener only announces versions; a body is read from the outbox only for a version newer than
//! the one held, so an idle poll reads no body, and the announcement of this replica's own commit
//! reads nothing at all: the commit path marks its version ([`LiveSnapshots::installing`]) before
//! `COMMIT` and installs the snapshot itself, and the follower waits for that instead of reading.
//! A snapshot only ever replaces an older version, so the order in which these paths race does not
//! matter.
//!
//! Every installed version is also announced on the environment's [`watch`] channel
//! ([`LiveSnapshots::watch`]), whichever path installed it: the origin's event streams
//! (`http/stream.rs`) follow those, so a change committed here or by another replica reaches the
//! streams this replica holds. A watch keeps only the newest value, so a slow stream skips to the
//! newest version (which is all a re-fetch needs) instead of queueing every one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use evaluator_core::model::Snapshot;
use evaluator_core::CompiledSnapshot;
use sqlx::PgPool;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::metrics::Metrics;
use crate::outbox::{self, Announcement, Subscription};
use crate::ratelimit::RateLimiter;

/// What the origin's evaluation API may cost, so that evaluation cannot starve the runtime that
/// serves the admin API and `/readyz` (issue 11, "Resource budgets").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvaluationBudget {
    /// Evaluations of many flags (batch, bulk) running at once on the blocking pool; more are
    /// refused with 503 rather than queued.
    pub concurrency: usize,
    /// Sustained evaluation requests per second per client IP; 0 disables the limit.
    pub rate_per_second: f64,
    /// Token bucket capacity of that limit.
    pub burst: u32,
}

impl EvaluationBudget {
    /// The defaults of [`crate::config::Config`].
    pub const DEFAULT: Self = Self {
        concurrency: 8,
        rate_per_second: 100.0,
        burst: 1000,
    };
}

impl From<&crate::config::Config> for EvaluationBudget {
    fn from(config: &crate::config::Config) -> Self {
        Self {
            concurrency: config.evaluation_concurrency,
            rate_per_second: config.evaluation_rate_per_second,
            burst: config.evaluation_rate_burst,
        }
    }
}

/// The enforcement of an [`EvaluationBudget`]: the slots of the blocking evaluations and the
/// per-client token buckets.
#[derive(Debug)]
pub struct EvaluationGate {
    slots: Arc<Semaphore>,
    limiter: RateLimiter,
}

impl EvaluationGate {
    fn new(budget: EvaluationBudget) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(budget.concurrency)),
            limiter: RateLimiter::new(budget.rate_per_second, budget.burst),
        }
    }

    /// A slot for one blocking evaluation, held until dropped; `None` when all are taken. Never
    /// waits: a request over the bound is refused at once, so work cannot pile up.
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// Takes one request of `client` from the rate limit: `Err` with how long until the next
    /// is admitted.
    pub fn admit(&self, client: &str) -> Result<(), std::time::Duration> {
        self.limiter.check(client, std::time::Instant::now())
    }
}

/// Pause before the follower retries after failing to read the outbox.
const RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// A snapshot's document as published: what `GET /sdk/v1/snapshot` serves (`docs/sdk.md`).
#[derive(Debug)]
pub struct Document {
    /// The JSON text, byte for byte the outbox's (and so the edge's).
    pub json: String,
    /// [`evaluation_api::snapshot::snapshot_etag`] of it, computed once per version.
    pub etag: String,
    /// The JSON gzipped, made by the first request that accepts gzip (`http/sdk.rs`), so that
    /// the SDKs of a fleet polling one version cost one compression (`Bytes`: every answer
    /// shares it instead of copying it).
    pub gzip: std::sync::OnceLock<axum::body::Bytes>,
}

impl Document {
    /// The document of `json` at `version` (hashes it: call off the async runtime for big ones).
    pub fn new(version: u64, json: String) -> Self {
        let etag = evaluation_api::snapshot::snapshot_etag(version, json.as_bytes());
        Self {
            json,
            etag,
            gzip: std::sync::OnceLock::new(),
        }
    }
}

/// The newest snapshot of one environment, and the channel announcing its successors.
#[derive(Debug)]
struct Live {
    snapshot: Arc<CompiledSnapshot>,
    document: Arc<Document>,
    /// Holds the same snapshot; kept beside it so that [`LiveSnapshots::get`], on every
    /// evaluation, takes no lock but the map's.
    announce: watch::Sender<Arc<CompiledSnapshot>>,
}

/// environment key -> newest compiled snapshot.
#[derive(Debug)]
pub struct LiveSnapshots {
    map: RwLock<HashMap<String, Live>>,
    /// Versions a local commit is compiling right now (environment -> version): the follower
    /// waits for these instead of reading them from the outbox.
    installing: Mutex<HashMap<String, u64>>,
    /// Woken whenever an entry leaves `installing`.
    installed: Notify,
    /// Snapshot bodies read from the outbox so far.
    body_reads: AtomicU64,
    metrics: Metrics,
    /// What evaluating from these snapshots may cost (see [`EvaluationGate`]).
    gate: RwLock<Arc<EvaluationGate>>,
}

impl LiveSnapshots {
    /// An empty cache reporting its versions to `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            installing: Mutex::new(HashMap::new()),
            installed: Notify::new(),
            body_reads: AtomicU64::new(0),
            metrics,
            gate: RwLock::new(Arc::new(EvaluationGate::new(EvaluationBudget::DEFAULT))),
        }
    }

    /// The budget the evaluation API answers within now.
    pub fn evaluation_gate(&self) -> Arc<EvaluationGate> {
        Arc::clone(&self.gate.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the evaluation budget (at start-up, from [`crate::config::Config`]; tests).
    /// Evaluations holding a slot of the old budget finish under it.
    pub fn set_evaluation_budget(&self, budget: EvaluationBudget) {
        *self.gate.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(EvaluationGate::new(budget));
    }

    /// The snapshot of `environment`, if one is loaded.
    pub fn get(&self, environment: &str) -> Option<Arc<CompiledSnapshot>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(environment)
            .map(|live| Arc::clone(&live.snapshot))
    }

    /// The snapshot of `environment` with its published document, if one is loaded.
    pub fn get_document(
        &self,
        environment: &str,
    ) -> Option<(Arc<CompiledSnapshot>, Arc<Document>)> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(environment)
            .map(|live| (Arc::clone(&live.snapshot), Arc::clone(&live.document)))
    }

    /// The environment's snapshot as a channel: its value is the newest snapshot, and it
    /// changes with every newer version installed, by this replica's commits or by the follower.
    /// `None` while the environment has no snapshot (it does not exist).
    pub fn watch(&self, environment: &str) -> Option<watch::Receiver<Arc<CompiledSnapshot>>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(environment)
            .map(|live| live.announce.subscribe())
    }

    /// Waits until version `version` (or a newer one) of `environment` is installed, at most
    /// `wait`; whether it is.
    pub async fn wait_for_version(
        &self,
        environment: &str,
        version: u64,
        wait: std::time::Duration,
    ) -> bool {
        let Some(mut changes) = self.watch(environment) else {
            return false;
        };
        let installed = changes.wait_for(|snapshot| snapshot.version() >= version);
        let installed = matches!(tokio::time::timeout(wait, installed).await, Ok(Ok(_)));
        installed
    }

    /// Version of the loaded snapshot of `environment`.
    pub fn version(&self, environment: &str) -> Option<u64> {
        self.get(environment).map(|s| s.version())
    }

    /// Installs `compiled` (and its `document`) unless a newer or equal version is already
    /// loaded, and announces it to the environment's [`LiveSnapshots::watch`]ers; an older
    /// version announces nothing.
    pub fn install(&self, compiled: CompiledSnapshot, document: Document) -> bool {
        let environment = compiled.environment().to_owned();
        let version = compiled.version();
        let compiled = Arc::new(compiled);
        let document = Arc::new(document);
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(&environment) {
            Some(live) if live.snapshot.version() >= version => return false,
            Some(live) => {
                live.snapshot = Arc::clone(&compiled);
                live.document = document;
                // under the map's lock, so watchers see versions in the order they are installed
                live.announce.send_replace(compiled);
            }
            None => {
                let live = Live {
                    snapshot: Arc::clone(&compiled),
                    document,
                    announce: watch::Sender::new(compiled),
                };
                map.insert(environment.clone(), live);
            }
        }
        drop(map);
        self.metrics
            .cached_snapshot_version
            .with_label_values(&[environment.as_str()])
            .set(i64::try_from(version).unwrap_or(i64::MAX));
        true
    }

    /// Compiles and installs a snapshot this process just committed, whose outbox text is
    /// `body`. Compiling thousands of flags takes milliseconds of CPU, so it runs on the blocking
    /// pool, not on a request thread.
    ///
    /// Until it is installed the version is marked as [`LiveSnapshots::installing`], so the
    /// listener's announcement of this same commit waits for it here instead of reading it back
    /// from the outbox. Mark it before committing to close the gap between the commit and this
    /// call.
    pub async fn install_snapshot(self: &Arc<Self>, snapshot: Snapshot, body: String) {
        if self
            .version(&snapshot.environment)
            .is_some_and(|v| v >= snapshot.version)
        {
            return;
        }
        let _installing = self.installing(&snapshot);
        let live = Arc::clone(self);
        let compiled = tokio::task::spawn_blocking(move || {
            let (compiled, warnings) = CompiledSnapshot::compile(snapshot);
            log_warnings(&compiled, &warnings);
            let document = Document::new(compiled.version(), body);
            live.install(compiled, document);
        });
        if let Err(e) = compiled.await {
            tracing::error!(error = %e, "compiling a committed snapshot failed");
        }
    }

    /// Compiles and installs snapshot text from the outbox (on the blocking pool).
    pub async fn install_text(self: &Arc<Self>, environment: String, version: u64, body: String) {
        if self.version(&environment).is_some_and(|v| v >= version) {
            return;
        }
        let live = Arc::clone(self);
        let compiled = tokio::task::spawn_blocking(move || {
            match CompiledSnapshot::from_json(body.as_bytes()) {
                Ok((compiled, warnings)) => {
                    log_warnings(&compiled, &warnings);
                    let document = Document::new(compiled.version(), body);
                    live.install(compiled, document);
                }
                Err(e) => tracing::error!(
                    environment,
                    version,
                    error = %e,
                    "stored snapshot is unreadable"
                ),
            }
        });
        if let Err(e) = compiled.await {
            tracing::error!(error = %e, "compiling a stored snapshot failed");
        }
    }

    /// Loads the newest snapshot of every environment (start-up, before serving).
    pub async fn load(self: &Arc<Self>, pool: &PgPool) -> Result<()> {
        for (environment, version) in outbox::latest_versions(pool).await? {
            self.catch_up(pool, &environment, version).await?;
        }
        Ok(())
    }

    /// Brings every environment of `announcement` up to its announced version.
    pub async fn follow(
        self: &Arc<Self>,
        pool: &PgPool,
        announcement: &Announcement,
    ) -> Result<()> {
        for (environment, &version) in announcement.versions() {
            self.catch_up(pool, environment, version).await?;
        }
        Ok(())
    }

    /// Makes sure version `version` (or a newer one) of `environment` is installed, reading its
    /// body from the outbox only when neither this cache nor a local commit in progress has it.
    async fn catch_up(
        self: &Arc<Self>,
        pool: &PgPool,
        environment: &str,
        version: u64,
    ) -> Result<()> {
        if self.holds(environment, version) {
            return Ok(());
        }
        self.wait_for_local_install(environment, version).await;
        if self.holds(environment, version) {
            return Ok(());
        }
        self.body_reads.fetch_add(1, Ordering::Relaxed);
        match outbox::body(pool, environment, version).await? {
            Some(body) => {
                self.install_text(environment.to_owned(), version, body)
                    .await;
            }
            None => tracing::warn!(
                environment,
                version,
                "announced snapshot is not in the outbox"
            ),
        }
        Ok(())
    }

    /// Marks `snapshot` as about to be installed by this replica until the returned guard is
    /// dropped: the follower waits for the mark to go instead of reading that version (or an older
    /// one) from the outbox. A commit takes it before `COMMIT`, because PostgreSQL may deliver
    /// the commit's notification, and the listener announce it, before the committing task
    /// resumes. If the commit fails, dropping the guard lets the follower read whatever was
    /// really committed.
    pub fn installing(self: &Arc<Self>, snapshot: &Snapshot) -> Installing {
        Installing::mark(self, &snapshot.environment, snapshot.version)
    }

    fn holds(&self, environment: &str, version: u64) -> bool {
        self.version(environment).is_some_and(|v| v >= version)
    }

    /// Waits while a local commit is compiling `version` (or a newer one) of `environment`.
    async fn wait_for_local_install(&self, environment: &str, version: u64) {
        loop {
            // registered before the check, so an install finishing in between still wakes us
            let installed = self.installed.notified();
            let mut installed = std::pin::pin!(installed);
            installed.as_mut().enable();
            let pending = self
                .installing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(environment)
                .is_some_and(|&v| v >= version);
            if !pending {
                return;
            }
            installed.await;
        }
    }

    /// How many snapshot bodies this cache has read from the outbox (start-up, other replicas'
    /// commits). Stays put while versions are unchanged and for this replica's own commits.
    pub fn body_reads(&self) -> u64 {
        self.body_reads.load(Ordering::Relaxed)
    }
}

/// A version this replica is committing or installing itself ([`LiveSnapshots::installing`]).
#[derive(Debug)]
#[must_use = "the mark lasts as long as the guard"]
pub struct Installing {
    live: Arc<LiveSnapshots>,
    environment: String,
    version: u64,
}

impl Installing {
    fn mark(live: &Arc<LiveSnapshots>, environment: &str, version: u64) -> Self {
        let mut installing = live.installing.lock().unwrap_or_else(|p| p.into_inner());
        let entry = installing.entry(environment.to_owned()).or_insert(version);
        *entry = (*entry).max(version);
        drop(installing);
        Self {
            live: Arc::clone(live),
            environment: environment.to_owned(),
            version,
        }
    }
}

impl Drop for Installing {
    fn drop(&mut self) {
        let mut installing = self
            .live
            .installing
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // a newer local commit of the same environment keeps its own mark
        if installing.get(&self.environment) == Some(&self.version) {
            installing.remove(&self.environment);
        }
        drop(installing);
        self.live.installed.notify_waiters();
    }
}

fn log_warnings(compiled: &CompiledSnapshot, warnings: &[evaluator_core::ValidationError]) {
    for warning in warnings {
        tracing::warn!(
            environment = compiled.environment(),
            version = compiled.version(),
            %warning,
            "snapshot flag degraded"
        );
    }
}

/// Keeps `live` current with the versions the outbox listener announces, until `shutdown` is
/// cancelled or the listener stops. A failed read is retried (after a second) without
/// waiting for the next announcement, so a version is never skipped.
pub fn spawn_follower(
    pool: PgPool,
    live: Arc<LiveSnapshots>,
    mut announcements: Subscription,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let announcement = announcements.latest();
            let wait_for_news = match live.follow(&pool, &announcement).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "loading an announced snapshot failed; retrying");
                    false
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = announcements.changed(), if wait_for_news => if !changed { return },
                () = tokio::time::sleep(RETRY_DELAY), if !wait_for_news => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Installs an empty snapshot of `environment` at `version`.
    fn installed(live: &LiveSnapshots, environment: &str, version: u64) -> bool {
        let json = format!(r#"{{"environment":"{environment}","version":{version},"flags":[]}}"#);
        let compiled = CompiledSnapshot::from_json(json.as_bytes()).unwrap().0;
        live.install(compiled, Document::new(version, json))
    }

    #[test]
    fn every_newer_version_is_announced_to_its_environments_watchers_only() {
        let live = LiveSnapshots::new(Metrics::new().unwrap());
        assert!(live.watch("production").is_none());
        assert!(installed(&live, "production", 3));
        assert!(installed(&live, "staging", 1));
        let mut production = live.watch("production").unwrap();
        let mut staging = live.watch("staging").unwrap();
        assert_eq!(production.borrow_and_update().version(), 3);

        assert!(installed(&live, "production", 4));
        assert!(production.has_changed().unwrap());
        assert_eq!(production.borrow_and_update().version(), 4);
        assert!(!staging.has_changed().unwrap());

        // an older or equal version installs and announces nothing
        assert!(!installed(&live, "production", 2));
        assert!(!installed(&live, "production", 4));
        assert!(!production.has_changed().unwrap());
        assert_eq!(live.version("production"), Some(4));
        assert_eq!(staging.borrow_and_update().version(), 1);
    }

    #[tokio::test]
    async fn waiting_for_a_version_ends_when_it_is_installed_or_after_the_bound() {
        let live = Arc::new(LiveSnapshots::new(Metrics::new().unwrap()));
        let short = std::time::Duration::from_millis(20);
        assert!(!live.wait_for_version("production", 1, short).await);
        installed(&live, "production", 1);
        assert!(live.wait_for_version("production", 1, short).await);
        assert!(!live.wait_for_version("production", 2, short).await);
        let installer = Arc::clone(&live);
        let install = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            installed(&installer, "production", 2);
        });
        let long = std::time::Duration::from_secs(10);
        assert!(live.wait_for_version("production", 2, long).await);
        install.await.unwrap();
    }
}
