//! Issue 11, "Resource budgets": the origin's evaluation API cannot starve the runtime that
//! serves the admin API and `/readyz`. Large requests run on the blocking pool within a
//! concurrency bound (503 `OVERLOADED` beyond it), and evaluation has its own rate limit (429
//! `RATE_LIMITED`). Slots are taken by the test itself (`EvaluationGate::try_slot`), so the
//! refusals are deterministic, never a matter of timing.

mod common;

use axum::http::{Method, StatusCode};
use common::{with_checkout_flag, TestApp};
use origin::live::EvaluationBudget;
use serde_json::{json, Value};
use sqlx::PgPool;

fn ofrep_context() -> Value {
    json!({"context": {"targetingKey": "user123", "environment": "production", "country": "US"}})
}

/// Every flag of production, through OFREP bulk: a large request.
async fn bulk(app: &TestApp) -> common::TestResponse {
    app.public(
        Method::POST,
        "/ofrep/v1/evaluate/flags",
        Some(ofrep_context()),
        &[],
    )
    .await
}

#[sqlx::test(migrations = "../migrations")]
async fn with_concurrency_1_a_large_evaluation_is_refused_while_another_holds_the_slot(
    pool: PgPool,
) {
    let app = with_checkout_flag(pool).await;
    app.state.live.set_evaluation_budget(EvaluationBudget {
        concurrency: 1,
        ..EvaluationBudget::DEFAULT
    });
    let gate = app.state.live.evaluation_gate();
    let held = gate.try_slot().expect("the one slot is free");
    assert!(gate.try_slot().is_none());

    let refused = bulk(&app).await;
    refused.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.body["errorCode"], "GENERAL");
    assert!(
        refused.body["errorDetails"]
            .as_str()
            .unwrap()
            .starts_with("OVERLOADED: "),
        "{}",
        refused.text
    );
    // The REST batch without flagKeys evaluates every flag too.
    let batch = json!({"userId": "user123", "environment": "production"});
    let refused = app
        .public(Method::POST, "/api/v1/flags/batch", Some(batch), &[])
        .await;
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE, "OVERLOADED");
    assert_eq!(refused.header("retry-after"), Some("1"));

    // One flag is answered in place, and the admin API and readiness are untouched.
    app.public(
        Method::GET,
        "/api/v1/flags/new-checkout-flow?userId=user123&environment=production",
        None,
        &[],
    )
    .await
    .assert_status(StatusCode::OK);
    app.get("/admin/environments")
        .await
        .assert_status(StatusCode::OK);
    app.public(Method::GET, "/readyz", None, &[])
        .await
        .assert_status(StatusCode::OK);

    drop(held);
    let served = bulk(&app).await;
    served.assert_status(StatusCode::OK);
    assert_eq!(served.body["flags"][0]["key"], "new-checkout-flow");
    // The slot came back when the evaluation finished.
    assert!(gate.try_slot().is_some());
}

#[sqlx::test(migrations = "../migrations")]
async fn evaluation_requests_over_their_rate_limit_get_429_with_retry_after(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    app.state.live.set_evaluation_budget(EvaluationBudget {
        rate_per_second: 0.5,
        burst: 2,
        ..EvaluationBudget::DEFAULT
    });
    let uri = "/api/v1/flags/new-checkout-flow?userId=user123&environment=production";
    for _ in 0..2 {
        app.public(Method::GET, uri, None, &[])
            .await
            .assert_status(StatusCode::OK);
    }
    let limited = app.public(Method::GET, uri, None, &[]).await;
    limited.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    // one token per two seconds: the next is due in at most two
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let limited = bulk(&app).await;
    limited.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.body["errorCode"], "GENERAL");

    // The admin API has a limit of its own; evaluation's does not touch it.
    app.get("/admin/environments")
        .await
        .assert_status(StatusCode::OK);
}

#[test]
fn the_default_budget_is_the_configuration_default() {
    use clap::Parser;
    let cli = origin::config::Cli::try_parse_from(["origin", "--jwt-secret", "x"]).unwrap();
    assert_eq!(
        EvaluationBudget::from(&cli.config),
        EvaluationBudget::DEFAULT
    );
}
