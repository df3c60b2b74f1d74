//! Operations endpoints (the OpenAPI document has its own tests in `openapi.rs`).

mod common;

use axum::http::{Method, StatusCode};
use common::{with_checkout_flag, TestApp};
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn healthz_and_readyz_answer_while_the_database_is_up(pool: PgPool) {
    let app = TestApp::new(pool);
    let health = app.public(Method::GET, "/healthz", None, &[]).await;
    health.assert_status(StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    let ready = app.public(Method::GET, "/readyz", None, &[]).await;
    ready.assert_status(StatusCode::OK);
    assert_eq!(ready.body["status"], "ready");
}

#[sqlx::test(migrations = "../migrations")]
async fn readyz_is_503_when_the_database_is_unreachable(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    pool.close().await;
    let ready = app.public(Method::GET, "/readyz", None, &[]).await;
    ready.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.code(), "UNAVAILABLE");
    // liveness does not depend on the database
    app.public(Method::GET, "/healthz", None, &[])
        .await
        .assert_status(StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_expose_latency_by_route_and_status_and_errors(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    app.get("/admin/flags/nope?environment=production").await;
    let metrics = app.public(Method::GET, "/metrics", None, &[]).await;
    metrics.assert_status(StatusCode::OK);
    let text = &metrics.text;
    assert!(text.contains(
        r#"edgeflags_http_request_duration_seconds_count{method="POST",route="/admin/flags",status="201"} 1"#
    ), "{text}");
    assert!(
        text.contains(
            r#"edgeflags_http_errors_total{class="4xx",route="/admin/flags/{flag_key}"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"edgeflags_origin_cached_snapshot_version{environment="production"} 4"#),
        "{text}"
    );
}
