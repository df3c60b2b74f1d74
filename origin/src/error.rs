//! The origin's one error type, and how it becomes an HTTP answer.
//!
//! Every client error has a status, a machine-readable `code` and a message naming what was
//! wrong: `{"error":{"code":"VALIDATION_FAILED","message":"...","details":[{"field","message"}]}}`.
//! Server errors are logged with their cause and answered with a generic body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// Result of the origin's fallible operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Kinds of things the admin API addresses, for 404/409 codes and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A flag of an environment.
    Flag,
    /// A version in a flag's history.
    FlagVersion,
    /// A segment of an environment.
    Segment,
    /// An environment.
    Environment,
    /// A per-user override of a flag.
    Override,
    /// A client key of an environment.
    ClientKey,
    /// A server key of an environment.
    ServerKey,
}

impl Resource {
    fn name(self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::FlagVersion => "flag version",
            Self::Segment => "segment",
            Self::Environment => "environment",
            Self::Override => "override",
            Self::ClientKey => "client key",
            Self::ServerKey => "server key",
        }
    }

    fn upper(self) -> &'static str {
        match self {
            Self::Flag => "FLAG",
            Self::FlagVersion => "FLAG_VERSION",
            Self::Segment => "SEGMENT",
            Self::Environment => "ENVIRONMENT",
            Self::Override => "OVERRIDE",
            Self::ClientKey => "CLIENT_KEY",
            Self::ServerKey => "SERVER_KEY",
        }
    }
}

/// One problem with a submitted document, located by its field path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path inside the submitted document, e.g. `targetingRules.rules[2].clauses[0].operator`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything that can go wrong in the origin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No usable credentials: missing, malformed, badly signed or expired token.
    #[error("authentication required: {0}")]
    Unauthorized(&'static str),

    /// Valid credentials without the right for this operation.
    #[error("{0}")]
    Forbidden(String),

    /// The addressed thing does not exist.
    #[error("{} {key:?} not found", resource.name())]
    NotFound {
        /// What was looked for.
        resource: Resource,
        /// Its key (and environment, where it has one).
        key: String,
    },

    /// The thing to create exists already.
    #[error("{} {key:?} already exists", resource.name())]
    AlreadyExists {
        /// What was to be created.
        resource: Resource,
        /// Its key.
        key: String,
    },

    /// The request body is not JSON at all.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),

    /// A query parameter or path segment is unusable.
    #[error("invalid parameter {name}: {message}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Why it is unusable.
        message: String,
    },

    /// The document is JSON but breaks the flag model; nothing was stored.
    #[error("{}", validation_message(.0))]
    Validation(Vec<FieldError>),

    /// `If-Match` named another version than the current one; nothing was changed.
    #[error(
        "version conflict: If-Match names version {expected}, the current version is {current}"
    )]
    VersionConflict {
        /// The version the client based its change on.
        expected: u64,
        /// The version stored now.
        current: u64,
    },

    /// An environment still holding flags or segments cannot be deleted.
    #[error("environment {key:?} still has {flags} flag(s) and {segments} segment(s); delete them first")]
    EnvironmentNotEmpty {
        /// The environment.
        key: String,
        /// How many flags it holds.
        flags: i64,
        /// How many segments it holds.
        segments: i64,
    },

    /// A change of a flag's `enabled` in a protected environment without `X-Edgeflags-Confirm`
    /// naming it; nothing was changed.
    #[error("environment {environment:?} is protected: changing a flag's enabled state needs the header X-Edgeflags-Confirm: {environment}")]
    ConfirmationRequired {
        /// The protected environment.
        environment: String,
    },

    /// The body exceeds the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },

    /// The caller's token bucket is empty.
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request will be admitted again.
        retry_after_secs: u64,
    },

    /// No route matches the request.
    #[error("no route for {0}")]
    RouteNotFound(String),

    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,

    /// A dependency (randomness, the database) is not available right now.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),

    /// Database failure.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Applying migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// Stored data or a built snapshot could not be (de)serialised.
    #[error("serialisation error: {0}")]
    Json(#[from] serde_json::Error),

    /// Signing a token failed.
    #[error("token error: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
}

