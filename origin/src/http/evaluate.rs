//! The public evaluation API (`/api/v1/flags...`, `/ofrep/v1/evaluate/flags...`) served by the
//! origin. Routing, parsing, credentials, evaluation and rendering all come from the
//! `evaluation-api` crate, the same code the edge runs, so both answer identically; this module
//! only adapts axum's request and response types and supplies the snapshot and the clock.
//!
//! Evaluation has budgets of its own (issue 11, [`crate::live::EvaluationBudget`]): a rate limit
//! per client IP (429 `RATE_LIMITED`), and requests that evaluate many flags run on the blocking
//! pool, at most `concurrency` at once (over it, 503 `OVERLOADED`), so that they never hold up
//! the async runtime serving the admin API and `/readyz`. A single flag costs microseconds and is
//! answered in place.
//!
//! Each of the four operations has its own documented route (so it is in the OpenAPI document
//! and has its own `route` label in the metrics), but every handler is the same [`evaluate`]:
//! the crate re-reads the path itself.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use evaluation_api::{
    parse, payload_too_large, respond, respond_unknown_environment, ApiRequest, ApiResponse,
    Config, HttpRequest, RequestHeaders,
};
use evaluator_core::CompiledSnapshot;
use serde_json::json;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::openapi::evaluation::{
    BatchFallback, BatchRequest, BatchResponse, EvaluationErrorBody, EvaluationResult,
    OfrepBulkResponse, OfrepFailure, OfrepRequest, OfrepSuccess,
};
use super::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(other_methods_too(routes!(rest_flag)))
        .routes(other_methods_too(routes!(rest_batch)))
        .routes(other_methods_too(routes!(ofrep_flag)))
        .routes(other_methods_too(routes!(ofrep_bulk)))
        // one catch-all per API for everything else: the evaluation-api crate does the routing,
        // so unknown paths get its 404 bodies, exactly as at the edge (they serve no operation,
        // so the document has nothing to say about them)
        .route("/api/v1/{*path}", any(evaluate))
        .route("/ofrep/v1/{*path}", any(evaluate))
}

/// The other methods of a documented route (CORS preflights, a wrong method) go to the
/// evaluation-api crate too, which answers them as the edge does (204, or its own 405 with
/// `Allow`) instead of the admin API's 405.
fn other_methods_too(route: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    route.map(|methods| methods.fallback(evaluate))
}

#[utoipa::path(
    get,
    path = "/api/v1/flags/{flag_key}",
    tag = "evaluation",
    operation_id = "evaluateFlag",
    summary = "Evaluate one flag",
    description = "Every query parameter other than `userId` and `environment` is a string \
        attribute of the context (a repeated one becomes an array, e.g. \
        `segments=a&segments=b`). Answers carry `Cache-Control: private, no-store` and \
        `Access-Control-Allow-Origin: *`; `OPTIONS` answers the CORS preflight (204).",
    params(
        ("flag_key" = String, Path, description = "Flag key", pattern = "^[A-Za-z0-9_-]{1,255}$"),
        ("userId" = Option<String>, Query, description = "The targeting key"),
        ("environment" = Option<String>, Query,
            description = "The environment, when no client key is sent (it must agree with the key's)"),
    ),
    responses(
        (status = 200, description = "The result", body = EvaluationResult, headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Version of the snapshot evaluated"),
        )),
        (status = 400, description = "`INVALID_FLAG_KEY`, `INVALID_QUERY`, `MISSING_ENVIRONMENT` or `INVALID_ENVIRONMENT`", body = EvaluationErrorBody),
        (status = 401, description = "`MISSING_CLIENT_KEY` or `INVALID_CLIENT_KEY`", body = EvaluationErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN_ENVIRONMENT`: the key belongs to another environment", body = EvaluationErrorBody),
        (status = 404, description = "`FLAG_NOT_FOUND`", body = EvaluationErrorBody, headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Version of the snapshot searched"),
        )),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = EvaluationErrorBody),
        (status = 503, description = "No snapshot of the environment is available: the result \
            with `reason: \"error\"`, `errorCode: GENERAL`", body = EvaluationResult,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ),
    security(("clientKey" = []), ("clientKeyHeader" = []), ("apiKeyHeader" = []), ()),
)]
async fn rest_flag(state: State<AppState>, req: Request) -> Response {
    evaluate(state, req).await
}

