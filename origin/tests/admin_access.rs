//! Admin API access control and limits: 401 vs 403 per role and environment restriction, the
//! rate limit (429), the body limit (413) and unknown routes.

mod common;

use axum::http::{Method, StatusCode};
use common::{now_secs, settings, with_checkout_flag, TestApp, SECRET};
use origin::auth::{Role, TokenKeys};
use origin::Settings;
use serde_json::json;
use sqlx::PgPool;

const FLAG: &str = "/admin/flags/new-checkout-flow?environment=production";

#[sqlx::test(migrations = "../migrations")]
async fn missing_token_is_401_with_a_bearer_challenge(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let response = app.public(Method::GET, FLAG, None, &[]).await;
    response.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(response.code(), "UNAUTHORIZED");
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"edgeflags-admin\"")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn invalid_expired_and_foreign_tokens_are_401_invalid_token(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let expired = app
        .state
        .tokens
        .issue("alice", Role::Admin, None, now_secs() - 7200, 60)
        .unwrap();
    let foreign = TokenKeys::new(b"some-other-secret-some-other-secret!")
        .issue("alice", Role::Admin, None, now_secs(), 60)
        .unwrap();
    for (token, reason) in [
        ("garbage", "malformed token"),
        (&expired, "token expired"),
        (&foreign, "bad token signature"),
    ] {
        let response = app.call(Method::GET, FLAG, token, None).await;
        response.assert_status(StatusCode::UNAUTHORIZED);
        let challenge = response.header("www-authenticate").unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(response.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(reason));
    }
    let basic = app
        .public(
            Method::GET,
            FLAG,
            None,
            &[("authorization", "Basic YWxpY2U6cHc=")],
        )
        .await;
    basic.assert_status(StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn viewer_reads_but_cannot_write(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    let viewer = app.token("vera", Role::Viewer, None);
    for uri in [FLAG, "/admin/flags?environment=production", "/admin/audit"] {
        app.call(Method::GET, uri, &viewer, None)
            .await
            .assert_status(StatusCode::OK);
    }
    let before = common::side_effects(&pool, "production").await;
    for (method, uri, body) in [
        (Method::PUT, FLAG, Some(json!({"enabled": false}))),
        (Method::DELETE, FLAG, None),
        (
            Method::POST,
            "/admin/flags?environment=production",
            Some(json!({"flagKey": "x"})),
        ),
        (
            Method::POST,
            "/admin/segments?environment=production",
            Some(json!({"segmentKey": "x"})),
        ),
        (
            Method::PUT,
            "/admin/flags/new-checkout-flow/overrides/u1?environment=production",
            Some(json!({"enabled": true})),
        ),
    ] {
        let response = app.call(method.clone(), uri, &viewer, body).await;
        response.assert_status(StatusCode::FORBIDDEN);
        assert_eq!(response.code(), "FORBIDDEN", "{method} {uri}");
    }
    assert_eq!(common::side_effects(&pool, "production").await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn editor_writes_flags_but_not_environments_or_client_keys(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let editor = app.token("eddie", Role::Editor, None);
    app.call(Method::PUT, FLAG, &editor, Some(json!({"enabled": false})))
        .await
        .assert_status(StatusCode::OK);
    for (method, uri, body) in [
        (
            Method::POST,
            "/admin/environments",
            Some(json!({"key": "qa"})),
        ),
        (
            Method::PUT,
            "/admin/environments/production",
            Some(json!({"name": "Prod"})),
        ),
        (Method::DELETE, "/admin/environments/production", None),
        (
            Method::POST,
            "/admin/environments/production/client-keys",
            Some(json!({"name": "web"})),
        ),
        (
            Method::GET,
            "/admin/environments/production/client-keys",
            None,
        ),
    ] {
        app.call(method, uri, &editor, body)
            .await
            .assert_status(StatusCode::FORBIDDEN);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn environment_restricted_tokens_are_403_elsewhere(pool: PgPool) {
    use Method as M;
    use StatusCode as S;
    let app = with_checkout_flag(pool).await;
    app.create_environment("dev").await;
    let dev_editor = app.token("deb", Role::Editor, Some(&["dev"]));
    let dev_admin = app.token("ada", Role::Admin, Some(&["dev"]));
    let read = app.call(M::GET, FLAG, &dev_editor, None).await;
    read.assert_status(S::FORBIDDEN);
    assert!(read.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("production"));
    let dev_flag = json!({"flagKey": "x"});
    let off = json!({"enabled": false});
    // copying out of an environment needs read access to it
    let copy = "/admin/flags/new-checkout-flow/copy";
    let from_production = json!({"from": "production", "to": "dev"});
    let dev_keys = "/admin/environments/dev/client-keys";
    // creating environments is not scoped to one, so restricted tokens cannot
    let qa = json!({"key": "qa"});
    for (token, method, uri, body, status) in [
        (
            &dev_editor,
            M::POST,
            "/admin/flags?environment=dev",
            dev_flag,
            S::CREATED,
        ),
        (&dev_editor, M::PUT, FLAG, off, S::FORBIDDEN),
        (&dev_editor, M::POST, copy, from_production, S::FORBIDDEN),
        (
            &dev_admin,
            M::POST,
            dev_keys,
            json!({"name": "k"}),
            S::CREATED,
        ),
        (&dev_admin, M::POST, "/admin/environments", qa, S::FORBIDDEN),
    ] {
        app.call(method.clone(), uri, token, Some(body))
            .await
            .assert_status(status);
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn rate_limit_answers_429_with_retry_after(pool: PgPool) {
    let settings = Settings {
        admin_rate_per_second: 0.5,
        admin_rate_burst: 3,
        ..settings()
    };
    let app = TestApp::with_settings(pool, settings);
    let token = app.token("burst", Role::Viewer, None);
    for _ in 0..3 {
        app.call(Method::GET, "/admin/environments", &token, None)
            .await
            .assert_status(StatusCode::OK);
    }
    let limited = app
        .call(Method::GET, "/admin/environments", &token, None)
        .await;
    limited.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), "RATE_LIMITED");
    assert_eq!(limited.header("retry-after"), Some("2"));
    // the bucket is per subject: someone else is not affected
    let other = app.token("calm", Role::Viewer, None);
    app.call(Method::GET, "/admin/environments", &other, None)
        .await
        .assert_status(StatusCode::OK);
    // unauthenticated attempts share a per-address bucket, so guessing tokens is limited too
    for _ in 0..3 {
        app.call(Method::GET, "/admin/environments", "guess", None)
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    app.call(Method::GET, "/admin/environments", "guess", None)
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS);
}

#[sqlx::test(migrations = "../migrations")]
async fn oversized_body_is_413_with_a_code(pool: PgPool) {
    let settings = Settings {
        max_body_bytes: 1024,
        ..settings()
    };
    let app = TestApp::with_settings(pool, settings);
    app.create_environment("dev").await;
    let users: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let body = json!({"flagKey": "big", "targetingRules": {"userIds": users}});
    let response = app
        .admin_with(
            Method::POST,
            "/admin/flags?environment=dev",
            Some(body),
            &[],
        )
        .await;
    response.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.code(), "PAYLOAD_TOO_LARGE");
    assert!(response.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1024"));
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_routes_and_methods_get_json_errors_not_auth_challenges(pool: PgPool) {
    let app = TestApp::new(pool);
    let missing = app.public(Method::GET, "/admin/flagz", None, &[]).await;
    missing.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "ROUTE_NOT_FOUND");
    let wrong_method = app.admin(Method::PATCH, "/admin/flags", None).await;
    wrong_method.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.code(), "METHOD_NOT_ALLOWED");
}

#[test]
fn token_subcommand_prints_a_token_the_server_accepts() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_origin"))
        .args([
            "token",
            "--sub",
            "alice",
            "--role",
            "editor",
            "--environments",
            "dev,staging",
            "--ttl",
            "60",
        ])
        .env("EDGEFLAGS_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    let caller = TokenKeys::new(SECRET.as_bytes())
        .authenticate(Some(&format!("Bearer {}", token.trim())))
        .unwrap();
    assert_eq!(caller.sub, "alice");
    assert_eq!(caller.role, Role::Editor);
    assert_eq!(
        caller.environments,
        Some(vec!["dev".to_owned(), "staging".to_owned()])
    );

    let bad_role = std::process::Command::new(env!("CARGO_BIN_EXE_origin"))
        .args(["token", "--sub", "alice", "--role", "owner"])
        .env("EDGEFLAGS_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("unknown role"));
}
