//! `/admin/environments/{env}/client-keys`: evaluation credentials (`docs/architecture.md`,
//! "Client keys"). The plaintext key is returned once, at creation; only its SHA-256 is stored
//! and published. Creating and revoking are operations of [`crate::domain::client_keys`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Admin;
use super::extract::{JsonObject, Path};
use super::openapi::admin::{ClientKeyCreated, ClientKeyList, ErrorBody};
use super::openapi::errors::{EnvironmentAdminErrors, EnvironmentBodyErrors};
use super::{snapshot_version_header, AppState};
use crate::auth::Role;
use crate::document;
use crate::domain::client_keys;
use crate::error::Result;
use crate::store::client_key;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
}

#[utoipa::path(
    get,
    path = "/admin/environments/{environment}/client-keys",
    tag = "environments",
    operation_id = "listClientKeys",
    summary = "List an environment's client keys (hashes only)",
    description = "Requires role `admin` on the environment.",
    params(("environment" = String, Path, description = "Environment key")),
    responses(
        (status = 200, description = "The client keys", body = ClientKeyList),
        EnvironmentAdminErrors,
    ),
)]
async fn list(Path(environment): Path<String>, admin: Admin) -> Result<Json<Value>> {
    admin.caller.require(Role::Admin, &environment)?;
    let env = admin.environment_for_read(&environment).await?;
    let mut conn = admin.state.pool.acquire().await?;
    let rows = client_key::list(&mut conn, env.environment_id).await?;
    let keys: Vec<Value> = rows.iter().map(|r| r.to_json(&environment)).collect();
    Ok(Json(
        json!({ "environment": environment, "clientKeys": keys }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ClientKeyCreate)]
struct CreateBody {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,255}$")]
    name: String,
}

#[utoipa::path(
    post,
    path = "/admin/environments/{environment}/client-keys",
    tag = "environments",
    operation_id = "createClientKey",
    summary = "Create a client key",
    description = "The answer is the only time the key itself is shown; the environment's next \
        snapshot allows it. Requires role `admin` on the environment.",
    params(("environment" = String, Path, description = "Environment key")),
    request_body(content = CreateBody, description = "The key's name"),
    responses(
        (status = 201, description = "Created", body = ClientKeyCreated, headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 409, description = "`CLIENT_KEY_EXISTS`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: bad name", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`: no randomness for a key", body = ErrorBody),
        EnvironmentBodyErrors,
    ),
)]
async fn create(
    Path(environment): Path<String>,
    admin: Admin,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    admin.caller.require(Role::Admin, &environment)?;
    let body: CreateBody = document::from_value(Value::Object(body))?;
    let created = client_keys::create(&admin.writer(), &environment, &body.name).await?;
    let mut value = created.value.row.to_json(&environment);
    value["key"] = json!(created.value.key);
    Ok((
        StatusCode::CREATED,
        [snapshot_version_header(created.snapshot_version)],
        Json(value),
    )
        .into_response())
}

#[utoipa::path(
    delete,
    path = "/admin/environments/{environment}/client-keys/{name}",
    tag = "environments",
    operation_id = "revokeClientKey",
    summary = "Revoke a client key",
    description = "The environment's next snapshot no longer allows it. Requires role `admin` \
        on the environment.",
    params(
        ("environment" = String, Path, description = "Environment key"),
        ("name" = String, Path, description = "Client key name"),
    ),
    responses(
        (status = 204, description = "Revoked", headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`CLIENT_KEY_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
    ),
)]
async fn remove(
    Path((environment, name)): Path<(String, String)>,
    admin: Admin,
) -> Result<Response> {
    admin.caller.require(Role::Admin, &environment)?;
    let revoked = client_keys::revoke(&admin.writer(), &environment, &name).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [snapshot_version_header(revoked.snapshot_version)],
    )
        .into_response())
}
