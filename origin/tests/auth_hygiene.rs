//! Admin token hygiene (docs/architecture.md, "Admin auth"): `nbf` is honoured, tokens may not
//! live longer than the configured maximum, only HS256 is accepted, the audit log names the
//! token (`jti`) as well as its subject, and no admin answer may be cached.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{now_secs, TestApp, TestResponse, SECRET};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use origin::auth::{Claims, Role, AUDIENCE, ISSUER};
use serde_json::{json, Value};
use sqlx::PgPool;

const DAY: u64 = 24 * 3600;

/// Admin claims for `root`, expiring at `exp`.
fn claims(exp: u64, iat: Option<u64>, nbf: Option<u64>, jti: Option<&str>) -> Claims {
    Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: "root".into(),
        role: Role::Admin,
        environments: None,
        exp,
        iat,
        nbf,
        jti: jti.map(str::to_owned),
    }
}

fn sign(app: &TestApp, claims: &Claims) -> String {
    app.state.tokens.sign(claims).unwrap()
}

/// Creates environment `key` as the bearer of `token`.
async fn create_environment_as(app: &TestApp, token: &str, key: &str) {
    app.call(
        Method::POST,
        "/admin/environments",
        token,
        Some(json!({ "key": key })),
    )
    .await
    .assert_status(StatusCode::CREATED);
}

async fn list_environments(app: &TestApp, token: &str) -> TestResponse {
    app.call(Method::GET, "/admin/environments", token, None)
        .await
}

