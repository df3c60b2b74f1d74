//! The replica's one outbox listener and its two consumers (evaluation cache, publisher) against a
//! real PostgreSQL: one LISTEN feeds both, idle polls read no body, this replica's own commits are
//! not read back, other replicas' commits arrive through NOTIFY, and notifications lost with the
//! connection or in transit are caught by the poll.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p origin --test outbox`

mod common;
mod publish_support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::TestApp;
use origin::live::{spawn_follower, LiveSnapshots};
use origin::outbox::{self, Subscription};
use origin::publish::{spawn_with_sinks, SnapshotSink};
use publish_support::{
    commit_snapshot, create_environment, fast_settings, snapshot, wait_delivered, wait_for,
    RecordingSink,
};
use serde_json::json;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A poll so long that only NOTIFY (or a reconnect) can announce anything within a test.
const NEVER: Duration = Duration::from_secs(3600);

/// One replica's listener and evaluation cache follower, sharing one shutdown token.
struct Replica {
    shutdown: CancellationToken,
    announcements: Subscription,
    tasks: Vec<JoinHandle<()>>,
}

impl Replica {
    fn start(pool: &PgPool, live: &Arc<LiveSnapshots>, poll: Duration) -> Self {
        let shutdown = CancellationToken::new();
        let (listener, announcements) =
            outbox::spawn_listener(pool.clone(), poll, shutdown.clone());
        let follower = spawn_follower(
            pool.clone(),
            Arc::clone(live),
            announcements.clone(),
            shutdown.clone(),
        );
        Self {
            shutdown,
            announcements,
            tasks: vec![listener, follower],
        }
    }

    /// Waits until the listener's `n`-th session has LISTENed and polled.
    async fn sessions(&self, n: u64) {
        let mut announcements = self.announcements.clone();
        tokio::time::timeout(
            Duration::from_secs(30),
            announcements.wait_for(|a| a.sessions() >= n),
        )
        .await
        .unwrap_or_else(|_| panic!("listening session {n} did not start within 30 s"))
        .unwrap();
    }

    /// Cancels the one token and waits for every task.
    async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("a task ignored the shutdown")
                .unwrap();
        }
    }
}

async fn wait_cached(live: &LiveSnapshots, environment: &str, version: u64) {
    wait_for(
        Duration::from_secs(30),
        &format!("the cache to hold {environment} v{version}"),
        || async { live.version(environment) >= Some(version) },
    )
    .await;
}

