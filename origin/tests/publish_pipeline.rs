//! The publisher's cursor semantics against a real PostgreSQL, through `spawn_with_sinks` (fed by
//! the replica's outbox listener, as in `main`) with an in-process recording sink: order, no gaps,
//! no loss while a sink is down, crash/restart, several replicas, rejections, NOTIFY wake-up,
//! graceful shutdown, metrics. Crashes and shutdowns happen while the sink holds a chosen version
//! (`RecordingSink::hold_at`), not after a guessed amount of time.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p origin --test publish_pipeline`

mod publish_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use origin::outbox;
use origin::publish::{spawn_with_sinks, DeliveryMode, PublishMetrics, SnapshotSink};
use publish_support::*;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

fn sinks(sink: &Arc<RecordingSink>) -> Vec<Arc<dyn SnapshotSink>> {
    vec![Arc::clone(sink) as Arc<dyn SnapshotSink>]
}

/// Versions of one environment collapsed over immediate repeats (a redelivery after a crash).
fn without_repeats(versions: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for &v in versions {
        if out.last() != Some(&v) {
            out.push(v);
        }
    }
    out
}

#[sqlx::test(migrations = "../migrations")]
async fn every_committed_version_is_delivered_once_in_order(pool: PgPool) {
    create_environment(&pool, "production").await;
    let mut committed = commit_snapshots(&pool, "production", 15, 3).await;
    let sink = RecordingSink::new("archive");
    let publisher = Publisher::start(&pool, sinks(&sink), fast_settings(), metrics());

    wait_delivered(&pool, "archive", "production", 15).await;
    // Commits made while the publisher runs arrive too.
    committed.extend(commit_snapshots(&pool, "production", 5, 3).await);
    wait_delivered(&pool, "archive", "production", 20).await;
    publisher.stop().await;

    let accepted = sink.accepted();
    let expected: Vec<(String, u64, String)> = committed
        .into_iter()
        .map(|(v, b)| ("production".to_owned(), v, b))
        .collect();
    assert_eq!(accepted, expected);
}