#[track_caller]
fn assert_unauthorized(response: &TestResponse, message: &str) {
    response.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(
        response.body["error"]["message"],
        format!("authentication required: {message}"),
        "body: {}",
        response.text
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_token_is_refused_before_its_nbf_and_accepted_after(pool: PgPool) {
    let app = TestApp::new(pool);
    let now = now_secs();
    let early = sign(&app, &claims(now + 600, Some(now), Some(now + 60), None));
    assert_unauthorized(
        &list_environments(&app, &early).await,
        "token is not valid yet (nbf is in the future)",
    );
    let due = sign(&app, &claims(now + 600, Some(now), Some(now - 1), None));
    list_environments(&app, &due)
        .await
        .assert_status(StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_token_living_longer_than_30_days_is_refused_by_default(pool: PgPool) {
    let app = TestApp::new(pool);
    let now = now_secs();
    let refused = "token lifetime exceeds the longest accepted \
                   (EDGEFLAGS_MAX_TOKEN_LIFETIME_SECONDS)";
    let thirty_days = sign(&app, &claims(now + 30 * DAY, Some(now), None, None));
    list_environments(&app, &thirty_days)
        .await
        .assert_status(StatusCode::OK);
    for (what, too_long) in [
        (
            "exp - iat",
            claims(now + 30 * DAY + 1, Some(now), None, None),
        ),
        (
            "exp - now without iat",
            claims(now + 31 * DAY, None, None, None),
        ),
        (
            "iat long ago",
            claims(now + 60, Some(now - 30 * DAY), None, None),
        ),
    ] {
        let response = list_environments(&app, &sign(&app, &too_long)).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_unauthorized(&response, refused);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_longest_token_lifetime_is_configurable(pool: PgPool) {
    let app = TestApp::new(pool);
    let state = app
        .state
        .clone()
        .with_max_token_lifetime(Duration::from_secs(3600));
    let app = app.with_state(state);
    let now = now_secs();
    let hour = sign(&app, &claims(now + 3600, Some(now), None, None));
    list_environments(&app, &hour)
        .await
        .assert_status(StatusCode::OK);
    let two_hours = sign(&app, &claims(now + 7200, Some(now), None, None));
    list_environments(&app, &two_hours)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

/// base64url of `{"alg":"none","typ":"JWT"}` and `{"alg":"RS256","typ":"JWT"}`.
const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
const RS256_HEADER: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

#[sqlx::test(migrations = "../migrations")]
async fn alg_none_and_every_algorithm_but_hs256_are_refused(pool: PgPool) {
    let app = TestApp::new(pool);
    let now = now_secs();
    let body = claims(now + 600, Some(now), None, None);
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let hs = |alg| jsonwebtoken::encode(&Header::new(alg), &body, &key).unwrap();
    let hs256 = hs(Algorithm::HS256);
    let mut parts = hs256.split('.');
    let (_, payload, signature) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
    for (what, token) in [
        ("HS384", hs(Algorithm::HS384)),
        ("HS512", hs(Algorithm::HS512)),
        (
            "alg none, empty signature",
            format!("{NONE_HEADER}.{payload}."),
        ),
        (
            "alg none, HS256 signature",
            format!("{NONE_HEADER}.{payload}.{signature}"),
        ),
        (
            "RS256 header, HS256 signature",
            format!("{RS256_HEADER}.{payload}.{signature}"),
        ),
    ] {
        let response = list_environments(&app, &token).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_unauthorized(&response, "token must be signed with HS256");
    }
    list_environments(&app, &hs256)
        .await
        .assert_status(StatusCode::OK);
}

/// The newest audit entry.
async fn newest_audit_entry(app: &TestApp) -> Value {
    let page = app.get("/admin/audit?limit=1").await;
    page.assert_status(StatusCode::OK);
    page.body["entries"][0].clone()
}

#[sqlx::test(migrations = "../migrations")]
async fn audit_entries_name_the_token_id_next_to_the_subject(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let now = now_secs();
    let with_id = sign(&app, &claims(now + 600, Some(now), None, Some("token-7")));
    create_environment_as(&app, &with_id, "dev").await;
    let entry = newest_audit_entry(&app).await;
    assert_eq!(entry["actor"], "root");
    assert_eq!(entry["tokenId"], "token-7");

    let without_id = sign(&app, &claims(now + 600, Some(now), None, None));
    create_environment_as(&app, &without_id, "staging").await;
    let entry = newest_audit_entry(&app).await;
    assert_eq!(entry["entityKey"], "staging");
    assert_eq!(entry["tokenId"], Value::Null);
    let stored: Option<String> =
        sqlx::query_scalar("select token_id from audit_log where entity_key = 'staging'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, None);

    let by_token = app.get("/admin/audit?tokenId=token-7").await;
    by_token.assert_status(StatusCode::OK);
    let keys: Vec<&Value> = by_token.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["entityKey"])
        .collect();
    assert_eq!(keys, [&json!("dev")]);
}

#[sqlx::test(migrations = "../migrations")]
async fn tokens_the_origin_issues_carry_a_fresh_id_that_the_audit_log_records(pool: PgPool) {
    let app = TestApp::new(pool);
    let issue = || {
        app.state
            .tokens
            .issue("alice", Role::Admin, None, now_secs(), 600)
            .unwrap()
    };
    let (first, second) = (issue(), issue());
    create_environment_as(&app, &first, "dev").await;
    create_environment_as(&app, &second, "staging").await;
    let page = app.get("/admin/audit?actor=alice").await;
    let ids: Vec<&str> = page.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tokenId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{}", page.text);
    assert_ne!(ids[0], ids[1]);
    assert!(ids.iter().all(|id| id.len() == 32), "{ids:?}");
}

#[track_caller]
fn assert_no_store(response: &TestResponse, what: &str) {
    assert_eq!(
        response.header("cache-control"),
        Some("no-store"),
        "{what}: {} {}",
        response.status,
        response.text
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn every_admin_answer_is_no_store_the_client_key_above_all(pool: PgPool) {
    let app = TestApp::new(pool);
    app.create_environment("dev").await;
    let created = app
        .post(
            "/admin/environments/dev/client-keys",
            json!({"name": "web"}),
        )
        .await;
    created.assert_status(StatusCode::CREATED);
    assert!(created.body["key"]
        .as_str()
        .unwrap()
        .starts_with("efk.dev."));
    assert_no_store(&created, "the one-time client key");

    let viewer = app.token("v", Role::Viewer, None);
    let answers = [
        ("a read", app.get("/admin/environments").await),
        ("the audit trail", app.get("/admin/audit").await),
        (
            "no token",
            app.send(Method::GET, "/admin/environments", None, None, &[])
                .await,
        ),
        (
            "a bad token",
            app.call(Method::GET, "/admin/environments", "nope", None)
                .await,
        ),
        (
            "a forbidden write",
            app.call(
                Method::POST,
                "/admin/environments",
                &viewer,
                Some(json!({"key": "x"})),
            )
            .await,
        ),
        (
            "an unknown flag",
            app.get("/admin/flags/missing?environment=dev").await,
        ),
        (
            "an unknown admin path",
            app.get("/admin/nothing-here").await,
        ),
        (
            "a wrong method",
            app.admin(Method::PATCH, "/admin/audit", None).await,
        ),
    ];
    for (what, response) in &answers {
        assert_no_store(response, what);
    }
    assert_eq!(answers[2].1.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[4].1.status, StatusCode::FORBIDDEN);
    assert_eq!(answers[5].1.status, StatusCode::NOT_FOUND);
    assert_eq!(answers[7].1.status, StatusCode::METHOD_NOT_ALLOWED);

    // not an admin answer: left to its own caching rules
    let health = app.public(Method::GET, "/healthz", None, &[]).await;
    health.assert_status(StatusCode::OK);
    assert_ne!(health.header("cache-control"), Some("no-store"));
}
