//! The origin's public evaluation API: answers come from the in-memory compiled snapshots via the
//! shared `evaluation-api` crate and match evaluator-core evaluating the outbox snapshot directly.

mod common;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::{with_checkout_flag, TestApp};
use evaluator_core::{CompiledSnapshot, EvaluationContext};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Flags exercising every evaluation step: the checkout flag (segments, users, countries,
/// percentage), a multivariate flag with rules and a weighted rollout, a prerequisite, overrides.
async fn rich_environment(pool: PgPool) -> TestApp {
    let app = with_checkout_flag(pool).await;
    app.create_segment(
        "production",
        json!({"segmentKey": "pros", "rules": [{"clauses": [
        {"attribute": "plan", "operator": "in", "values": ["pro"]}]}]}),
    )
    .await;
    app.create_flag("production", json!({
        "flagKey": "checkout-theme",
        "enabled": true,
        "variations": [{"key": "light", "value": "light"}, {"key": "dark", "value": "dark"},
                       {"key": "neon", "value": "neon"}],
        "defaultVariation": "light",
        "targetingRules": {"rules": [
            {"clauses": [{"operator": "segmentMatch", "values": ["pros"]}], "variation": "neon"},
            {"clauses": [{"attribute": "country", "operator": "in", "values": ["DE"]}],
             "rollout": {"weights": [{"variation": "light", "weight": 33.333},
                                     {"variation": "dark", "weight": 66.667}]}}
        ]},
        "prerequisites": [{"flagKey": "new-checkout-flow", "variation": "on"}],
        "overrides": [{"userId": "u7", "variation": "dark"}]
    }))
    .await;
    app.create_flag(
        "production",
        json!({"flagKey": "kill-switch", "enabled": false}),
    )
    .await;
    app
}

#[sqlx::test(migrations = "../migrations")]
async fn origin_answers_match_evaluator_core_on_the_outbox_snapshot(pool: PgPool) {
    let app = rich_environment(pool.clone()).await;
    let (_, body) = common::latest_snapshot(&pool, "production").await;
    let (compiled, warnings) = CompiledSnapshot::from_json(body.as_bytes()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");

    let countries = ["US", "CA", "DE", "FR"];
    let plans = ["free", "pro"];
    let mut compared = 0;
    for i in 0..120 {
        let user = format!("u{i}");
        let country = countries[i % countries.len()];
        let plan = plans[(i / 4) % plans.len()];
        for key in [
            "new-checkout-flow",
            "checkout-theme",
            "kill-switch",
            "missing-flag",
        ] {
            let uri = format!(
                "/api/v1/flags/{key}?userId={user}&environment=production&country={country}&plan={plan}"
            );
            let response = app.public(Method::GET, &uri, None, &[]).await;
            let context = EvaluationContext::with_targeting_key(user.clone())
                .with_attribute("country", country)
                .with_attribute("plan", plan);
            let now = chrono::Utc::now().timestamp_millis();
            let expected = serde_json::to_value(compiled.evaluate(key, &context, now)).unwrap();
            if key == "missing-flag" {
                // the REST API answers an unknown flag with a 404 error body
                assert_eq!(response.status, StatusCode::NOT_FOUND, "{uri}");
                assert_eq!(
                    response.body["error"]["code"], expected["errorCode"],
                    "{uri}"
                );
            } else {
                assert_eq!(response.status, StatusCode::OK, "{uri}");
                assert_eq!(response.body, expected, "{uri}");
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 480);
}

#[sqlx::test(migrations = "../migrations")]
async fn batch_and_ofrep_routes_are_served_from_the_same_snapshot(pool: PgPool) {
    let app = rich_environment(pool).await;
    let batch = json!({"userId": "user123", "environment": "production",
        "flagKeys": ["new-checkout-flow", "kill-switch"], "context": {"country": "US"}});
    let response = app
        .public(Method::POST, "/api/v1/flags/batch", Some(batch), &[])
        .await;
    response.assert_status(StatusCode::OK);
    let flags = response.body["flags"].as_array().unwrap();
    assert_eq!(flags[0]["flagKey"], "new-checkout-flow");
    assert_eq!(flags[0]["enabled"], true);
    assert_eq!(flags[0]["reason"], "user-targeted");
    assert_eq!(flags[1]["enabled"], false);
    assert_eq!(flags[1]["reason"], "flag-disabled");
    let version = response
        .header("x-edgeflags-snapshot-version")
        .unwrap()
        .to_owned();

    let ofrep =
        json!({"context": {"targetingKey": "u7", "environment": "production", "country": "US"}});
    let single = app
        .public(
            Method::POST,
            "/ofrep/v1/evaluate/flags/checkout-theme",
            Some(ofrep.clone()),
            &[],
        )
        .await;
    single.assert_status(StatusCode::OK);
    assert_eq!(single.body["key"], "checkout-theme");
    let bulk = app
        .public(Method::POST, "/ofrep/v1/evaluate/flags", Some(ofrep), &[])
        .await;
    bulk.assert_status(StatusCode::OK);
    assert_eq!(bulk.body["flags"].as_array().unwrap().len(), 3);
    assert_eq!(
        bulk.header("x-edgeflags-snapshot-version"),
        Some(version.as_str())
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_commit_is_served_immediately_by_the_same_replica(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let uri = "/api/v1/flags/new-checkout-flow?userId=user123&environment=production";
    assert_eq!(
        app.public(Method::GET, uri, None, &[]).await.body["enabled"],
        true
    );
    app.put(
        "/admin/flags/new-checkout-flow?environment=production",
        json!({"enabled": false}),
    )
    .await
    .assert_status(StatusCode::OK);
    let after = app.public(Method::GET, uri, None, &[]).await;
    assert_eq!(after.body["enabled"], false);
    assert_eq!(after.body["version"], 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn another_replica_picks_up_commits_through_notify(pool: PgPool) {
    let writer = with_checkout_flag(pool.clone()).await;
    let reader = TestApp::new(pool.clone());
    let shutdown = CancellationToken::new();
    // a long poll interval: only NOTIFY can make this fast
    let (listener, announcements) =
        origin::outbox::spawn_listener(pool.clone(), Duration::from_secs(3600), shutdown.clone());
    let refresher = origin::live::spawn_follower(
        pool.clone(),
        reader.state.live.clone(),
        announcements,
        shutdown.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.state.live.version("production").is_none() {
        assert!(Instant::now() < deadline, "initial load did not happen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = reader.state.live.version("production").unwrap();

    writer
        .put(
            "/admin/flags/new-checkout-flow?environment=production",
            json!({"enabled": false}),
        )
        .await
        .assert_status(StatusCode::OK);

    while reader.state.live.version("production") == Some(before) {
        assert!(Instant::now() < deadline, "notification was not picked up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reader.state.live.version("production"), Some(before + 1));
    let uri = "/api/v1/flags/new-checkout-flow?userId=user123&environment=production";
    assert_eq!(
        reader.public(Method::GET, uri, None, &[]).await.body["enabled"],
        false
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), refresher)
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), listener)
        .await
        .unwrap()
        .unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn client_keys_are_required_when_configured(pool: PgPool) {
    let app = TestApp::requiring_client_keys(pool);
    app.create_environment_with_flag("production", json!({"flagKey": "f", "enabled": true}))
        .await;
    let key = app.create_client_key("production", "web").await;

    let uri = "/api/v1/flags/f?userId=u";
    let anonymous_uri = format!("{uri}&environment=production");
    let anonymous = app.public(Method::GET, &anonymous_uri, None, &[]).await;
    anonymous.assert_status(StatusCode::UNAUTHORIZED);
    // the key alone names the environment
    let keyed = [("x-client-key", key.as_str())];
    let answered = app.public(Method::GET, uri, None, &keyed).await;
    answered.assert_status(StatusCode::OK);
    assert_eq!(answered.body["enabled"], true);

    // revoked: the next snapshot no longer lists it
    app.delete("/admin/environments/production/client-keys/web")
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let revoked = app.public(Method::GET, uri, None, &keyed).await;
    assert!(revoked.status.is_client_error(), "{}", revoked.status);
}

/// A key of an environment that does not exist gets exactly the answer of a wrong key of one
/// that does, on every route: a caller cannot probe which environments exist.
#[sqlx::test(migrations = "../migrations")]
async fn unknown_environments_answer_exactly_like_wrong_keys(pool: PgPool) {
    let app = TestApp::requiring_client_keys(pool);
    app.create_environment_with_flag("production", json!({"flagKey": "f", "enabled": true}))
        .await;
    app.create_client_key("production", "web").await;
    let routes: [(Method, &str, Option<Value>); 4] = [
        (Method::GET, "/api/v1/flags/f?userId=u", None),
        (Method::POST, "/api/v1/flags/batch", Some(json!({}))),
        (
            Method::POST,
            "/ofrep/v1/evaluate/flags/f",
            Some(json!({"context": {}})),
        ),
        (
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Some(json!({"context": {}})),
        ),
    ];
    for (method, uri, body) in routes {
        let send = |key: &'static str| {
            let (method, body) = (method.clone(), body.clone());
            let app = &app;
            async move {
                let response = app
                    .public(method, uri, body, &[("x-client-key", key)])
                    .await;
                let mut headers: Vec<(String, String)> = response
                    .headers
                    .iter()
                    .filter(|(name, _)| *name != "date")
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                headers.sort();
                (response.status, headers, response.text)
            }
        };
        let wrong = send("efk.production.00000000000000000000000000000000").await;
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED, "{uri}");
        let unknown = send("efk.nowhere.00000000000000000000000000000000").await;
        assert_eq!(unknown, wrong, "{uri}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_evaluation_routes_get_the_shared_api_errors(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let response = app
        .public(Method::GET, "/api/v1/nothing/here", None, &[])
        .await;
    response.assert_status(StatusCode::NOT_FOUND);
    let body: &Value = &response.body;
    assert!(body["error"]["code"].is_string(), "{body}");
}

/// The documented evaluation routes are specific axum routes now; their other methods must still
/// reach the evaluation API (its preflight and 405), as at the edge, not the admin API's 405.
#[sqlx::test(migrations = "../migrations")]
async fn other_methods_of_evaluation_routes_get_the_shared_api_answers(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    for (path, allowed) in [
        ("/api/v1/flags/new-checkout-flow", "GET, OPTIONS"),
        ("/api/v1/flags/batch", "GET, POST, OPTIONS"),
        (
            "/ofrep/v1/evaluate/flags/new-checkout-flow",
            "POST, OPTIONS",
        ),
        ("/ofrep/v1/evaluate/flags", "POST, OPTIONS"),
    ] {
        let preflight = app.public(Method::OPTIONS, path, None, &[]).await;
        preflight.assert_status(StatusCode::NO_CONTENT);
        assert_eq!(
            preflight.header("access-control-allow-methods"),
            Some(allowed),
            "{path}"
        );
        let wrong = app.public(Method::DELETE, path, None, &[]).await;
        wrong.assert_status(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(wrong.header("allow"), Some(allowed), "{path}");
    }
    let rest_wrong = app
        .public(Method::PUT, "/api/v1/flags/new-checkout-flow", None, &[])
        .await;
    assert_eq!(rest_wrong.body["error"]["code"], "METHOD_NOT_ALLOWED");
    assert!(
        rest_wrong.body["error"]["field"].is_null(),
        "{}",
        rest_wrong.text
    );
    // `GET /api/v1/flags/batch` is the flag named "batch"
    let batch_flag = app
        .public(
            Method::GET,
            "/api/v1/flags/batch?environment=production",
            None,
            &[],
        )
        .await;
    batch_flag.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(batch_flag.body["error"]["code"], "FLAG_NOT_FOUND");
}
