//! `/admin/flags`: flag CRUD and history, plus rollback and copy between environments. Every
//! change is one operation of [`crate::domain::flags`].

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use evaluator_core::model::Flag;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{Admin, Editing, EditingWith, PageQuery, Paging, Viewing};
use super::extract::{IfMatch, JsonObject, Path, Query};
use super::openapi::admin::{ErrorBody, FlagHistory, FlagPage};
use super::openapi::errors::{ChangeErrors, CreateErrors, DeleteErrors, PageErrors, ReadErrors};
use super::{change_headers, created_or_ok, etag, next_page_cursor, AppState};
use crate::auth::Role;
use crate::document;
use crate::domain::{flags, Written};
use crate::error::{Error, Result};
use crate::store::flag;
use crate::validation;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(history))
        .routes(routes!(rollback))
        .routes(routes!(copy))
}

/// A flag written by a mutation: its JSON with `ETag` and the snapshot version produced.
fn written(status: StatusCode, flag: &Flag, snapshot_version: u64) -> Response {
    let headers = change_headers(flag.version, snapshot_version);
    (status, headers, Json(flag)).into_response()
}

/// [`written`] of a mutation's result.
fn saved(status: StatusCode, saved: &Written<Flag>) -> Response {
    written(status, &saved.value, saved.snapshot_version)
}

