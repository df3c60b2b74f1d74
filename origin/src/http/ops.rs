//! Operations endpoints: liveness, readiness, Prometheus metrics and the admin API's OpenAPI
//! document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use crate::error::{Error, Result};

/// The admin API's OpenAPI 3.1 document; `tests/openapi.rs` checks it covers every route.
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// The process is up and serving.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can do its work: the database answers.
async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>> {
    let reachable = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        sqlx::query("select 1").execute(&state.pool),
    )
    .await;
    match reachable {
        Ok(Ok(_)) => Ok(Json(json!({ "status": "ready" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            Err(Error::Unavailable("database unreachable"))
        }
        Err(_) => Err(Error::Unavailable("database did not answer within 2 s")),
    }
}

async fn metrics(State(state): State<AppState>) -> Result<Response> {
    let text = state.metrics.render().map_err(|e| {
        tracing::error!(error = %e, "rendering metrics failed");
        Error::Unavailable("metrics unavailable")
    })?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
