//! The worker's one error type: everything its own routes (publish, health) can answer with,
//! plus runtime failures. Evaluation errors are `evaluation_api`'s business.

use core::fmt;
use serde::Serialize;

/// A failed request to one of the worker's own routes, or a runtime failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Missing, malformed, expired or wrong `X-Edgeflags-Signature` / `X-Edgeflags-Timestamp`.
    InvalidSignature {
        /// What exactly was wrong (never the expected signature).
        reason: &'static str,
    },
    /// The body is not a valid snapshot; every problem with its path.
    InvalidSnapshot {
        /// `"<path>: <message>"` per problem.
        errors: Vec<String>,
    },
    /// The body's `environment` is not the one in the path.
    EnvironmentMismatch {
        /// Environment in the path.
        path: String,
        /// Environment in the body.
        body: String,
    },
    /// The path's environment key is not 1-255 characters of `[A-Za-z0-9_-]`.
    InvalidEnvironment {
        /// The offending key.
        environment: String,
    },
    /// An older version than the stored one: never overwrite newer.
    StaleVersion {
        /// Version in the request.
        version: u64,
        /// Version already stored.
        stored: u64,
    },
    /// The body exceeds the route's limit.
    PayloadTooLarge {
        /// Size of the body (from `Content-Length` or as read).
        length: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The secret `PUBLISH_SECRET` is not set, so no publish can be verified.
    PublishNotConfigured,
    /// Known path, wrong method.
    MethodNotAllowed {
        /// Value of the `Allow` header.
        allow: &'static str,
    },
    /// Workers KV failed; the publisher should retry.
    Storage {
        /// The runtime's message (logged, not sent).
        message: String,
    },
    /// Any other failure of the Workers runtime (logged, not sent).
    Runtime(worker::Error),
}

impl Error {
    /// HTTP status of the answer.
    #[must_use]
    pub const fn status_code(&self) -> u16 {
        match self {
            Self::InvalidSignature { .. } => 401,
            Self::InvalidSnapshot { .. }
            | Self::EnvironmentMismatch { .. }
            | Self::InvalidEnvironment { .. } => 400,
            Self::StaleVersion { .. } => 409,
            Self::PayloadTooLarge { .. } => 413,
            Self::MethodNotAllowed { .. } => 405,
            Self::PublishNotConfigured | Self::Storage { .. } => 503,
            Self::Runtime(_) => 500,
        }
    }

    /// Machine-readable code of the answer.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidSignature { .. } => "INVALID_SIGNATURE",
            Self::InvalidSnapshot { .. } => "INVALID_SNAPSHOT",
            Self::EnvironmentMismatch { .. } => "ENVIRONMENT_MISMATCH",
            Self::InvalidEnvironment { .. } => "INVALID_ENVIRONMENT",
            Self::StaleVersion { .. } => "STALE_VERSION",
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::PublishNotConfigured => "PUBLISH_NOT_CONFIGURED",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::Storage { .. } => "STORAGE_UNAVAILABLE",
            Self::Runtime(_) => "INTERNAL",
        }
    }

    /// The JSON body: `{"code","message"}` plus `errors` / `storedVersion` where the contract
    /// (`/work/team-contracts.md`, edge publish endpoint) defines them. Server-side details stay
    /// in the log.
    #[must_use]
    pub fn body(&self) -> ErrorBody<'_> {
        let message = match self {
            Self::Storage { .. } => String::from("the snapshot store is unavailable; retry later"),
            Self::Runtime(_) => String::from("internal error"),
            other => other.to_string(),
        };
        ErrorBody {
            code: self.code(),
            message,
            errors: match self {
                Self::InvalidSnapshot { errors } => Some(errors),
                _ => None,
            },
            stored_version: match self {
                Self::StaleVersion { stored, .. } => Some(*stored),
                _ => None,
            },
        }
    }
}

/// JSON shape of an error answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stored_version: Option<u64>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSignature { reason } => write!(f, "signature rejected: {reason}"),
            Self::InvalidSnapshot { errors } => {
                write!(f, "the snapshot is invalid ({} problem(s))", errors.len())
            }
            Self::EnvironmentMismatch { path, body } => write!(
                f,
                "the body is a snapshot of environment {body:?}, the path names {path:?}"
            ),
            Self::InvalidEnvironment { environment } => write!(
                f,
                "environment {environment:?} is invalid: expected 1-255 characters of letters, digits, '-' and '_'"
            ),
            Self::StaleVersion { version, stored } => {
                write!(f, "version {version} is older than the stored version {stored}")
            }
            Self::PayloadTooLarge { length, limit } => {
                write!(f, "the body is {length} bytes; the limit is {limit} bytes")
            }
            Self::PublishNotConfigured => {
                f.write_str("publishing is disabled: the secret PUBLISH_SECRET is not set")
            }
            Self::MethodNotAllowed { allow } => write!(f, "method not allowed; use {allow}"),
            Self::Storage { message } => write!(f, "Workers KV failed: {message}"),
            Self::Runtime(error) => write!(f, "runtime error: {error}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<worker::Error> for Error {
    fn from(error: worker::Error) -> Self {
        Self::Runtime(error)
    }
}

impl From<worker::kv::KvError> for Error {
    fn from(error: worker::kv::KvError) -> Self {
        Self::Storage {
            message: error.to_string(),
        }
    }
}

/// Crate result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