#[utoipa::path(
    post,
    path = "/api/v1/flags/batch",
    tag = "evaluation",
    operation_id = "evaluateBatch",
    summary = "Evaluate several flags",
    description = "`GET /api/v1/flags/batch` is the flag named `batch`; only `POST` is this \
        route. The `ETag` changes with the snapshot, the context and the answer; a matching \
        `If-None-Match` gives 304.",
    params(("If-None-Match" = Option<String>, Header, description = "`ETag` of an earlier answer")),
    request_body(content = BatchRequest, description = "Who, where and which flags"),
    responses(
        (status = 200, description = "The results", body = BatchResponse, headers(
            ("ETag" = String, description = "Tag of this answer"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Version of the snapshot evaluated"),
        )),
        (status = 304, description = "Not modified since the `If-None-Match` answer", headers(
            ("ETag" = String, description = "Tag of this answer"),
        )),
        (status = 400, description = "`INVALID_JSON`, `INVALID_FIELD`, `MISSING_ENVIRONMENT` or `INVALID_ENVIRONMENT`", body = EvaluationErrorBody),
        (status = 401, description = "`MISSING_CLIENT_KEY` or `INVALID_CLIENT_KEY`", body = EvaluationErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN_ENVIRONMENT`", body = EvaluationErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: over 64 KiB", body = EvaluationErrorBody),
        (status = 503, description = "No snapshot of the environment is available: an error \
            result per requested flag", body = BatchFallback,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ),
    security(("clientKey" = []), ("clientKeyHeader" = []), ("apiKeyHeader" = []), ()),
)]
async fn rest_batch(state: State<AppState>, req: Request) -> Response {
    evaluate(state, req).await
}

#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags/{key}",
    tag = "ofrep",
    operation_id = "ofrepEvaluateFlag",
    summary = "OFREP: evaluate one flag",
    description = "OpenFeature Remote Evaluation Protocol. Without a client key the context \
        attribute `environment` names the environment (with one, the key's environment is used). \
        401 has no body.",
    params(("key" = String, Path, description = "Flag key")),
    request_body(content = OfrepRequest, description = "The evaluation context"),
    responses(
        (status = 200, description = "`evaluationSuccess`", body = OfrepSuccess, headers(
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Version of the snapshot evaluated"),
        )),
        (status = 400, description = "`evaluationFailure`: `PARSE_ERROR`, `INVALID_CONTEXT`, \
            `TARGETING_KEY_MISSING` or `TYPE_MISMATCH`", body = OfrepFailure),
        (status = 401, description = "No client key, or an unknown one (no body)",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 404, description = "`FLAG_NOT_FOUND`", body = OfrepFailure),
        (status = 413, description = "`GENERAL`: the body is over 64 KiB", body = OfrepFailure),
        (status = 500, description = "`GENERAL`: no snapshot of the environment is available", body = OfrepFailure),
    ),
    security(("clientKey" = []), ("clientKeyHeader" = []), ("apiKeyHeader" = []), ()),
)]
async fn ofrep_flag(state: State<AppState>, req: Request) -> Response {
    evaluate(state, req).await
}

#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags",
    tag = "ofrep",
    operation_id = "ofrepEvaluateFlags",
    summary = "OFREP: evaluate every flag",
    description = "OFREP bulk evaluation, for polling providers: the `ETag` changes with the \
        snapshot, the context and the answer; a matching `If-None-Match` gives 304. 401 has no \
        body. `eventStreams` names the environment's event stream (`ofrepEventStream`); after \
        one of its events the provider re-fetches with `flagConfigEtag`, and a replica that \
        does not hold that version yet waits (at most 1 s) for it.",
    params(
        ("If-None-Match" = Option<String>, Header, description = "`ETag` of an earlier answer"),
        ("flagConfigEtag" = Option<String>, Query,
            description = "The `etag` of the event that prompted this request (`\"42\"`)"),
        ("flagConfigLastModified" = Option<String>, Query,
            description = "The `lastModified` of that event: Unix seconds or an RFC 3339 date-time"),
    ),
    request_body(content = OfrepRequest, description = "The evaluation context"),
    responses(
        (status = 200, description = "Every flag of the environment", body = OfrepBulkResponse, headers(
            ("ETag" = String, description = "Tag of this answer"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "Version of the snapshot evaluated"),
        )),
        (status = 304, description = "Not modified since the `If-None-Match` answer", headers(
            ("ETag" = String, description = "Tag of this answer"),
        )),
        (status = 400, description = "`PARSE_ERROR` or `INVALID_CONTEXT` (also: an unreadable \
            `flagConfigLastModified`)", body = OfrepFailure),
        (status = 401, description = "No client key, or an unknown one (no body)",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 413, description = "`GENERAL`: the body is over 64 KiB", body = OfrepFailure),
        (status = 500, description = "`GENERAL`: no snapshot of the environment is available", body = OfrepFailure),
    ),
    security(("clientKey" = []), ("clientKeyHeader" = []), ("apiKeyHeader" = []), ()),
)]
async fn ofrep_bulk(state: State<AppState>, req: Request) -> Response {
    evaluate(state, req).await
}

/// Requests naming at most this many flags are evaluated in place, on the async runtime.
const INLINE_FLAGS: usize = 16;
/// `Retry-After` of a 503 `OVERLOADED`: the blocking evaluations ahead take milliseconds.
const OVERLOADED_RETRY_SECS: u64 = 1;

