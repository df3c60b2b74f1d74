//! `/admin/environments`: the environments (dev, staging, production...). Reading is open to
//! every role (restricted tokens see their own environments); writing needs `admin` and is one
//! operation of [`crate::domain::environments`].

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Admin;
use super::extract::{JsonObject, Path};
use super::openapi::admin::{Environment, EnvironmentList, ErrorBody};
use super::openapi::errors::{
    EnvironmentAdminErrors, EnvironmentBodyErrors, EnvironmentReadErrors,
};
use super::{snapshot_version_header, AppState};
use crate::auth::Role;
use crate::document;
use crate::domain::environments;
use crate::error::Result;
use crate::store::environment;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
}

#[utoipa::path(
    get,
    path = "/admin/environments",
    tag = "environments",
    operation_id = "listEnvironments",
    summary = "List environments",
    description = "Every role; a restricted token sees its own environments only.",
    responses((status = 200, description = "The environments", body = EnvironmentList)),
)]
async fn list(admin: Admin) -> Result<Json<Value>> {
    let rows = environment::list(&mut *admin.state.pool.acquire().await?).await?;
    let environments: Vec<Value> = rows
        .iter()
        .filter(|row| admin.caller.can_access(&row.environment_key))
        .map(environment::Row::to_json)
        .collect();
    Ok(Json(json!({ "environments": environments })))
}

#[utoipa::path(
    get,
    path = "/admin/environments/{environment}",
    tag = "environments",
    operation_id = "getEnvironment",
    summary = "Get an environment",
    description = "Requires role `viewer` on the environment.",
    params(("environment" = String, Path, description = "Environment key")),
    responses(
        (status = 200, description = "The environment", body = Environment),
        EnvironmentReadErrors,
    ),
)]
async fn show(Path(key): Path<String>, admin: Admin) -> Result<Json<Value>> {
    Ok(Json(admin.environment_for_read(&key).await?.to_json()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = EnvironmentCreate)]
struct CreateBody {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,255}$")]
    key: String,
    /// 1-255 characters, not blank.
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    name: Option<String>,
    /// Whether changing a flag's `enabled` here needs `X-Edgeflags-Confirm` naming the
    /// environment; default `true` for `production`, `false` otherwise.
    protected: Option<bool>,
}

#[utoipa::path(
    post,
    path = "/admin/environments",
    tag = "environments",
    operation_id = "createEnvironment",
    summary = "Create an environment",
    description = "Publishes its first (empty) snapshot. Requires role `admin` on an \
        unrestricted token.",
    request_body(content = CreateBody, description = "Key and display name (default: the key)"),
    responses(
        (status = 201, description = "Created", body = Environment, headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
            ("Location" = String, description = "The new environment's URL"),
        )),
        (status = 400, description = "`MALFORMED_JSON`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: not an unrestricted admin", body = ErrorBody),
        (status = 409, description = "`ENVIRONMENT_EXISTS`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: bad key or name", body = ErrorBody),
    ),
)]
async fn create(admin: Admin, JsonObject(body): JsonObject) -> Result<Response> {
    admin.caller.require_unrestricted(Role::Admin)?;
    let body: CreateBody = document::from_value(Value::Object(body))?;
    let created = environments::create(
        &admin.writer(),
        &body.key,
        body.name.as_deref(),
        body.protected,
    )
    .await?;
    let mut response = (
        StatusCode::CREATED,
        [snapshot_version_header(created.snapshot_version)],
        Json(created.value.to_json()),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/admin/environments/{}", body.key)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = EnvironmentUpdate)]
struct UpdateBody {
    /// The new display name: 1-255 characters, not blank.
    #[schema(min_length = 1, max_length = 255, pattern = "\\S")]
    name: Option<String>,
    /// Whether changing a flag's `enabled` here needs `X-Edgeflags-Confirm` naming the
    /// environment.
    protected: Option<bool>,
}

#[utoipa::path(
    put,
    path = "/admin/environments/{environment}",
    tag = "environments",
    operation_id = "renameEnvironment",
    summary = "Rename an environment or set whether it is protected",
    description = "Give `name`, `protected` or both (neither: 422). Requires role `admin` on \
        the environment.",
    params(("environment" = String, Path, description = "Environment key")),
    request_body(content = UpdateBody, description = "The new display name and/or protection"),
    responses(
        (status = 200, description = "The renamed environment", body = Environment, headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 422, description = "`VALIDATION_FAILED`: bad name", body = ErrorBody),
        EnvironmentBodyErrors,
    ),
)]
async fn update(
    Path(key): Path<String>,
    admin: Admin,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    admin.caller.require(Role::Admin, &key)?;
    let body: UpdateBody = document::from_value(Value::Object(body))?;
    let renamed =
        environments::update(&admin.writer(), &key, body.name.as_deref(), body.protected).await?;
    Ok((
        [snapshot_version_header(renamed.snapshot_version)],
        Json(renamed.value.to_json()),
    )
        .into_response())
}

#[utoipa::path(
    delete,
    path = "/admin/environments/{environment}",
    tag = "environments",
    operation_id = "deleteEnvironment",
    summary = "Delete an empty environment",
    description = "Its last snapshot is empty, so edges stop serving it. Requires role `admin` \
        on the environment.",
    params(("environment" = String, Path, description = "Environment key")),
    responses(
        (status = 204, description = "Deleted", headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Version of its last (empty) snapshot"),
        )),
        (status = 409, description = "`ENVIRONMENT_NOT_EMPTY`: it still has flags or segments", body = ErrorBody),
        EnvironmentAdminErrors,
    ),
)]
async fn remove(Path(key): Path<String>, admin: Admin) -> Result<Response> {
    admin.caller.require(Role::Admin, &key)?;
    let deleted = environments::delete(&admin.writer(), &key).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [snapshot_version_header(deleted.snapshot_version)],
    )
        .into_response())
}
