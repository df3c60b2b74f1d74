//! Admin API: segments, environments, client keys and the audit trail.

mod common;

use axum::http::{Method, StatusCode};
use common::{with_checkout_flag, TestApp};
use origin::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn segment_crud_round_trips_with_versions(pool: PgPool) {
    let app = TestApp::new(pool);
    app.create_environment("dev").await;
    let created = app
        .create_segment(
            "dev",
            json!({"segmentKey": "beta", "included": ["u1"],
            "rules": [{"clauses": [{"attribute": "plan", "operator": "in", "values": ["pro"]}]}]}),
        )
        .await;
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(created.body["environment"], "dev");
    assert_eq!(created.body["version"], 1);

    // a fetched segment can be edited and sent back as is
    let mut edited = app.get("/admin/segments/beta?environment=dev").await.body;
    edited["excluded"] = json!(["u9"]);
    let updated = app
        .put("/admin/segments/beta?environment=dev", edited)
        .await;
    updated.assert_status(StatusCode::OK);
    assert_eq!(updated.body["version"], 2);
    assert_eq!(updated.body["included"], json!(["u1"]));
    assert_eq!(updated.body["excluded"], json!(["u9"]));

    let list = app.get("/admin/segments?environment=dev").await;
    assert_eq!(list.body["segments"].as_array().unwrap().len(), 1);

    app.delete("/admin/segments/beta?environment=dev")
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let gone = app.get("/admin/segments/beta?environment=dev").await;
    gone.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "SEGMENT_NOT_FOUND");
}

