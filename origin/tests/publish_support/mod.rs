//! Helpers shared by the publisher tests (`tests/publish*.rs`, `tests/outbox.rs`) and the publish
//! latency bench: committing snapshots through the real outbox, a publisher started the way `main`
//! starts it, an in-process recording sink that can hold a delivery at a chosen version, waiting
//! on cursor state, a local S3 server.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::collections::VecDeque;
use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use evaluator_core::model::Snapshot;
use origin::outbox::{self, Subscription};
use origin::publish::{
    self, Delivery, DeliveryMode, Outgoing, PublishConfig, PublishMetrics, PublisherSettings,
    SinkError, SnapshotSink,
};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Settings fast enough for tests: short poll and backoffs.
pub fn fast_settings() -> PublisherSettings {
    PublisherSettings {
        poll_interval: Duration::from_millis(200),
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        rejected_backoff: Duration::from_millis(300),
        delivery_timeout: Duration::from_secs(5),
        concurrency: 2,
    }
}

pub fn metrics() -> PublishMetrics {
    PublishMetrics::unregistered().unwrap()
}

/// Creates an environment row (version 0, no snapshot yet).
pub async fn create_environment(pool: &PgPool, key: &str) {
    sqlx::query("insert into environment (environment_key, name) values ($1, $1)")
        .bind(key)
        .execute(pool)
        .await
        .unwrap();
}

/// A snapshot of `environment` at `version` with `flags` flags, in evaluator-core's model.
pub fn snapshot(environment: &str, version: u64, flags: usize) -> Snapshot {
    let flags: Vec<_> = (0..flags)
        .map(|i| {
            json!({
                "flagKey": format!("flag-{i:04}"),
                "enabled": i % 2 == 0,
                "defaultValue": false,
                "version": version,
                "targetingRules": {"percentage": 25.5, "userIds": ["u-1", "u-2"]}
            })
        })
        .collect();
    serde_json::from_value(json!({
        "environment": environment,
        "version": version,
        "generatedAt": "2026-01-01T00:00:00Z",
        "flags": flags,
        "segments": []
    }))
    .unwrap()
}

/// The exact text the outbox stores for [`snapshot`]`(environment, version, flags)`.
pub fn snapshot_body(environment: &str, version: u64, flags: usize) -> String {
    serde_json::to_string(&snapshot(environment, version, flags)).unwrap()
}

/// Commits one new snapshot of `environment` the way an admin mutation does: lock the
/// environment row while bumping `snapshot_version`, then [`outbox::append`] (the real insert and
/// `pg_notify`), commit. Returns the new version and its stored body.
pub async fn commit_snapshot(pool: &PgPool, environment: &str, flags: usize) -> (u64, String) {
    let mut tx = pool.begin().await.unwrap();
    let version: i64 = sqlx::query_scalar(
        "update environment set snapshot_version = snapshot_version + 1
         where environment_key = $1 returning snapshot_version",
    )
    .bind(environment)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let version = u64::try_from(version).unwrap();
    let body = outbox::append(&mut tx, &snapshot(environment, version, flags))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (version, body)
}

/// One replica's publisher as `main` runs it: the replica's outbox listener, the publisher fed by
/// it, one shutdown token for both. Dropping it aborts both.
pub struct Publisher {
    pub shutdown: CancellationToken,
    pub announcements: Subscription,
    listener: JoinHandle<()>,
    publisher: Option<JoinHandle<()>>,
}

impl Publisher {
    /// Publishes to `sinks`; the listener polls at the publisher's poll interval, as in `main`.
    pub fn start(
        pool: &PgPool,
        sinks: Vec<Arc<dyn SnapshotSink>>,
        settings: PublisherSettings,
        metrics: PublishMetrics,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let (listener, announcements) =
            outbox::spawn_listener(pool.clone(), settings.poll_interval, shutdown.clone());
        let publisher = publish::spawn_with_sinks(
            pool.clone(),
            sinks,
            settings,
            metrics,
            announcements.clone(),
            shutdown.clone(),
        )
        .unwrap();
        Self {
            shutdown,
            announcements,
            listener,
            publisher: Some(publisher),
        }
    }

    /// Publishes to the sinks `config` enables, with its timings: what `main` builds
    /// from the command-line configuration.
    pub fn from_config(pool: &PgPool, config: &PublishConfig, metrics: PublishMetrics) -> Self {
        Self::start(pool, config.sinks().unwrap(), config.settings(), metrics)
    }

