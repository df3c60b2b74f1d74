//! `/admin/segments`: reusable user segments of an environment; every change is one operation of
//! [`crate::domain::segments`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use evaluator_core::model::Segment;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{Editing, EditingWith, PageQuery, Paging, Viewing};
use super::extract::{IfMatch, Path};
use super::openapi::admin::{ErrorBody, SegmentPage, StoredSegment};
use super::openapi::errors::{ChangeErrors, CreateErrors, DeleteErrors, PageErrors, ReadErrors};
use super::{change_headers, etag, next_page_cursor, snapshot_version_header, AppState};
use crate::domain::{segments, Written};
use crate::error::Result;
use crate::store::{segment, version_u64};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
}

/// A segment written by a mutation: its JSON with `ETag` and the snapshot version produced.
fn written(status: StatusCode, saved: &Written<segment::Stored>, environment: &str) -> Response {
    let headers = change_headers(version_u64(saved.value.version), saved.snapshot_version);
    (status, headers, Json(saved.value.to_json(environment))).into_response()
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
async fn list(page: Paging) -> Result<Json<Value>> {
    let mut conn = page.viewing.admin.state.pool.acquire().await?;
    let mut rows = segment::page(&mut conn, page.rows()).await?;
    let (v, limit) = (page.viewing, page.limit);
    let next_cursor = next_page_cursor(&mut rows, limit, |s| s.definition.0.segment_key.clone());
    let segments: Vec<Value> = rows.iter().map(|s| s.to_json(&v.environment)).collect();
    Ok(Json(
        json!({ "environment": v.environment, "segments": segments, "nextCursor": next_cursor }),
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
async fn show(Path(key): Path<String>, v: Viewing) -> Result<Response> {
    let mut conn = v.admin.state.pool.acquire().await?;
    let stored = segment::find(&mut conn, v.row.environment_id, &key)
        .await?
        .ok_or_else(|| segments::not_found(&v.environment, &key))?;
    let version = version_u64(stored.version);
    Ok(([etag(version)], Json(stored.to_json(&v.environment))).into_response())
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
async fn create(EditingWith { editing: e, body }: EditingWith) -> Result<Response> {
    let new = segments::parse(body)?;
    let created = segments::create(&e.writer(), &e.environment, new).await?;
    Ok(written(StatusCode::CREATED, &created, &e.environment))
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
        ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"?[0-9]{1,19}\"?)$", description = "The segment version the change is based on"),
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
    Path(key): Path<String>,
    if_match: IfMatch,
    EditingWith { editing: e, body }: EditingWith,
) -> Result<Response> {
    let saved = segments::update(&e.writer(), e.target(&key, if_match), body).await?;
    Ok(written(StatusCode::OK, &saved, &e.environment))
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
        ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"?[0-9]{1,19}\"?)$", description = "The segment version the deletion is based on"),
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
async fn remove(Path(key): Path<String>, if_match: IfMatch, e: Editing) -> Result<Response> {
    let deleted = segments::delete(&e.writer(), e.target(&key, if_match)).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [snapshot_version_header(deleted.snapshot_version)],
    )
        .into_response())
}
