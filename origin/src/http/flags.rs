//! `/admin/flags`: flag CRUD and history, plus rollback and copy between environments. Every
//! change is one operation of [`crate::domain::flags`].

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use evaluator_core::model::Flag;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{IfMatch, JsonObject, Path, Query};
use super::openapi::admin::{ErrorBody, FlagHistory, FlagPage};
use super::openapi::errors::{ChangeErrors, CreateErrors, DeleteErrors, PageErrors, ReadErrors};
use super::{
    change_headers, created_or_ok, environment_for_edit, environment_of, etag, next_page_cursor,
    page_limit, writer, AppState,
};
use crate::auth::{Caller, Role};
use crate::document;
use crate::domain::flags;
use crate::error::{Error, Resource, Result};
use crate::store::{environment, flag};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(history))
        .routes(routes!(rollback))
        .routes(routes!(copy))
}

#[derive(Debug, Deserialize)]
pub(super) struct EnvironmentQuery {
    pub(super) environment: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageQuery {
    /// Environment key.
    #[param(required = true)]
    pub(super) environment: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(super) limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub(super) cursor: Option<String>,
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
    let (environment, env) = environment_of_read(state, caller, environment).await?;
    let stored = flag::find(&mut *state.pool.acquire().await?, env.environment_id, key)
        .await?
        .ok_or_else(|| flag_not_found(&environment, key))?;
    Ok((environment, stored))
}

/// The environment a read names in `?environment=` (required) and its row, once the caller may
/// read it.
pub(super) async fn environment_of_read(
    state: &AppState,
    caller: &Caller,
    environment: Option<&str>,
) -> Result<(String, environment::Row)> {
    let environment = environment_of(environment, None)?;
    let env = environment_for_read(state, caller, &environment).await?;
    Ok((environment, env))
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

/// A page read's checked request: the environment key, its row (after the caller's read access
/// is checked) and the page size.
pub(super) async fn page_for_read(
    state: &AppState,
    caller: &Caller,
    environment: Option<&str>,
    limit: Option<i64>,
) -> Result<(String, environment::Row, i64)> {
    let limit = page_limit(limit)?;
    let (environment, env) = environment_of_read(state, caller, environment).await?;
    Ok((environment, env, limit))
}

/// A flag written by a mutation: its JSON with `ETag` and the snapshot version produced.
pub(super) fn written(status: StatusCode, flag: &Flag, snapshot_version: u64) -> Response {
    (
        status,
        change_headers(flag.version, snapshot_version),
        Json(flag),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/admin/flags",
    tag = "flags",
    operation_id = "listFlags",
    summary = "List the flags of an environment",
    description = "A page of flags, by key. Requires role `viewer` on the environment.",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of flags", body = FlagPage),
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
async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Response> {
    let (_, stored) = flag_for_read(&state, &caller, q.environment.as_deref(), &key).await?;
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
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<EnvironmentQuery>,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let environment =
        environment_for_edit(&caller, q.environment.as_deref(), body.get("environment"))?;
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
        ("If-Match" = Option<String>, Header, description = "The flag version the change is based \
            on (`3`, `\"3\"` or `W/\"3\"`); a stale one gives 409 `VERSION_CONFLICT`"),
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
        ("If-Match" = Option<String>, Header, description = "The flag version the deletion is based on"),
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
async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
) -> Result<Response> {
    let environment = environment_for_edit(&caller, q.environment.as_deref(), None)?;
    let deleted = flags::delete(
        &writer(&state, &caller),
        &environment,
        &key,
        if_match.into(),
    )
    .await?;
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
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>> {
    let (environment, env, limit) =
        page_for_read(&state, &caller, q.environment.as_deref(), q.limit).await?;
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
        ("If-Match" = Option<String>, Header,
            description = "The current version (of the flag, or of its deletion)"),
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
        ChangeErrors,
    ),
)]
async fn rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let environment =
        environment_for_edit(&caller, q.environment.as_deref(), body.get("environment"))?;
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
        ("If-Match" = Option<String>, Header,
            description = "The target's current version (`*`: the target must exist)"),
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
    ),
)]
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
    let status = created_or_ok(copied.value.created);
    Ok(written(status, &copied.value.flag, copied.snapshot_version))
}