#[sqlx::test(migrations = "../migrations")]
async fn deleting_a_segment_still_referenced_is_refused_naming_the_references(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    app.create_segment(
        "production",
        json!({"segmentKey": "vip", "rules": [{"clauses": [
        {"operator": "segmentMatch", "values": ["beta-users"]}]}]}),
    )
    .await;
    let before = common::side_effects(&pool, "production").await;

    let response = app
        .delete("/admin/segments/beta-users?environment=production")
        .await;

    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields: Vec<&str> = response.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "flags[new-checkout-flow].targetingRules.segments[0]",
            "segments[vip].rules[0].clauses[0].values[0]"
        ]
    );
    assert_eq!(common::side_effects(&pool, "production").await, before);
    app.get("/admin/segments/beta-users?environment=production")
        .await
        .assert_status(StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn segment_cycles_are_refused(pool: PgPool) {
    let app = TestApp::new(pool);
    app.create_environment("dev").await;
    let matching = |other: &str| {
        json!({"rules": [{"clauses": [
        {"operator": "segmentMatch", "values": [other]}]}]})
    };
    let mut a = matching("b");
    a["segmentKey"] = json!("a");
    // "b" does not exist yet: a dangling reference
    let dangling = app.post("/admin/segments?environment=dev", a.clone()).await;
    dangling.assert_invalid("rules[0].clauses[0].values[0]");

    app.create_segment("dev", json!({"segmentKey": "b"})).await;
    app.create_segment("dev", a).await;
    let cycle = app
        .put("/admin/segments/b?environment=dev", matching("a"))
        .await;
    cycle.assert_invalid("rules[0].clauses[0].values[0]");
}

#[sqlx::test(migrations = "../migrations")]
async fn environments_are_created_listed_renamed_and_deleted_when_empty(pool: PgPool) {
    let app = TestApp::new(pool);
    let created = app
        .post(
            "/admin/environments",
            json!({"key": "staging", "name": "Staging"}),
        )
        .await;
    created.assert_status(StatusCode::CREATED);
    assert_eq!(created.body["key"], "staging");
    assert_eq!(created.body["snapshotVersion"], 1);
    assert_eq!(
        created.header("location"),
        Some("/admin/environments/staging")
    );

    let duplicate = app
        .post("/admin/environments", json!({"key": "staging"}))
        .await;
    duplicate.assert_status(StatusCode::CONFLICT);
    assert_eq!(duplicate.code(), "ENVIRONMENT_EXISTS");

    let bad_key = app
        .post("/admin/environments", json!({"key": "prod.eu"}))
        .await;
    bad_key.assert_invalid("key");

    let renamed = app
        .put(
            "/admin/environments/staging",
            json!({"name": "Pre-production"}),
        )
        .await;
    renamed.assert_status(StatusCode::OK);
    assert_eq!(renamed.body["name"], "Pre-production");
    assert_eq!(renamed.body["snapshotVersion"], 2);

    app.create_flag("staging", json!({"flagKey": "f"})).await;
    let not_empty = app.delete("/admin/environments/staging").await;
    not_empty.assert_status(StatusCode::CONFLICT);
    assert_eq!(not_empty.code(), "ENVIRONMENT_NOT_EMPTY");
    app.delete("/admin/flags/f?environment=staging").await;
    app.delete("/admin/environments/staging")
        .await
        .assert_status(StatusCode::NO_CONTENT);
    app.get("/admin/environments/staging")
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_recreated_environment_continues_its_snapshot_versions(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    app.create_environment("qa").await;
    app.delete("/admin/environments/qa")
        .await
        .assert_status(StatusCode::NO_CONTENT);
    // versions 1 (created) and 2 (the empty farewell snapshot) are in the outbox
    let again = app.create_environment("qa").await;
    assert_eq!(again.body["snapshotVersion"], 3);
    let versions: Vec<i64> = sqlx::query_scalar(
        "select version from snapshot where environment_key = 'qa' order by version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(versions, [1, 2, 3]);
}

#[sqlx::test(migrations = "../migrations")]
async fn environment_list_is_filtered_by_the_token_restriction(pool: PgPool) {
    let app = TestApp::new(pool);
    for env in ["dev", "staging", "production"] {
        app.create_environment(env).await;
    }
    let all = app.get("/admin/environments").await;
    let keys = |body: &Value| -> Vec<String> {
        body["environments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys(&all.body), ["dev", "production", "staging"]);
    let token = app.token("dana", Role::Viewer, Some(&["dev", "staging"]));
    let limited = app
        .call(Method::GET, "/admin/environments", &token, None)
        .await;
    assert_eq!(keys(&limited.body), ["dev", "staging"]);
    app.call(Method::GET, "/admin/environments/production", &token, None)
        .await
        .assert_status(StatusCode::FORBIDDEN);
}

#[sqlx::test(migrations = "../migrations")]
async fn client_key_is_shown_once_and_only_its_hash_is_stored_and_published(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    app.create_environment("production").await;
    let created = app
        .post(
            "/admin/environments/production/client-keys",
            json!({"name": "web"}),
        )
        .await;
    created.assert_status(StatusCode::CREATED);
    let key = created.body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("efk.production."), "{key}");
    assert_eq!(key.len(), "efk.production.".len() + 32);
    let sha = origin::store::client_key::hash(&key);
    assert_eq!(created.body["sha256"], sha);

    let list = app.get("/admin/environments/production/client-keys").await;
    assert_eq!(list.body["clientKeys"][0]["sha256"], sha);
    assert!(!list.text.contains(&key));
    let stored: i64 = sqlx::query_scalar("select count(*) from client_key where sha256 = $1")
        .bind(&sha)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    let audit_text: String =
        sqlx::query_scalar("select new_value::text from audit_log where entity_type = 'clientKey'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        !audit_text.contains(&key),
        "plaintext key leaked into the audit log"
    );

    let (_, body) = common::latest_snapshot(&pool, "production").await;
    let snapshot: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        snapshot["clientKeys"],
        json!([{"name": "web", "sha256": sha}])
    );

    let duplicate = app
        .post(
            "/admin/environments/production/client-keys",
            json!({"name": "web"}),
        )
        .await;
    duplicate.assert_status(StatusCode::CONFLICT);
    assert_eq!(duplicate.code(), "CLIENT_KEY_EXISTS");

    app.delete("/admin/environments/production/client-keys/web")
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let (_, body) = common::latest_snapshot(&pool, "production").await;
    assert!(!body.contains(&sha));
    app.delete("/admin/environments/production/client-keys/web")
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn audit_rows_record_actor_action_and_old_and_new_values(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let alice = app.token("alice", Role::Editor, None);
    app.call(
        Method::PUT,
        "/admin/flags/new-checkout-flow?environment=production",
        &alice,
        Some(json!({"enabled": false})),
    )
    .await
    .assert_status(StatusCode::OK);

    let trail = app.get("/admin/audit?flagKey=new-checkout-flow").await;
    trail.assert_status(StatusCode::OK);
    let entries = trail.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let update = &entries[0];
    assert_eq!(update["action"], "update");
    assert_eq!(update["actor"], "alice");
    assert_eq!(update["flagKey"], "new-checkout-flow");
    assert_eq!(update["environment"], "production");
    assert_eq!(update["version"], 2);
    assert_eq!(update["oldValue"]["enabled"], true);
    assert_eq!(update["newValue"]["enabled"], false);
    assert_eq!(entries[1]["action"], "create");
    assert_eq!(entries[1]["oldValue"], Value::Null);

    let by_actor = app.get("/admin/audit?actor=alice").await;
    assert_eq!(by_actor.body["entries"].as_array().unwrap().len(), 1);
    let future = app.get("/admin/audit?from=2999-01-01T00:00:00Z").await;
    assert_eq!(future.body["entries"], json!([]));
    let past = app.get("/admin/audit?to=2000-01-01T00:00:00Z").await;
    assert_eq!(past.body["entries"], json!([]));
    let bad = app.get("/admin/audit?from=yesterday").await;
    bad.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["field"], "from");
}

#[sqlx::test(migrations = "../migrations")]
async fn audit_is_paginated_and_limited_to_the_token_environments(pool: PgPool) {
    let app = TestApp::new(pool);
    app.create_environment("dev").await;
    app.create_environment("production").await;
    for key in ["a", "b", "c"] {
        app.create_flag("dev", json!({"flagKey": key})).await;
    }
    let token = app.token("dev-viewer", Role::Viewer, Some(&["dev"]));
    let first = app
        .call(Method::GET, "/admin/audit?limit=2", &token, None)
        .await;
    first.assert_status(StatusCode::OK);
    let entries = first.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["environment"] == "dev"));
    let cursor = first.body["nextCursor"].as_i64().unwrap();
    let rest = app
        .call(
            Method::GET,
            &format!("/admin/audit?limit=2&cursor={cursor}"),
            &token,
            None,
        )
        .await;
    // 3 flags + the environment's creation, all in dev; production's row is invisible
    assert_eq!(rest.body["entries"].as_array().unwrap().len(), 2);
    assert_eq!(rest.body["nextCursor"], Value::Null);
    app.call(
        Method::GET,
        "/admin/audit?environment=production",
        &token,
        None,
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
}