    /// Waits until the listener has LISTENed and polled once: from then on every commit is
    /// announced through NOTIFY, without waiting for a poll.
    pub async fn listening(&self) {
        let mut announcements = self.announcements.clone();
        tokio::time::timeout(
            Duration::from_secs(30),
            announcements.wait_for(|a| a.sessions() >= 1),
        )
        .await
        .expect("the outbox listener did not connect within 30 s")
        .expect("the outbox listener stopped");
    }

    /// Kills the replica, as a crash does: nothing in flight finishes or commits.
    pub fn abort(&self) {
        self.listener.abort();
        if let Some(publisher) = &self.publisher {
            publisher.abort();
        }
    }

    /// Kills the replica and waits until its tasks are gone (their transactions dropped).
    pub async fn kill(mut self) {
        self.abort();
        if let Some(publisher) = self.publisher.take() {
            let _ = publisher.await;
        }
    }

    /// Graceful shutdown through the token; panics if it takes longer than 10 s.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let publisher = self.publisher.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), publisher)
            .await
            .expect("the publisher stops")
            .unwrap();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.abort();
    }
}

/// The `snapshot` rows of `environment`, by version.
pub async fn snapshot_rows(pool: &PgPool, environment: &str) -> Vec<(u64, String)> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "select version, body from snapshot where environment_key = $1 order by version",
    )
    .bind(environment)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(v, b)| (u64::try_from(v).unwrap(), b))
        .collect()
}

/// Commits `count` snapshots of `flags` flags each, as [`commit_snapshot`]; their versions and
/// bodies in order.
pub async fn commit_snapshots(
    pool: &PgPool,
    environment: &str,
    count: usize,
    flags: usize,
) -> Vec<(u64, String)> {
    let mut committed = Vec::with_capacity(count);
    for _ in 0..count {
        committed.push(commit_snapshot(pool, environment, flags).await);
    }
    committed
}

/// One `publish_cursor` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CursorRow {
    pub delivered_version: i64,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub retry_in_seconds: f64,
}

impl CursorRow {
    /// Asserts the sink still stands at `delivered`, its last error naming every one of `causes`.
    #[track_caller]
    pub fn assert_stuck(&self, delivered: i64, causes: &[&str]) {
        assert_eq!(self.delivered_version, delivered, "{self:?}");
        let error = self.last_error.as_deref().unwrap_or_default();
        assert!(
            self.last_error.is_some() && causes.iter().all(|c| error.contains(c)),
            "{self:?}"
        );
    }
}

pub async fn cursor(pool: &PgPool, sink: &str, environment: &str) -> Option<CursorRow> {
    sqlx::query_as(
        "select delivered_version, attempts, last_error,
                extract(epoch from next_attempt_at - clock_timestamp())::float8 as retry_in_seconds
         from publish_cursor where sink = $1 and environment_key = $2",
    )
    .bind(sink)
    .bind(environment)
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// Polls `condition` every 20 ms until it holds; panics after `limit` with `what`.
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `sink`'s cursor of `environment` exists and satisfies `done` (panics after 30 s,
/// naming `what`), and returns it then.
pub async fn wait_cursor(
    pool: &PgPool,
    sink: &str,
    environment: &str,
    what: &str,
    done: impl Fn(&CursorRow) -> bool,
) -> CursorRow {
    let what = format!("{sink}/{environment} to have {what}");
    wait_for(Duration::from_secs(30), &what, || async {
        cursor(pool, sink, environment)
            .await
            .is_some_and(|c| done(&c))
    })
    .await;
    cursor(pool, sink, environment).await.unwrap()
}

/// Waits until `sink`'s cursor of `environment` reaches `version`.
pub async fn wait_delivered(pool: &PgPool, sink: &str, environment: &str, version: u64) {
    let want = i64::try_from(version).unwrap();
    let what = format!("reached version {version}");
    wait_cursor(pool, sink, environment, &what, |c| {
        c.delivered_version >= want
    })
    .await;
}

/// Waits until `sink` has failed at least `attempts` times in a row to deliver `environment`,
/// and returns its cursor then.
pub async fn wait_failed(pool: &PgPool, sink: &str, environment: &str, attempts: i32) -> CursorRow {
    let what = format!("failed {attempts} times");
    wait_cursor(pool, sink, environment, &what, |c| c.attempts >= attempts).await
}

/// A second pool on the same test database: another origin replica.
pub async fn replica_pool(pool: &PgPool) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(5)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap()
}

