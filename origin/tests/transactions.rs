//! The one-transaction contract: each mutation writes its change, audit row, history version and
//! snapshot together or not at all; snapshot versions are gapless; concurrent writers with
//! `If-Match` never lose an update.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{side_effects, with_checkout_flag, TestApp};
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
    let app = with_checkout_flag(pool.clone()).await;
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen("edgeflags_snapshot").await.unwrap();
    let (audit, versions, snapshots, snapshot_version) = side_effects(&pool, "production").await;

    let response = app.put(FLAG, json!({"enabled": false})).await;

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

    let (version, body) = common::latest_snapshot(&pool, "production").await;
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
    let app = with_checkout_flag(pool.clone()).await;
    app.create_flag(
        "production",
        json!({"flagKey": "alpha", "enabled": true,
        "overrides": [{"userId": "u2", "enabled": false}, {"userId": "u1", "enabled": true,
                       "expiresAt": "2999-01-01T00:00:00Z"}]}),
    )
    .await;
    app.post(
        "/admin/environments/production/client-keys",
        json!({"name": "web"}),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.put(
        "/admin/segments/beta-users?environment=production",
        json!({"included": ["b1", "b2"]}),
    )
    .await
    .assert_status(StatusCode::OK);

    let (version, body) = common::latest_snapshot(&pool, "production").await;
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
    let app = with_checkout_flag(pool.clone()).await;
    let before = side_effects(&pool, "production").await;
    let invalid = json!({"targetingRules": {"rules": [{"clauses": [{"attribute": "a", "operator": "nope"}]}]}});
    app.put(FLAG, invalid)
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    app.admin_with(
        Method::PUT,
        FLAG,
        Some(json!({"enabled": false})),
        &[("if-match", "7")],
    )
    .await
    .assert_status(StatusCode::CONFLICT);
    app.post(
        "/admin/flags?environment=production",
        common::checkout_flag(),
    )
    .await
    .assert_status(StatusCode::CONFLICT);
    app.delete("/admin/segments/beta-users?environment=production")
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
        app.post(
            "/admin/flags?environment=dev",
            json!({"flagKey": "bad key"}),
        )
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.create_segment("production", json!({"segmentKey": "s"}))
        .await;
    app.delete("/admin/flags/f0?environment=dev").await;
    assert_eq!(
        snapshot_versions(&pool, "dev").await,
        (1..=7).collect::<Vec<i64>>()
    );
    assert_eq!(snapshot_versions(&pool, "production").await, [1, 2]);
    assert_eq!(common::snapshot_version(&pool, "dev").await, Some(7));
}

