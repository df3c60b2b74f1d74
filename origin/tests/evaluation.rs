//! The origin's public evaluation API: answers come from the in-memory compiled snapshots via the
//! shared `evaluation-api` crate and match evaluator-core evaluating the outbox snapshot directly.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{seeded, settings, TestApp};
use evaluator_core::{CompiledSnapshot, EvaluationContext};
use origin::Settings;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Flags exercising every evaluation step: the seed flag (segments, users, countries,
/// percentage), a multivariate flag with rules and a weighted rollout, a prerequisite, overrides.
async fn rich_environment(pool: PgPool) -> TestApp {
    let app = seeded(pool).await;
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
    let (_, body) = origin::outbox::latest(&pool, "production")
        .await
        .unwrap()
        .unwrap();
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
            let response = app.send(Method::GET, &uri, None, None, &[]).await;
            let context = EvaluationContext::with_targeting_key(user.clone())
                .with_attribute("country", country)
                .with_attribute("plan", plan);
            let now = chrono::Utc::now().timestamp_millis();
            let expected = serde_json::to_value(compiled.evaluate(key, &context, now)).unwrap();
            if key == "missing-flag" {
                // the seed route answers an unknown flag with a 404 error body
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
        .send(
            Method::POST,
            "/api/v1/flags/batch",
            None,
            Some(Body::from(batch.to_string())),
            &[],
        )
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
        .send(
            Method::POST,
            "/ofrep/v1/evaluate/flags/checkout-theme",
            None,
            Some(Body::from(ofrep.to_string())),
            &[],
        )
        .await;
    single.assert_status(StatusCode::OK);
    assert_eq!(single.body["key"], "checkout-theme");
    let bulk = app
        .send(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            None,
            Some(Body::from(ofrep.to_string())),
            &[],
        )
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
    let app = seeded(pool).await;
    let uri = "/api/v1/flags/new-checkout-flow?userId=user123&environment=production";
    assert_eq!(
        app.send(Method::GET, uri, None, None, &[]).await.body["enabled"],
        true
    );
    app.admin(
        Method::PUT,
        "/admin/flags/new-checkout-flow?environment=production",
        Some(json!({"enabled": false})),
    )
    .await
    .assert_status(StatusCode::OK);
    let after = app.send(Method::GET, uri, None, None, &[]).await;
    assert_eq!(after.body["enabled"], false);
    assert_eq!(after.body["version"], 2);
}

#[sqlx::test(migrations = "../migrations")]
async fn another_replica_picks_up_commits_through_notify(pool: PgPool) {
    let writer = seeded(pool.clone()).await;
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
        .admin(
            Method::PUT,
            "/admin/flags/new-checkout-flow?environment=production",
            Some(json!({"enabled": false})),
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
        reader.send(Method::GET, uri, None, None, &[]).await.body["enabled"],
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
    let app = TestApp::with_settings(
        pool,
        Settings {
            require_client_keys: true,
            ..settings()
        },
    );
    app.create_environment("production").await;
    app.create_flag("production", json!({"flagKey": "f", "enabled": true}))
        .await;
    let created = app
        .admin(
            Method::POST,
            "/admin/environments/production/client-keys",
            Some(json!({"name": "web"})),
        )
        .await;
    let key = created.body["key"].as_str().unwrap().to_owned();

    let anonymous = app
        .send(
            Method::GET,
            "/api/v1/flags/f?userId=u&environment=production",
            None,
            None,
            &[],
        )
        .await;
    anonymous.assert_status(StatusCode::UNAUTHORIZED);
    let with_key = app
        .send(
            Method::GET,
            "/api/v1/flags/f?userId=u",
            None,
            None,
            &[("x-client-key", key.as_str())],
        )
        .await;
    with_key.assert_status(StatusCode::OK);
    assert_eq!(with_key.body["enabled"], true);

    // revoked: the next snapshot no longer lists it
    app.admin(
        Method::DELETE,
        "/admin/environments/production/client-keys/web",
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    let revoked = app
        .send(
            Method::GET,
            "/api/v1/flags/f?userId=u",
            None,
            None,
            &[("x-client-key", key.as_str())],
        )
        .await;
    assert!(revoked.status.is_client_error(), "{}", revoked.status);
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_evaluation_routes_get_the_shared_api_errors(pool: PgPool) {
    let app = seeded(pool).await;
    let response = app
        .send(Method::GET, "/api/v1/nothing/here", None, None, &[])
        .await;
    response.assert_status(StatusCode::NOT_FOUND);
    let body: &Value = &response.body;
    assert!(body["error"]["code"].is_string(), "{body}");
}

/// The documented evaluation routes are specific axum routes now; their other methods must still
/// reach the evaluation API (its preflight and 405), as at the edge, not the admin API's 405.
#[sqlx::test(migrations = "../migrations")]
async fn other_methods_of_evaluation_routes_get_the_shared_api_answers(pool: PgPool) {
    let app = seeded(pool).await;
    for (path, allowed) in [
        ("/api/v1/flags/new-checkout-flow", "GET, OPTIONS"),
        ("/api/v1/flags/batch", "GET, POST, OPTIONS"),
        (
            "/ofrep/v1/evaluate/flags/new-checkout-flow",
            "POST, OPTIONS",
        ),
        ("/ofrep/v1/evaluate/flags", "POST, OPTIONS"),
    ] {
        let preflight = app.send(Method::OPTIONS, path, None, None, &[]).await;
        preflight.assert_status(StatusCode::NO_CONTENT);
        assert_eq!(
            preflight.header("access-control-allow-methods"),
            Some(allowed),
            "{path}"
        );
        let wrong = app.send(Method::DELETE, path, None, None, &[]).await;
        wrong.assert_status(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(wrong.header("allow"), Some(allowed), "{path}");
    }
    let seed_wrong = app
        .send(
            Method::PUT,
            "/api/v1/flags/new-checkout-flow",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(seed_wrong.body["error"]["code"], "METHOD_NOT_ALLOWED");
    assert!(
        seed_wrong.body["error"]["field"].is_null(),
        "{}",
        seed_wrong.text
    );
    // `GET /api/v1/flags/batch` is the flag named "batch"
    let batch_flag = app
        .send(
            Method::GET,
            "/api/v1/flags/batch?environment=production",
            None,
            None,
            &[],
        )
        .await;
    batch_flag.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(batch_flag.body["error"]["code"], "FLAG_NOT_FOUND");
}
