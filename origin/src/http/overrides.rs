//! `/admin/flags/{flagKey}/overrides`: per-user overrides (the seed's `flag_overrides`), each
//! change a new version of the flag.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use chrono::Utc;
use evaluator_core::model::Override;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{IfMatch, JsonObject, Path, Query};
use super::flags::{flag_for_change, flag_for_read, EnvironmentQuery};
use super::{environment_of, etag, snapshot_version_header, AppState};
use crate::auth::{Caller, Role};
use crate::document;
use crate::error::{Error, Resource, Result};
use crate::flags::{self, Action};
use crate::mutation::Mutation;
use crate::store::flag::parse_expiry;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/flags/{flag_key}/overrides", get(list))
        .route(
            "/admin/flags/{flag_key}/overrides/{user_id}",
            put(set).delete(remove),
        )
}

fn to_json(o: &Override, now: chrono::DateTime<Utc>) -> Value {
    let mut value = serde_json::to_value(o).unwrap_or(Value::Null);
    // evaluation ignores an expired override; say so rather than leave clients to compare times
    let expired = o
        .expires_at
        .as_deref()
        .and_then(|t| parse_expiry(t, String::new()).ok())
        .is_some_and(|t| t <= now);
    value["expired"] = json!(expired);
    value
}

async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    Query(q): Query<EnvironmentQuery>,
) -> Result<Response> {
    let (environment, stored) =
        flag_for_read(&state, &caller, q.environment.as_deref(), &key).await?;
    let now = Utc::now();
    let overrides: Vec<Value> = stored
        .flag
        .overrides
        .iter()
        .map(|o| to_json(o, now))
        .collect();
    Ok((
        [etag(stored.flag.version)],
        Json(json!({
            "flagKey": key,
            "environment": environment,
            "version": stored.flag.version,
            "overrides": overrides,
        })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OverrideBody {
    #[allow(dead_code)]
    environment: Option<String>,
    variation: Option<String>,
    enabled: Option<bool>,
    expires_at: Option<String>,
}

async fn set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((key, user_id)): Path<(String, String)>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
    JsonObject(body): JsonObject,
) -> Result<Response> {
    let environment = environment_of(q.environment.as_deref(), body.get("environment"))?;
    caller.require(Role::Editor, &environment)?;
    // `environment` is part of the body's shape (so it is not an unknown field) but was read above
    let body: OverrideBody = document::from_value(Value::Object(body))?;
    let new = Override {
        user_id: user_id.clone(),
        variation: body.variation,
        enabled: body.enabled,
        expires_at: body.expires_at,
    };
    let mut m = Mutation::begin(&state.pool, &environment, &caller.sub).await?;
    let stored = flag_for_change(&mut m, &environment, &key, if_match).await?;
    let mut changed = stored.flag.clone();
    let created = match changed.overrides.iter_mut().find(|o| o.user_id == user_id) {
        Some(existing) => {
            *existing = new.clone();
            false
        }
        None => {
            changed.overrides.push(new.clone());
            changed.overrides.sort_by(|a, b| a.user_id.cmp(&b.user_id));
            true
        }
    };
    let index = saved_index(&stored.flag.overrides, &user_id, created);
    let saved = flags::save(&mut m, Some(&stored), changed, Action::OverrideSet)
        .await
        .map_err(|e| relative_to_override(e, index))?;
    let snapshot_version = m.commit(&state.live).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [
            etag(saved.version),
            snapshot_version_header(snapshot_version),
        ],
        Json(json!({
            "flagKey": key,
            "environment": environment,
            "version": saved.version,
            "override": to_json(&new, Utc::now()),
        })),
    )
        .into_response())
}

/// Where the override for `user_id` sits in the flag's (sorted) override list after the change.
fn saved_index(before: &[Override], user_id: &str, created: bool) -> usize {
    let mut ids: Vec<&str> = before.iter().map(|o| o.user_id.as_str()).collect();
    if created {
        ids.push(user_id);
        ids.sort_unstable();
    }
    ids.iter().position(|id| *id == user_id).unwrap_or(0)
}

/// The body of `PUT .../overrides/{userId}` is one override: report its fields as the client
/// wrote them (`variation`), not as the flag stores them (`overrides[3].variation`). Problems
/// elsewhere in the flag keep their flag paths.
fn relative_to_override(error: Error, index: usize) -> Error {
    let prefix = format!("overrides[{index}]");
    match error {
        Error::Validation(details) => Error::Validation(
            details
                .into_iter()
                .map(|mut d| {
                    match d.field.strip_prefix(&prefix) {
                        // the override as a whole (e.g. both variation and enabled given)
                        Some("") => d.field = "variation".to_owned(),
                        Some(rest) if rest.starts_with('.') => d.field = rest[1..].to_owned(),
                        _ => {}
                    }
                    d
                })
                .collect(),
        ),
        other => other,
    }
}

async fn remove(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((key, user_id)): Path<(String, String)>,
    Query(q): Query<EnvironmentQuery>,
    if_match: IfMatch,
) -> Result<Response> {
    let environment = environment_of(q.environment.as_deref(), None)?;
    caller.require(Role::Editor, &environment)?;
    let mut m = Mutation::begin(&state.pool, &environment, &caller.sub).await?;
    let stored = flag_for_change(&mut m, &environment, &key, if_match).await?;
    let mut changed = stored.flag.clone();
    let before = changed.overrides.len();
    changed.overrides.retain(|o| o.user_id != user_id);
    if changed.overrides.len() == before {
        return Err(Error::not_found(
            Resource::Override,
            format!("{environment}/{key}/{user_id}"),
        ));
    }
    let saved = flags::save(&mut m, Some(&stored), changed, Action::OverrideDelete).await?;
    let snapshot_version = m.commit(&state.live).await?;
    Ok((
        StatusCode::NO_CONTENT,
        [
            etag(saved.version),
            snapshot_version_header(snapshot_version),
        ],
    )
        .into_response())
}