#[sqlx::test(migrations = "../migrations")]
async fn versions_committed_while_the_sink_is_down_all_arrive_in_order_once_it_recovers(
    pool: PgPool,
) {
    create_environment(&pool, "production").await;
    let sink = RecordingSink::new("archive");
    sink.set(Behaviour::Unavailable);
    let publisher = Publisher::start(&pool, sinks(&sink), fast_settings(), metrics());
    commit_snapshots(&pool, "production", 12, 2).await;
    let down = wait_failed(&pool, "archive", "production", 3).await;
    down.assert_stuck(0, &["503"]);
    assert!(sink.accepted().is_empty());

    sink.set(Behaviour::Accept);
    wait_delivered(&pool, "archive", "production", 12).await;
    publisher.abort();

    assert_eq!(sink.versions("production"), (1..=12).collect::<Vec<_>>());
    let recovered = cursor(&pool, "archive", "production").await.unwrap();
    assert_eq!(recovered.attempts, 0);
    assert_eq!(recovered.last_error, None);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_latest_only_sink_jumps_to_the_newest_version_after_an_outage(pool: PgPool) {
    create_environment(&pool, "production").await;
    let sink = RecordingSink::with("edge-like", DeliveryMode::LatestOnly, Duration::ZERO);
    sink.set(Behaviour::Unavailable);
    let publisher = Publisher::start(&pool, sinks(&sink), fast_settings(), metrics());
    commit_snapshots(&pool, "production", 8, 1).await;
    wait_failed(&pool, "edge-like", "production", 1).await;
    sink.set(Behaviour::Accept);
    wait_delivered(&pool, "edge-like", "production", 8).await;
    publisher.abort();
    let rows = snapshot_rows(&pool, "production").await;
    assert_eq!(
        sink.accepted(),
        vec![("production".to_owned(), 8, rows[7].1.clone())]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_publisher_killed_mid_way_and_restarted_delivers_the_rest_without_gaps(pool: PgPool) {
    create_environment(&pool, "production").await;
    commit_snapshots(&pool, "production", 30, 2).await;
    // The sink stores version 9 and then does not answer: the kill lands in the middle of the
    // backlog, between the sink's acknowledgement of 9 and the commit of the cursor.
    let sink = RecordingSink::new("archive");
    let held = sink.hold_at(9);
    let settings = fast_settings();
    let first = Publisher::start(&pool, sinks(&sink), settings.clone(), metrics());
    held.reached().await;
    first.kill().await;
    let at_kill = sink.versions("production");
    assert_eq!(at_kill, (1..=9).collect::<Vec<_>>());
    assert!(
        at_kill.len() < 30,
        "the kill came too late to test anything"
    );
    // The cursor never claims more than the sink acknowledged, and 9 was never committed.
    let committed = cursor(&pool, "archive", "production").await.unwrap();
    assert!(committed.delivered_version <= i64::try_from(*at_kill.last().unwrap()).unwrap());
    assert_eq!(committed.delivered_version, 8);

    let second = Publisher::start(&pool, sinks(&sink), settings, metrics());
    wait_delivered(&pool, "archive", "production", 30).await;
    second.abort();

    let versions = sink.versions("production");
    assert_eq!(without_repeats(&versions), (1..=30).collect::<Vec<_>>());
    // At most the version in flight at the kill is delivered twice (acknowledged, not committed).
    assert!(
        versions.len() <= 31,
        "more than one redelivery: {versions:?}"
    );
    // ... and that one is: the restart resumes at the cursor, not after the sink's last answer.
    assert_eq!(versions.iter().filter(|&&v| v == 9).count(), 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_replica_that_takes_over_a_crashed_replicas_cursor_resumes_where_it_was_committed(
    pool: PgPool,
) {
    create_environment(&pool, "production").await;
    commit_snapshots(&pool, "production", 5, 1).await;
    // Replica A's sink holds version 3; replica B runs meanwhile, but A holds the cursor's lock.
    let sink = RecordingSink::new("archive");
    let held = sink.hold_at(3);
    let a = Publisher::start(&pool, sinks(&sink), fast_settings(), metrics());
    held.reached().await;
    let other_pool = replica_pool(&pool).await;
    let b = Publisher::start(&other_pool, sinks(&sink), fast_settings(), metrics());
    b.listening().await;
    // B's drainers poll every 200 ms: several claims skip the locked cursor while A holds it.
    let skipped_claims = sink.attempts();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.attempts(),
        skipped_claims,
        "B delivered a locked cursor"
    );
    assert_eq!(sink.versions("production"), vec![1, 2, 3]);

    a.kill().await;
    wait_delivered(&pool, "archive", "production", 5).await;
    b.abort();
    assert_eq!(sink.versions("production"), vec![1, 2, 3, 3, 4, 5]);
}

#[sqlx::test(migrations = "../migrations")]
async fn two_replicas_deliver_each_version_exactly_once_per_sink(pool: PgPool) {
    let environments = ["production", "staging", "development", "qa"];
    for env in environments {
        create_environment(&pool, env).await;
    }
    // One external sink seen by both replicas; a little delay widens the race window.
    let sink = RecordingSink::with(
        "archive",
        DeliveryMode::EveryVersion,
        Duration::from_millis(2),
    );
    let replica_a = Publisher::start(&pool, sinks(&sink), fast_settings(), metrics());
    let other_pool = replica_pool(&pool).await;
    let replica_b = Publisher::start(&other_pool, sinks(&sink), fast_settings(), metrics());

    // Commit concurrently with the deliveries, from both "replicas".
    let mut writers = Vec::new();
    for (i, env) in environments.into_iter().enumerate() {
        let writer_pool = if i % 2 == 0 {
            pool.clone()
        } else {
            other_pool.clone()
        };
        writers.push(tokio::spawn(async move {
            for _ in 0..25 {
                commit_snapshot(&writer_pool, env, 1).await;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    for env in environments {
        wait_delivered(&pool, "archive", env, 25).await;
    }
    replica_a.abort();
    replica_b.abort();

    let mut per_environment: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (env, version, _) in sink.accepted() {
        per_environment.entry(env).or_default().push(version);
    }
    for env in environments {
        assert_eq!(
            per_environment.get(env).cloned().unwrap_or_default(),
            (1..=25).collect::<Vec<_>>(),
            "{env}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rejected_snapshot_is_kept_and_retried_slowly_until_the_sink_accepts_it(pool: PgPool) {
    create_environment(&pool, "production").await;
    commit_snapshot(&pool, "production", 1).await;
    let sink = RecordingSink::new("archive");
    sink.set(Behaviour::Reject);
    let mut settings = fast_settings();
    settings.rejected_backoff = Duration::from_secs(60);
    let publisher = Publisher::start(&pool, sinks(&sink), settings, metrics());
    let rejected = wait_failed(&pool, "archive", "production", 1).await;
    assert_eq!(rejected.attempts, 1, "{rejected:?}");
    rejected.assert_stuck(0, &["rejected", "400"]);
    // The long backoff (jittered into 30..60 s), not the 20 ms one.
    assert!(rejected.retry_in_seconds > 25.0, "{rejected:?}");
    assert_eq!(sink.attempts(), 1);

    // An operator fixes the sink and the retry time comes (simulated by moving the deadline).
    sink.set(Behaviour::Accept);
    sqlx::query("update publish_cursor set next_attempt_at = now() where sink = 'archive'")
        .execute(&pool)
        .await
        .unwrap();
    wait_delivered(&pool, "archive", "production", 1).await;
    publisher.abort();
    assert_eq!(sink.versions("production"), vec![1]);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_notification_wakes_the_publisher_without_waiting_for_the_poll(pool: PgPool) {
    create_environment(&pool, "production").await;
    let sink = RecordingSink::new("archive");
    let mut settings = fast_settings();
    settings.poll_interval = Duration::from_secs(3600);
    let publisher = Publisher::start(&pool, sinks(&sink), settings, metrics());
    // Let the first poll (at start-up) pass, so only NOTIFY can announce the next commits.
    publisher.listening().await;
    wait_for(Duration::from_secs(10), "the listener", || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_stat_activity
             where datname = current_database() and query ilike 'listen%edgeflags_snapshot%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
            > 0
    })
    .await;
    // A brand-new environment too: its cursor is created from the notification's payload.
    create_environment(&pool, "staging").await;
    commit_snapshot(&pool, "production", 1).await;
    commit_snapshot(&pool, "staging", 1).await;
    wait_delivered(&pool, "archive", "production", 1).await;
    wait_delivered(&pool, "archive", "staging", 1).await;
    publisher.abort();
}

#[sqlx::test(migrations = "../migrations")]
async fn shutdown_lets_the_delivery_in_hand_finish_and_commit(pool: PgPool) {
    create_environment(&pool, "production").await;
    commit_snapshots(&pool, "production", 3, 1).await;
    let sink = RecordingSink::new("archive");
    let held = sink.hold_at(1);
    let publisher = Publisher::start(&pool, sinks(&sink), fast_settings(), metrics());
    held.reached().await;
    // Shutdown is requested while version 1 is in the sink's hands; then the sink answers.
    publisher.shutdown.cancel();
    held.release();
    publisher.stop().await;

    let delivered = sink.versions("production");
    assert_eq!(
        delivered,
        vec![1],
        "one delivery in hand, none started after"
    );
    let row = cursor(&pool, "archive", "production").await.unwrap();
    assert_eq!(
        row.delivered_version, 1,
        "the delivery in hand was committed"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_report_depth_lag_and_errors_per_sink(pool: PgPool) {
    create_environment(&pool, "production").await;
    let sink = RecordingSink::new("archive");
    sink.set(Behaviour::Unavailable);
    let metrics = PublishMetrics::unregistered().unwrap();
    let publisher = Publisher::start(&pool, sinks(&sink), fast_settings(), metrics.clone());
    commit_snapshots(&pool, "production", 4, 1).await;
    let depth = metrics.outbox_depth.with_label_values(&["archive"]);
    wait_for(Duration::from_secs(10), "outbox depth 4", || {
        let value = depth.get();
        async move { value == 4 }
    })
    .await;
    let errors = metrics
        .delivery_errors
        .with_label_values(&["archive", "unavailable"]);
    assert!(errors.get() >= 1);

    sink.set(Behaviour::Accept);
    wait_delivered(&pool, "archive", "production", 4).await;
    wait_for(Duration::from_secs(10), "outbox depth 0", || {
        let value = depth.get();
        async move { value == 0 }
    })
    .await;
    publisher.abort();
    let lag = metrics.lag_seconds.with_label_values(&["archive"]);
    assert_eq!(lag.get_sample_count(), 4);
    assert!(lag.get_sample_sum() > 0.0);
    let stored = metrics.deliveries.with_label_values(&["archive", "stored"]);
    assert_eq!(stored.get(), 4);
}

#[test]
fn sinks_with_the_same_name_are_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // A lazy pool: never connected, the check happens before anything runs.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://postgres@127.0.0.1:5432/postgres")
            .unwrap();
        let a = RecordingSink::new("archive");
        let b = RecordingSink::new("archive");
        // Shut down before it starts: the listener never connects either.
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let (_listener, announcements) =
            outbox::spawn_listener(pool.clone(), Duration::from_secs(1), shutdown.clone());
        let result = spawn_with_sinks(
            pool,
            vec![a as Arc<dyn SnapshotSink>, b as Arc<dyn SnapshotSink>],
            fast_settings(),
            metrics(),
            announcements,
            shutdown,
        );
        assert!(result.is_err());
    });
}