/// `?tag=`: only flags carrying this tag.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TagQuery {
    /// A tag (1-64 characters of `[A-Za-z0-9_.:-]`); only flags carrying it, exactly.
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    tag: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/flags",
    tag = "flags",
    operation_id = "listFlags",
    summary = "List the flags of an environment",
    description = "A page of flags, by key; with `tag`, only the flags carrying that tag. \
        Requires role `viewer` on the environment.",
    params(PageQuery, TagQuery),
    responses(
        (status = 200, description = "A page of flags", body = FlagPage),
        (status = 404, description = "`ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        PageErrors,
    ),
)]
async fn list(page: Paging, Query(q): Query<TagQuery>) -> Result<Json<Value>> {
    if let Some(problem) = q.tag.as_deref().and_then(validation::tag_problem) {
        return Err(Error::InvalidParameter {
            name: "tag",
            message: problem,
        });
    }
    let mut conn = page.viewing.admin.state.pool.acquire().await?;
    let mut flags = flag::page(&mut conn, page.rows(), q.tag.as_deref()).await?;
    let (v, limit) = (page.viewing, page.limit);
    let next_cursor = next_page_cursor(&mut flags, limit, |f| f.flag_key.clone());
    Ok(Json(
        json!({ "environment": v.environment, "flags": flags, "nextCursor": next_cursor }),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/flags/{flag_key}",
    tag = "flags",
    operation_id = "getFlag",
    summary = "Get a flag",
    description = "Requires role `viewer` on the environment.",
    params(
        ("flag_key" = String, Path, description = "Flag key"),
        ("environment" = String, Query, description = "Environment key"),
    ),
    responses(
        (status = 200, description = "The flag", body = Flag,
            headers(("ETag" = String, description = "The flag version, quoted (`\"3\"`)"))),
        (status = 404, description = "`FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        ReadErrors,
    ),
)]
async fn show(Path(key): Path<String>, v: Viewing) -> Result<Response> {
    let stored = v.flag(&key).await?;
    Ok(([etag(stored.flag.version)], Json(stored.flag)).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/flags",
    tag = "flags",
    operation_id = "createFlag",
    summary = "Create a flag",
    description = "Validated as a whole against the environment (segments, prerequisites); \
        `version`, `createdAt` and `updatedAt` are set by the server. Requires role `editor`.",
    params(("environment" = Option<String>, Query,
        description = "Environment key; or the body's `environment` (they must agree)")),
    request_body(content = Flag, description = "The flag (docs/flag-model.md)"),
    responses(
        (status = 201, description = "Created", body = Flag, headers(
            ("ETag" = String, description = "The flag version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
            ("Location" = String, description = "The new flag's URL"),
        )),
        (status = 409, description = "`FLAG_EXISTS`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: nothing was stored; `details` name each field", body = ErrorBody),
        CreateErrors,
    ),
)]
async fn create(EditingWith { editing: e, body }: EditingWith) -> Result<Response> {
    let new: Flag = document::from_value(Value::Object(body))?;
    let created = flags::create(&e.writer(), &e.environment, new).await?;
    let mut response = saved(StatusCode::CREATED, &created);
    let location = format!(
        "/admin/flags/{}?environment={}",
        created.value.flag_key, e.environment
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

#[utoipa::path(
    put,
    path = "/admin/flags/{flag_key}",
    tag = "flags",
    operation_id = "updateFlag",
    summary = "Update a flag (partial)",
    description = "Every member of the body replaces the stored member of the same name (nested \
        objects are replaced whole); `null` removes a member. The result is validated as a whole. \
        Requires role `editor`.",
    params(
        ("flag_key" = String, Path, description = "Flag key"),
        ("environment" = Option<String>, Query,
            description = "Environment key; or the body's `environment` (they must agree)"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"?[0-9]{1,19}\"?)$", description = "The flag version the change is based \
            on (`3`, `\"3\"` or `W/\"3\"`); a stale one gives 409 `VERSION_CONFLICT`"),
        ("X-Edgeflags-Confirm" = Option<String>, Header, nullable = false,
            description = "The environment's key, confirming a change of `enabled` in a \
            protected environment (else 428 `CONFIRMATION_REQUIRED`)"),
    ),
    request_body(content = ref("#/components/schemas/FlagPatch"), content_type = "application/json",
        description = "The members to change"),
    responses(
        (status = 200, description = "The updated flag", body = Flag, headers(
            ("ETag" = String, description = "The flag version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 404, description = "`FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`VERSION_CONFLICT`: `currentVersion` names the stored version", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED` (including a changed `flagKey`)", body = ErrorBody),
        (status = 428, description = "`CONFIRMATION_REQUIRED`: `enabled` would change in a \
            protected environment without `X-Edgeflags-Confirm` naming it (`environment`); \
            nothing changed", body = ErrorBody),
        ChangeErrors,
    ),
)]
async fn update(
    Path(key): Path<String>,
    if_match: IfMatch,
    EditingWith { editing: e, body }: EditingWith,
) -> Result<Response> {
    let updated = flags::update(&e.writer(), e.target(&key, if_match), body).await?;
    Ok(saved(StatusCode::OK, &updated))
}

#[utoipa::path(
    delete,
    path = "/admin/flags/{flag_key}",
    tag = "flags",
    operation_id = "deleteFlag",
    summary = "Delete a flag",
    description = "Refused with 422 while another flag names it as a prerequisite. Its history \
        stays (a rollback restores it). Requires role `editor`.",
    params(
        ("flag_key" = String, Path, description = "Flag key"),
        ("environment" = String, Query, description = "Environment key"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"?[0-9]{1,19}\"?)$", description = "The flag version the deletion is based on"),
    ),
    responses(
        (status = 204, description = "Deleted", headers(
            ("ETag" = String, description = "The version of the deletion, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 404, description = "`FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: another flag still depends on it", body = ErrorBody),
        DeleteErrors,
    ),
)]
async fn remove(Path(key): Path<String>, if_match: IfMatch, e: Editing) -> Result<Response> {
    let deleted = flags::delete(&e.writer(), e.target(&key, if_match)).await?;
    Ok((
        StatusCode::NO_CONTENT,
        change_headers(deleted.value, deleted.snapshot_version),
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Environment key.
    #[param(required = true)]
    environment: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page (a version).
    cursor: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/admin/flags/{flag_key}/history",
    tag = "flags",
    operation_id = "getFlagHistory",
    summary = "A flag's versions, newest first",
    description = "Every change (deletions included) with its definition. Requires role `viewer`.",
    params(("flag_key" = String, Path, description = "Flag key"), HistoryQuery),
    responses(
        (status = 200, description = "A page of versions", body = FlagHistory),
        (status = 404, description = "`FLAG_NOT_FOUND` (no history) or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        PageErrors,
    ),
)]
async fn history(
    Path(key): Path<String>,
    Query(q): Query<HistoryQuery>,
    admin: Admin,
) -> Result<Json<Value>> {
    let (v, limit) = admin.paging(q.environment.as_deref(), q.limit).await?;
    let environment = v.environment;
    let mut conn = v.admin.state.pool.acquire().await?;
    let mut rows =
        flag::history(&mut conn, v.row.environment_id, &key, q.cursor, limit + 1).await?;
    if rows.is_empty() && q.cursor.is_none() {
        return Err(flags::not_found(&environment, &key));
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct RollbackBody {
    #[allow(dead_code)]
    environment: Option<String>,
    version: u64,
}

#[utoipa::path(
    post,
    path = "/admin/flags/{flag_key}/rollback",
    tag = "flags",
    operation_id = "rollbackFlag",
    summary = "Roll a flag back to an earlier version",
    description = "Writes a new version whose definition equals `version`'s (overrides \
        included); restores a deleted flag. Requires role `editor`.",
    params(
        ("flag_key" = String, Path, description = "Flag key"),
        ("environment" = Option<String>, Query,
            description = "Environment key; or the body's `environment` (they must agree)"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"?[0-9]{1,19}\"?)$",
            description = "The current version (of the flag, or of its deletion)"),
        ("X-Edgeflags-Confirm" = Option<String>, Header, nullable = false,
            description = "The environment's key, confirming a change of `enabled` in a \
            protected environment (else 428 `CONFIRMATION_REQUIRED`)"),
    ),
    request_body(content = RollbackBody, description = "The version to roll back to"),
    responses(
        (status = 200, description = "The flag as rolled back", body = Flag, headers(
            ("ETag" = String, description = "The new flag version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 404, description = "`FLAG_VERSION_NOT_FOUND`, `FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`VERSION_CONFLICT`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: the version is a deletion, or the old \
            definition is no longer valid in the environment", body = ErrorBody),
        (status = 428, description = "`CONFIRMATION_REQUIRED`: `enabled` would change in a \
            protected environment without `X-Edgeflags-Confirm` naming it (`environment`); \
            nothing changed", body = ErrorBody),
        ChangeErrors,
    ),
)]
async fn rollback(
    Path(key): Path<String>,
    if_match: IfMatch,
    EditingWith { editing: e, body }: EditingWith,
) -> Result<Response> {
    // `environment` is part of the body's shape (so it is not an unknown field) but was read above
    let body: RollbackBody = document::from_value(Value::Object(body))?;
    let rolled_back = flags::rollback(&e.writer(), e.target(&key, if_match), body.version).await?;
    Ok(saved(StatusCode::OK, &rolled_back))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct CopyBody {
    from: String,
    to: String,
}

#[utoipa::path(
    post,
    path = "/admin/flags/{flag_key}/copy",
    tag = "flags",
    operation_id = "copyFlag",
    summary = "Copy a flag to another environment",
    description = "Promotes the definition (dev → staging → production); the target keeps its \
        own overrides. `If-Match` applies to the target. Requires role `viewer` on `from` and \
        `editor` on `to`.",
    params(
        ("flag_key" = String, Path, description = "Flag key"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"?[0-9]{1,19}\"?)$",
            description = "The target's current version (`*`: the target must exist)"),
        ("X-Edgeflags-Confirm" = Option<String>, Header, nullable = false,
            description = "The environment's key, confirming a change of `enabled` in a \
            protected environment (else 428 `CONFIRMATION_REQUIRED`)"),
    ),
    request_body(content = CopyBody, description = "Source and target environment"),
    responses(
        (status = 200, description = "The target flag, replaced", body = Flag, headers(
            ("ETag" = String, description = "The target flag version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version of the target"),
        )),
        (status = 201, description = "The target flag, created", body = Flag, headers(
            ("ETag" = String, description = "The target flag version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version of the target"),
        )),
        (status = 400, description = "`MALFORMED_JSON`, or `INVALID_PARAMETER` (`If-Match`)", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`VERSION_CONFLICT`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: same environment twice, or the \
            definition is not valid in the target", body = ErrorBody),
        (status = 428, description = "`CONFIRMATION_REQUIRED`: `enabled` would change in a \
            protected environment without `X-Edgeflags-Confirm` naming it (`environment`); \
            nothing changed", body = ErrorBody),
    ),
)]
async fn copy(
    Path(key): Path<String>,
    if_match: IfMatch,
    admin: Admin,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let body: CopyBody = document::from_value(Value::Object(body))?;
    if body.from == body.to {
        return Err(Error::invalid(
            "to",
            "source and target environment are the same",
        ));
    }
    admin.caller.require(Role::Viewer, &body.from)?;
    admin.caller.require(Role::Editor, &body.to)?;
    let copied = flags::copy(&admin.writer(), &key, &body.from, &body.to, if_match.into()).await?;
    let status = created_or_ok(copied.value.created);
    Ok(written(status, &copied.value.flag, copied.snapshot_version))
}
