//! `/admin/flags/{flagKey}/overrides`: per-user overrides of a flag (`flag_override` rows), each
//! change a new version of the flag ([`crate::domain::overrides`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use chrono::Utc;
use evaluator_core::model::Override;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{IfMatch, JsonObject, Path, Query};
use super::flags::{flag_for_read, EnvironmentQuery};
use super::{environment_of, etag, snapshot_version_header, writer, AppState};
use crate::auth::{Caller, Role};
use crate::document;
use crate::domain::overrides;
use crate::error::Result;
use crate::store::flag::parse_expiry;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/flags/{flag_key}/overrides", get(list))
        .route(
            "/admin/flags/{flag_key}/overrides/{user_id}",
            put(set).delete(remove),
        )
}

fn to_json(o: &Override, now: chrono::DateTime<Utc>) -> Value {
    let mut value = serde_json::to_value(o).unwrap_or(Value::Null);
    // evaluation ignores an expired override; say so rather than leave clients to compare times
    let expired = o
        .expires_at
        .as_deref()
        .and_then(|t| parse_expiry(t, String::new()).ok())
        .is_some_and(|t| t <= now);
    value["expired"] = json!(expired);
    value
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Response> {
    let (environment, stored) =
        flag_for_read(&state, &caller, q.environment.as_deref(), &key).await?;
    let now = Utc::now();
    let overrides: Vec<Value> = stored
        .flag
        .overrides
        .iter()
        .map(|o| to_json(o, now))
        .collect();
    Ok((
        [etag(stored.flag.version)],
        Json(json!({
            "flagKey": key,
            "environment": environment,
            "version": stored.flag.version,
            "overrides": overrides,
        })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OverrideBody {
    #[allow(dead_code)]
    environment: Option<String>,
    variation: Option<String>,
    enabled: Option<bool>,
    expires_at: Option<String>,
}

async fn set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((key, user_id)): Path<(String, String)>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let environment = environment_of(q.environment.as_deref(), body.get("environment"))?;
    caller.require(Role::Editor, &environment)?;
    // `environment` is part of the body's shape (so it is not an unknown field) but was read above
    let body: OverrideBody = document::from_value(Value::Object(body))?;
    let new = Override {
        user_id,
        variation: body.variation,
        enabled: body.enabled,
        expires_at: body.expires_at,
    };
    let put = overrides::put(
        &writer(&state, &caller),
        &environment,
        &key,
        new.clone(),
        if_match.into(),
    )
    .await?;
    let status = if put.value.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [
            etag(put.value.version),
            snapshot_version_header(put.snapshot_version),
        ],
        Json(json!({
            "flagKey": key,
            "environment": environment,
            "version": put.value.version,
            "override": to_json(&new, Utc::now()),
        })),
    )
        .into_response())
}

async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((key, user_id)): Path<(String, String)>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
) -> Result<Response> {
    let environment = environment_of(q.environment.as_deref(), None)?;
    caller.require(Role::Editor, &environment)?;
    let deleted = overrides::delete(
        &writer(&state, &caller),
        &environment,
        &key,
        &user_id,
        if_match.into(),
    )
    .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [
            etag(deleted.value),
            snapshot_version_header(deleted.snapshot_version),
        ],
    )
        .into_response())
}
