//! Operations endpoints and the OpenAPI document.

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::{seeded, TestApp};
use serde_json::Value;
use sqlx::PgPool;

#[sqlx::test(migrations = "../migrations")]
async fn healthz_and_readyz_answer_while_the_database_is_up(pool: PgPool) {
    let app = TestApp::new(pool);
    let health = app.send(Method::GET, "/healthz", None, None, &[]).await;
    health.assert_status(StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    let ready = app.send(Method::GET, "/readyz", None, None, &[]).await;
    ready.assert_status(StatusCode::OK);
    assert_eq!(ready.body["status"], "ready");
}

#[sqlx::test(migrations = "../migrations")]
async fn readyz_is_503_when_the_database_is_unreachable(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    pool.close().await;
    let ready = app.send(Method::GET, "/readyz", None, None, &[]).await;
    ready.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.code(), "UNAVAILABLE");
    // liveness does not depend on the database
    app.send(Method::GET, "/healthz", None, None, &[])
        .await
        .assert_status(StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn metrics_expose_latency_by_route_and_status_and_errors(pool: PgPool) {
    let app = seeded(pool).await;
    app.admin(
        Method::GET,
        "/admin/flags/nope?environment=production",
        None,
    )
    .await;
    let metrics = app.send(Method::GET, "/metrics", None, None, &[]).await;
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

/// `(METHOD, /path/{param})` of every route the admin routers declare, read from their source so
/// that a route added without documenting it fails this test.
fn declared_admin_routes() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = source.as_str();
        while let Some(at) = rest.find(".route(") {
            // the call's arguments: up to the parenthesis that closes `.route(`
            let args = &rest[at + ".route(".len()..];
            let mut depth = 1;
            let end = args
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap();
            let call = &args[..end];
            rest = &args[end..];
            let path = call.trim_start().trim_start_matches('"');
            let Some((path, handlers)) = path.split_once('"') else {
                continue;
            };
            if !path.starts_with("/admin") {
                continue;
            }
            for method in ["get", "post", "put", "delete"] {
                if handlers.contains(&format!("{method}(")) {
                    routes.insert((method.to_uppercase(), path.to_owned()));
                }
            }
        }
    }
    routes
}

/// OpenAPI uses `{flagKey}`-style names; the router `{flag_key}`: compare shapes only.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn openapi_documents_exactly_the_admin_routes() {
    let doc: Value = serde_json::from_str(origin::http::OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            assert!(
                operation["responses"].is_object(),
                "{method} {path} has no responses"
            );
            documented.insert((method.to_uppercase(), shape(path)));
        }
    }
    let declared: BTreeSet<(String, String)> = declared_admin_routes()
        .into_iter()
        .map(|(m, p)| (m, shape(&p)))
        .collect();
    assert!(declared.len() >= 20, "route scan found only {declared:?}");
    let admin_documented: BTreeSet<_> = documented
        .iter()
        .filter(|(_, p)| p.starts_with("/admin"))
        .cloned()
        .collect();
    assert_eq!(admin_documented, declared);
}

#[sqlx::test(migrations = "../migrations")]
async fn openapi_document_is_served(pool: PgPool) {
    let app = TestApp::new(pool);
    let response = app
        .send(Method::GET, "/openapi.json", None, None, &[])
        .await;
    response.assert_status(StatusCode::OK);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body["info"]["title"], "edgeflags admin API");
}
