//! The one error type of the crate, and how each API flavour renders it.
//!
//! Both flavours share the status codes; only the body differs. The REST API answers
//! `{"error":{"code","message","field"}}`; OFREP answers its `evaluationFailure` schema
//! (`{"key","errorCode","errorDetails"}`) and, as its spec says, no body at all for 401/403.

use alloc::format;
use alloc::string::String;
use core::fmt;
use serde::Serialize;

use crate::response::{ApiResponse, ResponseBuilder};
use crate::Api;

/// Everything that stops a request from being evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No route of the evaluation API has this path.
    RouteNotFound {
        /// The request path.
        path: String,
    },
    /// The path exists but not for this method.
    MethodNotAllowed {
        /// The request method.
        method: String,
        /// Value of the `Allow` header.
        allow: &'static str,
    },
    /// The body is larger than [`crate::MAX_BODY_BYTES`].
    PayloadTooLarge {
        /// Size of the body in bytes.
        length: usize,
    },
    /// The body is not JSON.
    InvalidJson {
        /// The parser's explanation.
        message: String,
    },
    /// A body field (or the context) has the wrong type or shape.
    InvalidField {
        /// Path of the field, e.g. `flagKeys[2]` or `context.targetingKey`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A query parameter is not valid percent-encoded UTF-8.
    InvalidQuery {
        /// Name of the parameter (as far as it could be decoded).
        field: String,
    },
    /// The flag key in the path is not 1-255 characters of `[A-Za-z0-9_-]`.
    InvalidFlagKey {
        /// The decoded key.
        key: String,
    },
    /// No client key and no `environment` field: nothing says which environment to evaluate.
    MissingEnvironment,
    /// The environment key is not 1-255 characters of `[A-Za-z0-9_-]`.
    InvalidEnvironment {
        /// The offending value.
        environment: String,
    },
    /// Client keys are required and the request presents none.
    MissingClientKey,
    /// The presented client key is malformed or not one of the environment's keys.
    InvalidClientKey {
        /// Why it was refused.
        reason: &'static str,
    },
    /// A client key asked for what only a server key may have (the snapshot).
    ServerKeyRequired,
    /// The client key belongs to another environment than the one the request names.
    ForbiddenEnvironment {
        /// Environment of the key.
        key_environment: String,
        /// Environment the request asked for.
        requested: String,
    },
    /// The snapshot has no flag with this key.
    FlagNotFound {
        /// The flag key.
        key: String,
        /// The environment searched.
        environment: String,
    },
    /// No snapshot of the environment is available (never published, or storage unreachable).
    SnapshotUnavailable {
        /// The environment asked for.
        environment: String,
    },
    /// An event-stream request without a valid token (`crate::stream`).
    InvalidStreamToken {
        /// Why it was refused.
        reason: &'static str,
    },
    /// The environment, or the client key, has as many event streams open as allowed.
    TooManyStreams {
        /// The limit reached.
        limit: usize,
    },
}

