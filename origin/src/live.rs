//! The compiled snapshots the origin's evaluation API answers from.
//!
//! Loaded from the outbox at start-up, replaced after every local commit, and refreshed when
//! another replica announces a snapshot on `edgeflags_snapshot`. A periodic reload covers
//! notifications lost while the listener was reconnecting. A snapshot only ever replaces an older
//! version, so the order in which these paths race does not matter.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use evaluator_core::model::Snapshot;
use evaluator_core::CompiledSnapshot;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::metrics::Metrics;
use crate::snapshot;

/// environment key -> newest compiled snapshot.
#[derive(Debug)]
pub struct LiveSnapshots {
    map: RwLock<HashMap<String, Arc<CompiledSnapshot>>>,
    metrics: Metrics,
}

impl LiveSnapshots {
    /// An empty cache reporting its versions to `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            metrics,
        }
    }

    /// The snapshot of `environment`, if one is loaded.
    pub fn get(&self, environment: &str) -> Option<Arc<CompiledSnapshot>> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(environment)
            .cloned()
    }

    /// Version of the loaded snapshot of `environment`.
    pub fn version(&self, environment: &str) -> Option<u64> {
        self.get(environment).map(|s| s.version())
    }

    /// Installs `compiled` unless a newer or equal version is already loaded.
    pub fn install(&self, compiled: CompiledSnapshot) -> bool {
        let environment = compiled.environment().to_owned();
        let version = compiled.version();
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map
            .get(&environment)
            .is_some_and(|current| current.version() >= version)
        {
            return false;
        }
        map.insert(environment.clone(), Arc::new(compiled));
        drop(map);
        self.metrics
            .cached_snapshot_version
            .with_label_values(&[environment.as_str()])
            .set(i64::try_from(version).unwrap_or(i64::MAX));
        true
    }

    /// Compiles and installs a snapshot this process just committed. Compiling thousands of
    /// flags takes milliseconds of CPU, so it runs on the blocking pool, not on a request thread.
    pub async fn install_snapshot(self: &Arc<Self>, snapshot: Snapshot) {
        if self
            .version(&snapshot.environment)
            .is_some_and(|v| v >= snapshot.version)
        {
            return;
        }
        let live = Arc::clone(self);
        let compiled = tokio::task::spawn_blocking(move || {
            let (compiled, warnings) = CompiledSnapshot::compile(snapshot);
            log_warnings(&compiled, &warnings);
            live.install(compiled);
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
                    live.install(compiled);
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

    /// Loads the newest snapshot of every environment.
    pub async fn reload_all(self: &Arc<Self>, pool: &PgPool) -> Result<()> {
        for (environment, version, body) in snapshot::latest_all(pool).await? {
            self.install_text(environment, version, body).await;
        }
        Ok(())
    }

    /// Loads the newest snapshot of one environment.
    pub async fn reload(self: &Arc<Self>, pool: &PgPool, environment: &str) -> Result<()> {
        if let Some((version, body)) = snapshot::latest(pool, environment).await? {
            self.install_text(environment.to_owned(), version, body)
                .await;
        }
        Ok(())
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

/// Keeps `live` current with other replicas' commits until `shutdown` fires: LISTEN on
/// [`snapshot::CHANNEL`], plus a full reload every `poll` (and after every reconnect).
pub fn spawn_refresher(
    pool: PgPool,
    live: Arc<LiveSnapshots>,
    poll: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = listen(&pool, &live, poll, &shutdown).await {
                tracing::warn!(error = %e, "snapshot listener failed; reconnecting");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    })
}

async fn listen(
    pool: &PgPool,
    live: &Arc<LiveSnapshots>,
    poll: Duration,
    shutdown: &CancellationToken,
) -> Result<()> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(snapshot::CHANNEL).await?;
    // anything committed while we were not listening
    live.reload_all(pool).await?;
    let mut ticker = tokio::time::interval(poll.max(Duration::from_millis(100)));
    ticker.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            notification = listener.recv() => {
                let notification = notification?;
                live.reload(pool, notification.payload()).await?;
            }
            _ = ticker.tick() => live.reload_all(pool).await?,
        }
    }
}
