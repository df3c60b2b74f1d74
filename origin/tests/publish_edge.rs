//! The edge sink against a recording edge: a small axum server on 127.0.0.1 that implements the
//! publish protocol's endpoint (signature check, 401/400/409/200 answers) independently of the
//! `publish_protocol` crate both real ends use (`docs/architecture.md`, "Publish protocol").
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p origin --test publish_edge`

mod publish_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use origin::publish::{EdgeSink, PublishConfig, PublishMetrics, SnapshotSink};
use publish_protocol::Secret;
use publish_support::*;
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// At least 32 bytes: both ends refuse shorter publish secrets.
const SECRET: &str = "test-publish-secret-of-32-bytes!";

/// What the recording edge stored, and every request it saw.
#[derive(Default)]
struct EdgeState {
    stored: Mutex<HashMap<String, u64>>,
    /// Bodies it stored, in arrival order.
    accepted: Mutex<Vec<(String, u64, String)>>,
    /// Status of every answer, in order.
    answers: Mutex<Vec<u16>>,
}

/// The protocol's verification: `v1=` + lowercase hex HMAC-SHA256(secret, "<ts>.<body>"), with
/// the timestamp at most 300 s away.
fn signature_ok(headers: &HeaderMap, body: &str) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(ts), Some(sig)) = (
        header("x-edgeflags-timestamp"),
        header("x-edgeflags-signature"),
    ) else {
        return false;
    };
    let Ok(ts_value) = ts.parse::<i64>() else {
        return false;
    };
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    if (now - ts_value).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    sig == format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn publish(
    State(state): State<Arc<EdgeState>>,
    Path(environment): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    let (status, answer) = answer(&state, &environment, &headers, body);
    state.answers.lock().unwrap().push(status.as_u16());
    (status, Json(answer))
}

fn answer(
    state: &EdgeState,
    environment: &str,
    headers: &HeaderMap,
    body: String,
) -> (StatusCode, Value) {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if content_type != Some("application/json") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"code": "UNSUPPORTED_MEDIA_TYPE"}),
        );
    }
    if !signature_ok(headers, &body) {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"code": "INVALID_SIGNATURE", "message": "bad signature"}),
        );
    }
    // The parts of evaluator-core's Snapshot this recorder checks.
    let parsed: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                json!({"code": "INVALID_SNAPSHOT", "message": e.to_string(), "errors": []}),
            )
        }
    };
    let (Some(body_environment), Some(version)) =
        (parsed["environment"].as_str(), parsed["version"].as_u64())
    else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"code": "INVALID_SNAPSHOT", "message": "environment/version", "errors": []}),
        );
    };
    if body_environment != environment {
        return (
            StatusCode::BAD_REQUEST,
            json!({"code": "ENVIRONMENT_MISMATCH"}),
        );
    }
    let mut stored = state.stored.lock().unwrap();
    let current = stored.get(environment).copied().unwrap_or(0);
    if version < current {
        return (
            StatusCode::CONFLICT,
            json!({"code": "STALE_VERSION", "message": "older", "storedVersion": current}),
        );
    }
    if version == current {
        return (
            StatusCode::OK,
            json!({"environment": environment, "version": current, "stored": false}),
        );
    }
    stored.insert(environment.to_owned(), version);
    state
        .accepted
        .lock()
        .unwrap()
        .push((environment.to_owned(), version, body));
    (
        StatusCode::OK,
        json!({"environment": environment, "version": version, "stored": true}),
    )
}

/// A running recording edge; aborting it drops the listener and every open connection.
struct Edge {
    addr: SocketAddr,
    state: Arc<EdgeState>,
    task: JoinHandle<()>,
}

impl Edge {
    async fn start(addr: SocketAddr, state: Arc<EdgeState>) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/internal/snapshots/{environment}", put(publish))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state, task }
    }

    fn url(&self) -> reqwest::Url {
        format!("http://{}", self.addr).parse().unwrap()
    }

    fn versions(&self, environment: &str) -> Vec<u64> {
        self.state
            .accepted
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, _, _)| e == environment)
            .map(|(_, v, _)| *v)
            .collect()
    }

    async fn stop(self) -> (SocketAddr, Arc<EdgeState>) {
        self.task.abort();
        let _ = self.task.await;
        (self.addr, self.state)
    }
}

/// A publisher delivering to `edge` with the right secret, and the metrics it counts in.
fn publish_to(pool: &PgPool, edge: &Edge) -> (Publisher, PublishMetrics) {
    let metrics = PublishMetrics::unregistered().unwrap();
    let sinks = edge_sink(edge.url(), SECRET);
    let publisher = Publisher::start(pool, sinks, fast_settings(), metrics.clone());
    (publisher, metrics)
}

fn edge_sink(url: reqwest::Url, secret: &str) -> Vec<Arc<dyn SnapshotSink>> {
    let secret = Secret::new(secret.as_bytes()).unwrap();
    vec![Arc::new(
        EdgeSink::new(url, secret, Duration::from_secs(5)).unwrap(),
    )]
}

#[sqlx::test(migrations = "../migrations")]
async fn the_edge_gets_the_newest_snapshot_signed_as_the_protocol_says(pool: PgPool) {
    create_environment(&pool, "production").await;
    let committed = commit_snapshots(&pool, "production", 5, 5).await;
    let edge = Edge::start("127.0.0.1:0".parse().unwrap(), Arc::default()).await;
    // Through the command-line configuration, as `origin serve` starts it.
    let config = PublishConfig {
        edge_url: Some(edge.url()),
        edge_publish_secret: Some(SECRET.to_owned()),
        publish_poll_seconds: 1,
        ..PublishConfig::default()
    };
    let publisher = Publisher::from_config(&pool, &config, metrics());

    wait_delivered(&pool, "edge", "production", 5).await;
    // A backlog is skipped to its newest version: the edge keeps only the latest.
    assert_eq!(
        edge.state.accepted.lock().unwrap().clone(),
        vec![("production".to_owned(), 5, committed[4].1.clone())]
    );
    let (v6, body6) = commit_snapshot(&pool, "production", 5).await;
    wait_delivered(&pool, "edge", "production", v6).await;
    publisher.abort();

    assert_eq!(edge.versions("production"), vec![5, 6]);
    assert_eq!(edge.state.accepted.lock().unwrap()[1].2, body6);
    assert!(edge.state.answers.lock().unwrap().iter().all(|s| *s == 200));
}

#[sqlx::test(migrations = "../migrations")]
async fn versions_committed_while_the_edge_is_unreachable_are_delivered_when_it_returns(
    pool: PgPool,
) {
    create_environment(&pool, "production").await;
    let edge = Edge::start("127.0.0.1:0".parse().unwrap(), Arc::default()).await;
    let (publisher, _) = publish_to(&pool, &edge);
    commit_snapshot(&pool, "production", 2).await;
    wait_delivered(&pool, "edge", "production", 1).await;

    let (addr, state) = edge.stop().await;
    commit_snapshots(&pool, "production", 6, 2).await;
    let down = wait_failed(&pool, "edge", "production", 2).await;
    down.assert_stuck(1, &["unreachable"]);

    let edge = Edge::start(addr, state).await;
    wait_delivered(&pool, "edge", "production", 7).await;
    publisher.abort();
    let versions = edge.versions("production");
    assert_eq!(versions.first(), Some(&1));
    assert_eq!(
        versions.last(),
        Some(&7),
        "the edge ends at the newest version"
    );
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    let rows = snapshot_rows(&pool, "production").await;
    assert_eq!(
        edge.state.accepted.lock().unwrap().last().unwrap().2,
        rows[6].1
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_wrong_secret_gets_401_and_is_retried_slowly_never_dropped(pool: PgPool) {
    create_environment(&pool, "production").await;
    commit_snapshot(&pool, "production", 1).await;
    let edge = Edge::start("127.0.0.1:0".parse().unwrap(), Arc::default()).await;
    let mut settings = fast_settings();
    settings.rejected_backoff = Duration::from_secs(60);
    let misconfigured = Publisher::start(
        &pool,
        edge_sink(edge.url(), "not-the-secret-but-also-32-bytes"),
        settings,
        metrics(),
    );
    // rejected once, then held back for the 60 s backoff
    let refused = wait_failed(&pool, "edge", "production", 1).await;
    misconfigured.abort();
    assert_eq!(refused.attempts, 1, "{refused:?}");
    refused.assert_stuck(0, &["401", "INVALID_SIGNATURE"]);
    assert!(refused.retry_in_seconds > 25.0, "{refused:?}");
    assert_eq!(*edge.state.answers.lock().unwrap(), vec![401]);

    // The operator fixes the secret and restarts; the retry comes when the backoff is over
    // (simulated by moving the deadline).
    sqlx::query("update publish_cursor set next_attempt_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    let (fixed, _) = publish_to(&pool, &edge);
    wait_delivered(&pool, "edge", "production", 1).await;
    fixed.abort();
    assert_eq!(edge.versions("production"), vec![1]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_stale_version_answered_409_counts_as_delivered(pool: PgPool) {
    create_environment(&pool, "production").await;
    commit_snapshot(&pool, "production", 1).await;
    let state = Arc::new(EdgeState::default());
    // The edge already holds a newer version (e.g. published by a newer database restore).
    state.stored.lock().unwrap().insert("production".into(), 40);
    let edge = Edge::start("127.0.0.1:0".parse().unwrap(), state).await;
    let (publisher, metrics) = publish_to(&pool, &edge);
    wait_delivered(&pool, "edge", "production", 1).await;
    publisher.abort();
    let row = cursor(&pool, "edge", "production").await.unwrap();
    assert_eq!((row.attempts, row.last_error), (0, None));
    assert_eq!(*edge.state.answers.lock().unwrap(), vec![409]);
    assert_eq!(
        metrics
            .deliveries
            .with_label_values(&["edge", "superseded"])
            .get(),
        1
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_redelivery_after_a_lost_commit_is_absorbed_by_the_edge(pool: PgPool) {
    create_environment(&pool, "production").await;
    commit_snapshot(&pool, "production", 1).await;
    commit_snapshot(&pool, "production", 1).await;
    let edge = Edge::start("127.0.0.1:0".parse().unwrap(), Arc::default()).await;
    let (publisher, metrics) = publish_to(&pool, &edge);
    wait_delivered(&pool, "edge", "production", 2).await;
    // As if the process died after the edge's 200 but before the cursor commit.
    sqlx::query("update publish_cursor set delivered_version = 0")
        .execute(&pool)
        .await
        .unwrap();
    wait_delivered(&pool, "edge", "production", 2).await;
    let already = metrics
        .deliveries
        .with_label_values(&["edge", "already_stored"]);
    wait_for(Duration::from_secs(10), "the redelivery", || {
        let n = already.get();
        async move { n == 1 }
    })
    .await;
    publisher.abort();
    // Stored once; the second delivery was the idempotent `stored: false`.
    assert_eq!(edge.versions("production"), vec![2]);
    assert_eq!(*edge.state.answers.lock().unwrap(), vec![200, 200]);
}

#[test]
fn a_publish_secret_shorter_than_32_bytes_stops_the_publisher_at_start_up() {
    let config = PublishConfig {
        edge_url: Some("http://127.0.0.1:9".parse().unwrap()),
        edge_publish_secret: Some("test-publish-secret".to_owned()),
        ..PublishConfig::default()
    };
    // `origin serve` builds the sinks from its configuration before it starts anything.
    let err = config.sinks().err().expect("a short secret is refused");
    let message = err.to_string();
    assert!(
        message.contains("EDGEFLAGS_EDGE_PUBLISH_SECRET") && message.contains("is 19 bytes"),
        "{message}"
    );
    assert!(message.contains("at least 32 bytes"), "{message}");
}
