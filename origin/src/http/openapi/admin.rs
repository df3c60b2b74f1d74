//! Schemas of the admin API's answers that the handlers build as JSON values (lists, pages,
//! entities with server-side metadata) and of the error body every origin error has.
//!
//! The handlers never construct these types: they describe the bytes that `serde_json::json!`
//! and the stores' `to_json` produce (`Serialize` is derived only so the schema follows serde's
//! `rename`, `flatten` and `skip_serializing_if`). `origin/tests/openapi.rs` validates real answers against them, so
//! a member added, renamed or retyped on one side only fails a test.

use std::collections::BTreeMap;

use evaluator_core::model::{Flag, Override, Segment};
use serde::Serialize;
use serde_json::Value;
use utoipa::{ToResponse, ToSchema};

use crate::error::FieldError;

/// Every error of the origin: `{"error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The error itself: a machine-readable code, a message naming what was wrong, and the members
/// some codes add.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// `UNAUTHORIZED`, `FORBIDDEN`, `<RESOURCE>_NOT_FOUND`, `<RESOURCE>_EXISTS` (resource
    /// `FLAG`, `FLAG_VERSION`, `SEGMENT`, `ENVIRONMENT`, `OVERRIDE`, `CLIENT_KEY`),
    /// `MALFORMED_JSON`, `INVALID_PARAMETER`, `VALIDATION_FAILED`, `VERSION_CONFLICT`,
    /// `ENVIRONMENT_NOT_EMPTY`, `CONFIRMATION_REQUIRED`, `PAYLOAD_TOO_LARGE`, `RATE_LIMITED`, `ROUTE_NOT_FOUND`,
    /// `METHOD_NOT_ALLOWED`, `UNAVAILABLE` or `INTERNAL`.
    #[schema(examples("VALIDATION_FAILED"))]
    pub code: String,
    /// Human-readable; server errors (500) say only "internal server error".
    pub message: String,
    /// `VALIDATION_FAILED`: every problem, located by its field path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
    /// `INVALID_PARAMETER`: the parameter at fault (`limit`, `environment`, `If-Match`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `VERSION_CONFLICT`: the version stored now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// `RATE_LIMITED`: seconds until a request is admitted again (also `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// `CONFIRMATION_REQUIRED`: the protected environment to name in `X-Edgeflags-Confirm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// No usable token: missing, malformed, badly signed or expired.
#[derive(Debug, ToResponse)]
#[response(headers((
    "WWW-Authenticate" = String,
    description = "`Bearer realm=\"edgeflags-admin\"`, with `error=\"invalid_token\"` when a token was sent"
)))]
pub struct Unauthorized(pub ErrorBody);

/// The caller's rate limit is exhausted (`RATE_LIMITED`).
#[derive(Debug, ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds until a request is admitted again")))]
pub struct RateLimited(pub ErrorBody);

/// A server-side failure (`INTERNAL`); the cause is logged, not returned.
#[derive(Debug, ToResponse)]
pub struct Internal(pub ErrorBody);

/// A page of flags, by key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagPage {
    /// The environment listed.
    pub environment: String,
    /// Up to `limit` flags.
    pub flags: Vec<Flag>,
    /// `cursor` of the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A page of a flag's versions, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagHistory {
    /// The flag.
    pub flag_key: String,
    /// Its environment.
    pub environment: String,
    /// Up to `limit` versions.
    pub versions: Vec<FlagVersion>,
    /// `cursor` of the next page (a version number, as a string); `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One version in a flag's history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagVersion {
    /// The flag version this change produced.
    pub version: u64,
    /// `create`, `update`, `delete`, `rollback`, `copy`, `override.set`, `override.delete`,
    /// `bulk.enable`, `bulk.disable`, `bulk.addTags` or `bulk.removeTags`.
    pub action: String,
    /// Token subject that made the change.
    pub actor: String,
    /// `jti` of the token that made the change; `null` when the token had none.
    pub token_id: Option<String>,
    /// When (RFC 3339).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The flag as of this version; `null` for a deletion.
    pub definition: Option<Flag>,
    /// The author's comment on the change (`X-Edgeflags-Comment`); `null` without one.
    pub comment: Option<String>,
    /// For a rollback: the version rolled back to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
}

