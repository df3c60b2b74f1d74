//! The one-transaction contract: each mutation writes its change, audit row, history version and
//! snapshot together or not at all; snapshot versions are gapless; concurrent writers with
//! `If-Match` never lose an update.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{seeded, side_effects, TestApp};
use origin::auth::Role;
use serde_json::{json, Value};
use sqlx::postgres::PgListener;
use sqlx::PgPool;

const FLAG: &str = "/admin/flags/new-checkout-flow?environment=production";

async fn snapshot_versions(pool: &PgPool, environment: &str) -> Vec<i64> {
    sqlx::query_scalar("select version from snapshot where environment_key = $1 order by version")
        .bind(environment)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_mutation_writes_one_audit_row_one_version_and_one_snapshot_and_notifies(pool: PgPool) {
    let app = seeded(pool.clone()).await;
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen("edgeflags_snapshot").await.unwrap();
    let (audit, versions, snapshots, snapshot_version) = side_effects(&pool, "production").await;

    let response = app
        .admin(Method::PUT, FLAG, Some(json!({"enabled": false})))
        .await;

    response.assert_status(StatusCode::OK);
    assert_eq!(
        side_effects(&pool, "production").await,
        (audit + 1, versions + 1, snapshots + 1, snapshot_version + 1)
    );
    assert_eq!(
        response.header("x-edgeflags-snapshot-version"),
        Some((snapshot_version + 1).to_string().as_str())
    );
    let notification = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("no notification within 5 s")
        .unwrap();
    assert_eq!(notification.payload(), "production");

    let (version, body) = origin::outbox::latest(&pool, "production")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(version, u64::try_from(snapshot_version + 1).unwrap());
    let snapshot: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(snapshot["environment"], "production");
    assert_eq!(snapshot["version"], snapshot_version + 1);
    assert_eq!(snapshot["flags"][0]["flagKey"], "new-checkout-flow");
    assert_eq!(snapshot["flags"][0]["enabled"], false);
    assert_eq!(snapshot["segments"].as_array().unwrap().len(), 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_outbox_snapshot_equals_a_fresh_build_of_the_committed_state(pool: PgPool) {
    let app = seeded(pool.clone()).await;
    app.create_flag(
        "production",
        json!({"flagKey": "alpha", "enabled": true,
        "overrides": [{"userId": "u2", "enabled": false}, {"userId": "u1", "enabled": true,
                       "expiresAt": "2999-01-01T00:00:00Z"}]}),
    )
    .await;
    app.admin(
        Method::POST,
        "/admin/environments/production/client-keys",
        Some(json!({"name": "web"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.admin(
        Method::PUT,
        "/admin/segments/beta-users?environment=production",
        Some(json!({"included": ["b1", "b2"]})),
    )
    .await
    .assert_status(StatusCode::OK);

    let (version, body) = origin::outbox::latest(&pool, "production")
        .await
        .unwrap()
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let mut built = origin::outbox::build(&mut conn, "production", version)
        .await
        .unwrap();
    let mut stored: evaluator_core::model::Snapshot = serde_json::from_str(&body).unwrap();
    built.generated_at.clear();
    stored.generated_at.clear();
    assert_eq!(stored, built);
    // snapshot order is by key, overrides by user: stable bytes for identical state
    let keys: Vec<&str> = stored.flags.iter().map(|f| f.flag_key.as_str()).collect();
    assert_eq!(keys, ["alpha", "new-checkout-flow"]);
    let users: Vec<&str> = stored.flags[0]
        .overrides
        .iter()
        .map(|o| o.user_id.as_str())
        .collect();
    assert_eq!(users, ["u1", "u2"]);
    assert!(evaluator_core::validate_snapshot(&stored).is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn failed_mutations_leave_no_audit_version_or_snapshot_row(pool: PgPool) {
    let app = seeded(pool.clone()).await;
    let before = side_effects(&pool, "production").await;
    let token = app.admin_token().to_owned();
    let invalid = json!({"targetingRules": {"rules": [{"clauses": [{"attribute": "a", "operator": "nope"}]}]}});
    app.admin(Method::PUT, FLAG, Some(invalid))
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    app.send(
        Method::PUT,
        FLAG,
        Some(&token),
        Some(Body::from(r#"{"enabled":false}"#)),
        &[("if-match", "7")],
    )
    .await
    .assert_status(StatusCode::CONFLICT);
    app.admin(
        Method::POST,
        "/admin/flags?environment=production",
        Some(common::seed_flag()),
    )
    .await
    .assert_status(StatusCode::CONFLICT);
    app.admin(
        Method::DELETE,
        "/admin/segments/beta-users?environment=production",
        None,
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let viewer = app.token("v", Role::Viewer, None);
    app.call(Method::PUT, FLAG, &viewer, Some(json!({"enabled": false})))
        .await
        .assert_status(StatusCode::FORBIDDEN);
    assert_eq!(side_effects(&pool, "production").await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn snapshot_versions_are_gapless_per_environment(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    app.create_environment("dev").await;
    app.create_environment("production").await;
    for i in 0..5 {
        app.create_flag("dev", json!({"flagKey": format!("f{i}")}))
            .await;
        // a failure in between must not consume a version
        app.admin(
            Method::POST,
            "/admin/flags?environment=dev",
            Some(json!({"flagKey": "bad key"})),
        )
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.create_segment("production", json!({"segmentKey": "s"}))
        .await;
    app.admin(Method::DELETE, "/admin/flags/f0?environment=dev", None)
        .await;
    assert_eq!(
        snapshot_versions(&pool, "dev").await,
        (1..=7).collect::<Vec<i64>>()
    );
    assert_eq!(snapshot_versions(&pool, "production").await, [1, 2]);
    let current: i64 = sqlx::query_scalar(
        "select snapshot_version from environment where environment_key = 'dev'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(current, 7);
}

/// Fifty writers race for the same flag version: exactly one wins, the others get 409 with the
/// version that beat them.
#[sqlx::test(migrations = "../migrations")]
async fn fifty_concurrent_puts_with_the_same_if_match_have_exactly_one_winner(pool: PgPool) {
    let app = seeded(pool.clone()).await;
    let token = app.admin_token().to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (app, token) = (app.clone(), token.clone());
        tasks.spawn(async move {
            let body = json!({"description": format!("writer {i}")}).to_string();
            app.send(
                Method::PUT,
                FLAG,
                Some(&token),
                Some(Body::from(body)),
                &[("if-match", "\"1\"")],
            )
            .await
        });
    }
    let mut ok = 0;
    let mut conflicts = 0;
    while let Some(response) = tasks.join_next().await {
        let response = response.unwrap();
        match response.status {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => {
                assert_eq!(response.body["error"]["currentVersion"], 2);
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {}", response.text),
        }
    }
    assert_eq!((ok, conflicts), (1, 49));
    let updates = common::count(
        &pool,
        "select count(*) from audit_log where action = 'update'",
    )
    .await;
    assert_eq!(updates, 1);
}

/// Fifty writers each apply one change with read-modify-write and If-Match, retrying on 409:
/// every acknowledged write is a distinct version, none is lost, audit rows equal acknowledged
/// writes, and the outbox has one snapshot per write with no gap.
#[sqlx::test(migrations = "../migrations")]
async fn fifty_concurrent_writers_with_retries_lose_no_update(pool: PgPool) {
    let app = seeded(pool.clone()).await;
    let token = app.admin_token().to_owned();
    let (_, _, _, snapshot_before) = side_effects(&pool, "production").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (app, token) = (app.clone(), token.clone());
        tasks.spawn(async move {
            for _attempt in 0..500 {
                let current = app.send(Method::GET, FLAG, Some(&token), None, &[]).await;
                let etag = current.header("etag").unwrap().to_owned();
                let body = json!({"description": format!("writer {i}")}).to_string();
                let response = app
                    .send(
                        Method::PUT,
                        FLAG,
                        Some(&token),
                        Some(Body::from(body)),
                        &[("if-match", &etag)],
                    )
                    .await;
                match response.status {
                    StatusCode::OK => return (i, response.body["version"].as_u64().unwrap()),
                    StatusCode::CONFLICT => tokio::task::yield_now().await,
                    other => panic!("unexpected {other}: {}", response.text),
                }
            }
            panic!("writer {i} never won");
        });
    }
    let mut acknowledged = BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        let (_, version) = result.unwrap();
        assert!(
            acknowledged.insert(version),
            "version {version} acknowledged twice"
        );
    }
    // one version per writer: 2..=51, no duplicates, no gaps
    assert_eq!(acknowledged, (2..=51).collect::<BTreeSet<u64>>());
    let history = app
        .admin(
            Method::GET,
            "/admin/flags/new-checkout-flow/history?environment=production&limit=1000",
            None,
        )
        .await;
    let descriptions: BTreeSet<String> = history.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["action"] == "update")
        .map(|v| v["definition"]["description"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        descriptions,
        (0..50)
            .map(|i| format!("writer {i}"))
            .collect::<BTreeSet<_>>()
    );
    let updates = common::count(
        &pool,
        "select count(*) from audit_log where action = 'update'",
    )
    .await;
    assert_eq!(updates, 50);
    let versions = snapshot_versions(&pool, "production").await;
    assert_eq!(versions, (1..=snapshot_before + 50).collect::<Vec<i64>>());
}
