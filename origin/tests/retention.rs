//! Outbox retention (origin/src/outbox/retention.rs): snapshot rows every sink has passed are
//! pruned beyond the retention, so the table stays bounded; a version some sink has not
//! delivered, and every environment's newest version, are never pruned.

mod common;
mod publish_support;

use std::time::Duration;

use axum::http::StatusCode;
use origin::outbox::{self, Retention};
use origin::publish::{DeliveryMode, SnapshotSink};
use publish_support::*;
use serde_json::json;
use sqlx::PgPool;

/// Keep the newest `n` versions, whatever their age.
fn keep(n: u64) -> Retention {
    Retention {
        keep_versions: n,
        keep_for: Duration::ZERO,
    }
}

fn names(sinks: &[&str]) -> Vec<String> {
    sinks.iter().map(|s| (*s).to_owned()).collect()
}

/// Versions of `environment` in the outbox.
async fn versions(pool: &PgPool, environment: &str) -> Vec<u64> {
    snapshot_rows(pool, environment)
        .await
        .into_iter()
        .map(|(v, _)| v)
        .collect()
}

/// Puts `sink`'s cursor of `environment` at `delivered`, as a publisher that delivered it would.
async fn set_cursor(pool: &PgPool, sink: &str, environment: &str, delivered: i64) {
    sqlx::query(
        "insert into publish_cursor (sink, environment_key, delivered_version) values ($1, $2, $3)
         on conflict (sink, environment_key) do update set delivered_version = $3",
    )
    .bind(sink)
    .bind(environment)
    .bind(delivered)
    .execute(pool)
    .await
    .unwrap();
}

/// `environment` with snapshots 1..=`count`.
async fn environment_with_versions(pool: &PgPool, environment: &str, count: usize) {
    create_environment(pool, environment).await;
    commit_snapshots(pool, environment, count, 1).await;
}

