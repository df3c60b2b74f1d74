//! `/admin/environments`: the environments (dev, staging, production...). Reading is open to
//! every role (restricted tokens see their own environments); writing needs `admin`.

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
use super::{snapshot_version_header, AppState};
use crate::auth::{Caller, Role};
use crate::document;
use crate::error::{Error, Result};
use crate::mutation::Mutation;
use crate::store::audit::EntityType;
use crate::store::{environment, version_i64};
use crate::validation;

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

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 255 {
        return Err(Error::invalid(
            "name",
            "must be 1-255 characters and not blank",
        ));
    }
    Ok(())
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
    validation::key(&body.key, "key")?;
    let name = body.name.unwrap_or_else(|| body.key.clone());
    check_name(&name)?;
    let mut m = Mutation::create_environment(&state.pool, &body.key, &name, &caller.sub).await?;
    let created = m.env.clone();
    let mut value = created.to_json();
    value["snapshotVersion"] = json!(m.snapshot_version());
    m.audit(
        EntityType::Environment,
        &body.key,
        "create",
        None,
        Some(value.clone()),
        None,
    )
    .await?;
    let snapshot_version = m.commit(&state.live).await?;
    let mut response = (
        StatusCode::CREATED,
        [snapshot_version_header(snapshot_version)],
        Json(value),
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
    check_name(&body.name)?;
    let mut m = Mutation::begin(&state.pool, &key, &caller.sub).await?;
    let old = m.env.to_json();
    let id = m.env.environment_id;
    let mut renamed = environment::rename(m.conn(), id, &body.name).await?;
    // the row shows the version this mutation is about to publish
    renamed.snapshot_version = version_i64(m.snapshot_version());
    let new = renamed.to_json();
    m.audit(
        EntityType::Environment,
        &key,
        "update",
        Some(old),
        Some(new.clone()),
        None,
    )
    .await?;
    let snapshot_version = m.commit(&state.live).await?;
    Ok(([snapshot_version_header(snapshot_version)], Json(new)).into_response())
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
    let mut m = Mutation::begin(&state.pool, &key, &caller.sub).await?;
    let (flags, segments) = environment::contents(&mut m.tx, m.env.environment_id).await?;
    if flags > 0 || segments > 0 {
        return Err(Error::EnvironmentNotEmpty {
            key,
            flags,
            segments,
        });
    }
    let old = m.env.to_json();
    m.audit(
        EntityType::Environment,
        &key,
        "delete",
        Some(old),
        None,
        None,
    )
    .await?;
    // its last snapshot is empty (no flags, no client keys), so edges stop serving it
    m.delete_environment_on_commit();
    let snapshot_version = m.commit(&state.live).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [snapshot_version_header(snapshot_version)],
    )
        .into_response())
}
