//! Two origin replicas publishing at once (issue 11, "Faults"): two in-process origins on their
//! own connection pools to one database, each with its own outbox listener and publisher to the
//! same two sinks — an edge speaking the publish protocol (`publish_support::RecordingEdge`,
//! keeping the newest version as the worker does) and an every-version archive — while admin
//! writes go to both replicas concurrently, to the same environments.
//!
//! Checked at the end, per environment: the snapshot versions are gapless, one per acknowledged
//! write (plus the environment's creation); the archive received each version exactly once, in
//! order, byte for byte the database's body; the edge stored strictly increasing versions only
//! and holds the newest, byte for byte; the audit log has one row per acknowledged write.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p origin --test replicas`

mod common;
mod publish_support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::TestApp;
use origin::publish::{DeliveryMode, EdgeSink, SnapshotSink};
use publish_protocol::Secret;
use publish_support::*;
use serde_json::json;
use sqlx::PgPool;

const ENVIRONMENTS: [&str; 2] = ["production", "staging"];
/// Writers per replica and environment, and the writes each makes.
const WRITERS: usize = 2;
const WRITES: usize = 12;

#[sqlx::test(migrations = "../migrations")]
async fn two_replicas_publishing_at_once_lose_duplicate_and_reorder_nothing(pool: PgPool) {
    let edge = RecordingEdge::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(EdgeRecord::default()),
    )
    .await;
    // One external archive seen by both replicas; a little delay widens the race window.
    let archive = RecordingSink::with(
        "archive",
        DeliveryMode::EveryVersion,
        Duration::from_millis(2),
    );
    let sinks = || {
        let secret = Secret::new(EDGE_SECRET.as_bytes()).unwrap();
        let edge_sink = EdgeSink::new(edge.url(), secret, Duration::from_secs(5)).unwrap();
        vec![
            Arc::new(edge_sink) as Arc<dyn SnapshotSink>,
            Arc::clone(&archive) as Arc<dyn SnapshotSink>,
        ]
    };
    let replicas = [
        Arc::new(TestApp::new(pool.clone())),
        Arc::new(TestApp::new(replica_pool(&pool).await)),
    ];
    let publishers: Vec<Publisher> = replicas
        .iter()
        .map(|replica| Publisher::start(&replica.pool, sinks(), fast_settings(), metrics()))
        .collect();
    for publisher in &publishers {
        publisher.listening().await;
    }
    for (i, environment) in ENVIRONMENTS.into_iter().enumerate() {
        replicas[i % 2].create_environment(environment).await;
    }

    // Every replica's writers create flags in every environment at the same time.
    let mut writers = Vec::new();
    for (r, replica) in replicas.iter().enumerate() {
        for environment in ENVIRONMENTS {
            for w in 0..WRITERS {
                let replica = Arc::clone(replica);
                writers.push(tokio::spawn(async move {
                    let mut acknowledged = 0usize;
                    for i in 0..WRITES {
                        let flag =
                            json!({"flagKey": format!("r{r}-w{w}-{i}"), "enabled": i % 2 == 0});
                        let uri = format!("/admin/flags?environment={environment}");
                        let response = replica.post(&uri, flag).await;
                        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
                        acknowledged += 1;
                    }
                    (environment, acknowledged)
                }));
            }
        }
    }
    let mut acknowledged = std::collections::HashMap::<&str, usize>::new();
    for writer in writers {
        let (environment, writes) = writer.await.unwrap();
        *acknowledged.entry(environment).or_default() += writes;
    }

    for environment in ENVIRONMENTS {
        let rows = snapshot_rows(&pool, environment).await;
        let newest = rows.last().unwrap().0;
        // The creation, then one version per acknowledged write, without gaps.
        assert_eq!(
            usize::try_from(newest).unwrap(),
            1 + acknowledged[environment]
        );
        let versions: Vec<u64> = rows.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, (1..=newest).collect::<Vec<_>>(), "{environment}");
        wait_delivered(&pool, "archive", environment, newest).await;
        wait_delivered(&pool, "edge", environment, newest).await;

        let archived: Vec<(u64, String)> = archive
            .accepted()
            .into_iter()
            .filter(|(e, _, _)| e == environment)
            .map(|(_, v, b)| (v, b))
            .collect();
        assert_eq!(
            archived, rows,
            "{environment}: the archive holds every version once, in order"
        );

        let stored = edge.versions(environment);
        assert!(
            stored.windows(2).all(|pair| pair[0] < pair[1]),
            "{environment}: the edge stored {stored:?}"
        );
        assert_eq!(stored.last(), Some(&newest));
        let held = edge.state.accepted.lock().unwrap().clone();
        let (_, _, body) = held
            .iter()
            .rev()
            .find(|(e, _, _)| e == environment)
            .unwrap();
        assert_eq!(
            body,
            &rows.last().unwrap().1,
            "{environment}: the edge holds the newest body"
        );

        let audited: i64 = sqlx::query_scalar(
            "select count(*) from audit_log where environment_key = $1 and entity_type = 'flag'",
        )
        .bind(environment)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(usize::try_from(audited).unwrap(), acknowledged[environment]);
    }
    for publisher in publishers {
        publisher.stop().await;
    }
    edge.stop().await;
}
