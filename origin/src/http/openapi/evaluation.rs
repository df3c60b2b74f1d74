//! Schemas of the public evaluation API (REST `/api/v1/flags...` and OFREP
//! `/ofrep/v1/evaluate/flags...`, whose bulk answer advertises `/ofrep/v1/event-stream`).
//!
//! The `evaluation-api` crate renders these answers as bytes (the same code runs at the edge, in
//! no_std), so the types here only describe them. `origin/tests/openapi.rs` validates real
//! answers of every evaluation route against these schemas, so they cannot drift apart.

use std::collections::BTreeMap;

use evaluator_core::{ErrorCode, Reason};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The result of evaluating one flag (REST API).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationResult {
    /// The requested key.
    pub flag_key: String,
    /// "Is this user in the feature?": a boolean flag's value; for other flags, whether the
    /// user was actively targeted.
    pub enabled: bool,
    /// The served value; `null` when the flag was not found or could not be evaluated.
    pub value: Value,
    /// Key of the served variation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Which step of the evaluation order decided: `flag-disabled`, `prerequisite-failed`,
    /// `user-override`, `user-excluded`, `user-targeted`, `user-in-segment`, `rule-match`,
    /// `rule-rollout`, `percentage-rollout`, `country-targeted`, `static`, `default` or `error`.
    #[schema(examples("user-in-segment"))]
    pub reason: String,
    /// The flag's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The OpenFeature reason.
    pub open_feature_reason: Reason,
    /// Set when `openFeatureReason` is `ERROR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// Human description of the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// Body of `POST /api/v1/flags/batch`; unknown members are ignored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    /// The targeting key (wins over `context.targetingKey`/`context.userId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The environment to evaluate, when no client key is sent (it must agree with the key's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The flags to evaluate; every flag of the environment when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_keys: Option<Vec<String>>,
    /// Attributes of the user (`country`, `plan`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<BTreeMap<String, Value>>,
}

/// Answer of `POST /api/v1/flags/batch`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One result per requested flag, in request order (snapshot order when all are evaluated).
    pub flags: Vec<EvaluationResult>,
}

/// The batch answer when no snapshot of the environment is available: each requested flag as
/// an error result, and the reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchFallback {
    /// One `reason: "error"` result per requested flag (none when `flagKeys` was absent).
    pub flags: Vec<EvaluationResult>,
    /// Why (`SNAPSHOT_UNAVAILABLE`).
    pub error: FallbackError,
}

/// Code and message of [`BatchFallback`].
#[derive(Debug, Serialize, ToSchema)]
pub struct FallbackError {
    /// `SNAPSHOT_UNAVAILABLE`.
    pub code: String,
    /// Human-readable.
    pub message: String,
}

/// An error of the REST evaluation API.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationErrorBody {
    /// What went wrong.
    pub error: EvaluationError,
}

/// Code, message and the request field at fault.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationError {
    /// `NOT_FOUND`, `METHOD_NOT_ALLOWED`, `PAYLOAD_TOO_LARGE`, `INVALID_JSON`, `INVALID_FIELD`,
    /// `INVALID_QUERY`, `INVALID_FLAG_KEY`, `MISSING_ENVIRONMENT`, `INVALID_ENVIRONMENT`,
    /// `MISSING_CLIENT_KEY`, `INVALID_CLIENT_KEY`, `FORBIDDEN_ENVIRONMENT`, `FLAG_NOT_FOUND` or
    /// `SNAPSHOT_UNAVAILABLE`.
    #[schema(examples("FLAG_NOT_FOUND"))]
    pub code: String,
    /// Human-readable.
    pub message: String,
    /// The request field at fault (`flagKey`, `environment`, `body`, `Authorization`, a body
    /// path such as `flagKeys[2]`, or a query parameter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Body of the OFREP routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfrepRequest {
    /// The evaluation context (required).
    pub context: OfrepContext,
}

/// OFREP evaluation context: the targeting key and any attributes. Without a client key the
/// attribute `environment` names the environment to evaluate.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepContext {
    /// The user's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targeting_key: Option<String>,
    /// Attributes of the user (`country`, `plan`, `environment`, ...).
    #[serde(flatten)]
    pub attributes: BTreeMap<String, Value>,
}

/// OFREP `evaluationSuccess`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfrepSuccess {
    /// The flag key.
    pub key: String,
    /// The served value.
    pub value: Value,
    /// The OpenFeature reason (never `ERROR`: that is an `evaluationFailure`).
    pub reason: Reason,
    /// Key of the served variation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Flag metadata.
    pub metadata: OfrepFlagMetadata,
}

/// OFREP flag metadata (booleans, strings and numbers only).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepFlagMetadata {
    /// The flag's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_version: Option<u64>,
    /// The REST API's finer reason (`user-in-segment`, `rule-match`, ...).
    pub reason_detail: String,
}

/// OFREP `evaluationFailure`: a flag that could not be evaluated, or (without `key`) a request
/// that could not be.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepFailure {
    /// The flag key; absent for failures of the whole request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// OpenFeature error code (`FLAG_NOT_FOUND`, `PARSE_ERROR`, `INVALID_CONTEXT`,
    /// `TYPE_MISMATCH`, `TARGETING_KEY_MISSING`, `GENERAL`).
    pub error_code: ErrorCode,
    /// Human-readable.
    pub error_details: String,
}

/// One flag of an OFREP bulk answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OfrepItem {
    /// Evaluated.
    Success(OfrepSuccess),
    /// Not evaluated.
    Failure(OfrepFailure),
}

/// Answer of `POST /ofrep/v1/evaluate/flags`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfrepBulkResponse {
    /// Every flag of the environment, in snapshot order.
    pub flags: Vec<OfrepItem>,
    /// Where to be told of changes (OFREP ADR-0008): one server-sent event stream of the
    /// environment; absent where streams are not served.
    #[serde(rename = "eventStreams", skip_serializing_if = "Option::is_none")]
    pub event_streams: Option<Vec<OfrepEventStream>>,
    /// Where the answer comes from.
    pub metadata: OfrepBulkMetadata,
}

/// An event stream of an OFREP bulk answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEventStream {
    /// `sse`: server-sent events.
    #[serde(rename = "type")]
    #[schema(examples("sse"))]
    pub kind: String,
    /// Where to open it.
    pub endpoint: OfrepEventStreamEndpoint,
    /// Seconds of client inactivity (a hidden page) after which the provider closes the stream,
    /// to re-fetch when it is back.
    pub inactivity_delay_sec: u32,
}

/// Location of an event stream.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepEventStreamEndpoint {
    /// Path and query (`/ofrep/v1/event-stream?token=…`) without an origin: the provider
    /// prefixes its own base URL's. The token authorises streams of this environment for 1-2 h.
    #[schema(examples(
        "/ofrep/v1/event-stream?token=v1.production.-.1790006400.0123456789abcdef0123456789abcdef"
    ))]
    pub request_uri: String,
}

/// Metadata of an OFREP bulk answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfrepBulkMetadata {
    /// The environment evaluated.
    pub environment: String,
    /// Version of the snapshot evaluated.
    pub snapshot_version: u64,
}
