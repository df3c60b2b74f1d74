//! `/admin/segments`: reusable user segments of an environment.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use evaluator_core::model::Segment;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::extract::{IfMatch, JsonObject, Path, Query};
use super::flags::{environment_for_read, EnvironmentQuery};
use super::{
    environment_of, etag, next_page_cursor, page_limit, snapshot_version_header, AppState,
};
use crate::auth::{Caller, Role};
use crate::document;
use crate::error::{Error, Resource, Result};
use crate::mutation::Mutation;
use crate::store::audit::EntityType;
use crate::store::{segment, version_u64};
use crate::validation;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/segments", get(list).post(create))
        .route(
            "/admin/segments/{segment_key}",
            get(show).put(update).delete(remove),
        )
}

fn segment_not_found(environment: &str, key: &str) -> Error {
    Error::not_found(Resource::Segment, format!("{environment}/{key}"))
}

/// A segment from a body, ignoring the metadata members the API adds to the segments it returns.
fn parse(mut body: Map<String, Value>) -> Result<Segment> {
    for name in segment::METADATA {
        body.remove(name);
    }
    document::from_value(Value::Object(body))
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
        .ok_or_else(|| segment_not_found(&environment, &key))?;
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
    let new = parse(body)?;
    let mut m = Mutation::begin(&state.pool, &environment, &caller.sub).await?;
    if segment::find(&mut m.tx, m.env.environment_id, &new.segment_key)
        .await?
        .is_some()
    {
        return Err(Error::AlreadyExists {
            resource: Resource::Segment,
            key: format!("{environment}/{}", new.segment_key),
        });
    }
    validation::segment(&new, &m.view)?;
    let actor = m.actor.clone();
    let stored = segment::insert(&mut m.tx, m.env.environment_id, &new, &actor).await?;
    let new_value = stored.to_json(&environment);
    m.audit(
        EntityType::Segment,
        &new.segment_key,
        "create",
        None,
        Some(new_value),
        Some(1),
    )
    .await?;
    m.view.put_segment(new);
    let snapshot_version = m.commit(&state.live).await?;
    Ok(written(
        StatusCode::CREATED,
        &stored,
        &environment,
        snapshot_version,
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
    document::reject_rename(&body, "segmentKey", &key, "segment")?;
    let mut m = Mutation::begin(&state.pool, &environment, &caller.sub).await?;
    let stored = segment::find(&mut m.tx, m.env.environment_id, &key)
        .await?
        .ok_or_else(|| segment_not_found(&environment, &key))?;
    let current = version_u64(stored.version);
    if_match.check(current)?;
    let merged = document::patched(serde_json::to_value(&stored.definition.0)?, body, "segment")?;
    let changed = parse(merged)?;
    validation::segment(&changed, &m.view)?;
    let actor = m.actor.clone();
    let saved = segment::update(m.conn(), stored.segment_id, &changed, current + 1, &actor).await?;
    let (old, new) = (stored.to_json(&environment), saved.to_json(&environment));
    m.audit(
        EntityType::Segment,
        &key,
        "update",
        Some(old),
        Some(new),
        Some(current + 1),
    )
    .await?;
    m.view.put_segment(changed);
    let snapshot_version = m.commit(&state.live).await?;
    Ok(written(
        StatusCode::OK,
        &saved,
        &environment,
        snapshot_version,
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
    let mut m = Mutation::begin(&state.pool, &environment, &caller.sub).await?;
    let stored = segment::find(&mut m.tx, m.env.environment_id, &key)
        .await?
        .ok_or_else(|| segment_not_found(&environment, &key))?;
    if_match.check(version_u64(stored.version))?;
    // refused while a flag or another segment still references it
    m.view.remove_segment(&key);
    validation::remaining(&m.view)?;
    segment::delete(m.conn(), stored.segment_id).await?;
    let old = stored.to_json(&environment);
    m.audit(EntityType::Segment, &key, "delete", Some(old), None, None)
        .await?;
    let snapshot_version = m.commit(&state.live).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [snapshot_version_header(snapshot_version)],
    )
        .into_response())
}