impl Error {
    /// Machine-readable code of the REST API's error body.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::RouteNotFound { .. } => "NOT_FOUND",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::InvalidJson { .. } => "INVALID_JSON",
            Self::InvalidField { .. } => "INVALID_FIELD",
            Self::InvalidQuery { .. } => "INVALID_QUERY",
            Self::InvalidFlagKey { .. } => "INVALID_FLAG_KEY",
            Self::MissingEnvironment => "MISSING_ENVIRONMENT",
            Self::InvalidEnvironment { .. } => "INVALID_ENVIRONMENT",
            Self::MissingClientKey => "MISSING_CLIENT_KEY",
            Self::InvalidClientKey { .. } => "INVALID_CLIENT_KEY",
            Self::ForbiddenEnvironment { .. } => "FORBIDDEN_ENVIRONMENT",
            Self::ServerKeyRequired => "SERVER_KEY_REQUIRED",
            Self::FlagNotFound { .. } => "FLAG_NOT_FOUND",
            Self::SnapshotUnavailable { .. } => "SNAPSHOT_UNAVAILABLE",
            Self::InvalidStreamToken { .. } => "INVALID_STREAM_TOKEN",
            Self::TooManyStreams { .. } => "TOO_MANY_STREAMS",
        }
    }

    /// HTTP status for `api`. The two flavours agree except where OFREP's spec and providers
    /// expect otherwise: a malformed key cannot exist, so OFREP answers 404 `FLAG_NOT_FOUND`;
    /// OFREP providers only understand 500 for server-side failures.
    #[must_use]
    pub const fn status_code(&self, api: Api) -> u16 {
        match (self, api) {
            (Self::RouteNotFound { .. } | Self::FlagNotFound { .. }, _) => 404,
            (Self::InvalidFlagKey { .. }, Api::Ofrep) => 404,
            (Self::MethodNotAllowed { .. }, _) => 405,
            (Self::PayloadTooLarge { .. }, _) => 413,
            (
                Self::MissingClientKey
                | Self::InvalidClientKey { .. }
                | Self::InvalidStreamToken { .. },
                _,
            ) => 401,
            (Self::TooManyStreams { .. }, _) => 429,
            (Self::ForbiddenEnvironment { .. } | Self::ServerKeyRequired, _) => 403,
            (Self::SnapshotUnavailable { .. }, Api::Rest) => 503,
            (Self::SnapshotUnavailable { .. }, Api::Ofrep) => 500,
            (
                Self::InvalidJson { .. }
                | Self::InvalidField { .. }
                | Self::InvalidQuery { .. }
                | Self::InvalidFlagKey { .. }
                | Self::MissingEnvironment
                | Self::InvalidEnvironment { .. },
                _,
            ) => 400,
        }
    }

    /// The OpenFeature error code OFREP reports for this error.
    #[must_use]
    pub const fn ofrep_error_code(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "PARSE_ERROR",
            Self::InvalidField { .. }
            | Self::InvalidQuery { .. }
            | Self::MissingEnvironment
            | Self::InvalidEnvironment { .. } => "INVALID_CONTEXT",
            Self::FlagNotFound { .. } | Self::InvalidFlagKey { .. } => "FLAG_NOT_FOUND",
            _ => "GENERAL",
        }
    }

    /// The request field at fault, as the REST API's error body names it.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidField { field, .. } | Self::InvalidQuery { field } => Some(field),
            Self::PayloadTooLarge { .. } | Self::InvalidJson { .. } => Some("body"),
            Self::InvalidFlagKey { .. } | Self::FlagNotFound { .. } => Some("flagKey"),
            Self::MissingEnvironment
            | Self::InvalidEnvironment { .. }
            | Self::ForbiddenEnvironment { .. }
            | Self::SnapshotUnavailable { .. } => Some("environment"),
            Self::MissingClientKey | Self::InvalidClientKey { .. } | Self::ServerKeyRequired => {
                Some("Authorization")
            }
            Self::InvalidStreamToken { .. } => Some("token"),
            Self::RouteNotFound { .. }
            | Self::MethodNotAllowed { .. }
            | Self::TooManyStreams { .. } => None,
        }
    }

    /// Renders the error as `api` answers it; `flag_key` is echoed by OFREP's single-flag route.
    #[must_use]
    pub fn to_response(&self, api: Api, flag_key: Option<&str>) -> ApiResponse {
        let status = self.status_code(api);
        let mut builder = ResponseBuilder::new(status);
        match self {
            Self::MethodNotAllowed { allow, .. } => builder.header("Allow", *allow),
            Self::MissingClientKey | Self::InvalidClientKey { .. } => {
                builder.header("WWW-Authenticate", "Bearer");
            }
            _ => {}
        }
        if api == Api::Ofrep && matches!(status, 401 | 403) {
            // OFREP: "401/403 — no content"; providers map the status alone.
            return builder.empty();
        }
        let message = format!("{self}");
        match api {
            Api::Rest => builder.json(&RestErrorBody {
                error: RestError {
                    code: self.code(),
                    message: &message,
                    field: self.field(),
                },
            }),
            Api::Ofrep => builder.json(&OfrepErrorBody {
                key: flag_key,
                error_code: self.ofrep_error_code(),
                error_details: &message,
            }),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RouteNotFound { path } => write!(f, "no evaluation API route at {path:?}"),
            Self::MethodNotAllowed { method, allow } => {
                write!(f, "method {method} is not allowed here; use {allow}")
            }
            Self::PayloadTooLarge { length } => write!(
                f,
                "request body is {length} bytes; the limit is {} bytes",
                crate::MAX_BODY_BYTES
            ),
            Self::InvalidJson { message } => write!(f, "request body is not valid JSON: {message}"),
            Self::InvalidField { field, message } => write!(f, "{field}: {message}"),
            Self::InvalidQuery { field } => {
                write!(f, "query parameter {field:?} is not valid percent-encoded UTF-8")
            }
            Self::InvalidFlagKey { key } => write!(
                f,
                "flag key {key:?} is invalid: expected 1-255 characters of letters, digits, '-' and '_'"
            ),
            Self::MissingEnvironment => f.write_str(
                "no environment: send a client key, or name the environment (query/body field \
                 `environment`, OFREP context attribute `environment`)",
            ),
            Self::InvalidEnvironment { environment } => write!(
                f,
                "environment {environment:?} is invalid: expected 1-255 characters of letters, digits, '-' and '_'"
            ),
            Self::MissingClientKey => f.write_str(
                "a client key is required: send `Authorization: Bearer efk.<environment>.<secret>` \
                 or `X-Client-Key`",
            ),
            Self::InvalidClientKey { reason } => write!(f, "client key rejected: {reason}"),
            Self::ServerKeyRequired => f.write_str(
                "a client key may only evaluate; the snapshot needs a server key \
                 (`Authorization: Bearer efs.<environment>.<secret>`)",
            ),
            Self::ForbiddenEnvironment { key_environment, requested } => write!(
                f,
                "the client key belongs to environment {key_environment:?}, not {requested:?}"
            ),
            Self::FlagNotFound { key, environment } => {
                write!(f, "flag {key:?} does not exist in environment {environment:?}")
            }
            Self::SnapshotUnavailable { environment } => write!(
                f,
                "no flag snapshot is available for environment {environment:?}; serving the fallback"
            ),
            Self::InvalidStreamToken { reason } => write!(f, "event stream refused: {reason}"),
            Self::TooManyStreams { limit } => write!(
                f,
                "{limit} event streams are open already for this environment or client key; retry later"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Crate result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[derive(Serialize)]
struct RestErrorBody<'a> {
    error: RestError<'a>,
}

#[derive(Serialize)]
struct RestError<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OfrepErrorBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    error_code: &'static str,
    error_details: &'a str,
}
