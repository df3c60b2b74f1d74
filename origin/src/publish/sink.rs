//! The sink abstraction: somewhere a committed snapshot version has to arrive.

use std::error::Error as StdError;

use async_trait::async_trait;

/// Which versions of an environment a sink needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Every version, in order (an archive).
    EveryVersion,
    /// Only the newest version: when several are pending, the older ones are skipped.
    LatestOnly,
}

/// What a sink answered for one delivered version. Every variant moves the cursor past the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The sink stored this version.
    Stored,
    /// The sink already held exactly this version: a retry after an acknowledgement was lost.
    AlreadyStored,
    /// The sink holds a newer version and refused this one (edge `409 STALE_VERSION`).
    Superseded {
        /// The version the sink holds, when it said.
        stored_version: Option<u64>,
    },
}

impl Delivery {
    /// Label for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivery::Stored => "stored",
            Delivery::AlreadyStored => "already_stored",
            Delivery::Superseded { .. } => "superseded",
        }
    }
}

/// Why a delivery failed. Nothing is ever dropped: every failure is retried, permanent ones with a
/// much longer backoff so a misconfiguration does not hammer the sink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink could not be built (HTTP client or TLS setup).
    #[error("sink setup failed: {0}")]
    Setup(#[source] Box<dyn StdError + Send + Sync>),
    /// Connection refused, reset, timed out: retried with the normal backoff.
    #[error("sink unreachable: {0}")]
    Unreachable(#[source] Box<dyn StdError + Send + Sync>),
    /// The sink answered with a temporary failure (5xx, 408, 429): retried with the normal backoff.
    #[error("sink unavailable: HTTP {status}: {body}")]
    Unavailable {
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The sink refused this snapshot (4xx other than 409/408/429): it will refuse it again until
    /// someone fixes the configuration or the data, so it is retried with the long backoff.
    #[error("sink rejected the snapshot: HTTP {status}: {body}")]
    Rejected {
        /// HTTP status code.
        status: u16,
        /// Start of the response body.
        body: String,
    },
    /// The sink did not answer within the publisher's delivery timeout.
    #[error("delivery timed out after {0:?}")]
    TimedOut(std::time::Duration),
}

impl SinkError {
    /// True when retrying soon cannot help (see [`SinkError::Rejected`]).
    pub fn is_permanent(&self) -> bool {
        matches!(self, SinkError::Rejected { .. } | SinkError::Setup(_))
    }

    /// Label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkError::Setup(_) => "setup",
            SinkError::Unreachable(_) => "unreachable",
            SinkError::Unavailable { .. } => "unavailable",
            SinkError::Rejected { .. } => "rejected",
            SinkError::TimedOut(_) => "timed_out",
        }
    }

    /// Classifies an HTTP status that is not a success.
    pub(crate) fn from_status(status: u16, body: &str) -> Self {
        let body = truncate(body, 512).to_owned();
        if status >= 500 || status == 408 || status == 429 {
            SinkError::Unavailable { status, body }
        } else {
            SinkError::Rejected { status, body }
        }
    }
}

/// At most `max` bytes of `text`, cut on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One snapshot as a sink receives it.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Environment key.
    pub environment: &'a str,
    /// Snapshot version.
    pub version: u64,
    /// The exact text stored in the `snapshot` row.
    pub body: &'a str,
}

/// A destination for snapshots. Implementations must be idempotent per `(environment, version)`:
/// after a crash between a delivery and the cursor commit the same version is delivered again.
#[async_trait]
pub trait SnapshotSink: Send + Sync {
    /// Stable name; it is the `sink` column of `publish_cursor`, so renaming it restarts delivery.
    fn name(&self) -> &str;

    /// Which versions this sink needs.
    fn mode(&self) -> DeliveryMode {
        DeliveryMode::EveryVersion
    }

    /// Delivers one snapshot.
    async fn deliver(&self, snapshot: Outgoing<'_>) -> Result<Delivery, SinkError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_throttling_and_timeouts_are_temporary() {
        for status in [500, 502, 503, 408, 429] {
            assert!(
                !SinkError::from_status(status, "").is_permanent(),
                "{status}"
            );
        }
    }

    #[test]
    fn other_client_errors_are_permanent() {
        for status in [400, 401, 403, 404, 422] {
            assert!(
                SinkError::from_status(status, "").is_permanent(),
                "{status}"
            );
        }
    }

    #[test]
    fn truncate_cuts_on_a_character_boundary() {
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