async fn listen_sessions(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and query ilike 'listen%edgeflags_snapshot%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn one_listener_feeds_the_cache_and_the_publisher_and_one_token_stops_everything(
    pool: PgPool,
) {
    create_environment(&pool, "production").await;
    commit_snapshot(&pool, "production", 2).await;
    commit_snapshot(&pool, "production", 2).await;
    let live = TestApp::new(pool.clone()).state.live;
    let sink = RecordingSink::new("archive");
    let mut settings = fast_settings();
    settings.poll_interval = NEVER;
    let mut replica = Replica::start(&pool, &live, NEVER);
    let publisher = spawn_with_sinks(
        pool.clone(),
        vec![Arc::clone(&sink) as Arc<dyn SnapshotSink>],
        settings,
        publish_support::metrics(),
        replica.announcements.clone(),
        replica.shutdown.clone(),
    )
    .unwrap();
    replica.tasks.push(publisher);

    replica.sessions(1).await;
    wait_cached(&live, "production", 2).await;
    wait_delivered(&pool, "archive", "production", 2).await;
    assert_eq!(listen_sessions(&pool).await, 1, "one LISTEN per replica");

    // Another replica commits: NOTIFY reaches both consumers (the polls are an hour away).
    let (v3, _) = commit_snapshot(&pool, "production", 2).await;
    wait_cached(&live, "production", v3).await;
    wait_delivered(&pool, "archive", "production", v3).await;
    assert_eq!(sink.versions("production"), vec![1, 2, 3]);
    // The cache read v2 (start-up) and v3, never v1: it only reads what it is missing.
    assert_eq!(live.body_reads(), 2);

    replica.stop().await;
    wait_for(
        Duration::from_secs(10),
        "the LISTEN session to end",
        || async { listen_sessions(&pool).await == 0 },
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn polls_with_unchanged_versions_read_no_snapshot_body(pool: PgPool) {
    create_environment(&pool, "production").await;
    create_environment(&pool, "staging").await;
    commit_snapshot(&pool, "production", 50).await;
    commit_snapshot(&pool, "staging", 50).await;
    let live = TestApp::new(pool.clone()).state.live;
    let replica = Replica::start(&pool, &live, Duration::from_millis(20));
    wait_cached(&live, "production", 1).await;
    wait_cached(&live, "staging", 1).await;
    assert_eq!(live.body_reads(), 2);

    let polled = replica.announcements.polls();
    wait_for(Duration::from_secs(30), "ten more polls", || async {
        replica.announcements.polls() >= polled + 10
    })
    .await;
    assert_eq!(live.body_reads(), 2, "an idle poll read a body");
    replica.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn this_replicas_own_commits_are_not_read_back(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let live = Arc::clone(&app.state.live);
    let replica = Replica::start(&pool, &live, NEVER);
    replica.sessions(1).await;

    app.create_environment_with_flag("production", json!({"flagKey": "f", "enabled": true}))
        .await;
    let response = app
        .put(
            "/admin/flags/f?environment=production",
            json!({"enabled": false}),
        )
        .await;
    response.assert_status(StatusCode::OK);
    assert_eq!(response.header("x-edgeflags-snapshot-version"), Some("3"));
    // The listener has announced this replica's version 3 ...
    let mut announcements = replica.announcements.clone();
    let announced = announcements
        .wait_for(|a| a.version("production") == Some(3))
        .await
        .unwrap();
    // ... and following that announcement is a no-op: the commit path installed it already.
    live.follow(&pool, &announced).await.unwrap();
    assert_eq!(live.body_reads(), 0);

    // Another replica's commit is read (once); the follower, which handles announcements in
    // order, has then also been through this replica's own, without reading them.
    let (v4, _) = commit_snapshot(&pool, "production", 1).await;
    wait_cached(&live, "production", v4).await;
    assert_eq!(live.body_reads(), 1);
    replica.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn an_announcement_during_the_local_install_waits_for_it_instead_of_reading(pool: PgPool) {
    let live = TestApp::new(pool.clone()).state.live;
    create_environment(&pool, "production").await;
    let (version, _) = commit_snapshot(&pool, "production", 2_000).await;
    let mut announcements = {
        let shutdown = CancellationToken::new();
        let (_listener, announcements) =
            outbox::spawn_listener(pool.clone(), NEVER, shutdown.clone());
        let mut a = announcements.clone();
        a.wait_for(|a| a.version("production") == Some(version))
            .await
            .unwrap();
        shutdown.cancel();
        announcements
    };
    let announced = announcements.latest();
    let snapshot = snapshot("production", version, 2_000);
    let body = serde_json::to_string(&snapshot).unwrap();
    // `join!` polls the install first: it marks the version, then compiles 2,000 flags on the
    // blocking pool while the announcement is followed.
    tokio::join!(live.install_snapshot(snapshot, body), async {
        live.follow(&pool, &announced).await.unwrap()
    },);
    assert_eq!(live.version("production"), Some(version));
    assert_eq!(live.body_reads(), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn another_replicas_commit_reaches_the_cache_through_notify(pool: PgPool) {
    create_environment(&pool, "production").await;
    let live = TestApp::new(pool.clone()).state.live;
    let replica = Replica::start(&pool, &live, NEVER);
    replica.sessions(1).await;
    assert_eq!(live.version("production"), None);

    // A separate transaction on a separate connection: another replica's mutation.
    let other = publish_support::replica_pool(&pool).await;
    let (version, _) = commit_snapshot(&other, "production", 3).await;
    wait_cached(&live, "production", version).await;
    assert_eq!(
        replica.announcements.polls(),
        1,
        "only the session's opening poll ran"
    );
    assert_eq!(live.body_reads(), 1);
    replica.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn commits_made_while_the_listen_connection_is_down_are_caught_after_reconnecting(
    pool: PgPool,
) {
    create_environment(&pool, "production").await;
    commit_snapshot(&pool, "production", 1).await;
    let live = TestApp::new(pool.clone()).state.live;
    let replica = Replica::start(&pool, &live, NEVER);
    replica.sessions(1).await;
    wait_cached(&live, "production", 1).await;

    // Kill the LISTEN session and wait until it is gone: the next commit's NOTIFY reaches nobody.
    let terminated: Option<bool> = sqlx::query_scalar(
        "select bool_and(pg_terminate_backend(pid, 10000)) from pg_stat_activity
         where datname = current_database() and query ilike 'listen%edgeflags_snapshot%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(terminated, Some(true));
    let (version, _) = commit_snapshot(&pool, "production", 1).await;

    replica.sessions(2).await;
    wait_cached(&live, "production", version).await;
    replica.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_notification_lost_in_transit_is_caught_by_the_poll(pool: PgPool) {
    create_environment(&pool, "production").await;
    let live = TestApp::new(pool.clone()).state.live;
    let replica = Replica::start(&pool, &live, Duration::from_millis(100));
    replica.sessions(1).await;

    // A snapshot row whose notification never arrives (as on a connection that died without the
    // listener noticing). Written here by hand on purpose: `outbox::append` always notifies.
    let body = serde_json::to_string(&snapshot("production", 1, 1)).unwrap();
    sqlx::query("insert into snapshot (environment_key, version, body) values ($1, 1, $2)")
        .bind("production")
        .bind(&body)
        .execute(&pool)
        .await
        .unwrap();
    wait_cached(&live, "production", 1).await;
    assert_eq!(
        replica.announcements.clone().latest().sessions(),
        1,
        "no reconnect"
    );
    replica.stop().await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_local_mark_whose_commit_failed_does_not_hide_another_replicas_commit(pool: PgPool) {
    let live = TestApp::new(pool.clone()).state.live;
    create_environment(&pool, "production").await;
    // This replica marks version 1, then its COMMIT fails; meanwhile another replica commits
    // version 1 of its own.
    let mark = live.installing(&snapshot("production", 1, 5));
    let (version, _) = commit_snapshot(&pool, "production", 2).await;
    let shutdown = CancellationToken::new();
    let (_listener, mut announcements) =
        outbox::spawn_listener(pool.clone(), NEVER, shutdown.clone());
    let announced = announcements
        .wait_for(|a| a.version("production") == Some(version))
        .await
        .unwrap();
    shutdown.cancel();
    // The follower waits on the mark; dropping it (the failed commit's cleanup) lets it read.
    tokio::join!(
        async { live.follow(&pool, &announced).await.unwrap() },
        async {
            tokio::task::yield_now().await;
            drop(mark);
        }
    );
    assert_eq!(live.body_reads(), 1);
    let served = live.get("production").unwrap();
    assert_eq!(served.version(), version);
    assert_eq!(served.len(), 2, "the other replica's snapshot (2 flags)");
}