async fn evaluate(State(state): State<AppState>, req: Request) -> Response {
    let gate = state.live.evaluation_gate();
    let client = super::client_ip(&req);
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if let Some(refused) = rate_limited(&state, &client, path) {
        return refused;
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = declared.filter(|l| *l > evaluation_api::MAX_BODY_BYTES) {
        return into_axum(payload_too_large(path, length));
    }
    // one byte over the limit is enough for `parse` to see the body is too large
    let bytes: Bytes = match axum::body::to_bytes(body, evaluation_api::MAX_BODY_BYTES + 1).await {
        Ok(bytes) => bytes,
        Err(_) => return into_axum(payload_too_large(path, evaluation_api::MAX_BODY_BYTES + 1)),
    };
    let headers = RequestHeaders::from_pairs(
        parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
    );
    let request = HttpRequest {
        method: parts.method.as_str(),
        path,
        query: parts.uri.query().unwrap_or(""),
        headers,
        body: &bytes,
    };
    let config = Config {
        require_client_keys: state.settings.require_client_keys,
    };
    let parsed = parse(&request, &config).map(|api_request| match state.streams.key() {
        Some(key) => api_request.with_event_streams(key),
        None => api_request,
    });
    if let Ok(api_request) = &parsed {
        catch_up_to_hint(&state, api_request).await;
    }
    let response = match parsed {
        Err(finished) => finished,
        Ok(api_request) if is_small(&api_request) => {
            let snapshot = state.live.get(api_request.environment());
            answer(&api_request, snapshot.as_deref())
        }
        Ok(api_request) => {
            let Some(slot) = gate.try_slot() else {
                return into_axum(refusal(
                    path,
                    503,
                    "OVERLOADED",
                    "the origin is evaluating as many large requests as it allows; retry later",
                    OVERLOADED_RETRY_SECS,
                ));
            };
            let snapshot = state.live.get(api_request.environment());
            let evaluated = tokio::task::spawn_blocking(move || {
                let _slot = slot;
                answer(&api_request, snapshot.as_deref())
            })
            .await;
            match evaluated {
                Ok(response) => response,
                Err(e) => {
                    tracing::error!(error = %e, "a blocking evaluation failed");
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            }
        }
    };
    into_axum(response)
}

/// How long a bulk request after an event waits for this replica to install the version the
/// event named (`flagConfigEtag`), when another replica's stream sent it and the NOTIFY has not
/// been followed here yet. The follower takes milliseconds; a tag naming no version of ours only
/// costs its own request this wait.
const CONFIG_HINT_WAIT: Duration = Duration::from_secs(1);

/// Lets the follower install the version a re-fetch after an event names, if this replica holds
/// an older one, so that the client does not re-fetch the configuration it already had.
async fn catch_up_to_hint(state: &AppState, request: &ApiRequest) {
    let Some(hint) = request.config_version_hint() else {
        return;
    };
    let environment = request.environment();
    if state.live.version(environment).is_some_and(|v| v < hint) {
        state
            .live
            .wait_for_version(environment, hint, CONFIG_HINT_WAIT)
            .await;
    }
}

/// Answers from the environment's live snapshot. Every environment gets a snapshot when it is
/// created, so none means the environment does not exist: the answer is then the one for an
/// unknown key, and a caller cannot probe which environments exist.
fn answer(request: &ApiRequest, snapshot: Option<&CompiledSnapshot>) -> ApiResponse {
    match snapshot {
        Some(snapshot) => respond(
            request,
            Some(snapshot),
            chrono::Utc::now().timestamp_millis(),
        ),
        None => respond_unknown_environment(request),
    }
}

/// Whether the request names few enough flags to evaluate in place.
fn is_small(request: &ApiRequest) -> bool {
    request
        .flag_keys()
        .is_some_and(|keys| keys.len() <= INLINE_FLAGS)
}

/// A refusal of the evaluation budget in the API's own error shape, with `Retry-After`: REST
/// `{"error": {"code", "message"}}`, OFREP `{"errorCode": "GENERAL", "errorDetails"}` (OFREP has
/// no code of its own for it; its status says it).
fn refusal(path: &str, status: u16, code: &str, message: &str, retry_after: u64) -> ApiResponse {
    let body = if path.starts_with("/ofrep/") {
        json!({"errorCode": "GENERAL", "errorDetails": format!("{code}: {message}")})
    } else {
        json!({"error": {"code": code, "message": message}})
    };
    let mut response = ApiResponse::json(status, body.to_string().into_bytes());
    response
        .headers
        .push(("Retry-After", retry_after.to_string()));
    response
}

/// The 429 `RATE_LIMITED` answer when `client` is over the evaluation rate limit (shared by
/// every public route that reads a snapshot: evaluations and snapshot downloads).
pub(super) fn rate_limited(state: &AppState, client: &str, path: &str) -> Option<Response> {
    let wait = state.live.evaluation_gate().admit(client).err()?;
    Some(into_axum(refusal(
        path,
        429,
        "RATE_LIMITED",
        "too many evaluation requests from this client; retry later",
        whole_seconds(wait),
    )))
}

/// Rounds a wait up to whole seconds, at least one.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn into_axum(response: ApiResponse) -> Response {
    into_axum_with_body(response, None)
}

/// `response` as axum's, with `body` instead of the answer's own when given (an event stream's).
pub(super) fn into_axum_with_body(response: ApiResponse, body: Option<Body>) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body.unwrap_or_else(|| Body::from(response.body));
    let mut out = (status, body).into_response();
    let headers = out.headers_mut();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    out
}