/// A per-user override as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverrideState {
    /// The override.
    #[serde(flatten)]
    pub definition: Override,
    /// Whether `expiresAt` has passed (evaluation then ignores the override).
    pub expired: bool,
}

/// A flag's per-user overrides.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideList {
    /// The flag.
    pub flag_key: String,
    /// Its environment.
    pub environment: String,
    /// The flag version (also the `ETag`).
    pub version: u64,
    /// Its overrides, by user id.
    pub overrides: Vec<OverrideState>,
}

/// The override a `PUT` wrote.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideWritten {
    /// The flag.
    pub flag_key: String,
    /// Its environment.
    pub environment: String,
    /// The flag version the change produced (also the `ETag`).
    pub version: u64,
    /// The override as stored.
    #[serde(rename = "override")]
    pub written: OverrideState,
}

/// A segment with the metadata the server keeps.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredSegment {
    /// The segment.
    #[serde(flatten)]
    pub definition: Segment,
    /// Its environment.
    pub environment: String,
    /// Increases by one on every change (also the `ETag`).
    pub version: u64,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// A page of segments, by key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentPage {
    /// The environment listed.
    pub environment: String,
    /// Up to `limit` segments.
    pub segments: Vec<StoredSegment>,
    /// `cursor` of the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// An environment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// Its key (`production`).
    pub key: String,
    /// Display name.
    pub name: String,
    /// Version of its newest snapshot.
    pub snapshot_version: u64,
    /// Whether changing a flag's `enabled` here needs `X-Edgeflags-Confirm: <key>` (else 428
    /// `CONFIRMATION_REQUIRED`).
    pub protected: bool,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// The environments the token may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnvironmentList {
    /// By key.
    pub environments: Vec<Environment>,
}

/// A client key as listed: its hash, never the key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientKeyInfo {
    /// The environment it evaluates.
    pub environment: String,
    /// Unique per environment.
    pub name: String,
    /// SHA-256 of the key string, lowercase hex (what snapshots publish).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    /// Token subject that created it.
    pub created_by: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A new client key: the only answer that contains the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientKeyCreated {
    /// The stored part.
    #[serde(flatten)]
    pub info: ClientKeyInfo,
    /// `efk.<environment>.<32 hex>`; store it now, it cannot be shown again.
    #[schema(pattern = "^efk\\.[A-Za-z0-9_-]{1,255}\\.[0-9a-f]{32}$")]
    pub key: String,
}

/// An environment's client keys.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientKeyList {
    /// The environment.
    pub environment: String,
    /// By name.
    pub client_keys: Vec<ClientKeyInfo>,
}

/// A new server key: the only answer that contains the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerKeyCreated {
    /// The stored part.
    #[serde(flatten)]
    pub info: ClientKeyInfo,
    /// `efs.<environment>.<32 hex>`; a secret: keep it on servers, never in a browser app.
    #[schema(pattern = "^efs\\.[A-Za-z0-9_-]{1,255}\\.[0-9a-f]{32}$")]
    pub key: String,
}

/// An environment's server keys.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerKeyList {
    /// The environment.
    pub environment: String,
    /// By name.
    pub server_keys: Vec<ClientKeyInfo>,
}

/// One entry of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Increasing; the pagination cursor.
    pub id: i64,
    /// The environment changed.
    pub environment: String,
    /// `flag`, `segment`, `environment`, `clientKey` or `serverKey`.
    pub entity_type: String,
    /// Key of the entity.
    pub entity_key: String,
    /// For flags: the flag key (same as `entityKey`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_key: Option<String>,
    /// What happened (`create`, `update`, `delete`, `rollback`, ...).
    pub action: String,
    /// Token subject that made the change.
    pub actor: String,
    /// `jti` of the token that made the change; `null` when the token had none.
    pub token_id: Option<String>,
    /// The author's comment on the change (`X-Edgeflags-Comment`); `null` without one.
    pub comment: Option<String>,
    /// The entity before the change; `null` for a creation.
    pub old_value: Option<Value>,
    /// The entity after the change; `null` for a deletion.
    pub new_value: Option<Value>,
    /// The entity version the change produced, where the entity has versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The snapshot version the change produced.
    pub snapshot_version: u64,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// A page of the audit trail, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// Up to `limit` entries.
    pub entries: Vec<AuditEntry>,
    /// `cursor` of the next page; `null` on the last page.
    pub next_cursor: Option<i64>,
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(examples("ok"))]
    pub status: String,
}