/// What the recording sink answers next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Accept,
    /// Fails like a server that is down (503).
    Unavailable,
    /// Refuses like a 4xx other than 409.
    Reject,
}

/// An in-process sink that records every delivery it accepts, in arrival order.
pub struct RecordingSink {
    name: String,
    mode: DeliveryMode,
    behaviour: Mutex<Behaviour>,
    /// Answers used before falling back to `behaviour` (one per delivery attempt).
    script: Mutex<VecDeque<Behaviour>>,
    delay: Duration,
    accepted: Mutex<Vec<(String, u64, String)>>,
    attempts: Mutex<u64>,
    hold: Mutex<Option<Arc<Hold>>>,
}

/// A delivery the recording sink holds: when it reaches `version` it records the version as
/// accepted (the sink has stored it), says so, and does not answer until released. Killing the
/// publisher meanwhile is a crash between the sink's acknowledgement and the cursor commit.
pub struct Hold {
    version: u64,
    reached: Notify,
    release: Notify,
}

impl Hold {
    /// Waits until the sink holds the version (panics after 30 s).
    pub async fn reached(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.reached.notified())
            .await
            .unwrap_or_else(|_| panic!("version {} was not delivered within 30 s", self.version));
    }

    /// Lets the held delivery answer.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

impl RecordingSink {
    pub fn new(name: &str) -> Arc<Self> {
        Self::with(name, DeliveryMode::EveryVersion, Duration::ZERO)
    }

    pub fn with(name: &str, mode: DeliveryMode, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            mode,
            behaviour: Mutex::new(Behaviour::Accept),
            script: Mutex::new(VecDeque::new()),
            delay,
            accepted: Mutex::new(Vec::new()),
            attempts: Mutex::new(0),
            hold: Mutex::new(None),
        })
    }

    /// Holds the first delivery of `version` (see [`Hold`]); later deliveries pass.
    pub fn hold_at(&self, version: u64) -> Arc<Hold> {
        let hold = Arc::new(Hold {
            version,
            reached: Notify::new(),
            release: Notify::new(),
        });
        *self.hold.lock().unwrap() = Some(Arc::clone(&hold));
        hold
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn script(&self, answers: &[Behaviour]) {
        self.script.lock().unwrap().extend(answers.iter().copied());
    }

    pub fn accepted(&self) -> Vec<(String, u64, String)> {
        self.accepted.lock().unwrap().clone()
    }

    /// Versions accepted for `environment`, in arrival order.
    pub fn versions(&self, environment: &str) -> Vec<u64> {
        self.accepted()
            .into_iter()
            .filter(|(e, _, _)| e == environment)
            .map(|(_, v, _)| v)
            .collect()
    }

    pub fn attempts(&self) -> u64 {
        *self.attempts.lock().unwrap()
    }
}

#[async_trait]
impl SnapshotSink for RecordingSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn mode(&self) -> DeliveryMode {
        self.mode
    }

    async fn deliver(&self, snapshot: Outgoing<'_>) -> Result<Delivery, SinkError> {
        let Outgoing {
            environment,
            version,
            body,
        } = snapshot;
        *self.attempts.lock().unwrap() += 1;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let scripted = self.script.lock().unwrap().pop_front();
        let behaviour = scripted.unwrap_or_else(|| *self.behaviour.lock().unwrap());
        match behaviour {
            Behaviour::Accept => {
                self.accepted.lock().unwrap().push((
                    environment.to_owned(),
                    version,
                    body.to_owned(),
                ));
                let hold = {
                    let mut hold = self.hold.lock().unwrap();
                    if hold.as_ref().is_some_and(|h| h.version == version) {
                        hold.take()
                    } else {
                        None
                    }
                };
                if let Some(hold) = hold {
                    // notify_one keeps the signal for a waiter that comes later
                    hold.reached.notify_one();
                    hold.release.notified().await;
                }
                Ok(Delivery::Stored)
            }
            Behaviour::Unavailable => Err(SinkError::Unavailable {
                status: 503,
                body: "down for the test".into(),
            }),
            Behaviour::Reject => Err(SinkError::Rejected {
                status: 400,
                body: "refused by the test".into(),
            }),
        }
    }
}

/// A port on 127.0.0.1 nothing listens on (yet).
pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real S3-compatible server (moto) on loopback: the one named by `EDGEFLAGS_TEST_S3_ENDPOINT`,
/// or one this test starts (installing it with scripts/lib/s3-server.sh) and stops by PID on drop.
pub struct S3Server {
    pub endpoint: String,
    child: Option<Child>,
}

