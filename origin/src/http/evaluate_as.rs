//! `POST /admin/evaluate`: "evaluate as" — what each environment serves one context, flag by
//! flag, from this replica's live compiled snapshots (`crate::live`) and evaluator-core, the
//! evaluator the edge runs on the same snapshots.

use std::sync::Arc;

use axum::Json;
use evaluator_core::{CompiledSnapshot, EvaluationContext};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Admin;
use super::extract::JsonObject;
use super::openapi::admin::{ErrorBody, EvaluateAsAnswer};
use super::AppState;
use crate::auth::Role;
use crate::document;
use crate::error::{Error, FieldError, Resource, Result};
use crate::store::environment;
use crate::validation;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(evaluate_as))
}

/// Most flag keys one request may name.
const MAX_FLAG_KEYS: usize = 1000;
/// Most evaluations (flags × environments) one request may cost.
const MAX_EVALUATIONS: usize = 100_000;
/// Above this many evaluations the work moves to the blocking pool, off the async workers.
const BLOCKING_ABOVE: usize = 2_000;

/// The request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = EvaluateAsRequest)]
struct EvaluateBody {
    /// The evaluation context, as the OFREP API takes it: `targetingKey` (or `userId`) and any
    /// other attributes.
    context: Map<String, Value>,
    /// Only these flags, in this order (at most 1,000; a key an environment lacks answers
    /// `FLAG_NOT_FOUND` there); default every flag of each environment, by key.
    #[schema(max_items = 1000)]
    flag_keys: Option<Vec<String>>,
    /// Only these environments, in this order; default every environment the caller may read,
    /// by key.
    environments: Option<Vec<String>>,
}

#[utoipa::path(
    post,
    path = "/admin/evaluate",
    tag = "flags",
    operation_id = "evaluateAs",
    summary = "Evaluate flags as a given user in each environment",
    description = "Evaluates the context against each environment's live snapshot at this \
        origin, with the evaluator the edge runs: per environment and flag the value, variant, \
        reason and error code the evaluation API would serve. The context follows the OFREP \
        API's rules (`targetingKey` or `userId` a string). At most 100,000 evaluations \
        (flags × environments). Changes nothing. Requires role `viewer` on every environment \
        evaluated.",
    request_body(content = EvaluateBody, description = "The context, and optionally which flags and environments"),
    responses(
        (status = 200, description = "Per environment, the results", body = EvaluateAsAnswer),
        (status = 400, description = "`MALFORMED_JSON`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: the token may not read a named environment", body = ErrorBody),
        (status = 404, description = "`ENVIRONMENT_NOT_FOUND`: a named environment does not exist", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 422, description = "`VALIDATION_FAILED`: a bad context, flag key or environment \
            list, or too many evaluations", body = ErrorBody),
    ),
)]
async fn evaluate_as(admin: Admin, JsonObject(body): JsonObject) -> Result<Json<Value>> {
    let body: EvaluateBody = document::from_value(Value::Object(body))?;
    let context = context(body.context)?;
    if let Some(keys) = &body.flag_keys {
        check_keys(keys)?;
    }
    let environments = environments(&admin, body.environments).await?;
    let snapshots: Vec<(String, Option<Arc<CompiledSnapshot>>)> = environments
        .into_iter()
        .map(|key| {
            let snapshot = admin.state.live.get(&key);
            (key, snapshot)
        })
        .collect();
    // named flags are evaluated (found or not) in every environment with a snapshot
    let cost: usize = snapshots
        .iter()
        .filter_map(|(_, s)| s.as_ref())
        .map(|s| body.flag_keys.as_ref().map_or(s.len(), Vec::len))
        .sum();
    if cost > MAX_EVALUATIONS {
        return Err(Error::invalid(
            "flagKeys",
            format!(
                "{cost} evaluations (flags × environments); at most {MAX_EVALUATIONS}: name fewer flags or environments"
            ),
        ));
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    let keys = body.flag_keys;
    let work = move || evaluate_all(&snapshots, keys.as_deref(), &context, now_ms);
    let answer = if cost > BLOCKING_ABOVE {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| Error::Unavailable("the evaluation was interrupted"))?
    } else {
        work()
    };
    Ok(Json(json!({ "environments": answer })))
}