/// How far each sink has delivered an environment's snapshots.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStatus {
    /// The environment.
    pub environment: String,
    /// Its current snapshot version.
    pub snapshot_version: u64,
    /// One entry per sink that has a cursor for the environment, by name.
    pub sinks: Vec<SinkDelivery>,
}

/// One sink's delivery of an environment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinkDelivery {
    /// The sink (`edge`, `s3`).
    pub sink: String,
    /// Highest version the sink acknowledged; 0 = none yet.
    pub delivered_version: u64,
    /// Versions between the delivered one and the current one.
    pub behind: u64,
    /// Consecutive failed deliveries since the last success.
    pub attempts: i32,
    /// The last failure (for a rejection, the sink's answer), while no success followed it.
    pub last_error: Option<String>,
    /// When the sink is tried again (RFC 3339).
    pub next_attempt_at: String,
    /// When the cursor last changed (RFC 3339).
    pub updated_at: String,
}

/// A page of the cross-environment flag index, by key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagIndexPage {
    /// The environments listed (those the caller may read), by key: the columns.
    pub environments: Vec<String>,
    /// Up to `limit` flags.
    pub flags: Vec<FlagIndexRow>,
    /// `cursor` of the next page (opaque); `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One flag key across environments.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagIndexRow {
    /// The flag key.
    pub flag_key: String,
    /// The description of the copy changed most recently; `null` when it has none.
    pub description: Option<String>,
    /// The tags of that copy.
    pub tags: Vec<String>,
    /// The environment of that copy.
    pub described_in: String,
    /// A cell per listed environment that has the flag, by environment key; an environment
    /// without it is absent.
    pub environments: BTreeMap<String, FlagIndexCell>,
}

/// A flag's state in one environment.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagIndexCell {
    /// Its kill switch.
    pub enabled: bool,
    /// Its version.
    pub version: u64,
    /// Its last change (RFC 3339).
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Whether it targets someone beyond its default: ordered rules, segments, user ids or a
    /// percentage rollout.
    pub has_rules: bool,
}

/// What "evaluate as" answers: per environment, the results.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluateAsAnswer {
    /// In the order asked for (default: by key).
    pub environments: Vec<EvaluateAsEnvironment>,
}

/// One environment's results.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateAsEnvironment {
    /// The environment.
    pub environment: String,
    /// The snapshot version evaluated; `null` (and no results) while this origin has not
    /// loaded the environment's snapshot yet.
    pub snapshot_version: Option<u64>,
    /// Per flag, in the order asked for (default: every flag, by key).
    pub results: Vec<EvaluateAsResult>,
}

/// One flag evaluated, as the evaluation API would serve it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateAsResult {
    /// The flag.
    pub flag_key: String,
    /// The served value; `null` for `FLAG_NOT_FOUND`.
    pub value: Value,
    /// The served variation's key, when a variation was served.
    pub variant: Option<String>,
    /// OpenFeature reason: `STATIC`, `DEFAULT`, `TARGETING_MATCH`, `SPLIT`, `DISABLED` or
    /// `ERROR`.
    pub reason: String,
    /// Which evaluation step decided (`user-targeted`, `user-in-segment`, ...): the REST API's
    /// `reason`.
    pub reason_detail: String,
    /// Set when `reason` is `ERROR` (`FLAG_NOT_FOUND`, `TARGETING_KEY_MISSING`, ...).
    pub error_code: Option<String>,
    /// A description of the error.
    pub error_message: Option<String>,
    /// The flag's version; `null` when not found.
    pub flag_version: Option<u64>,
}

/// What a bulk action did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkAnswer {
    /// The environment changed (for `copyTo`, the target).
    pub environment: String,
    /// The flags that changed, in the order they were written (for `copyTo`, prerequisites
    /// first).
    pub changed: Vec<String>,
    /// The flags the action left as they were (already on, already tagged...).
    pub unchanged: Vec<String>,
    /// The snapshot version the change produced; `null` when nothing changed.
    pub snapshot_version: Option<u64>,
}