fn validation_message(details: &[FieldError]) -> String {
    match details {
        [] => "validation failed".to_owned(),
        [one] => format!("validation failed: {}: {}", one.field, one.message),
        [first, rest @ ..] => format!(
            "validation failed: {}: {} (and {} more problem{})",
            first.field,
            first.message,
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    }
}

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound { .. } | Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::AlreadyExists { .. }
            | Self::VersionConflict { .. }
            | Self::EnvironmentNotEmpty { .. } => StatusCode::CONFLICT,
            Self::MalformedJson(_) | Self::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ConfirmationRequired { .. } => StatusCode::PRECONDITION_REQUIRED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(e) if connection_lost(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Migrate(_) | Self::Json(_) | Self::Token(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The machine-readable code of the error body.
    pub fn code(&self) -> String {
        match self {
            Self::Unauthorized(_) => "UNAUTHORIZED".into(),
            Self::Forbidden(_) => "FORBIDDEN".into(),
            Self::NotFound { resource, .. } => format!("{}_NOT_FOUND", resource.upper()),
            Self::AlreadyExists { resource, .. } => format!("{}_EXISTS", resource.upper()),
            Self::MalformedJson(_) => "MALFORMED_JSON".into(),
            Self::InvalidParameter { .. } => "INVALID_PARAMETER".into(),
            Self::Validation(_) => "VALIDATION_FAILED".into(),
            Self::VersionConflict { .. } => "VERSION_CONFLICT".into(),
            Self::EnvironmentNotEmpty { .. } => "ENVIRONMENT_NOT_EMPTY".into(),
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE".into(),
            Self::ConfirmationRequired { .. } => "CONFIRMATION_REQUIRED".into(),
            Self::RateLimited { .. } => "RATE_LIMITED".into(),
            Self::RouteNotFound(_) => "ROUTE_NOT_FOUND".into(),
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED".into(),
            Self::Unavailable(_) => "UNAVAILABLE".into(),
            Self::Database(e) if connection_lost(e) => "UNAVAILABLE".into(),
            Self::Database(_) | Self::Migrate(_) | Self::Json(_) | Self::Token(_) => {
                "INTERNAL".into()
            }
        }
    }

    /// Shorthand for a single-field validation failure.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// 409 for `key` of `resource`, which exists already.
    pub fn already_exists(resource: Resource, key: impl Into<String>) -> Self {
        Self::AlreadyExists {
            resource,
            key: key.into(),
        }
    }

    /// 404 for `key` of `resource`.
    pub fn not_found(resource: Resource, key: impl Into<String>) -> Self {
        Self::NotFound {
            resource,
            key: key.into(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // the cause goes to the log, never to the client
            tracing::error!(error = %self, "request failed");
            "internal server error".to_owned()
        } else if let Self::Database(_) = &self {
            // a lost connection: the client learns that, the log gets the driver's words
            tracing::warn!(error = %self, "database unreachable");
            DATABASE_UNREACHABLE.to_owned()
        } else {
            self.to_string()
        };
        let mut error = json!({ "code": self.code(), "message": message });
        match &self {
            Self::Validation(details) => error["details"] = json!(details),
            Self::VersionConflict { current, .. } => error["currentVersion"] = json!(current),
            Self::RateLimited { retry_after_secs } => {
                error["retryAfterSeconds"] = json!(retry_after_secs)
            }
            Self::InvalidParameter { name, .. } => error["field"] = json!(name),
            Self::ConfirmationRequired { environment } => error["environment"] = json!(environment),
            _ => {}
        }
        let mut response = (status, axum::Json(json!({ "error": error }))).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(reason) => {
                let challenge = if *reason == MISSING_CREDENTIALS {
                    r#"Bearer realm="edgeflags-admin""#.to_owned()
                } else {
                    format!(
                        r#"Bearer realm="edgeflags-admin", error="invalid_token", error_description="{reason}""#
                    )
                };
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_AFTER),
                );
            }
            _ => {}
        }
        response
    }
}

/// Message of a 503 for a database error that means the connection is gone.
const DATABASE_UNREACHABLE: &str = "service unavailable: database unreachable";

/// `Retry-After` seconds of a 503: a restarting database or a pool refilling takes seconds.
const UNAVAILABLE_RETRY_AFTER: u64 = 1;

/// True when `error` says the database could not be reached or dropped the connection (a restart,
/// a failover, a full pool), not that the statement was wrong: such a request failed before or
/// without committing and may be retried, so it is a 503, not a 500.
///
/// PostgreSQL's own words for it are SQLSTATE class 08 (connection exception) and 57P01..57P03
/// (admin shutdown, crash shutdown, cannot connect now) — what a backend says when `pg_ctl
/// restart` terminates it or a connection arrives while it starts.
fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// Reason of [`Error::Unauthorized`] when no credentials were sent at all (RFC 6750 §3.1: the
/// challenge then carries no error code).
pub const MISSING_CREDENTIALS: &str = "missing bearer token";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_message_names_the_first_field_and_counts_the_rest() {
        let error = Error::Validation(vec![
            FieldError::new(
                "targetingRules.rules[0].clauses[0].operator",
                "unknown operator",
            ),
            FieldError::new("flagKey", "too long"),
        ]);
        assert_eq!(
            error.to_string(),
            "validation failed: targetingRules.rules[0].clauses[0].operator: unknown operator (and 1 more problem)"
        );
        assert_eq!(error.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.code(), "VALIDATION_FAILED");
    }

    #[test]
    fn a_lost_database_connection_is_503_unavailable_with_retry_after() {
        let lost = Error::Database(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(lost.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(lost.code(), "UNAVAILABLE");
        let response = lost.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        for timeout in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            assert_eq!(
                Error::Database(timeout).status_code(),
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
    }

    #[test]
    fn other_database_errors_stay_500_internal() {
        let broken = Error::Database(sqlx::Error::RowNotFound);
        assert_eq!(broken.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(broken.code(), "INTERNAL");
        assert!(broken
            .into_response()
            .headers()
            .get(header::RETRY_AFTER)
            .is_none());
    }

    #[test]
    fn not_found_codes_name_the_resource() {
        assert_eq!(
            Error::not_found(Resource::FlagVersion, "x").code(),
            "FLAG_VERSION_NOT_FOUND"
        );
        assert_eq!(
            Error::not_found(Resource::Environment, "x").code(),
            "ENVIRONMENT_NOT_FOUND"
        );
    }
}
