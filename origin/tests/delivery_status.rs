//! `GET /admin/environments/{environment}/delivery`: each sink's cursor as the publisher left it,
//! a permanent rejection included.

mod common;

use axum::http::{Method, StatusCode};
use common::{with_checkout_flag, TestApp};
use origin::auth::Role;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn delivery_shows_each_sinks_version_lag_and_last_failure(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    // before any sink has a cursor: the current version and no sinks
    let r = app.get("/admin/environments/production/delivery").await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["environment"], "production");
    let current = r.body["snapshotVersion"].as_u64().unwrap();
    assert!(current >= 2, "{}", r.body);
    assert_eq!(r.body["sinks"], serde_json::json!([]));

    // as the publisher leaves them: the archive up to date, the edge stuck on a rejection
    sqlx::query(
        "insert into publish_cursor (sink, environment_key, delivered_version, attempts, last_error)
         values ('s3', 'production', $1, 0, null),
                ('edge', 'production', 1, 3, 'rejected: 422 INVALID_SNAPSHOT')",
    )
    .bind(i64::try_from(current).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    let r = app.get("/admin/environments/production/delivery").await;
    r.assert_status(StatusCode::OK);
    let sinks = r.body["sinks"].as_array().unwrap();
    assert_eq!(sinks.len(), 2);
    assert_eq!(sinks[0]["sink"], "edge");
    assert_eq!(sinks[0]["deliveredVersion"], 1);
    assert_eq!(sinks[0]["behind"], current - 1);
    assert_eq!(sinks[0]["attempts"], 3);
    assert_eq!(sinks[0]["lastError"], "rejected: 422 INVALID_SNAPSHOT");
    assert!(sinks[0]["nextAttemptAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(sinks[1]["sink"], "s3");
    assert_eq!(sinks[1]["behind"], 0);
    assert!(sinks[1]["lastError"].is_null());
}

#[sqlx::test(migrations = "../migrations")]
async fn delivery_needs_read_access_to_an_existing_environment(pool: PgPool) {
    let app = TestApp::new(pool);
    app.create_environment("production").await;
    app.get("/admin/environments/nope/delivery")
        .await
        .assert_error(StatusCode::NOT_FOUND, "ENVIRONMENT_NOT_FOUND");
    let dev_only = app.token("dana", Role::Viewer, Some(&["dev"]));
    app.send(
        Method::GET,
        "/admin/environments/production/delivery",
        Some(&dev_only),
        None,
        &[],
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    app.send(
        Method::GET,
        "/admin/environments/production/delivery",
        None,
        None,
        &[],
    )
    .await
    .assert_status(StatusCode::UNAUTHORIZED);
}
