//! Operations endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::admin::{ErrorBody, Health};
use super::AppState;
use crate::error::{Error, Result};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}

/// The process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    summary = "Liveness",
    responses((status = 200, description = "`{\"status\":\"ok\"}`", body = Health)),
)]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The process can do its work: the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    summary = "Readiness: the database answers within 2 s",
    responses(
        (status = 200, description = "`{\"status\":\"ready\"}`", body = Health),
        (status = 503, description = "`UNAVAILABLE`: the database is unreachable", body = ErrorBody),
    ),
)]
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

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Text exposition format 0.0.4", body = String,
            content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 503, description = "`UNAVAILABLE`: rendering failed", body = ErrorBody),
    ),
)]
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

/// The document, serialised once: it is the same for the life of the process.
static DOCUMENT: LazyLock<Option<String>> = LazyLock::new(|| super::document().to_json().ok());

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    summary = "This document (OpenAPI 3.1)",
    responses(
        (status = 200, description = "The document", body = Object, content_type = "application/json"),
        (status = 503, description = "`UNAVAILABLE`: the document could not be rendered", body = ErrorBody),
    ),
)]
async fn openapi() -> Result<Response> {
    match DOCUMENT.as_deref() {
        Some(document) => {
            Ok(([(header::CONTENT_TYPE, "application/json")], document).into_response())
        }
        None => Err(Error::Unavailable(
            "the OpenAPI document could not be rendered",
        )),
    }
}
