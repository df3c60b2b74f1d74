//! `/admin/environments`: the environments (dev, staging, production...). Reading is open to
//! every role (restricted tokens see their own environments); writing needs `admin` and is one
//! operation of [`crate::domain::environments`].

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{JsonObject, Path};
use super::flags::environment_for_read;
use super::openapi::admin::{Environment, EnvironmentList, ErrorBody};
use super::{snapshot_version_header, writer, AppState};
use crate::auth::{Caller, Role};
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
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>> {
    let rows = environment::list(&mut *state.pool.acquire().await?).await?;
    let environments: Vec<Value> = rows
        .iter()
        .filter(|row| caller.can_access(&row.environment_key))
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
        (status = 403, description = "`FORBIDDEN`: the token may not read this environment", body = ErrorBody),
        (status = 404, description = "`ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
    ),
)]
async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    Ok(Json(
        environment_for_read(&state, &caller, &key).await?.to_json(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = EnvironmentCreate)]
struct CreateBody {
    key: String,
    name: Option<String>,
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
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    caller.require_unrestricted(Role::Admin)?;
    let body: CreateBody = document::from_value(Value::Object(body))?;
    let created =
        environments::create(&writer(&state, &caller), &body.key, body.name.as_deref()).await?;
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
    name: String,
}

#[utoipa::path(
    put,
    path = "/admin/environments/{environment}",
    tag = "environments",
    operation_id = "renameEnvironment",
    summary = "Rename an environment",
    description = "Requires role `admin` on the environment.",
    params(("environment" = String, Path, description = "Environment key")),
    request_body(content = UpdateBody, description = "The new display name"),
    responses(
        (status = 200, description = "The renamed environment", body = Environment, headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 400, description = "`MALFORMED_JSON`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: bad name", body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    caller.require(Role::Admin, &key)?;
    let body: UpdateBody = document::from_value(Value::Object(body))?;
    let renamed = environments::update(&writer(&state, &caller), &key, &body.name).await?;
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
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ENVIRONMENT_NOT_EMPTY`: it still has flags or segments", body = ErrorBody),
    ),
)]
async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Response> {
    caller.require(Role::Admin, &key)?;
    let deleted = environments::delete(&writer(&state, &caller), &key).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [snapshot_version_header(deleted.snapshot_version)],
    )
        .into_response())
}
