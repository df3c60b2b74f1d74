//! `/admin/environments`: the environments (dev, staging, production...). Reading is open to
//! every role (restricted tokens see their own environments); writing needs `admin` and is one
//! operation of [`crate::domain::environments`].

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{JsonObject, Path};
use super::flags::environment_for_read;
use super::{snapshot_version_header, writer, AppState};
use crate::auth::{Caller, Role};
use crate::document;
use crate::domain::environments;
use crate::error::Result;
use crate::store::environment;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/environments", get(list).post(create))
        .route(
            "/admin/environments/{environment}",
            get(show).put(update).delete(remove),
        )
}

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

async fn show(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Json<Value>> {
    Ok(Json(
        environment_for_read(&state, &caller, &key).await?.to_json(),
    ))
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    key: String,
    name: Option<String>,
}

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

#[derive(Debug, Deserialize)]
struct UpdateBody {
    name: String,
}

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
