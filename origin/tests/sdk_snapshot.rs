//! Server keys and `GET /sdk/v1/snapshot` at the origin (issue 14, "Keys"; docs/sdk.md): only a
//! server key of the environment downloads its snapshot, byte for byte the outbox's document,
//! gzipped when asked, revalidated with its ETag, with the event stream that announces the next
//! version. Keys of both kinds are managed through the admin API and audited.

mod common;

use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{latest_snapshot, with_checkout_flag, TestApp};
use http_body_util::BodyExt;
use origin::auth::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

const SNAPSHOT: &str = "/sdk/v1/snapshot";
const FLAG: &str = "/admin/flags/new-checkout-flow?environment=production";
const WAIT: Duration = Duration::from_secs(10);

/// A raw answer: status, headers and the body's bytes as sent (still compressed).
struct Raw {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    bytes: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

async fn raw(app: &TestApp, uri: &str, headers: &[(&str, &str)]) -> Raw {
    let mut request = Request::builder().method(Method::GET).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    Raw {
        status: parts.status,
        headers: parts.headers,
        bytes: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

async fn download(app: &TestApp, key: &str, extra: &[(&str, &str)]) -> Raw {
    let authorization = bearer(key);
    let mut headers = vec![("authorization", authorization.as_str())];
    headers.extend_from_slice(extra);
    raw(app, SNAPSHOT, &headers).await
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

async fn toggle(app: &TestApp, enabled: bool) {
    let mut flag = app.get(FLAG).await.body;
    flag["enabled"] = json!(enabled);
    app.put(FLAG, flag).await.assert_status(StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_server_key_downloads_the_published_document_gzipped_and_revalidates_it(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    let key = app.create_server_key("production", "backend").await;
    assert!(key.starts_with("efs.production."), "{key}");

    let plain = download(&app, &key, &[]).await;
    assert_eq!(plain.status, StatusCode::OK);
    let (version, body) = latest_snapshot(&pool, "production").await;
    assert_eq!(
        plain.bytes,
        body.as_bytes(),
        "the document is the outbox's, byte for byte"
    );
    assert_eq!(plain.header("content-type"), Some("application/json"));
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(
        plain.header("x-edgeflags-snapshot-version"),
        Some(version.to_string().as_str())
    );
    let etag = plain.header("etag").unwrap().to_owned();
    assert!(etag.starts_with(&format!("\"{version}-")), "{etag}");
    assert_eq!(plain.header("access-control-allow-origin"), None);
    // The snapshot lists the server key, by kind, beside the client keys.
    let listed = plain.json()["clientKeys"].clone();
    assert_eq!(listed[0]["name"], "backend");
    assert_eq!(listed[0]["kind"], "server");

    let gzipped = download(&app, &key, &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(gzipped.status, StatusCode::OK);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(gzipped.header("etag"), Some(etag.as_str()));
    assert!(gzipped.bytes.len() < plain.bytes.len());
    assert_eq!(gunzip(&gzipped.bytes), plain.bytes);

    let same = download(&app, &key, &[("if-none-match", &etag)]).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    assert!(same.bytes.is_empty());
    assert_eq!(same.header("etag"), Some(etag.as_str()));

    toggle(&app, false).await;
    let changed = download(&app, &key, &[("if-none-match", &etag)]).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(
        changed.header("x-edgeflags-snapshot-version"),
        Some((version + 1).to_string().as_str())
    );
    assert_eq!(
        changed.bytes,
        latest_snapshot(&pool, "production").await.1.as_bytes()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn client_unknown_revoked_and_missing_keys_never_get_the_snapshot(pool: PgPool) {
    let app = TestApp::requiring_client_keys(pool.clone());
    app.create_environment("production").await;
    app.create_environment("staging").await;
    let client = app.create_client_key("production", "web").await;
    let server = app.create_server_key("production", "backend").await;
    let staging_server = app.create_server_key("staging", "backend").await;

    let refused = download(&app, &client, &[]).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::FORBIDDEN, "SERVER_KEY_REQUIRED".into())
    );
    assert_eq!(refused.json()["error"]["field"], "Authorization");
    assert!(!String::from_utf8_lossy(&refused.bytes).contains("flags"));

    let missing = raw(&app, SNAPSHOT, &[]).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNAUTHORIZED, "MISSING_CLIENT_KEY".into())
    );
    let malformed = download(&app, "efs.production.nothex", &[]).await;
    assert_eq!(malformed.code(), "INVALID_CLIENT_KEY");
    // A key of another environment is not this one's; asking for it by name is 403.
    let other = raw(
        &app,
        "/sdk/v1/snapshot?environment=production",
        &[("authorization", &bearer(&staging_server))],
    )
    .await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::FORBIDDEN, "FORBIDDEN_ENVIRONMENT".into())
    );

    // Revoked: 401, exactly as for a key of an environment that does not exist.
    app.delete("/admin/environments/production/server-keys/backend")
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let revoked = download(&app, &server, &[]).await;
    assert_eq!(
        (revoked.status, revoked.code()),
        (StatusCode::UNAUTHORIZED, "INVALID_CLIENT_KEY".into())
    );
    let nowhere = download(&app, "efs.nowhere.0123456789abcdef0123456789abcdef", &[]).await;
    assert_eq!(nowhere.status, revoked.status);
    assert_eq!(nowhere.bytes, revoked.bytes);

    let posted = app
        .send(Method::POST, SNAPSHOT, Some(&staging_server), None, &[])
        .await;
    posted.assert_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    assert_eq!(posted.header("allow"), Some("GET"));
}

#[sqlx::test(migrations = "../migrations")]
async fn with_keys_off_the_environment_is_named_in_the_query(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    let open = raw(&app, "/sdk/v1/snapshot?environment=production", &[]).await;
    assert_eq!(open.status, StatusCode::OK);
    assert_eq!(
        open.bytes,
        latest_snapshot(&pool, "production").await.1.as_bytes()
    );
    let unnamed = raw(&app, SNAPSHOT, &[]).await;
    assert_eq!(
        (unnamed.status, unnamed.code()),
        (StatusCode::BAD_REQUEST, "MISSING_ENVIRONMENT".into())
    );
    let bad = raw(&app, "/sdk/v1/snapshot?environment=%3Cscript%3E", &[]).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "INVALID_ENVIRONMENT".into())
    );
    let unknown = raw(&app, "/sdk/v1/snapshot?environment=nowhere", &[]).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "SNAPSHOT_UNAVAILABLE".into()
        )
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_event_stream_it_names_announces_the_next_version(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    let key = app.create_server_key("production", "backend").await;
    let first = download(&app, &key, &[]).await;
    let stream = first.header("x-edgeflags-event-stream").unwrap().to_owned();
    assert!(
        stream.starts_with("/ofrep/v1/event-stream?token=v1.production."),
        "{stream}"
    );
    assert!(
        !stream.contains(&key),
        "the stream's URL must not hold the key"
    );

    let request = Request::builder().uri(&stream).body(Body::empty()).unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut seen = String::new();
    let opening = tokio::time::timeout(WAIT, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    seen.push_str(&String::from_utf8_lossy(&opening.into_data().unwrap()));
    toggle(&app, false).await;
    let (version, _) = latest_snapshot(&pool, "production").await;
    while !seen.contains(&format!("id: {version}\n")) {
        let frame = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("no event within the bound")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(
            &frame.into_data().unwrap_or_default(),
        ));
    }
    assert!(seen.contains("refetchEvaluation"), "{seen}");
    // The announced version is the one the snapshot route now serves.
    let next = download(&app, &key, &[]).await;
    assert_eq!(
        next.header("x-edgeflags-snapshot-version"),
        Some(version.to_string().as_str())
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn server_keys_are_listed_created_and_revoked_by_admins_only_and_audited(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    app.create_environment("production").await;
    let client = app.create_client_key("production", "web").await;
    let keys = "/admin/environments/production/server-keys";

    // One name space per environment across both kinds.
    app.post(keys, json!({"name": "web"}))
        .await
        .assert_error(StatusCode::CONFLICT, "SERVER_KEY_EXISTS");
    app.post(keys, json!({"name": "no spaces"}))
        .await
        .assert_invalid("name");
    let editor = app.token("eddie", Role::Editor, None);
    let as_editor = app
        .call(
            Method::POST,
            keys,
            &editor,
            Some(json!({"name": "backend"})),
        )
        .await;
    as_editor.assert_status(StatusCode::FORBIDDEN);

    let created = app.post(keys, json!({"name": "backend"})).await;
    created.assert_status(StatusCode::CREATED);
    let secret = created.body["key"].as_str().unwrap().to_owned();
    assert_ne!(secret, client);
    let listed = app.get(keys).await;
    listed.assert_status(StatusCode::OK);
    assert_eq!(listed.body["serverKeys"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["serverKeys"][0]["name"], "backend");
    assert!(!listed.text.contains(&secret));
    // The kinds stay apart: each route lists and revokes only its own.
    let clients = app.get("/admin/environments/production/client-keys").await;
    assert_eq!(clients.body["clientKeys"].as_array().unwrap().len(), 1);
    app.delete("/admin/environments/production/server-keys/web")
        .await
        .assert_error(StatusCode::NOT_FOUND, "SERVER_KEY_NOT_FOUND");
    app.delete("/admin/environments/production/client-keys/backend")
        .await
        .assert_error(StatusCode::NOT_FOUND, "CLIENT_KEY_NOT_FOUND");
    app.delete("/admin/environments/production/server-keys/backend")
        .await
        .assert_status(StatusCode::NO_CONTENT);

    let audit = app.get("/admin/audit?entityType=serverKey").await;
    audit.assert_status(StatusCode::OK);
    let actions: Vec<&str> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 2, "{}", audit.text);
    assert!(
        !audit.text.contains(&secret),
        "plaintext key leaked into the audit log"
    );
}
