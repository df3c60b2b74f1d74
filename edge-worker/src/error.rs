//! The worker's one error type: everything its own routes (publish, health) can answer with,
//! plus runtime failures. Evaluation errors are `evaluation_api`'s business. Codes, statuses and
//! the answer's JSON shape are the publish protocol's (`publish_protocol::ErrorCode`,
//! `publish_protocol::ErrorAnswer`).

use core::fmt;

use publish_protocol::{ErrorAnswer, ErrorCode, SecretTooShort, SignatureError, MIN_SECRET_BYTES};

use crate::settings::PUBLISH_SECRET;

/// A failed request to one of the worker's own routes, or a runtime failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Missing, malformed, expired or wrong `X-Edgeflags-Signature` / `X-Edgeflags-Timestamp`.
    InvalidSignature(SignatureError),
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
    /// The secret `PUBLISH_SECRET` is shorter than the protocol's minimum, so no publish is
    /// accepted until it is replaced (a deployment mistake, answered like an unset secret).
    PublishSecretTooShort(SecretTooShort),
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
    /// The protocol's code for this error, which fixes its status.
    #[must_use]
    pub const fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidSignature(_) => ErrorCode::InvalidSignature,
            Self::InvalidSnapshot { .. } => ErrorCode::InvalidSnapshot,
            Self::EnvironmentMismatch { .. } => ErrorCode::EnvironmentMismatch,
            Self::InvalidEnvironment { .. } => ErrorCode::InvalidEnvironment,
            Self::StaleVersion { .. } => ErrorCode::StaleVersion,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::PublishNotConfigured | Self::PublishSecretTooShort(_) => {
                ErrorCode::PublishNotConfigured
            }
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::Storage { .. } => ErrorCode::StorageUnavailable,
            Self::Runtime(_) => ErrorCode::Internal,
        }
    }

    /// HTTP status of the answer.
    #[must_use]
    pub const fn status_code(&self) -> u16 {
        self.error_code().status()
    }

    /// Machine-readable code of the answer.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The JSON body: `{"code","message"}` plus `errors` / `storedVersion` where the publish
    /// protocol defines them. Server-side details stay in the log.
    #[must_use]
    pub fn body(&self) -> ErrorAnswer {
        let message = match self {
            Self::Storage { .. } => String::from("the snapshot store is unavailable; retry later"),
            Self::Runtime(_) => String::from("internal error"),
            other => other.to_string(),
        };
        ErrorAnswer {
            code: self.error_code(),
            message,
            errors: match self {
                Self::InvalidSnapshot { errors } => Some(errors.clone()),
                _ => None,
            },
            stored_version: match self {
                Self::StaleVersion { stored, .. } => Some(*stored),
                _ => None,
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSignature(error) => write!(f, "signature rejected: {error}"),
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
                write!(f, "publishing is disabled: the secret {PUBLISH_SECRET} is not set")
            }
            Self::PublishSecretTooShort(SecretTooShort { length }) => write!(
                f,
                "publishing is disabled: the secret {PUBLISH_SECRET} is {length} bytes; it must be at least {MIN_SECRET_BYTES} bytes"
            ),
            Self::MethodNotAllowed { allow } => write!(f, "method not allowed; use {allow}"),
            Self::Storage { message } => write!(f, "Workers KV failed: {message}"),
            Self::Runtime(error) => write!(f, "runtime error: {error}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<SignatureError> for Error {
    fn from(error: SignatureError) -> Self {
        Self::InvalidSignature(error)
    }
}

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
