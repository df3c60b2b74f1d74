//! The receiver's answers: their JSON shapes, their codes and statuses, and what each means to
//! the publisher.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// Body of a `200` answer: the snapshot is the one the edge holds for the environment now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    /// The environment of the path.
    pub environment: String,
    /// `true`: this publish wrote the snapshot. `false`: the edge already held exactly this
    /// version (an idempotent retry, e.g. after the publisher lost the first answer); nothing was
    /// written.
    pub stored: bool,
    /// The published version.
    pub version: u64,
}

/// Body of every other answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorAnswer {
    /// What went wrong; it determines the status ([`ErrorCode::status`]).
    pub code: ErrorCode,
    /// A sentence for the operator (never a secret or an expected signature).
    pub message: String,
    /// `INVALID_SNAPSHOT` only: every problem as `"<path>: <message>"` (at most 100, then
    /// `"... and N more"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
    /// `STALE_VERSION` only: the newer version the edge holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_version: Option<u64>,
}

/// The `code` of an [`ErrorAnswer`], with its status. For the publisher, a 4xx other than 409
/// repeats until an operator fixes the configuration or the data (retry slowly, never drop); a
/// 5xx is temporary (retry with backoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// `400`: the body is not a valid snapshot (`errors` lists why). Fix the data.
    InvalidSnapshot,
    /// `400`: the body's `environment` is not the path's.
    EnvironmentMismatch,
    /// `400`: the path's environment is not 1-255 characters of `[A-Za-z0-9_-]`.
    InvalidEnvironment,
    /// `401`: missing, malformed, expired or wrong signature: clocks or secrets differ.
    InvalidSignature,
    /// `405`: publishes are `PUT`.
    MethodNotAllowed,
    /// `409`: the edge holds a newer version (`storedVersion`) and kept it. Not a failure: a
    /// publisher that only needs the newest version there is done with this one.
    StaleVersion,
    /// `413`: the body exceeds [`MAX_SNAPSHOT_BYTES`](crate::MAX_SNAPSHOT_BYTES) (as sent, or
    /// once packed).
    PayloadTooLarge,
    /// `503`: the worker's `PUBLISH_SECRET` is unset or shorter than
    /// [`MIN_SECRET_BYTES`](crate::MIN_SECRET_BYTES): a deployment mistake on the edge.
    PublishNotConfigured,
    /// `503`: Workers KV failed; retry.
    StorageUnavailable,
    /// `500`: any other failure of the worker's runtime; retry.
    Internal,
}

impl ErrorCode {
    /// The HTTP status the code is answered with.
    #[must_use]
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidSnapshot | Self::EnvironmentMismatch | Self::InvalidEnvironment => 400,
            Self::InvalidSignature => 401,
            Self::MethodNotAllowed => 405,
            Self::StaleVersion => 409,
            Self::PayloadTooLarge => 413,
            Self::PublishNotConfigured | Self::StorageUnavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The code as it appears in the JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSnapshot => "INVALID_SNAPSHOT",
            Self::EnvironmentMismatch => "ENVIRONMENT_MISMATCH",
            Self::InvalidEnvironment => "INVALID_ENVIRONMENT",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::StaleVersion => "STALE_VERSION",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::PublishNotConfigured => "PUBLISH_NOT_CONFIGURED",
            Self::StorageUnavailable => "STORAGE_UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

/// What an answer means to the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// `200`, `stored: true` (or a 200 body it cannot read): delivered.
    Stored,
    /// `200`, `stored: false`: the edge already held this version; delivered.
    AlreadyStored,
    /// `409`: the edge holds a newer version (`storedVersion`, when the body says); nothing more
    /// to deliver for this version.
    Superseded {
        /// The version the edge holds.
        stored_version: Option<u64>,
    },
    /// Anything else: not delivered; the status says whether retrying soon can help (see
    /// [`ErrorCode`]).
    Failed {
        /// The HTTP status.
        status: u16,
    },
}