#[sqlx::test(migrations = "../migrations")]
async fn the_outbox_stays_bounded_under_a_stream_of_changes_and_the_archive_gets_every_version(
    pool: PgPool,
) {
    create_environment(&pool, "production").await;
    let edge = RecordingSink::with("edge", DeliveryMode::LatestOnly, Duration::ZERO);
    let archive = RecordingSink::new("archive");
    let sinks: Vec<std::sync::Arc<dyn SnapshotSink>> = vec![edge.clone(), archive.clone()];
    let publisher = Publisher::start(&pool, sinks, fast_settings(), metrics());
    publisher.listening().await;
    let pruner = outbox::spawn_pruner(
        pool.clone(),
        keep(5),
        names(&["edge", "archive"]),
        Duration::from_millis(50),
        publisher.shutdown.clone(),
    );

    for batch in 1..=6u64 {
        commit_snapshots(&pool, "production", 10, 1).await;
        let newest = batch * 10;
        wait_delivered(&pool, "archive", "production", newest).await;
        wait_delivered(&pool, "edge", "production", newest).await;
        wait_for(
            Duration::from_secs(30),
            "the pruner to catch up",
            || async { versions(&pool, "production").await.len() <= 5 },
        )
        .await;
        let rows = versions(&pool, "production").await;
        assert_eq!(rows, ((newest - 4)..=newest).collect::<Vec<_>>());
    }
    // the archive still received every version, in order, pruning notwithstanding
    assert_eq!(archive.versions("production"), (1..=60).collect::<Vec<_>>());
    assert_eq!(edge.versions("production").last(), Some(&60));

    publisher.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), pruner)
        .await
        .expect("the pruner stops on shutdown")
        .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn a_version_a_sink_has_not_delivered_is_never_pruned(pool: PgPool) {
    environment_with_versions(&pool, "production", 20).await;
    set_cursor(&pool, "edge", "production", 20).await;
    set_cursor(&pool, "archive", "production", 7).await;
    let sinks = names(&["edge", "archive"]);

    let pruned = outbox::prune(&pool, keep(1), &sinks).await.unwrap();
    assert_eq!(pruned, 7);
    assert_eq!(
        versions(&pool, "production").await,
        (8..=20).collect::<Vec<_>>()
    );
    // nothing more until the archive moves on
    assert_eq!(outbox::prune(&pool, keep(1), &sinks).await.unwrap(), 0);
    set_cursor(&pool, "archive", "production", 12).await;
    assert_eq!(outbox::prune(&pool, keep(1), &sinks).await.unwrap(), 5);
    assert_eq!(
        versions(&pool, "production").await,
        (13..=20).collect::<Vec<_>>()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_sink_without_a_cursor_holds_back_every_version(pool: PgPool) {
    environment_with_versions(&pool, "production", 10).await;
    environment_with_versions(&pool, "staging", 10).await;
    set_cursor(&pool, "edge", "production", 10).await;
    set_cursor(&pool, "edge", "staging", 10).await;

    // a sink this replica publishes to that has not created its cursor yet
    let pruned = outbox::prune(&pool, keep(1), &names(&["edge", "archive"]))
        .await
        .unwrap();
    assert_eq!(pruned, 0);

    // a sink another replica publishes to: it has a cursor of staging only
    set_cursor(&pool, "archive", "staging", 10).await;
    let pruned = outbox::prune(&pool, keep(1), &names(&["edge"]))
        .await
        .unwrap();
    assert_eq!(pruned, 9, "staging's versions 1-9 only");
    assert_eq!(versions(&pool, "staging").await, [10]);
    assert_eq!(versions(&pool, "production").await.len(), 10);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_newest_version_and_the_retention_window_are_kept(pool: PgPool) {
    environment_with_versions(&pool, "production", 10).await;
    set_cursor(&pool, "edge", "production", 10).await;
    let edge = names(&["edge"]);

    // everything younger than an hour stays, however many versions
    let young = Retention {
        keep_versions: 1,
        keep_for: Duration::from_secs(3600),
    };
    assert_eq!(outbox::prune(&pool, young, &edge).await.unwrap(), 0);
    // the newest three stay
    assert_eq!(outbox::prune(&pool, keep(3), &edge).await.unwrap(), 7);
    assert_eq!(versions(&pool, "production").await, [8, 9, 10]);
    // the newest always stays, even with no sink at all
    assert_eq!(outbox::prune(&pool, keep(1), &[]).await.unwrap(), 2);
    assert_eq!(versions(&pool, "production").await, [10]);
    assert_eq!(outbox::prune(&pool, keep(1), &[]).await.unwrap(), 0);
    assert_eq!(
        outbox::latest(&pool, "production")
            .await
            .unwrap()
            .unwrap()
            .0,
        10
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_held_archive_delivery_keeps_its_version_until_it_is_acknowledged(pool: PgPool) {
    create_environment(&pool, "production").await;
    let archive = RecordingSink::new("archive");
    let hold = archive.hold_at(3);
    let sinks: Vec<std::sync::Arc<dyn SnapshotSink>> = vec![archive.clone()];
    let publisher = Publisher::start(&pool, sinks, fast_settings(), metrics());
    publisher.listening().await;
    commit_snapshots(&pool, "production", 10, 1).await;
    hold.reached().await;

    // the archive has stored version 3 but not acknowledged it: 1 and 2 may go, 3 may not
    let archive_name = names(&["archive"]);
    let pruned = outbox::prune(&pool, keep(1), &archive_name).await.unwrap();
    assert_eq!(pruned, 2);
    assert_eq!(
        versions(&pool, "production").await,
        (3..=10).collect::<Vec<_>>()
    );

    hold.release();
    wait_delivered(&pool, "archive", "production", 10).await;
    assert_eq!(archive.versions("production"), (1..=10).collect::<Vec<_>>());
    assert_eq!(
        outbox::prune(&pool, keep(1), &archive_name).await.unwrap(),
        7
    );
    assert_eq!(versions(&pool, "production").await, [10]);
    publisher.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn rollback_and_the_evaluation_cache_need_no_old_snapshot(pool: PgPool) {
    let app = common::with_checkout_flag(pool.clone()).await;
    let flag = "/admin/flags/new-checkout-flow?environment=production";
    for percentage in [5, 10, 15] {
        app.put(flag, json!({"targetingRules": {"percentage": percentage}}))
            .await
            .assert_status(StatusCode::OK);
    }
    let (newest, _) = common::latest_snapshot(&pool, "production").await;
    assert_eq!(
        outbox::prune(&pool, keep(1), &[]).await.unwrap(),
        newest - 1
    );
    assert_eq!(versions(&pool, "production").await, [newest]);

    // rollback restores from the flag's own history
    let rolled_back = app
        .post(
            "/admin/flags/new-checkout-flow/rollback",
            json!({"environment": "production", "version": 1}),
        )
        .await;
    rolled_back.assert_status(StatusCode::OK);
    assert_eq!(rolled_back.body["targetingRules"]["percentage"], 25.0);

    // a replica starting now loads the newest snapshot, which is still there
    let fresh = common::TestApp::new(pool.clone());
    fresh.state.live.load(&pool).await.unwrap();
    let (newest, _) = common::latest_snapshot(&pool, "production").await;
    assert_eq!(fresh.state.live.version("production"), Some(newest));
}
