//! Faults of single versions at the edge (issue 11, "Faults: each an automated test"): the real
//! edge sink against a stand-in edge (`publish_support::RecordingEdge`), with the publisher's
//! metrics read from the origin's `/metrics`.
//!
//! - a version the edge refuses (400) shows in `/metrics` and does not hold back the next one,
//!   which is delivered at once, not after the refused version's (long) backoff;
//! - a version that failed temporarily does not hold back a newer one for its backoff either;
//! - an edge answer "I hold a newer version" (409) is reported as `superseded`, not counted as a
//!   stored delivery, and the edge keeps what it had.
//!
//! Already covered elsewhere: the backlog of an unreachable edge or S3 drains in order when they
//! return (`publish_edge.rs` `versions_committed_while_the_edge_is_unreachable_…`,
//! `publish_pipeline.rs` `versions_committed_while_the_sink_is_down_…`, `publish_s3.rs`
//! `versions_committed_while_the_bucket_is_missing_…`).
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p origin --test faults_publish_versions`

mod common;
mod publish_support;

use std::sync::Arc;
use std::time::Duration;

use common::TestApp;
use origin::publish::{EdgeSink, PublishMetrics, PublisherSettings, SnapshotSink};
use publish_protocol::Secret;
use publish_support::*;
use sqlx::PgPool;

/// Backoffs far longer than any wait of these tests: a delivery that waits for one fails them.
fn slow_retry_settings() -> PublisherSettings {
    PublisherSettings {
        max_backoff: Duration::from_secs(300),
        base_backoff: Duration::from_secs(300),
        rejected_backoff: Duration::from_secs(600),
        ..fast_settings()
    }
}

/// A publisher to `edge` whose metrics are registered in `app`'s registry (as `main` does).
fn publish_to(app: &TestApp, edge: &RecordingEdge, settings: PublisherSettings) -> Publisher {
    let metrics = PublishMetrics::register(&app.state.metrics.registry).unwrap();
    let secret = Secret::new(EDGE_SECRET.as_bytes()).unwrap();
    let sink = EdgeSink::new(edge.url(), secret, Duration::from_secs(5)).unwrap();
    let sinks: Vec<Arc<dyn SnapshotSink>> = vec![Arc::new(sink)];
    Publisher::start(&app.pool, sinks, settings, metrics)
}

/// The value of one sample line of `/metrics` (`0` when the series is absent).
async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.get("/metrics").await.text;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits at most 10 s for `series` to read `want`: the publisher counts a delivery just after it
/// commits the cursor, so a test that saw the cursor move must not stop the publisher (or read
/// the counter) before the count is in.
async fn metric_soon(app: &TestApp, series: &str, want: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(app, series).await != want {
        assert!(
            std::time::Instant::now() < deadline,
            "{series} never read {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits at most 10 s (far below the backoffs) for `sink` to reach `version`.
async fn delivered_soon(pool: &PgPool, environment: &str, version: u64) {
    let want = i64::try_from(version).unwrap();
    wait_for(
        Duration::from_secs(10),
        &format!("edge/{environment} at version {version}"),
        || async {
            cursor(pool, "edge", environment)
                .await
                .is_some_and(|c| c.delivered_version >= want)
        },
    )
    .await;
}

/// An app, its environment `production` and an edge set up by `setup` (versions it refuses,
/// what it holds already).
async fn app_and_edge(pool: &PgPool, setup: impl FnOnce(&EdgeRecord)) -> (TestApp, RecordingEdge) {
    let app = TestApp::new(pool.clone());
    create_environment(pool, "production").await;
    let state = Arc::new(EdgeRecord::default());
    setup(&state);
    let edge = RecordingEdge::start("127.0.0.1:0".parse().unwrap(), state).await;
    (app, edge)
}

const REJECTED: &str = r#"edgeflags_publish_delivery_errors_total{kind="rejected",sink="edge"}"#;
const STORED: &str = r#"edgeflags_publish_deliveries_total{outcome="stored",sink="edge"}"#;
const SUPERSEDED: &str = r#"edgeflags_publish_deliveries_total{outcome="superseded",sink="edge"}"#;

#[sqlx::test(migrations = "../migrations")]
async fn a_version_the_edge_refuses_shows_in_metrics_and_the_next_valid_one_is_delivered_at_once(
    pool: PgPool,
) {
    let (app, edge) = app_and_edge(&pool, |edge| edge.reject.lock().unwrap().push(1)).await;
    let publisher = publish_to(&app, &edge, slow_retry_settings());

    commit_snapshot(&pool, "production", 1).await;
    let refused = wait_failed(&pool, "edge", "production", 1).await;
    refused.assert_stuck(0, &["400", "INVALID_SNAPSHOT"]);
    assert!(refused.retry_in_seconds > 100.0, "{refused:?}");
    assert_eq!(metric(&app, REJECTED).await, 1.0);

    // Version 2 is valid: it goes out now, not after version 1's 300..600 s backoff.
    let (v2, body2) = commit_snapshot(&pool, "production", 2).await;
    delivered_soon(&pool, "production", v2).await;
    metric_soon(&app, STORED, 1.0).await;
    publisher.abort();
    assert_eq!(
        edge.state.accepted.lock().unwrap().clone(),
        vec![("production".to_owned(), v2, body2)]
    );
    assert_eq!(edge.answers(), vec![(1, 400), (2, 200)]);
    let row = cursor(&pool, "edge", "production").await.unwrap();
    assert_eq!((row.attempts, row.last_error), (0, None));
    assert_eq!(metric(&app, REJECTED).await, 1.0);
    assert_eq!(metric(&app, STORED).await, 1.0);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_newer_version_is_not_held_back_by_an_older_versions_temporary_failure_backoff(
    pool: PgPool,
) {
    let app = TestApp::new(pool.clone());
    create_environment(&pool, "production").await;
    // The edge is down for version 1 (nothing listens on its port) ...
    let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let down = RecordingEdge::start(addr, Arc::default()).await;
    let url = down.url();
    down.stop().await;
    let secret = Secret::new(EDGE_SECRET.as_bytes()).unwrap();
    let sink = EdgeSink::new(url, secret, Duration::from_secs(5)).unwrap();
    let metrics = PublishMetrics::register(&app.state.metrics.registry).unwrap();
    let publisher = Publisher::start(
        &pool,
        vec![Arc::new(sink) as Arc<dyn SnapshotSink>],
        slow_retry_settings(),
        metrics,
    );
    commit_snapshot(&pool, "production", 1).await;
    let failed = wait_failed(&pool, "edge", "production", 1).await;
    failed.assert_stuck(0, &["unreachable"]);
    assert!(failed.retry_in_seconds > 100.0, "{failed:?}");

    // ... and back when version 2 is committed: version 2 goes out at once.
    let edge = RecordingEdge::start(addr, Arc::default()).await;
    let (v2, _) = commit_snapshot(&pool, "production", 1).await;
    delivered_soon(&pool, "production", v2).await;
    publisher.abort();
    assert_eq!(edge.versions("production"), vec![v2]);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_edge_holding_a_newer_version_is_reported_superseded_not_counted_as_stored(
    pool: PgPool,
) {
    let (app, edge) = app_and_edge(&pool, |edge| {
        edge.stored.lock().unwrap().insert("production".into(), 40);
    })
    .await;
    let publisher = publish_to(&app, &edge, fast_settings());
    commit_snapshot(&pool, "production", 1).await;
    delivered_soon(&pool, "production", 1).await;
    metric_soon(&app, SUPERSEDED, 1.0).await;
    publisher.abort();

    assert_eq!(edge.answers(), vec![(1, 409)]);
    assert!(edge.state.accepted.lock().unwrap().is_empty());
    assert_eq!(edge.state.stored.lock().unwrap()["production"], 40);
    assert_eq!(metric(&app, SUPERSEDED).await, 1.0);
    assert_eq!(metric(&app, STORED).await, 0.0);
}
