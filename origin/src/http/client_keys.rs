//! `/admin/environments/{env}/client-keys` and `/server-keys`: an environment's credentials
//! (`docs/architecture.md`, "Client keys"; `docs/sdk.md`, "Keys"). The plaintext key is returned
//! once, at creation; only its SHA-256 is stored and published. Both kinds share one handler
//! each for listing, creating and revoking; the routes differ only in the kind and the names of
//! the answer's list. Creating and revoking are operations of [`crate::domain::client_keys`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use evaluator_core::model::KeyKind;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Admin;
use super::extract::{JsonObject, Path};
use super::openapi::admin::{
    ClientKeyCreated, ClientKeyList, ErrorBody, ServerKeyCreated, ServerKeyList,
};
use super::openapi::errors::{EnvironmentAdminErrors, EnvironmentBodyErrors};
use super::{snapshot_version_header, AppState};
use crate::auth::Role;
use crate::document;
use crate::domain::client_keys;
use crate::error::Result;
use crate::store::client_key;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_client_keys, create_client_key))
        .routes(routes!(revoke_client_key))
        .routes(routes!(list_server_keys, create_server_key))
        .routes(routes!(revoke_server_key))
}

/// The answer's list member per kind.
fn list_member(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Client => "clientKeys",
        KeyKind::Server => "serverKeys",
    }
}

async fn list(environment: String, admin: Admin, kind: KeyKind) -> Result<Json<Value>> {
    admin.caller.require(Role::Admin, &environment)?;
    let env = admin.environment_for_read(&environment).await?;
    let mut conn = admin.state.pool.acquire().await?;
    let rows = client_key::list(&mut conn, env.environment_id, kind).await?;
    let keys: Vec<Value> = rows.iter().map(|r| r.to_json(&environment)).collect();
    Ok(Json(
        json!({ "environment": environment, list_member(kind): keys }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ClientKeyCreate)]
struct CreateBody {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,255}$")]
    name: String,
}

async fn create(
    environment: String,
    admin: Admin,
    body: serde_json::Map<String, Value>,
    kind: KeyKind,
) -> Result<Response> {
    admin.caller.require(Role::Admin, &environment)?;
    let body: CreateBody = document::from_value(Value::Object(body))?;
    let created = client_keys::create(&admin.writer(), &environment, &body.name, kind).await?;
    let mut value = created.value.row.to_json(&environment);
    value["key"] = json!(created.value.key);
    Ok((
        StatusCode::CREATED,
        [snapshot_version_header(created.snapshot_version)],
        Json(value),
    )
        .into_response())
}

async fn revoke(
    environment: String,
    name: String,
    admin: Admin,
    kind: KeyKind,
) -> Result<Response> {
    admin.caller.require(Role::Admin, &environment)?;
    let revoked = client_keys::revoke(&admin.writer(), &environment, &name, kind).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [snapshot_version_header(revoked.snapshot_version)],
    )
        .into_response())
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
async fn list_client_keys(Path(environment): Path<String>, admin: Admin) -> Result<Json<Value>> {
    list(environment, admin, KeyKind::Client).await
}

#[utoipa::path(
    post,
    path = "/admin/environments/{environment}/client-keys",
    tag = "environments",
    operation_id = "createClientKey",
    summary = "Create a client key",
    description = "A client key is public: it may ship in a browser app, and only ever gets \
        evaluation answers. The answer is the only time the key itself is shown; the \
        environment's next snapshot allows it. Requires role `admin` on the environment.",
    params(("environment" = String, Path, description = "Environment key")),
    request_body(content = CreateBody, description = "The key's name"),
    responses(
        (status = 201, description = "Created", body = ClientKeyCreated, headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 409, description = "`CLIENT_KEY_EXISTS`: a client or server key has this name", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: bad name", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`: no randomness for a key", body = ErrorBody),
        EnvironmentBodyErrors,
    ),
)]
async fn create_client_key(
    Path(environment): Path<String>,
    admin: Admin,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    create(environment, admin, body, KeyKind::Client).await
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
async fn revoke_client_key(
    Path((environment, name)): Path<(String, String)>,
    admin: Admin,
) -> Result<Response> {
    revoke(environment, name, admin, KeyKind::Client).await
}

#[utoipa::path(
    get,
    path = "/admin/environments/{environment}/server-keys",
    tag = "environments",
    operation_id = "listServerKeys",
    summary = "List an environment's server keys (hashes only)",
    description = "Requires role `admin` on the environment.",
    params(("environment" = String, Path, description = "Environment key")),
    responses(
        (status = 200, description = "The server keys", body = ServerKeyList),
        EnvironmentAdminErrors,
    ),
)]
async fn list_server_keys(Path(environment): Path<String>, admin: Admin) -> Result<Json<Value>> {
    list(environment, admin, KeyKind::Server).await
}

#[utoipa::path(
    post,
    path = "/admin/environments/{environment}/server-keys",
    tag = "environments",
    operation_id = "createServerKey",
    summary = "Create a server key",
    description = "A server key is secret: besides evaluating, it may download the environment's \
        snapshot (`GET /sdk/v1/snapshot`) for in-process SDKs. The answer is the only time the key \
        itself is shown; the environment's next snapshot allows it. Requires role `admin` on the \
        environment.",
    params(("environment" = String, Path, description = "Environment key")),
    request_body(content = CreateBody, description = "The key's name"),
    responses(
        (status = 201, description = "Created", body = ServerKeyCreated, headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 409, description = "`SERVER_KEY_EXISTS`: a client or server key has this name", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: bad name", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`: no randomness for a key", body = ErrorBody),
        EnvironmentBodyErrors,
    ),
)]
async fn create_server_key(
    Path(environment): Path<String>,
    admin: Admin,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    create(environment, admin, body, KeyKind::Server).await
}

#[utoipa::path(
    delete,
    path = "/admin/environments/{environment}/server-keys/{name}",
    tag = "environments",
    operation_id = "revokeServerKey",
    summary = "Revoke a server key",
    description = "The environment's next snapshot no longer allows it: edges and origins refuse \
        its snapshot downloads and evaluations, and close its event streams at the next change. \
        Requires role `admin` on the environment.",
    params(
        ("environment" = String, Path, description = "Environment key"),
        ("name" = String, Path, description = "Server key name"),
    ),
    responses(
        (status = 204, description = "Revoked", headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`SERVER_KEY_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
    ),
)]
async fn revoke_server_key(
    Path((environment, name)): Path<(String, String)>,
    admin: Admin,
) -> Result<Response> {
    revoke(environment, name, admin, KeyKind::Server).await
}
