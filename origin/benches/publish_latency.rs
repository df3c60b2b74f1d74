//! Publish latency: time from a committed snapshot row (committed like an admin mutation:
//! environment row lock and version bump, then the real `outbox::append`, which inserts the row and
//! notifies) to its delivery at a sink, through the replica's outbox listener and the publisher,
//! with 1,000 flags in the environment. Reports p50/p95/p99/max over a bounded number of
//! iterations, one change at a time (each waits for the previous delivery).
//!
//! - edge: the real `EdgeSink` (HMAC-signed HTTP PUT) to a recording axum server on 127.0.0.1;
//!   the time is taken when the server has read and verified the request.
//! - admin PUT -> edge: the same edge sink, but each change is a real `PUT /admin/flags/{key}`
//!   to the origin's admin API (served in-process on 127.0.0.1, JWT auth, validation, audit row,
//!   snapshot build of 1,000 flags, outbox insert, NOTIFY); the clock starts before the request.
//! - s3 (with `PUBLISH_BENCH_S3=1`): the real `S3Sink` to a local moto server; the time is taken
//!   when both PUTs (version + latest) are acknowledged.
//!
//! Run: `cargo bench -p origin --bench publish_latency` (PostgreSQL on 127.0.0.1:5432; creates and
//! drops the database `edgeflags_publish_bench`). Knobs: `PUBLISH_BENCH_ITERATIONS` (default 200),
//! `PUBLISH_BENCH_FLAGS` (default 1000), `PUBLISH_BENCH_S3=1`, `PUBLISH_BENCH_DATABASE` (the scratch
//! database's name, so that two runs on one server do not drop each other's database).

#[path = "../tests/publish_support/mod.rs"]
mod publish_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use axum::Router;
use origin::auth::{Role, TokenKeys};
use origin::publish::{
    Delivery, DeliveryMode, EdgeSink, Outgoing, PublishMetrics, PublisherSettings, S3Sink,
    S3SinkConfig, SinkError, SnapshotSink,
};
use origin::{app, AppState, Settings};
use publish_protocol::{Secret, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use publish_support::{commit_snapshot, create_environment, Publisher, S3Server};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};
use tokio::sync::mpsc;

/// At least 32 bytes: both ends refuse shorter publish secrets.
const SECRET: &str = "bench-publish-secret-of-32-bytes";
/// The scratch database, unless `PUBLISH_BENCH_DATABASE` names another.
fn database() -> String {
    std::env::var("PUBLISH_BENCH_DATABASE").unwrap_or_else(|_| "edgeflags_publish_bench".to_owned())
}

type Arrivals = mpsc::UnboundedSender<(u64, Instant)>;

struct Recorder {
    secret: Secret,
    arrivals: Arrivals,
    stored: Mutex<HashMap<String, u64>>,
}

/// The recording edge: verifies the signature, parses the version, records the arrival time.
async fn receive(
    State(recorder): State<Arc<Recorder>>,
    Path(environment): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let verified = publish_protocol::verify(
        &recorder.secret,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        body.as_bytes(),
        i64::try_from(now).unwrap_or(i64::MAX),
    )
    .is_ok();
    if !verified {
        return StatusCode::UNAUTHORIZED;
    }
    let Some(version) = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["version"].as_u64())
    else {
        return StatusCode::BAD_REQUEST;
    };
    let arrived = Instant::now();
    let mut stored = recorder.stored.lock().unwrap();
    let current = stored.entry(environment).or_insert(0);
    if version < *current {
        return StatusCode::CONFLICT;
    }
    *current = version;
    let _ = recorder.arrivals.send((version, arrived));
    StatusCode::OK
}

/// Wraps a sink and records when it acknowledged each version.
struct Timed {
    inner: Arc<dyn SnapshotSink>,
    arrivals: Arrivals,
}

#[async_trait]
impl SnapshotSink for Timed {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn mode(&self) -> DeliveryMode {
        self.inner.mode()
    }
    async fn deliver(&self, snapshot: Outgoing<'_>) -> Result<Delivery, SinkError> {
        let delivery = self.inner.deliver(snapshot).await?;
        let _ = self.arrivals.send((snapshot.version, Instant::now()));
        Ok(delivery)
    }
}

