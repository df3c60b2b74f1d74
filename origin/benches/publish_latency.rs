//! Publish latency: time from a committed snapshot row (committed exactly like an admin mutation:
//! environment row lock, version bump, snapshot insert, `pg_notify`) to its delivery at a sink,
//! with 1,000 flags in the environment. Reports p50/p95/p99/max over a bounded number of
//! iterations, one change at a time (each waits for the previous delivery).
//!
//! - edge: the real `EdgeSink` (HMAC-signed HTTP PUT) to a recording axum server on 127.0.0.1;
//!   the time is taken when the server has read and verified the request.
//! - s3 (with `PUBLISH_BENCH_S3=1`): the real `S3Sink` to a local moto server; the time is taken
//!   when both PUTs (version + latest) are acknowledged.
//!
//! Run: `cargo bench -p origin --bench publish_latency` (PostgreSQL on 127.0.0.1:5432; creates and
//! drops the database `edgeflags_publish_bench`). Knobs: `PUBLISH_BENCH_ITERATIONS` (default 200),
//! `PUBLISH_BENCH_FLAGS` (default 1000), `PUBLISH_BENCH_S3=1`.

#[path = "../tests/publish_support/mod.rs"]
mod publish_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use axum::Router;
use origin::publish::{
    spawn_with_sinks, Delivery, DeliveryMode, EdgeSink, PublishMetrics, PublisherSettings, S3Sink,
    S3SinkConfig, Signer, SinkError, SnapshotSink, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use publish_support::{commit_snapshot, create_environment, S3Server};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};
use tokio::sync::mpsc;

const SECRET: &str = "bench-secret";
const DATABASE: &str = "edgeflags_publish_bench";

type Arrivals = mpsc::UnboundedSender<(u64, Instant)>;

struct Recorder {
    signer: Signer,
    arrivals: Arrivals,
    stored: Mutex<u64>,
}

/// The recording edge: verifies the signature, parses the version, records the arrival time.
async fn receive(
    State(recorder): State<Arc<Recorder>>,
    Path(_environment): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = match (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER)) {
        (Some(ts), Some(sig)) => ts
            .parse()
            .is_ok_and(|ts| recorder.signer.verify(ts, body.as_bytes(), sig)),
        _ => false,
    };
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
    if version < *stored {
        return StatusCode::CONFLICT;
    }
    *stored = version;
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
    async fn deliver(
        &self,
        environment: &str,
        version: u64,
        body: &str,
    ) -> Result<Delivery, SinkError> {
        let delivery = self.inner.deliver(environment, version, body).await?;
        let _ = self.arrivals.send((version, Instant::now()));
        Ok(delivery)
    }
}

async fn fresh_database() -> PgPool {
    let base: PgConnectOptions = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
        .parse()
        .unwrap();
    let mut admin = base.clone().database("postgres").connect().await.unwrap();
    admin
        .execute(format!("drop database if exists {DATABASE} with (force)").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("create database {DATABASE}").as_str())
        .await
        .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect_with(base.database(DATABASE))
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
        .execute(format!("drop database if exists {DATABASE} with (force)").as_str())
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

/// Commits `iterations` snapshots one at a time and measures commit-to-delivery latency.
async fn measure(
    label: &str,
    pool: &PgPool,
    environment: &str,
    flags: usize,
    iterations: usize,
    arrivals: &mut mpsc::UnboundedReceiver<(u64, Instant)>,
) {
    let warmup = 5;
    let mut latencies = Vec::with_capacity(iterations);
    let mut commits = Vec::with_capacity(iterations);
    let mut body_bytes = 0;
    for i in 0..warmup + iterations {
        let started = Instant::now();
        let (version, body) = commit_snapshot(pool, environment, flags).await;
        let committed = Instant::now();
        body_bytes = body.len();
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
            latencies.push(arrived.saturating_duration_since(committed));
            commits.push(committed - started);
        }
    }
    latencies.sort();
    commits.sort();
    println!(
        "{label}: {iterations} changes, {flags} flags, body {} KiB: commit->delivery p50 {} p95 {} p99 {} max {} (commit itself p50 {})",
        body_bytes / 1024,
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 95.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().unwrap()),
        ms(percentile(&commits, 50.0)),
    );
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

        // edge
        let (tx, mut rx) = mpsc::unbounded_channel();
        let recorder = Arc::new(Recorder {
            signer: Signer::new(SECRET.as_bytes()).unwrap(),
            arrivals: tx,
            stored: Mutex::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/internal/snapshots/{environment}", put(receive))
            .with_state(recorder);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let edge = EdgeSink::new(url.parse().unwrap(), SECRET, Duration::from_secs(10)).unwrap();
        create_environment(&pool, "bench-edge").await;
        let publisher = spawn_with_sinks(
            pool.clone(),
            vec![Arc::new(edge)],
            settings.clone(),
            PublishMetrics::unregistered().unwrap(),
            std::future::pending(),
        )
        .unwrap();
        measure("edge", &pool, "bench-edge", flags, iterations, &mut rx).await;
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
            let (tx, mut rx) = mpsc::unbounded_channel();
            let timed = Timed {
                inner: Arc::new(s3),
                arrivals: tx,
            };
            create_environment(&pool, "bench-s3").await;
            let publisher = spawn_with_sinks(
                pool.clone(),
                vec![Arc::new(timed)],
                settings,
                PublishMetrics::unregistered().unwrap(),
                std::future::pending(),
            )
            .unwrap();
            let s3_iterations = iterations.min(100);
            measure(
                "s3 (moto)",
                &pool,
                "bench-s3",
                flags,
                s3_iterations,
                &mut rx,
            )
            .await;
            publisher.abort();
        }
        pool.close().await;
        drop_database().await;
    });
}
