//! `POST /admin/flag-bulk`: one action on many flags at once (toggle, tag, copy to another
//! environment), all or nothing; one operation of [`crate::domain::bulk`].
//!
//! Not `/admin/flags/bulk`: that path would shadow the flag whose key is `bulk` (a static
//! segment wins over `{flag_key}` in the router, and `GET /admin/flags/bulk` would then answer
//! 405 instead of the flag).

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Admin;
use super::extract::JsonObject;
use super::openapi::admin::{BulkAnswer, ErrorBody};
use super::{snapshot_version_header, AppState};
use crate::auth::Role;
use crate::document;
use crate::domain::bulk::{self, BulkAction};
use crate::error::{Error, FieldError, Result};
use crate::validation;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(apply))
}

/// Which action.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BulkActionName)]
enum ActionName {
    Enable,
    Disable,
    AddTags,
    RemoveTags,
    CopyTo,
}

/// The request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BulkRequest)]
struct BulkBody {
    /// The environment whose flags are named (for `copyTo`: the source).
    environment: String,
    /// The flags, 1-500, each once.
    #[schema(min_items = 1, max_items = 500)]
    flag_keys: Vec<String>,
    /// What to do: `enable`, `disable`, `addTags`, `removeTags` (with `tags`) or `copyTo`
    /// (with `to`).
    action: ActionName,
    /// `addTags`, `removeTags`: the tags (1-20, each 1-64 characters of `[A-Za-z0-9_.:-]`).
    #[schema(min_items = 1, max_items = 20)]
    tags: Option<Vec<String>>,
    /// `copyTo`: the target environment.
    to: Option<String>,
}

/// The action the body describes, its members checked against it.
fn action(body: &BulkBody) -> Result<BulkAction> {
    let tags = || -> Result<Vec<String>> {
        let Some(tags) = &body.tags else {
            return Err(Error::invalid("tags", "required for this action"));
        };
        if tags.is_empty() || tags.len() > validation::MAX_TAGS {
            return Err(Error::invalid(
                "tags",
                format!("1-{} tags, got {}", validation::MAX_TAGS, tags.len()),
            ));
        }
        let problems: Vec<FieldError> = tags
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                validation::tag_problem(t).map(|p| FieldError::new(format!("tags[{i}]"), p))
            })
            .collect();
        if problems.is_empty() {
            Ok(tags.clone())
        } else {
            Err(Error::Validation(problems))
        }
    };
    let takes_tags = matches!(body.action, ActionName::AddTags | ActionName::RemoveTags);
    if !takes_tags && body.tags.is_some() {
        return Err(Error::invalid(
            "tags",
            "only addTags and removeTags take tags",
        ));
    }
    if !matches!(body.action, ActionName::CopyTo) && body.to.is_some() {
        return Err(Error::invalid("to", "only copyTo takes a target"));
    }
    Ok(match body.action {
        ActionName::Enable => BulkAction::Enable,
        ActionName::Disable => BulkAction::Disable,
        ActionName::AddTags => BulkAction::AddTags(tags()?),
        ActionName::RemoveTags => BulkAction::RemoveTags(tags()?),
        ActionName::CopyTo => BulkAction::CopyTo(
            body.to
                .clone()
                .ok_or_else(|| Error::invalid("to", "required for copyTo"))?,
        ),
    })
}

#[utoipa::path(
    post,
    path = "/admin/flag-bulk",
    tag = "flags",
    operation_id = "bulkFlags",
    summary = "Apply one action to many flags",
    description = "All or nothing, in one transaction of the environment changed (for `copyTo`, \
        the target): one snapshot version for the lot, one history version and audit row per \
        flag that changed; flags the action leaves as they were are listed as `unchanged` and \
        get neither. An unknown flag key is a 422 naming it (`flagKeys[3]`), a flag the action \
        leaves invalid a 422 naming the flag (`flags[checkout].tags`); nothing changes then. \
        Turning flags on or off (or a copy that does) in a protected environment needs \
        `X-Edgeflags-Confirm` naming it. Requires role `editor` on the environment changed \
        (`copyTo`: `viewer` on the source).",
    params(
        ("X-Edgeflags-Confirm" = Option<String>, Header, nullable = false,
            description = "The changed environment's key, confirming changes of `enabled` in a \
            protected environment (else 428 `CONFIRMATION_REQUIRED`)"),
    ),
    request_body(content = BulkBody, description = "The environment, the flags and the action"),
    responses(
        (status = 200, description = "Done (or nothing to do)", body = BulkAnswer, headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Snapshot version the change produced; absent when nothing changed"),
        )),
        (status = 400, description = "`MALFORMED_JSON`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
        (status = 404, description = "`ENVIRONMENT_NOT_FOUND`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: a bad member, an unknown flag key, or a \
            flag the action leaves invalid; nothing changed", body = ErrorBody),
        (status = 428, description = "`CONFIRMATION_REQUIRED`: `enabled` would change in a \
            protected environment without `X-Edgeflags-Confirm` naming it (`environment`); \
            nothing changed", body = ErrorBody),
    ),
)]
async fn apply(admin: Admin, JsonObject(body): JsonObject) -> Result<Response> {
    let body: BulkBody = document::from_value(Value::Object(body))?;
    let action = action(&body)?;
    match &action {
        BulkAction::CopyTo(to) => {
            admin.caller.require(Role::Viewer, &body.environment)?;
            admin.caller.require(Role::Editor, to)?;
        }
        _ => admin.caller.require(Role::Editor, &body.environment)?,
    }
    let outcome = bulk::apply(&admin.writer(), &body.environment, &body.flag_keys, &action).await?;
    let answer = Json(json!({
        "environment": outcome.environment,
        "changed": outcome.changed,
        "unchanged": outcome.unchanged,
        "snapshotVersion": outcome.snapshot_version,
    }));
    Ok(match outcome.snapshot_version {
        Some(v) => ([snapshot_version_header(v)], answer).into_response(),
        None => answer.into_response(),
    })
}