async fn fresh_database() -> PgPool {
    let base: PgConnectOptions = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
        .parse()
        .unwrap();
    let database = database();
    let mut admin = base.clone().database("postgres").connect().await.unwrap();
    admin
        .execute(format!("drop database if exists \"{database}\" with (force)").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("create database \"{database}\"").as_str())
        .await
        .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect_with(base.database(&database))
        .await
        .unwrap();
    sqlx::migrate!("../migrations").run(&pool).await.unwrap();
    pool
}

async fn drop_database() {
    let base: PgConnectOptions = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
        .parse()
        .unwrap();
    let mut admin = base.database("postgres").connect().await.unwrap();
    admin
        .execute(format!("drop database if exists \"{}\" with (force)", database()).as_str())
        .await
        .unwrap();
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// One change to an environment, as the benchmark makes it.
enum Change {
    /// A snapshot row committed through `outbox::append` alone, without the admin API's work
    /// (docs/architecture.md, section "Outbox").
    Row { pool: PgPool, environment: String },
    /// `PUT /admin/flags/{key}` to the origin's admin API, toggling one flag.
    Admin {
        client: reqwest::Client,
        origin: String,
        token: String,
        environment: String,
        enabled: bool,
    },
}

impl Change {
    /// Makes the change; returns the snapshot version it produced and the snapshot's size.
    async fn apply(&mut self, flags: usize) -> (u64, usize) {
        match self {
            Change::Row { pool, environment } => {
                let (version, body) = commit_snapshot(pool, environment, flags).await;
                (version, body.len())
            }
            Change::Admin {
                client,
                origin,
                token,
                environment,
                enabled,
            } => {
                *enabled = !*enabled;
                let response = client
                    .put(format!(
                        "{origin}/admin/flags/flag-0000?environment={environment}"
                    ))
                    .bearer_auth(&*token)
                    .header("content-type", "application/json")
                    .body(serde_json::json!({ "enabled": *enabled }).to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "admin PUT failed");
                let version = response
                    .headers()
                    .get("x-edgeflags-snapshot-version")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .expect("x-edgeflags-snapshot-version header");
                (version, 0)
            }
        }
    }
}

/// Makes `iterations` changes one at a time and measures change-to-delivery latency: from the end
/// of the commit (`Change::Row`) or from the start of the request (`Change::Admin`).
async fn measure(
    label: &str,
    change: &mut Change,
    flags: usize,
    iterations: usize,
    arrivals: &mut mpsc::UnboundedReceiver<(u64, Instant)>,
) {
    let warmup = 5;
    let from_start = matches!(change, Change::Admin { .. });
    let mut latencies = Vec::with_capacity(iterations);
    let mut changes = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let started = Instant::now();
        let (version, _) = change.apply(flags).await;
        let done = Instant::now();
        let arrived = loop {
            let next = tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
                .await
                .expect("no delivery within 30 s")
                .expect("recorder gone");
            if next.0 == version {
                break next.1;
            }
        };
        if i >= warmup {
            let from = if from_start { started } else { done };
            latencies.push(arrived.saturating_duration_since(from));
            changes.push(done - started);
        }
    }
    latencies.sort();
    changes.sort();
    let what = if from_start { "request" } else { "commit" };
    println!(
        "{label}: {iterations} changes, {flags} flags: {what}->delivery p50 {} p95 {} p99 {} max {} ({what} itself p50 {})",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 95.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().unwrap()),
        ms(percentile(&changes, 50.0)),
    );
}