/// Fifty writers race for the same flag version: exactly one wins, the others get 409 with the
/// version that beat them.
#[sqlx::test(migrations = "../migrations")]
async fn fifty_concurrent_puts_with_the_same_if_match_have_exactly_one_winner(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let app = app.clone();
        tasks.spawn(async move {
            let body = json!({"description": format!("writer {i}")});
            app.admin_with(Method::PUT, FLAG, Some(body), &[("if-match", "\"1\"")])
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
    let app = with_checkout_flag(pool.clone()).await;
    let (_, _, _, snapshot_before) = side_effects(&pool, "production").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let app = app.clone();
        tasks.spawn(async move {
            for _attempt in 0..500 {
                let current = app.admin_with(Method::GET, FLAG, None, &[]).await;
                let etag = current.header("etag").unwrap().to_owned();
                let body = json!({"description": format!("writer {i}")});
                let response = app
                    .admin_with(Method::PUT, FLAG, Some(body), &[("if-match", &etag)])
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
        .get("/admin/flags/new-checkout-flow/history?environment=production&limit=1000")
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

/// Counts of what a mutation writes besides the entity itself: all audit rows, all flag history
/// rows, the environment's outbox rows, and its `snapshot_version` (`None` once deleted).
async fn trace(pool: &PgPool, environment: &str) -> (i64, i64, i64, Option<i64>) {
    let snapshots: i64 =
        sqlx::query_scalar("select count(*) from snapshot where environment_key = $1")
            .bind(environment)
            .fetch_one(pool)
            .await
            .unwrap();
    (
        common::count(pool, "select count(*) from audit_log").await,
        common::count(pool, "select count(*) from flag_version").await,
        snapshots,
        common::snapshot_version(pool, environment).await,
    )
}

/// The newest audit row: environment, entity type, key, action, actor, entity version, snapshot
/// version, and whether it holds an old and a new value.
type AuditRow = (
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    i64,
    bool,
    bool,
);

async fn newest_audit_row(pool: &PgPool) -> AuditRow {
    sqlx::query_as(
        "select environment_key, entity_type, entity_key, action, actor, entity_version,
                snapshot_version, old_value is not null, new_value is not null
         from audit_log order by audit_log_id desc limit 1",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// What an admin write's audit row must say: entity type, key, action, entity version, has an
/// old value, has a new value.
type Audit = (
    &'static str,
    &'static str,
    &'static str,
    Option<i64>,
    bool,
    bool,
);

/// One admin write and what it must leave behind: method, uri, body, status, the environment
/// it changes, and its audit row.
type Write = (
    Method,
    &'static str,
    Option<Value>,
    StatusCode,
    &'static str,
    Audit,
);

/// Every kind of admin write — flags (create, update, override set and delete, rollback, copy,
/// delete), segments (create, update, delete), client keys (create, revoke) and environments
/// (create, rename, delete) — commits exactly one audit row naming the change and the snapshot
/// version it produced, its flag history row (flags only), and one outbox snapshot of that
/// version, which the response names and the environment row records.
#[sqlx::test(migrations = "../migrations")]
async fn every_kind_of_write_commits_its_audit_row_history_and_snapshot_together(pool: PgPool) {
    use Method as M;
    use StatusCode as S;
    let app = with_checkout_flag(pool.clone()).await;
    let writes: [Write; 16] = [
        (
            M::POST,
            "/admin/environments",
            Some(json!({"key": "dev"})),
            S::CREATED,
            "dev",
            ("environment", "dev", "create", None, false, true),
        ),
        (
            M::PUT,
            "/admin/environments/dev",
            Some(json!({"name": "Development"})),
            S::OK,
            "dev",
            ("environment", "dev", "update", None, true, true),
        ),
        (
            M::POST,
            "/admin/flags?environment=production",
            Some(json!({"flagKey": "alpha", "targetingRules": {"segments": ["beta-users"]}})),
            S::CREATED,
            "production",
            ("flag", "alpha", "create", Some(1), false, true),
        ),
        (
            M::PUT,
            "/admin/flags/alpha?environment=production",
            Some(json!({"enabled": true, "targetingRules": null})),
            S::OK,
            "production",
            ("flag", "alpha", "update", Some(2), true, true),
        ),
        (
            M::PUT,
            "/admin/flags/alpha/overrides/u1?environment=production",
            Some(json!({"enabled": false})),
            S::CREATED,
            "production",
            ("flag", "alpha", "override.set", Some(3), true, true),
        ),
        (
            M::DELETE,
            "/admin/flags/alpha/overrides/u1?environment=production",
            None,
            S::NO_CONTENT,
            "production",
            ("flag", "alpha", "override.delete", Some(4), true, true),
        ),
        (
            M::POST,
            "/admin/flags/alpha/rollback?environment=production",
            Some(json!({"version": 2})),
            S::OK,
            "production",
            ("flag", "alpha", "rollback", Some(5), true, true),
        ),
        (
            M::POST,
            "/admin/flags/alpha/copy",
            Some(json!({"from": "production", "to": "dev"})),
            S::CREATED,
            "dev",
            ("flag", "alpha", "copy", Some(1), false, true),
        ),
        (
            M::DELETE,
            "/admin/flags/alpha?environment=production",
            None,
            S::NO_CONTENT,
            "production",
            ("flag", "alpha", "delete", Some(6), true, false),
        ),
        (
            M::POST,
            "/admin/segments?environment=production",
            Some(json!({"segmentKey": "gamma"})),
            S::CREATED,
            "production",
            ("segment", "gamma", "create", Some(1), false, true),
        ),
        (
            M::PUT,
            "/admin/segments/gamma?environment=production",
            Some(json!({"included": ["x"]})),
            S::OK,
            "production",
            ("segment", "gamma", "update", Some(2), true, true),
        ),
        (
            M::DELETE,
            "/admin/segments/gamma?environment=production",
            None,
            S::NO_CONTENT,
            "production",
            ("segment", "gamma", "delete", None, true, false),
        ),
        (
            M::POST,
            "/admin/environments/production/client-keys",
            Some(json!({"name": "web"})),
            S::CREATED,
            "production",
            ("clientKey", "web", "create", None, false, true),
        ),
        (
            M::DELETE,
            "/admin/environments/production/client-keys/web",
            None,
            S::NO_CONTENT,
            "production",
            ("clientKey", "web", "delete", None, true, false),
        ),
        (
            M::DELETE,
            "/admin/flags/alpha?environment=dev",
            None,
            S::NO_CONTENT,
            "dev",
            ("flag", "alpha", "delete", Some(2), true, false),
        ),
        (
            M::DELETE,
            "/admin/environments/dev",
            None,
            S::NO_CONTENT,
            "dev",
            ("environment", "dev", "delete", None, true, false),
        ),
    ];
    for (method, uri, body, status, environment, expected) in writes {
        let (audit, history, snapshots, version) = trace(&pool, environment).await;
        let response = app.admin(method.clone(), uri, body).await;
        response.assert_status(status);
        let published: i64 = response
            .header("x-edgeflags-snapshot-version")
            .unwrap_or_else(|| panic!("{} {}: no snapshot version header", method, uri))
            .parse()
            .unwrap();
        // versions continue where the environment (or a deleted namesake's outbox) left off
        assert_eq!(published, version.unwrap_or(snapshots) + 1, "{}", uri);
        let after = trace(&pool, environment).await;
        let (entity, key, action, entity_version, old, new) = expected;
        // deleting an environment cascades to its flags' history, which is then not counted
        let deleted = uri == "/admin/environments/dev" && method == M::DELETE;
        if !deleted {
            let added = i64::from(entity == "flag");
            assert_eq!(after.1, history + added, "{method} {uri}: history");
        }
        assert_eq!(after.0, audit + 1, "{} {}: audit rows", method, uri);
        assert_eq!(after.2, snapshots + 1, "{} {}: outbox rows", method, uri);
        assert_eq!(after.3, (!deleted).then_some(published), "{}", uri);
        assert_eq!(
            newest_audit_row(&pool).await,
            (
                environment.to_owned(),
                entity.to_owned(),
                key.to_owned(),
                action.to_owned(),
                "root".to_owned(),
                entity_version,
                published,
                old,
                new
            ),
            "{} {}",
            method,
            uri
        );
        let newest: i64 =
            sqlx::query_scalar("select max(version) from snapshot where environment_key = $1")
                .bind(environment)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(newest, published, "{} {}: outbox", method, uri);
        if entity == "flag" {
            let row: (i64, String) = sqlx::query_as(
                "select v.version, v.action from flag_version v join environment e
                     using (environment_id)
                 where e.environment_key = $1 and v.flag_key = $2
                 order by v.version desc limit 1",
            )
            .bind(environment)
            .bind(key)
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(row, (entity_version.unwrap(), action.to_owned()), "{}", uri);
        }
    }
}

/// Everything stored, entity rows included: a refused write must leave all of it as it was.
async fn everything(pool: &PgPool) -> Vec<i64> {
    let mut counts = Vec::new();
    for sql in [
        "select count(*) from audit_log",
        "select count(*) from flag_version",
        "select count(*) from snapshot",
        "select coalesce(sum(snapshot_version), 0)::bigint from environment",
        "select count(*) from environment",
        "select count(*) from feature_flag",
        "select coalesce(sum(version), 0)::bigint from feature_flag",
        "select count(*) from flag_override",
        "select count(*) from segment",
        "select coalesce(sum(version), 0)::bigint from segment",
        "select count(*) from client_key",
    ] {
        counts.push(common::count(pool, sql).await);
    }
    counts
}

/// A write of any kind that is refused — because the environment it would leave is invalid, or
/// its target is missing or in the way — leaves no trace: no entity change, no history, no audit
/// row, no snapshot version, no outbox row.
#[sqlx::test(migrations = "../migrations")]
async fn every_kind_of_refused_write_leaves_no_trace(pool: PgPool) {
    use Method as M;
    use StatusCode as S;
    let app = with_checkout_flag(pool.clone()).await;
    app.create_environment("dev").await;
    app.create_flag(
        "production",
        json!({"flagKey": "parent", "overrides": [{"userId": "u1", "enabled": true}]}),
    )
    .await;
    app.create_flag(
        "production",
        json!({"flagKey": "child", "prerequisites": [{"flagKey": "parent", "variation": "on"}]}),
    )
    .await;
    // version 1 of `uses-gamma` names segment `gamma`, which is deleted afterwards
    app.create_segment("production", json!({"segmentKey": "gamma"}))
        .await;
    app.create_flag(
        "production",
        json!({"flagKey": "uses-gamma", "targetingRules": {"segments": ["gamma"]}}),
    )
    .await;
    app.put(
        "/admin/flags/uses-gamma?environment=production",
        json!({"targetingRules": null}),
    )
    .await
    .assert_status(S::OK);
    app.delete("/admin/segments/gamma?environment=production")
        .await
        .assert_status(S::NO_CONTENT);
    app.post(
        "/admin/environments/production/client-keys",
        json!({"name": "web"}),
    )
    .await
    .assert_status(S::CREATED);
    let bad_clause = json!({"rules": [{"clauses": [{"attribute": "a", "operator": "nope"}]}]});
    let refused = [
        // flags
        (
            M::POST,
            "/admin/flags?environment=production",
            Some(json!({"flagKey": "x", "targetingRules": bad_clause.clone()})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::PUT,
            "/admin/flags/parent?environment=production",
            Some(json!({"targetingRules": bad_clause.clone()})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::PUT,
            "/admin/flags/parent?environment=production",
            Some(json!({"prerequisites": [{"flagKey": "child", "variation": "on"}]})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::DELETE,
            "/admin/flags/parent?environment=production",
            None,
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::POST,
            "/admin/flags/uses-gamma/rollback?environment=production",
            Some(json!({"version": 1})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::POST,
            "/admin/flags/new-checkout-flow/copy",
            Some(json!({"from": "production", "to": "dev"})),
            S::UNPROCESSABLE_ENTITY,
        ),
        // overrides
        (
            M::PUT,
            "/admin/flags/parent/overrides/u2?environment=production",
            Some(json!({"enabled": true, "variation": "on"})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::PUT,
            "/admin/flags/parent/overrides/u2?environment=production",
            Some(json!({"enabled": true, "expiresAt": "tomorrow"})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::DELETE,
            "/admin/flags/parent/overrides/nobody?environment=production",
            None,
            S::NOT_FOUND,
        ),
        // segments
        (
            M::POST,
            "/admin/segments?environment=production",
            Some(json!({"segmentKey": "s", "rules": bad_clause.clone()["rules"]})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::PUT,
            "/admin/segments/premium-users?environment=production",
            Some(json!({"rules": bad_clause.clone()["rules"]})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::DELETE,
            "/admin/segments/beta-users?environment=production",
            None,
            S::UNPROCESSABLE_ENTITY,
        ),
        // client keys
        (
            M::POST,
            "/admin/environments/production/client-keys",
            Some(json!({"name": "web"})),
            S::CONFLICT,
        ),
        (
            M::POST,
            "/admin/environments/production/client-keys",
            Some(json!({"name": "bad name"})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::DELETE,
            "/admin/environments/production/client-keys/nobody",
            None,
            S::NOT_FOUND,
        ),
        // environments
        (
            M::POST,
            "/admin/environments",
            Some(json!({"key": "bad key"})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::POST,
            "/admin/environments",
            Some(json!({"key": "dev"})),
            S::CONFLICT,
        ),
        (
            M::PUT,
            "/admin/environments/dev",
            Some(json!({"name": "  "})),
            S::UNPROCESSABLE_ENTITY,
        ),
        (
            M::DELETE,
            "/admin/environments/production",
            None,
            S::CONFLICT,
        ),
    ];
    let before = everything(&pool).await;
    for (method, uri, body, status) in refused {
        let response = app.admin(method.clone(), uri, body).await;
        response.assert_status(status);
        assert_eq!(
            everything(&pool).await,
            before,
            "{method} {uri} left a trace"
        );
    }
}
