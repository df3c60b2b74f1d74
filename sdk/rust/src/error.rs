//! The crate's one error type.

use std::time::Duration;

/// What went wrong: building the client, reaching the server, or the snapshot it sent.
///
/// Errors of the background synchronisation never stop the client: they are reported through
/// [`crate::Health::last_error`] while the last good snapshot keeps serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL given to [`crate::Client::builder`] is not an absolute `http`/`https` URL.
    #[error("invalid base URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// The base URL parses but cannot serve the SDK (not `http`/`https`, or no host).
    #[error("the base URL {url:?} must be an http or https URL with a host")]
    UnsupportedUrl {
        /// The URL as given.
        url: String,
    },
    /// The key is not a server key (`efs.<environment>.<32 lowercase hex>`). A client key
    /// (`efk.…`) can never download a snapshot.
    #[error("not a server key (efs.<environment>.<32 lowercase hex>){hint}", hint = if *.client_key { "; this is a client key, which may only evaluate remotely" } else { "" })]
    InvalidServerKey {
        /// The key looks like a client key.
        client_key: bool,
    },
    /// Neither a server key nor, for a server with keys switched off, an environment was given.
    #[error("a server key or an environment is required")]
    MissingCredential,
    /// [`crate::ClientBuilder::build`] was called outside a tokio runtime.
    #[error("the client needs a tokio runtime to run its background synchronisation")]
    NoRuntime,
    /// A request could not be sent or its answer not read (connection refused, reset, timeout,
    /// a corrupt compressed body).
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL requested (the stream token is cut off).
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}{}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
    Status {
        /// The URL requested (the stream token is cut off).
        url: String,
        /// The HTTP status.
        status: u16,
        /// `error.code` of the REST error body, e.g. `INVALID_CLIENT_KEY`, `SERVER_KEY_REQUIRED`.
        code: Option<String>,
        /// `Retry-After`, when the server sent one (`429 TOO_MANY_STREAMS`).
        retry_after: Option<Duration>,
    },
    /// The snapshot is larger than any the edge can hold, so it is not read.
    #[error("the snapshot is larger than {limit} bytes")]
    SnapshotTooLarge {
        /// The limit, `evaluator_core::validate::limits::SNAPSHOT_BYTES`.
        limit: usize,
    },
    /// The body is not a snapshot at all (not JSON, or no `environment` and `version`).
    #[error("the server sent an unreadable snapshot: {0}")]
    BadSnapshot(#[from] evaluator_core::Error),
    /// The snapshot is of another environment than the server key's.
    #[error("the server sent a snapshot of environment {got:?}, not {expected:?}")]
    WrongEnvironment {
        /// The key's (or the configured) environment.
        expected: String,
        /// The snapshot's.
        got: String,
    },
    /// The server answered `200` without an `ETag`, or the event stream was not an event
    /// stream: it does not speak the SDK contract (docs/sdk.md).
    #[error("{url} does not answer like an edgeflags snapshot endpoint: {problem}")]
    Protocol {
        /// The URL requested (the stream token is cut off).
        url: String,
        /// What is wrong with the answer.
        problem: &'static str,
    },
    /// No snapshot has been loaded yet.
    #[error("no snapshot has been loaded yet")]
    NotReady,
    /// [`crate::Client::wait_ready`] gave up.
    #[error("no snapshot within {0:?}")]
    Timeout(Duration),
    /// The client was shut down before it became ready.
    #[error("the client was shut down")]
    Shutdown,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether retrying cannot help: the server refuses this key (`401`, `403`), or the
    /// configuration is wrong. The client keeps retrying anyway, slowly (a key may be created
    /// or an environment restored meanwhile), but reports the status as [`crate::Status::Error`].
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 401 | 403 | 404),
            Self::InvalidUrl { .. }
            | Self::UnsupportedUrl { .. }
            | Self::InvalidServerKey { .. }
            | Self::MissingCredential
            | Self::WrongEnvironment { .. } => true,
            _ => false,
        }
    }
}

/// A URL for messages and logs: the query (which holds the stream token) is cut off.
pub(crate) fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.query().is_some() {
        shown.set_query(Some("…"));
    }
    shown.to_string()
}
