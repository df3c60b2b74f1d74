//! `/admin/segments`: reusable user segments of an environment; every change is one operation of
//! [`crate::domain::segments`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{IfMatch, JsonObject, Path, Query};
use super::flags::{environment_for_read, EnvironmentQuery};
use super::{
    environment_of, etag, next_page_cursor, page_limit, snapshot_version_header, writer, AppState,
};
use crate::auth::{Caller, Role};
use crate::domain::segments;
use crate::error::Result;
use crate::store::{segment, version_u64};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/segments", get(list).post(create))
        .route(
            "/admin/segments/{segment_key}",
            get(show).put(update).delete(remove),
        )
}

fn written(
    status: StatusCode,
    stored: &segment::Stored,
    environment: &str,
    snapshot_version: u64,
) -> Response {
    (
        status,
        [
            etag(version_u64(stored.version)),
            snapshot_version_header(snapshot_version),
        ],
        Json(stored.to_json(environment)),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    environment: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
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
    let mut rows = segment::page(
        &mut conn,
        env.environment_id,
        q.cursor.as_deref(),
        limit + 1,
    )
    .await?;
    let next_cursor = next_page_cursor(&mut rows, limit, |s| s.definition.0.segment_key.clone());
    let segments: Vec<Value> = rows.iter().map(|s| s.to_json(&environment)).collect();
    Ok(Json(
        json!({ "environment": environment, "segments": segments, "nextCursor": next_cursor }),
    ))
}

async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Response> {
    let environment = environment_of(q.environment.as_deref(), None)?;
    let env = environment_for_read(&state, &caller, &environment).await?;
    let stored = segment::find(&mut *state.pool.acquire().await?, env.environment_id, &key)
        .await?
        .ok_or_else(|| segments::not_found(&environment, &key))?;
    Ok((
        [etag(version_u64(stored.version))],
        Json(stored.to_json(&environment)),
    )
        .into_response())
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<EnvironmentQuery>,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let environment = environment_of(q.environment.as_deref(), body.get("environment"))?;
    caller.require(Role::Editor, &environment)?;
    let new = segments::parse(body)?;
    let created = segments::create(&writer(&state, &caller), &environment, new).await?;
    Ok(written(
        StatusCode::CREATED,
        &created.value,
        &environment,
        created.snapshot_version,
    ))
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
    let saved = segments::update(
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
        &environment,
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
    let deleted = segments::delete(
        &writer(&state, &caller),
        &environment,
        &key,
        if_match.into(),
    )
    .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [snapshot_version_header(deleted.snapshot_version)],
    )
        .into_response())
}