/// Reads the receiver's answer (`status` and raw body). Only the fields the outcome depends on
/// are read, and leniently: a 200 whose body says nothing else is a store, and a 409 without a
/// readable `storedVersion` is still superseded.
#[must_use]
pub fn outcome(status: u16, body: &[u8]) -> Outcome {
    /// The parts of either answer shape the outcome depends on.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Parts {
        #[serde(default)]
        stored: Option<bool>,
        #[serde(default)]
        stored_version: Option<u64>,
    }
    let parts = serde_json::from_slice::<Parts>(body).ok();
    match status {
        200 => match parts.and_then(|p| p.stored) {
            Some(false) => Outcome::AlreadyStored,
            _ => Outcome::Stored,
        },
        409 => Outcome::Superseded {
            stored_version: parts.and_then(|p| p.stored_version),
        },
        status => Outcome::Failed { status },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec;

    #[test]
    fn a_stored_answer_serializes_as_the_worker_sends_it() {
        let answer = StoredAnswer {
            environment: "production".to_string(),
            stored: true,
            version: 5,
        };
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"environment":"production","stored":true,"version":5}"#
        );
    }

    #[test]
    fn an_error_answer_carries_only_the_fields_of_its_code() {
        let stale = ErrorAnswer {
            code: ErrorCode::StaleVersion,
            message: "version 4 is older than the stored version 5".to_string(),
            errors: None,
            stored_version: Some(5),
        };
        assert_eq!(
            serde_json::to_string(&stale).unwrap(),
            r#"{"code":"STALE_VERSION","message":"version 4 is older than the stored version 5","storedVersion":5}"#
        );
        let invalid = ErrorAnswer {
            code: ErrorCode::InvalidSnapshot,
            message: "the snapshot is invalid (1 problem(s))".to_string(),
            errors: Some(vec!["body: x".to_string()]),
            stored_version: None,
        };
        let json = serde_json::to_string(&invalid).unwrap();
        assert_eq!(
            json,
            r#"{"code":"INVALID_SNAPSHOT","message":"the snapshot is invalid (1 problem(s))","errors":["body: x"]}"#
        );
        assert_eq!(serde_json::from_str::<ErrorAnswer>(&json).unwrap(), invalid);
    }

    #[test]
    fn every_code_serializes_as_its_name_and_has_its_status() {
        let codes = [
            (ErrorCode::InvalidSnapshot, 400),
            (ErrorCode::EnvironmentMismatch, 400),
            (ErrorCode::InvalidEnvironment, 400),
            (ErrorCode::InvalidSignature, 401),
            (ErrorCode::MethodNotAllowed, 405),
            (ErrorCode::StaleVersion, 409),
            (ErrorCode::PayloadTooLarge, 413),
            (ErrorCode::PublishNotConfigured, 503),
            (ErrorCode::StorageUnavailable, 503),
            (ErrorCode::Internal, 500),
        ];
        for (code, status) in codes {
            assert_eq!(code.status(), status, "{code:?}");
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                std::format!("\"{}\"", code.as_str())
            );
        }
    }

    #[test]
    fn a_200_is_stored_unless_it_says_stored_false() {
        let stored = br#"{"environment":"production","stored":true,"version":5}"#;
        let again = br#"{"environment":"production","stored":false,"version":5}"#;
        assert_eq!(outcome(200, stored), Outcome::Stored);
        assert_eq!(outcome(200, again), Outcome::AlreadyStored);
        assert_eq!(outcome(200, b"not json"), Outcome::Stored);
    }

    #[test]
    fn a_409_is_superseded_with_the_stored_version_when_given() {
        let body = br#"{"code":"STALE_VERSION","message":"older","storedVersion":40}"#;
        assert_eq!(
            outcome(409, body),
            Outcome::Superseded {
                stored_version: Some(40)
            }
        );
        assert_eq!(
            outcome(409, b""),
            Outcome::Superseded {
                stored_version: None
            }
        );
    }

    #[test]
    fn any_other_status_is_a_failure() {
        let body = br#"{"code":"INVALID_SIGNATURE","message":"signature rejected: x"}"#;
        assert_eq!(outcome(401, body), Outcome::Failed { status: 401 });
        assert_eq!(outcome(503, b""), Outcome::Failed { status: 503 });
        assert_eq!(outcome(201, b""), Outcome::Failed { status: 201 });
    }
}
