//! `/admin/environments/{env}/client-keys`: evaluation credentials (`docs/architecture.md`,
//! "Client keys"). The plaintext key is returned once, at creation; only its SHA-256 is stored
//! and published. Creating and revoking are operations of [`crate::domain::client_keys`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{JsonObject, Path};
use super::flags::environment_for_read;
use super::{snapshot_version_header, writer, AppState};
use crate::auth::{Caller, Role};
use crate::document;
use crate::domain::client_keys;
use crate::error::Result;
use crate::store::client_key;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/environments/{environment}/client-keys",
            get(list).post(create),
        )
        .route(
            "/admin/environments/{environment}/client-keys/{name}",
            delete(remove),
        )
}

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

#[derive(Debug, Deserialize)]
struct CreateBody {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(environment): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    caller.require(Role::Admin, &environment)?;
    let body: CreateBody = document::from_value(Value::Object(body))?;
    let created = client_keys::create(&writer(&state, &caller), &environment, &body.name).await?;
    let mut value = created.value.row.to_json(&environment);
    value["key"] = json!(created.value.key);
    Ok((
        StatusCode::CREATED,
        [snapshot_version_header(created.snapshot_version)],
        Json(value),
    )
        .into_response())
}

async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((environment, name)): Path<(String, String)>,
) -> Result<Response> {
    caller.require(Role::Admin, &environment)?;
    let revoked = client_keys::revoke(&writer(&state, &caller), &environment, &name).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [snapshot_version_header(revoked.snapshot_version)],
    )
        .into_response())
}
