//! `/admin/flags/{flagKey}/overrides`: per-user overrides of a flag (`flag_override` rows), each
//! change a new version of the flag ([`crate::domain::overrides`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use evaluator_core::model::Override;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{Editing, EditingWith, Viewing};
use super::extract::{IfMatch, Path};
use super::openapi::admin::{ErrorBody, OverrideList, OverrideWritten};
use super::openapi::errors::{ChangeErrors, DeleteErrors, ReadErrors};
use super::{change_headers, created_or_ok, etag, AppState};
use crate::document;
use crate::domain::overrides;
use crate::error::Result;
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
        (status = 404, description = "`FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        ReadErrors,
    ),
)]
async fn list(Path(key): Path<String>, v: Viewing) -> Result<Response> {
    let stored = v.flag(&key).await?;
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
            "environment": v.environment,
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
        ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"?[0-9]{1,19}\"?)$", description = "The flag version the change is based on"),
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
        (status = 404, description = "`FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`VERSION_CONFLICT`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: fields named as in the body (`variation`, `expiresAt`)", body = ErrorBody),
        ChangeErrors,
    ),
)]
async fn set(
    Path((key, user_id)): Path<(String, String)>,
    if_match: IfMatch,
    EditingWith { editing: e, body }: EditingWith,
) -> Result<Response> {
    // `environment` is part of the body's shape (so it is not an unknown field) but was read above
    let body: OverrideBody = document::from_value(Value::Object(body))?;
    let new = Override {
        user_id,
        variation: body.variation,
        enabled: body.enabled,
        expires_at: body.expires_at,
    };
    let put = overrides::put(&e.writer(), e.target(&key, if_match), new.clone()).await?;
    let status = created_or_ok(put.value.created);
    Ok((
        status,
        change_headers(put.value.version, put.snapshot_version),
        Json(json!({
            "flagKey": key,
            "environment": e.environment,
            "version": put.value.version,
            "override": to_json(&new, Utc::now()),
        })),
    )
        .into_response())
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
        ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"?[0-9]{1,19}\"?)$", description = "The flag version the change is based on"),
    ),
    responses(
        (status = 204, description = "Removed", headers(
            ("ETag" = String, description = "The new flag version, quoted"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced"),
        )),
        (status = 404, description = "`OVERRIDE_NOT_FOUND`, `FLAG_NOT_FOUND` or `ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: the flag without the override is invalid", body = ErrorBody),
        DeleteErrors,
    ),
)]
async fn remove(
    Path((key, user_id)): Path<(String, String)>,
    if_match: IfMatch,
    e: Editing,
) -> Result<Response> {
    let deleted = overrides::delete(&e.writer(), e.target(&key, if_match), &user_id).await?;
    Ok((
        StatusCode::NO_CONTENT,
        change_headers(deleted.value, deleted.snapshot_version),
    )
        .into_response())
}
