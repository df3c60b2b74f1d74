//! `/admin/segments`: reusable user segments of an environment; every change is one operation of
//! [`crate::domain::segments`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use evaluator_core::model::Segment;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{IfMatch, JsonObject, Path, Query};
use super::flags::{environment_of_read, page_for_read, EnvironmentQuery, PageQuery};
use super::openapi::admin::{ErrorBody, SegmentPage, StoredSegment};
use super::openapi::errors::{ChangeErrors, CreateErrors, DeleteErrors, PageErrors, ReadErrors};
use super::{
    change_headers, environment_for_edit, etag, next_page_cursor, snapshot_version_header, writer,
    AppState,
};
use crate::auth::Caller;
use crate::domain::segments;
use crate::error::Result;
use crate::store::{segment, version_u64};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
}

fn written(
    status: StatusCode,
    stored: &segment::Stored,
    environment: &str,
    snapshot_version: u64,
) -> Response {
    (
        status,
        change_headers(version_u64(stored.version), snapshot_version),
        Json(stored.to_json(environment)),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/admin/segments",
    tag = "segments",
    operation_id = "listSegments",
    summary = "List the segments of an environment",
    description = "A page of segments, by key. Requires role `viewer` on the environment.",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of segments", body = SegmentPage),
        (status = 404, description = "`ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        PageErrors,
    ),
)]
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>> {
    let (environment, env, limit) =
        page_for_read(&state, &caller, q.environment.as_deref(), q.limit).await?;
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

#[utoipa::path(
    get,
    path = "/admin/segments/{segment_key}",
    tag = "segments",
    operation_id = "getSegment",
    summary = "Get a segment",
    description = "Requires role `viewer` on the environment.",
    params(
        ("segment_key" = String, Path, description = "Segment key"),
        ("environment" = String, Query, description = "Environment key"),
    ),
    responses(
        (status = 200, description = "The segment", body = StoredSegment,
            headers(("ETag" = String, description = "The segment version, quoted"))),
        (status = 404, description = "`SEGMENT_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        ReadErrors,
    ),
)]
async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Response> {
    let (environment, env) = environment_of_read(&state, &caller, q.environment.as_deref()).await?;
    let stored = segment::find(&mut *state.pool.acquire().await?, env.environment_id, &key)
        .await?
        .ok_or_else(|| segments::not_found(&environment, &key))?;
    Ok((
        [etag(version_u64(stored.version))],
        Json(stored.to_json(&environment)),
    )
        .into_response())
}

#[utoipa::path(
    post,
    path = "/admin/segments",
    tag = "segments",
    operation_id = "createSegment",
    summary = "Create a segment",
    description = "The body may carry `environment` (instead of the query) and the metadata \
        members the API returns (`version`, `createdAt`, `updatedAt`), which are ignored. \
        Requires role `editor`.",
    params(("environment" = Option<String>, Query,
        description = "Environment key; or the body's `environment` (they must agree)")),
    request_body(content = Segment, description = "The segment (docs/flag-model.md)"),
    responses(
        (status = 201, description = "Created", body = StoredSegment, headers(
            ("ETag" = String, description = "The segment version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 409, description = "`SEGMENT_EXISTS`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: nothing was stored", body = ErrorBody),
        CreateErrors,
    ),
)]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<EnvironmentQuery>,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let environment =
        environment_for_edit(&caller, q.environment.as_deref(), body.get("environment"))?;
    let new = segments::parse(body)?;
    let created = segments::create(&writer(&state, &caller), &environment, new).await?;
    Ok(written(
        StatusCode::CREATED,
        &created.value,
        &environment,
        created.snapshot_version,
    ))
}

#[utoipa::path(
    put,
    path = "/admin/segments/{segment_key}",
    tag = "segments",
    operation_id = "updateSegment",
    summary = "Update a segment (partial)",
    description = "Members replace the stored ones; `null` removes a member. Every flag and \
        segment of the environment must stay valid. Requires role `editor`.",
    params(
        ("segment_key" = String, Path, description = "Segment key"),
        ("environment" = Option<String>, Query,
            description = "Environment key; or the body's `environment` (they must agree)"),
        ("If-Match" = Option<String>, Header, description = "The segment version the change is based on"),
    ),
    request_body(content = ref("#/components/schemas/SegmentPatch"), content_type = "application/json",
        description = "The members to change"),
    responses(
        (status = 200, description = "The updated segment", body = StoredSegment, headers(
            ("ETag" = String, description = "The segment version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 404, description = "`SEGMENT_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`VERSION_CONFLICT`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED` (including a changed `segmentKey`)", body = ErrorBody),
        ChangeErrors,
    ),
)]
async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let environment =
        environment_for_edit(&caller, q.environment.as_deref(), body.get("environment"))?;
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

#[utoipa::path(
    delete,
    path = "/admin/segments/{segment_key}",
    tag = "segments",
    operation_id = "deleteSegment",
    summary = "Delete a segment",
    description = "Refused with 422 while a flag or another segment references it; the details \
        name each reference. Requires role `editor`.",
    params(
        ("segment_key" = String, Path, description = "Segment key"),
        ("environment" = String, Query, description = "Environment key"),
        ("If-Match" = Option<String>, Header, description = "The segment version the deletion is based on"),
    ),
    responses(
        (status = 204, description = "Deleted", headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 404, description = "`SEGMENT_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: still referenced", body = ErrorBody),
        DeleteErrors,
    ),
)]
async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
) -> Result<Response> {
    let environment = environment_for_edit(&caller, q.environment.as_deref(), None)?;
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
