//! `/admin/flags/{flagKey}/overrides`: per-user overrides (the seed's `flag_overrides`), each
//! change a new version of the flag.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use evaluator_core::model::Override;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{IfMatch, JsonObject, Path, Query};
use super::flags::{flag_for_change, flag_for_read, EnvironmentQuery};
use super::openapi::admin::{ErrorBody, OverrideList, OverrideWritten};
use super::{environment_of, etag, snapshot_version_header, AppState};
use crate::auth::{Caller, Role};
use crate::document;
use crate::error::{Error, Resource, Result};
use crate::flags::{self, Action};
use crate::mutation::Mutation;
use crate::store::flag::parse_expiry;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(set, remove))
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

#[utoipa::path(
    get,
    path = "/admin/flags/{flag_key}/overrides",
    tag = "flags",
    operation_id = "listOverrides",
    summary = "List a flag's per-user overrides",
    description = "Requires role `viewer` on the environment.",
    params(
        ("flag_key" = String, Path, description = "Flag key"),
        ("environment" = String, Query, description = "Environment key"),
    ),
    responses(
        (status = 200, description = "The overrides", body = OverrideList,
            headers(("ETag" = String, description = "The flag version, quoted"))),
        (status = 400, description = "`INVALID_PARAMETER`: no environment", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: the token may not read this environment", body = ErrorBody),
        (status = 404, description = "`FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
    ),
)]
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct OverrideBody {
    #[allow(dead_code)]
    environment: Option<String>,
    variation: Option<String>,
    enabled: Option<bool>,
    expires_at: Option<String>,
}

#[utoipa::path(
    put,
    path = "/admin/flags/{flag_key}/overrides/{user_id}",
    tag = "flags",
    operation_id = "setOverride",
    summary = "Set a user's override",
    description = "Serves `variation` (or, for a boolean flag, `enabled`) to this user until \
        `expiresAt`. Each change is a new version of the flag; `If-Match` names the flag version. \
        Requires role `editor`.",
    params(
        ("flag_key" = String, Path, description = "Flag key"),
        ("user_id" = String, Path, description = "Targeting key of the user (percent-encoded)"),
        ("environment" = Option<String>, Query,
            description = "Environment key; or the body's `environment` (they must agree)"),
        ("If-Match" = Option<String>, Header, description = "The flag version the change is based on"),
    ),
    request_body(content = OverrideBody, description = "Exactly one of `variation` and `enabled`"),
    responses(
        (status = 200, description = "Replaced", body = OverrideWritten, headers(
            ("ETag" = String, description = "The new flag version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 201, description = "Created", body = OverrideWritten, headers(
            ("ETag" = String, description = "The new flag version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 400, description = "`MALFORMED_JSON`, or `INVALID_PARAMETER` (environment, `If-Match`)", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: the token may not edit this environment", body = ErrorBody),
        (status = 404, description = "`FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`VERSION_CONFLICT`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: fields named as in the body (`variation`, `expiresAt`)", body = ErrorBody),
    ),
)]
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

#[utoipa::path(
    delete,
    path = "/admin/flags/{flag_key}/overrides/{user_id}",
    tag = "flags",
    operation_id = "deleteOverride",
    summary = "Remove a user's override",
    description = "A new version of the flag. Requires role `editor`.",
    params(
        ("flag_key" = String, Path, description = "Flag key"),
        ("user_id" = String, Path, description = "Targeting key of the user (percent-encoded)"),
        ("environment" = String, Query, description = "Environment key"),
        ("If-Match" = Option<String>, Header, description = "The flag version the change is based on"),
    ),
    responses(
        (status = 204, description = "Removed", headers(
            ("ETag" = String, description = "The new flag version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 400, description = "`INVALID_PARAMETER` (environment, `If-Match`)", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: the token may not edit this environment", body = ErrorBody),
        (status = 404, description = "`OVERRIDE_NOT_FOUND`, `FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`VERSION_CONFLICT`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: the flag without the override is invalid", body = ErrorBody),
    ),
)]
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
