//! `/admin/environments/{env}/client-keys`: evaluation credentials (contract "Client keys").
//! The plaintext key is returned once, at creation; only its SHA-256 is stored and published.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use evaluator_core::model::ClientKey;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{JsonObject, Path};
use super::flags::environment_for_read;
use super::openapi::admin::{ClientKeyCreated, ClientKeyList, ErrorBody};
use super::{snapshot_version_header, AppState};
use crate::auth::{Caller, Role};
use crate::document;
use crate::error::{Error, Resource, Result};
use crate::mutation::Mutation;
use crate::store::audit::EntityType;
use crate::store::client_key;
use crate::validation;

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
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
    ),
)]
async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(environment): Path<String>,
) -> Result<Json<Value>> {
    caller.require(Role::Admin, &environment)?;
    let env = environment_for_read(&state, &caller, &environment).await?;
    let rows = client_key::list(&mut *state.pool.acquire().await?, env.environment_id).await?;
    let keys: Vec<Value> = rows.iter().map(|r| r.to_json(&environment)).collect();
    Ok(Json(
        json!({ "environment": environment, "clientKeys": keys }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ClientKeyCreate)]
struct CreateBody {
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
        (status = 400, description = "`MALFORMED_JSON`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`CLIENT_KEY_EXISTS`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: bad name", body = ErrorBody),
        (status = 503, description = "`UNAVAILABLE`: no randomness for a key", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(environment): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    caller.require(Role::Admin, &environment)?;
    let body: CreateBody = document::from_value(Value::Object(body))?;
    validation::key(&body.name, "name")?;
    let mut m = Mutation::begin(&state.pool, &environment, &caller.sub).await?;
    let key = client_key::generate(&environment).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a client key");
        Error::Unavailable("no randomness available")
    })?;
    let sha256 = client_key::hash(&key);
    let actor = m.actor.clone();
    let row = client_key::insert(&mut m.tx, m.env.environment_id, &body.name, &sha256, &actor)
        .await?
        .ok_or_else(|| Error::AlreadyExists {
            resource: Resource::ClientKey,
            key: format!("{environment}/{}", body.name),
        })?;
    let public = row.to_json(&environment);
    m.audit(
        EntityType::ClientKey,
        &body.name,
        "create",
        None,
        Some(public.clone()),
        None,
    )
    .await?;
    m.view.put_client_key(ClientKey {
        name: row.name.clone(),
        sha256,
    });
    let snapshot_version = m.commit(&state.live).await?;
    let mut value = public;
    value["key"] = json!(key);
    Ok((
        StatusCode::CREATED,
        [snapshot_version_header(snapshot_version)],
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
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((environment, name)): Path<(String, String)>,
) -> Result<Response> {
    caller.require(Role::Admin, &environment)?;
    let mut m = Mutation::begin(&state.pool, &environment, &caller.sub).await?;
    let row = client_key::delete(&mut m.tx, m.env.environment_id, &name)
        .await?
        .ok_or_else(|| Error::not_found(Resource::ClientKey, format!("{environment}/{name}")))?;
    m.audit(
        EntityType::ClientKey,
        &name,
        "delete",
        Some(row.to_json(&environment)),
        None,
        None,
    )
    .await?;
    m.view.remove_client_key(&name);
    let snapshot_version = m.commit(&state.live).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [snapshot_version_header(snapshot_version)],
    )
        .into_response())
}