impl S3Server {
    pub async fn start() -> Self {
        if let Ok(endpoint) = std::env::var("EDGEFLAGS_TEST_S3_ENDPOINT") {
            return Self {
                endpoint,
                child: None,
            };
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib/s3-server.sh");
        let installed = Command::new("bash")
            .arg(&script)
            .arg("install")
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/lib/s3-server.sh install");
        assert!(installed.status.success(), "installing moto failed");
        let moto_server = String::from_utf8(installed.stdout)
            .unwrap()
            .trim()
            .to_owned();
        let port = free_port();
        let child = Command::new(&moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "moto_server did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // Child::kill signals exactly this PID.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A stand-in edge for the fault tests (`tests/faults_*.rs`): the publish endpoint on a chosen
/// address of 127.0.0.1, checking signatures with `publish_protocol`, keeping the newest version
/// per environment as the worker does (200 `stored`, 200 `stored:false` for the same version,
/// 409 `STALE_VERSION` for an older one) and refusing the versions in `reject` with 400
/// `INVALID_SNAPSHOT`. Every answer is recorded. Stopping it closes the port (connection refused).
pub struct RecordingEdge {
    pub addr: std::net::SocketAddr,
    pub state: Arc<EdgeRecord>,
    task: JoinHandle<()>,
}

/// What a [`RecordingEdge`] saw and holds.
#[derive(Default)]
pub struct EdgeRecord {
    /// Versions the edge refuses as invalid.
    pub reject: Mutex<Vec<u64>>,
    /// Newest stored version per environment.
    pub stored: Mutex<std::collections::HashMap<String, u64>>,
    /// (environment, version, body) of every stored snapshot, in arrival order.
    pub accepted: Mutex<Vec<(String, u64, String)>>,
    /// (version, status) of every answer, in order.
    pub answers: Mutex<Vec<(u64, u16)>>,
}

/// The publish secret of [`RecordingEdge`] (32 bytes, the protocol's minimum).
pub const EDGE_SECRET: &str = "faults-publish-secret-32-bytes!!";

impl RecordingEdge {
    pub async fn start(addr: std::net::SocketAddr, state: Arc<EdgeRecord>) -> Self {
        use axum::routing::put;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/internal/snapshots/{environment}", put(edge_publish))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state, task }
    }

    pub fn url(&self) -> reqwest::Url {
        format!("http://{}", self.addr).parse().unwrap()
    }

    /// Stored versions of `environment`, in arrival order.
    pub fn versions(&self, environment: &str) -> Vec<u64> {
        let accepted = self.state.accepted.lock().unwrap();
        accepted
            .iter()
            .filter(|(e, _, _)| e == environment)
            .map(|(_, v, _)| *v)
            .collect()
    }

    pub fn answers(&self) -> Vec<(u64, u16)> {
        self.state.answers.lock().unwrap().clone()
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn edge_publish(
    axum::extract::State(state): axum::extract::State<Arc<EdgeRecord>>,
    axum::extract::Path(environment): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: String,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let secret = publish_protocol::Secret::new(EDGE_SECRET.as_bytes()).unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let signed = publish_protocol::verify(
        &secret,
        header(publish_protocol::TIMESTAMP_HEADER),
        header(publish_protocol::SIGNATURE_HEADER),
        body.as_bytes(),
        now,
    );
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let version = parsed["version"].as_u64().unwrap_or(0);
    let (status, answer) = if signed.is_err() {
        (
            401,
            json!({"code": "INVALID_SIGNATURE", "message": "bad signature"}),
        )
    } else if state.reject.lock().unwrap().contains(&version) {
        (
            400,
            json!({"code": "INVALID_SNAPSHOT", "message": "refused by the test", "errors": []}),
        )
    } else {
        let mut stored = state.stored.lock().unwrap();
        let current = stored.get(&environment).copied().unwrap_or(0);
        if version < current {
            (
                409,
                json!({"code": "STALE_VERSION", "message": "older", "storedVersion": current}),
            )
        } else if version == current {
            (
                200,
                json!({"environment": environment, "version": version, "stored": false}),
            )
        } else {
            stored.insert(environment.clone(), version);
            let stored_body = (environment.clone(), version, body);
            state.accepted.lock().unwrap().push(stored_body);
            (
                200,
                json!({"environment": environment, "version": version, "stored": true}),
            )
        }
    };
    state.answers.lock().unwrap().push((version, status));
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        axum::Json(answer),
    )
}