/// The context by evaluator-core's JSON rule (the one the OFREP API applies); the member at
/// fault is named like evaluation-api names it.
fn context(object: Map<String, Value>) -> Result<EvaluationContext> {
    let value = Value::Object(object);
    EvaluationContext::from_json_object(&value).ok_or_else(|| {
        let member = ["targetingKey", "userId"]
            .into_iter()
            .find(|m| {
                value
                    .get(*m)
                    .is_some_and(|v| !v.is_string() && !v.is_null())
            })
            .unwrap_or("targetingKey");
        Error::invalid(format!("context.{member}"), "must be a string")
    })
}

fn check_keys(keys: &[String]) -> Result<()> {
    if keys.len() > MAX_FLAG_KEYS {
        return Err(Error::invalid(
            "flagKeys",
            format!("at most {MAX_FLAG_KEYS} keys, got {}", keys.len()),
        ));
    }
    let problems: Vec<FieldError> = keys
        .iter()
        .enumerate()
        .filter_map(|(i, key)| {
            validation::key(key, "")
                .err()
                .map(|_| FieldError::new(format!("flagKeys[{i}]"), "not a flag key"))
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(problems))
    }
}

/// The environments to evaluate in: the ones named (each readable and existing), or every one
/// the caller may read.
async fn environments(admin: &Admin, named: Option<Vec<String>>) -> Result<Vec<String>> {
    let mut conn = admin.state.pool.acquire().await?;
    let all = environment::list(&mut conn).await?;
    let Some(named) = named else {
        return Ok(all
            .into_iter()
            .map(|row| row.environment_key)
            .filter(|key| admin.caller.can_access(key))
            .collect());
    };
    let mut seen = std::collections::HashSet::new();
    for (i, key) in named.iter().enumerate() {
        if !seen.insert(key.as_str()) {
            return Err(Error::invalid(
                format!("environments[{i}]"),
                format!("{key:?} appears twice"),
            ));
        }
        admin.caller.require(Role::Viewer, key)?;
        if !all.iter().any(|row| row.environment_key == *key) {
            return Err(Error::not_found(Resource::Environment, key.clone()));
        }
    }
    Ok(named)
}

fn evaluate_all(
    snapshots: &[(String, Option<Arc<CompiledSnapshot>>)],
    keys: Option<&[String]>,
    context: &EvaluationContext,
    now_ms: i64,
) -> Vec<Value> {
    snapshots
        .iter()
        .map(|(environment, snapshot)| {
            let Some(snapshot) = snapshot else {
                // an environment whose first snapshot this replica has not loaded yet
                return json!({ "environment": environment, "snapshotVersion": null, "results": [] });
            };
            let evaluations = match keys {
                Some(keys) => {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    snapshot.evaluate_many(&keys, context, now_ms)
                }
                None => {
                    let mut all = snapshot.evaluate_all(context, now_ms);
                    all.sort_by(|a, b| a.flag_key.cmp(b.flag_key));
                    all
                }
            };
            let results: Vec<Value> = evaluations
                .iter()
                .map(|e| {
                    json!({
                        "flagKey": e.flag_key,
                        "value": e.value,
                        "variant": e.variant,
                        "reason": e.reason.as_str(),
                        "reasonDetail": e.detail,
                        "errorCode": e.error_code.map(|c| c.as_str()),
                        "errorMessage": e.error_message,
                        "flagVersion": e.version,
                    })
                })
                .collect();
            json!({
                "environment": environment,
                "snapshotVersion": snapshot.version(),
                "results": results,
            })
        })
        .collect()
}
