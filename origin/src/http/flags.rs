//! `/admin/flags`: flag CRUD and history, plus rollback and copy between environments. Every
//! change is one operation of [`crate::domain::flags`].

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use evaluator_core::model::Flag;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{IfMatch, JsonObject, Path, Query};
use super::{
    environment_of, etag, next_page_cursor, page_limit, snapshot_version_header, writer, AppState,
};
use crate::auth::{Caller, Role};
use crate::document;
use crate::domain::flags;
use crate::error::{Error, Resource, Result};
use crate::store::{environment, flag};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/flags", get(list).post(create))
        .route(
            "/admin/flags/{flag_key}",
            get(show).put(update).delete(remove),
        )
        .route("/admin/flags/{flag_key}/history", get(history))
        .route("/admin/flags/{flag_key}/rollback", post(rollback))
        .route("/admin/flags/{flag_key}/copy", post(copy))
}

#[derive(Debug, Deserialize)]
pub(super) struct EnvironmentQuery {
    pub(super) environment: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    environment: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// 404 for flag `key` of `environment`.
pub(super) fn flag_not_found(environment: &str, key: &str) -> Error {
    flags::not_found(environment, key)
}

/// The flag a read addresses (`?environment=` + path key), after the caller's read access to
/// that environment is checked; 404 when absent.
pub(super) async fn flag_for_read(
    state: &AppState,
    caller: &Caller,
    environment: Option<&str>,
    key: &str,
) -> Result<(String, flag::Stored)> {
    let environment = environment_of(environment, None)?;
    let env = environment_for_read(state, caller, &environment).await?;
    let stored = flag::find(&mut *state.pool.acquire().await?, env.environment_id, key)
        .await?
        .ok_or_else(|| flag_not_found(&environment, key))?;
    Ok((environment, stored))
}

/// Reads need the environment to exist; its row (unlocked).
pub(super) async fn environment_for_read(
    state: &AppState,
    caller: &Caller,
    environment: &str,
) -> Result<environment::Row> {
    caller.require(Role::Viewer, environment)?;
    environment::find(&mut *state.pool.acquire().await?, environment)
        .await?
        .ok_or_else(|| Error::not_found(Resource::Environment, environment))
}

/// A flag written by a mutation: its JSON with `ETag` and the snapshot version produced.
pub(super) fn written(status: StatusCode, flag: &Flag, snapshot_version: u64) -> Response {
    (
        status,
        [
            etag(flag.version),
            snapshot_version_header(snapshot_version),
        ],
        Json(flag),
    )
        .into_response()
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>> {
    let environment = environment_of(q.environment.as_deref(), None)?;
    let limit = page_limit(q.limit)?;
    let env = environment_for_read(&state, &caller, &environment).await?;
    let mut conn = state.pool.acquire().await?;
    let mut flags = flag::page(
        &mut conn,
        env.environment_id,
        q.cursor.as_deref(),
        limit + 1,
    )
    .await?;
    let next_cursor = next_page_cursor(&mut flags, limit, |f| f.flag_key.clone());
    Ok(Json(
        json!({ "environment": environment, "flags": flags, "nextCursor": next_cursor }),
    ))
}

async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Response> {
    let (_, stored) = flag_for_read(&state, &caller, q.environment.as_deref(), &key).await?;
    Ok(([etag(stored.flag.version)], Json(stored.flag)).into_response())
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<EnvironmentQuery>,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let environment = environment_of(q.environment.as_deref(), body.get("environment"))?;
    caller.require(Role::Editor, &environment)?;
    let new: Flag = document::from_value(Value::Object(body))?;
    let saved = flags::create(&writer(&state, &caller), &environment, new).await?;
    let mut response = written(StatusCode::CREATED, &saved.value, saved.snapshot_version);
    let location = format!(
        "/admin/flags/{}?environment={environment}",
        saved.value.flag_key
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let environment = environment_of(q.environment.as_deref(), body.get("environment"))?;
    caller.require(Role::Editor, &environment)?;
    let saved = flags::update(
        &writer(&state, &caller),
        &environment,
        &key,
        if_match.into(),
        body,
    )
    .await?;
    Ok(written(
        StatusCode::OK,
        &saved.value,
        saved.snapshot_version,
    ))
}

async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
) -> Result<Response> {
    let environment = environment_of(q.environment.as_deref(), None)?;
    caller.require(Role::Editor, &environment)?;
    let deleted = flags::delete(
        &writer(&state, &caller),
        &environment,
        &key,
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

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    environment: Option<String>,
    limit: Option<i64>,
    cursor: Option<u64>,
}

async fn history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>> {
    let environment = environment_of(q.environment.as_deref(), None)?;
    let limit = page_limit(q.limit)?;
    let env = environment_for_read(&state, &caller, &environment).await?;
    let mut conn = state.pool.acquire().await?;
    let mut rows = flag::history(&mut conn, env.environment_id, &key, q.cursor, limit + 1).await?;
    if rows.is_empty() && q.cursor.is_none() {
        return Err(flag_not_found(&environment, &key));
    }
    let next_cursor = next_page_cursor(&mut rows, limit, |r| r.version.to_string());
    let versions: Vec<Value> = rows.iter().map(flag::VersionRow::to_json).collect();
    Ok(Json(json!({
        "flagKey": key,
        "environment": environment,
        "versions": versions,
        "nextCursor": next_cursor,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RollbackBody {
    #[allow(dead_code)]
    environment: Option<String>,
    version: u64,
}

async fn rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let environment = environment_of(q.environment.as_deref(), body.get("environment"))?;
    caller.require(Role::Editor, &environment)?;
    // `environment` is part of the body's shape (so it is not an unknown field) but was read above
    let body: RollbackBody = document::from_value(Value::Object(body))?;
    let saved = flags::rollback(
        &writer(&state, &caller),
        &environment,
        &key,
        if_match.into(),
        body.version,
    )
    .await?;
    Ok(written(
        StatusCode::OK,
        &saved.value,
        saved.snapshot_version,
    ))
}

#[derive(Debug, Deserialize)]
struct CopyBody {
    from: String,
    to: String,
}

async fn copy(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    if_match: IfMatch,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let body: CopyBody = document::from_value(Value::Object(body))?;
    if body.from == body.to {
        return Err(Error::invalid(
            "to",
            "source and target environment are the same",
        ));
    }
    caller.require(Role::Viewer, &body.from)?;
    caller.require(Role::Editor, &body.to)?;
    let copied = flags::copy(
        &writer(&state, &caller),
        &key,
        &body.from,
        &body.to,
        if_match.into(),
    )
    .await?;
    let status = if copied.value.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(written(status, &copied.value.flag, copied.snapshot_version))
}