/// The recording edge on 127.0.0.1 and an `EdgeSink` pointed at it.
async fn recording_edge() -> (
    EdgeSink,
    mpsc::UnboundedReceiver<(u64, Instant)>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Arc::new(Recorder {
        secret: Secret::new(SECRET.as_bytes()).unwrap(),
        arrivals: tx,
        stored: Mutex::new(HashMap::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/internal/snapshots/{environment}", put(receive))
        .with_state(recorder);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let secret = Secret::new(SECRET.as_bytes()).unwrap();
    let edge = EdgeSink::new(url.parse().unwrap(), secret, Duration::from_secs(10)).unwrap();
    (edge, rx, server)
}

/// Serves the origin's own router in-process; returns its URL and an admin token.
async fn admin_api(pool: &PgPool, environment: &str, flags: usize) -> (String, String) {
    let jwt_secret = "bench-jwt-secret-bench-jwt-secret-0123";
    let state = AppState::new(
        pool.clone(),
        Settings {
            jwt_secret: jwt_secret.to_owned(),
            admin_rate_per_second: 0.0,
            admin_rate_burst: 1,
            max_body_bytes: 1024 * 1024,
            require_client_keys: false,
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = TokenKeys::new(jwt_secret.as_bytes())
        .issue("bench", Role::Admin, None, now, 3600)
        .unwrap();
    let client = reqwest::Client::new();
    let post = |path: String, body: serde_json::Value| {
        let request = client
            .post(format!("{origin}{path}"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.to_string());
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            assert!(
                status.is_success(),
                "{status}: {}",
                response.text().await.unwrap()
            );
        }
    };
    post(
        "/admin/environments".to_owned(),
        serde_json::json!({ "key": environment, "name": environment }),
    )
    .await;
    for i in 0..flags {
        post(
            format!("/admin/flags?environment={environment}"),
            serde_json::json!({
                "flagKey": format!("flag-{i:04}"),
                "enabled": i % 2 == 0,
                "defaultValue": false,
                "targetingRules": {"percentage": 25.5, "userIds": ["u-1", "u-2"]}
            }),
        )
        .await;
    }
    (origin, token)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let iterations = env_number("PUBLISH_BENCH_ITERATIONS", 200);
        let flags = env_number("PUBLISH_BENCH_FLAGS", 1000);
        let pool = fresh_database().await;
        // The production default poll (5 s) stays: delivery must come from NOTIFY.
        let settings = PublisherSettings::default();

        // Seeded before the publisher starts, so seeding is not measured.
        let seeding = Instant::now();
        let (origin, token) = admin_api(&pool, "bench-admin", flags).await;
        println!(
            "seeded {flags} flags through the admin API in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        create_environment(&pool, "bench-edge").await;

        let (edge, mut arrivals, server) = recording_edge().await;
        let publisher = Publisher::start(
            &pool,
            vec![Arc::new(edge)],
            settings.clone(),
            PublishMetrics::unregistered().unwrap(),
        );
        // Let the publisher catch up with the seeding before measuring.
        tokio::time::sleep(Duration::from_secs(1)).await;
        while arrivals.try_recv().is_ok() {}

        let mut row = Change::Row {
            pool: pool.clone(),
            environment: "bench-edge".to_owned(),
        };
        let body = publish_support::snapshot_body("bench-edge", 1, flags);
        println!(
            "snapshot body with {flags} flags: {} KiB",
            body.len() / 1024
        );
        measure(
            "edge, committed row",
            &mut row,
            flags,
            iterations,
            &mut arrivals,
        )
        .await;
        let mut admin = Change::Admin {
            client: reqwest::Client::new(),
            origin,
            token,
            environment: "bench-admin".to_owned(),
            enabled: true,
        };
        measure(
            "edge, admin PUT",
            &mut admin,
            flags,
            iterations,
            &mut arrivals,
        )
        .await;
        publisher.abort();
        server.abort();

        if std::env::var("PUBLISH_BENCH_S3").is_ok_and(|v| v == "1") {
            let s3_server = S3Server::start().await;
            let s3 = S3Sink::new(&S3SinkConfig {
                endpoint: Some(s3_server.endpoint.clone()),
                bucket: "bench".to_owned(),
                region: "us-east-1".to_owned(),
                access_key_id: "k".to_owned(),
                secret_access_key: "s".to_owned(),
                timeout: Duration::from_secs(10),
            });
            s3.client()
                .create_bucket()
                .bucket("bench")
                .send()
                .await
                .unwrap();
            let (tx, mut arrivals) = mpsc::unbounded_channel();
            let timed = Timed {
                inner: Arc::new(s3),
                arrivals: tx,
            };
            create_environment(&pool, "bench-s3").await;
            // Only the new environment: the archive would otherwise start with the backlog.
            sqlx::query(
                "insert into publish_cursor (sink, environment_key, delivered_version)
                 select 's3', environment_key, max(version) from snapshot group by environment_key",
            )
            .execute(&pool)
            .await
            .unwrap();
            let publisher = Publisher::start(
                &pool,
                vec![Arc::new(timed)],
                settings,
                PublishMetrics::unregistered().unwrap(),
            );
            let mut row = Change::Row {
                pool: pool.clone(),
                environment: "bench-s3".to_owned(),
            };
            let s3_iterations = iterations.min(100);
            measure(
                "s3 (moto), committed row",
                &mut row,
                flags,
                s3_iterations,
                &mut arrivals,
            )
            .await;
            publisher.abort();
        }
        pool.close().await;
        drop_database().await;
    });
}
