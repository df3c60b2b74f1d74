//! The client: configuration, the background task's lifetime, and synchronous evaluation.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use evaluator_core::EvaluationContext;
use reqwest::header::HeaderValue;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::snapshot::{Resolved, Snapshot};
use crate::status::{Health, Shared, Status};
use crate::sync::{run, Timing};

/// The snapshot endpoint, relative to the base URL.
const SNAPSHOT_PATH: &str = "sdk/v1/snapshot";

/// Configures a [`Client`]; from [`Client::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientBuilder {
    base: String,
    server_key: String,
    environment: Option<String>,
    poll_interval: Duration,
    streaming: bool,
    min_backoff: Duration,
    max_backoff: Duration,
    request_timeout: Duration,
    stream_idle_timeout: Duration,
    http: Option<reqwest::Client>,
}

impl ClientBuilder {
    /// The environment to download, for a server with keys switched off (local development:
    /// `GET /sdk/v1/snapshot?environment=dev`; pass an empty server key). With a server key it
    /// must be the key's.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// How often to ask for a new snapshot (with `If-None-Match`) while no event stream is
    /// connected. Default 30 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Whether to follow the event stream the server advertises (default `true`). Off, the
    /// client polls.
    pub fn streaming(mut self, on: bool) -> Self {
        self.streaming = on;
        self
    }

    /// The bounds of the retry delays after failures (doubling, jittered). Default 500 ms to
    /// 30 s. The stream's `retry:` raises the first reconnection delay within them.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min.max(Duration::from_millis(1));
        self.max_backoff = max.max(self.min_backoff);
        self
    }

    /// How long a snapshot request may take, and how long the stream may take to answer.
    /// Default 10 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long the event stream may stay silent before it is considered broken. Our servers
    /// send a heartbeat every 25 s; default 60 s.
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = timeout;
        self
    }

    /// The HTTP client to use (proxies, custom roots). It should decode gzip; the default one
    /// does.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Validates the configuration and starts the background task on the current tokio
    /// runtime. The client is not ready yet: see [`Client::wait_ready`].
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] / [`Error::UnsupportedUrl`], [`Error::InvalidServerKey`],
    /// [`Error::MissingCredential`], [`Error::WrongEnvironment`] (the environment given is not
    /// the key's), [`Error::NoRuntime`], [`Error::Http`] (the HTTP client cannot be built).
    pub fn build(self) -> Result<Client> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let endpoint = self.endpoint()?;
        let timing = Timing {
            poll_interval: self.poll_interval,
            streaming: self.streaming,
            min_backoff: self.min_backoff,
            max_backoff: self.max_backoff,
            stream_idle_timeout: self.stream_idle_timeout,
        };
        let shared = Arc::new(Shared::new());
        let shutdown = CancellationToken::new();
        let task = {
            let (shared, shutdown) = (shared.clone(), shutdown.clone());
            runtime.spawn(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = run(endpoint, shared.clone(), timing) => {}
                }
                shared.shut_down();
            })
        };
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                shutdown,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let mut base = Url::parse(&self.base).map_err(|source| Error::InvalidUrl {
            url: self.base.clone(),
            source,
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(Error::UnsupportedUrl {
                url: self.base.clone(),
            });
        }
        // `https://host/prefix` and `https://host/prefix/` both mean the directory.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let key_environment = match self.server_key.as_str() {
            "" => None,
            key => Some(parse_server_key(key)?),
        };
        let environment = match (key_environment, &self.environment) {
            (None, None) => return Err(Error::MissingCredential),
            (Some(from_key), Some(given)) if from_key != *given => {
                return Err(Error::WrongEnvironment {
                    expected: from_key.to_owned(),
                    got: given.clone(),
                })
            }
            (Some(from_key), _) => from_key.to_owned(),
            (None, Some(given)) => given.clone(),
        };
        let mut snapshot_url = base
            .join(SNAPSHOT_PATH)
            .map_err(|source| Error::InvalidUrl {
                url: self.base.clone(),
                source,
            })?;
        let authorization = if self.server_key.is_empty() {
            snapshot_url
                .query_pairs_mut()
                .append_pair("environment", &environment);
            None
        } else {
            let mut value = HeaderValue::try_from(format!("Bearer {}", self.server_key))
                .map_err(|_| Error::InvalidServerKey { client_key: false })?;
            value.set_sensitive(true);
            Some(value)
        };
        let http = match &self.http {
            Some(http) => http.clone(),
            None => reqwest::Client::builder()
                .connect_timeout(self.request_timeout)
                .user_agent(concat!("edgeflags-client/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|source| Error::Http {
                    url: base.to_string(),
                    source,
                })?,
        };
        Ok(Endpoint {
            http,
            base,
            snapshot_url,
            authorization,
            environment: Some(environment),
            request_timeout: self.request_timeout,
        })
    }
}

/// The environment of a server key `efs.<environment>.<32 lowercase hex>`.
fn parse_server_key(key: &str) -> Result<&str> {
    let client_key = key.starts_with("efk.");
    let invalid = Error::InvalidServerKey { client_key };
    let Some((environment, secret)) = key.strip_prefix("efs.").and_then(|k| k.rsplit_once('.'))
    else {
        return Err(invalid);
    };
    let secret_ok = secret.len() == 32
        && secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !secret_ok || evaluator_core::validate_flag_key(environment).is_err() {
        return Err(invalid);
    }
    Ok(environment)
}

/// An in-process edgeflags client: holds the environment's snapshot, keeps it current in the
/// background, and evaluates synchronously without I/O.
///
/// Cheap to clone (an `Arc`); all clones share one snapshot and one background task. The task
/// stops on [`Client::shutdown`], or when the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let health = self.health();
        f.debug_struct("Client")
            .field("status", &health.status)
            .field("version", &health.version)
            .field("streaming", &health.streaming)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the edge (or origin) at `url`, e.g. `https://flags.example.com`, with a
    /// server key `efs.<environment>.<32 hex>`.
    pub fn builder(url: impl Into<String>, server_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: url.into(),
            server_key: server_key.into(),
            environment: None,
            poll_interval: Duration::from_secs(30),
            streaming: true,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            stream_idle_timeout: Duration::from_secs(60),
            http: None,
        }
    }

    /// The snapshot in service, to evaluate many flags against one version without copying
    /// results. `None` before the first snapshot.
    #[must_use]
    pub fn snapshot(&self) -> Option<Snapshot> {
        self.inner.shared.snapshot()
    }

    /// Evaluates one flag for `context`, now.
    ///
    /// # Errors
    /// [`Error::NotReady`] before the first snapshot. Everything else (unknown flag, invalid
    /// flag, missing targeting key) is an evaluation with reason `ERROR` and its code.
    pub fn evaluate(&self, flag_key: &str, context: &EvaluationContext) -> Result<Resolved> {
        let snapshot = self.snapshot().ok_or(Error::NotReady)?;
        let evaluation = snapshot.evaluate(flag_key, context);
        Ok(Resolved::of(evaluation, snapshot.version()))
    }

    /// Evaluates every flag for one context, in snapshot order.
    ///
    /// # Errors
    /// [`Error::NotReady`] before the first snapshot.
    pub fn evaluate_all(&self, context: &EvaluationContext) -> Result<Vec<Resolved>> {
        let snapshot = self.snapshot().ok_or(Error::NotReady)?;
        let version = snapshot.version();
        Ok(snapshot
            .evaluate_all(context)
            .into_iter()
            .map(|e| Resolved::of(e, version))
            .collect())
    }

    /// "Is this user in the feature?" (`enabled` of docs/flag-model.md): `false` for unknown
    /// flags, failed evaluations, and before the first snapshot.
    #[must_use]
    pub fn is_enabled(&self, flag_key: &str, context: &EvaluationContext) -> bool {
        self.snapshot().is_some_and(|s| {
            let evaluation = s.evaluate(flag_key, context);
            evaluation.enabled && evaluation.error_code.is_none()
        })
    }

    /// How current the flags are.
    #[must_use]
    pub fn status(&self) -> Status {
        self.inner.shared.health().status
    }

    /// The status with its details (version, stream, last error).
    #[must_use]
    pub fn health(&self) -> Health {
        self.inner.shared.health()
    }

    /// A receiver that sees every change of status, version or stream connection.
    #[must_use]
    pub fn watch_health(&self) -> watch::Receiver<Health> {
        self.inner.shared.subscribe()
    }

    /// Waits until a snapshot is in service (at once if one is).
    ///
    /// # Errors
    /// [`Error::Timeout`] when none arrived within `timeout` (the client keeps trying; see
    /// [`Health::last_error`] for why), [`Error::Shutdown`] when the client was shut down.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let mut health = self.watch_health();
        let wait = async {
            loop {
                {
                    let now = health.borrow_and_update();
                    if now.status.has_snapshot() {
                        return Ok(());
                    }
                    if now.shut_down {
                        return Err(Error::Shutdown);
                    }
                }
                if health.changed().await.is_err() {
                    return Err(Error::Shutdown);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }

    /// Stops the background task and waits for it to end. The snapshot in service keeps
    /// serving evaluations, but is no longer updated. Idempotent.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            // The task only ends by cancellation; a panic in it has been reported by tokio.
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "efs.production.0123456789abcdef0123456789abcdef";

    #[test]
    fn a_server_key_names_its_environment() {
        assert_eq!(parse_server_key(KEY).unwrap(), "production");
        assert_eq!(
            parse_server_key("efs.dev_eu-1.0123456789abcdef0123456789abcdef").unwrap(),
            "dev_eu-1"
        );
    }

    #[test]
    fn malformed_keys_and_client_keys_are_refused() {
        for key in [
            "efs.production.0123456789ABCDEF0123456789abcdef",
            "efs.production.0123",
            "efs..0123456789abcdef0123456789abcdef",
            "efs.prod uction.0123456789abcdef0123456789abcdef",
            "efs.0123456789abcdef0123456789abcdef",
            "production.0123456789abcdef0123456789abcdef",
        ] {
            assert!(
                matches!(
                    parse_server_key(key),
                    Err(Error::InvalidServerKey { client_key: false })
                ),
                "{key}"
            );
        }
        assert!(matches!(
            parse_server_key("efk.production.0123456789abcdef0123456789abcdef"),
            Err(Error::InvalidServerKey { client_key: true })
        ));
    }

    #[test]
    fn the_snapshot_url_is_below_the_base_path_and_names_the_environment_without_a_key() {
        let endpoint = Client::builder("http://127.0.0.1:9/edge", KEY)
            .endpoint()
            .unwrap();
        assert_eq!(
            endpoint.snapshot_url.as_str(),
            "http://127.0.0.1:9/edge/sdk/v1/snapshot"
        );
        let keyless = Client::builder("http://127.0.0.1:9", "")
            .environment("dev")
            .endpoint()
            .unwrap();
        assert_eq!(
            keyless.snapshot_url.as_str(),
            "http://127.0.0.1:9/sdk/v1/snapshot?environment=dev"
        );
        assert!(keyless.authorization.is_none());
    }

    #[test]
    fn bad_configurations_fail_at_build() {
        let errors = [
            Client::builder("not a url", KEY).endpoint().err(),
            Client::builder("ftp://127.0.0.1/", KEY).endpoint().err(),
            Client::builder("http://127.0.0.1", "").endpoint().err(),
            Client::builder("http://127.0.0.1", KEY)
                .environment("staging")
                .endpoint()
                .err(),
        ];
        let shown: Vec<String> = errors
            .iter()
            .map(|e| e.as_ref().map(ToString::to_string).unwrap_or_default())
            .collect();
        assert!(
            matches!(errors[0], Some(Error::InvalidUrl { .. })),
            "{shown:?}"
        );
        assert!(
            matches!(errors[1], Some(Error::UnsupportedUrl { .. })),
            "{shown:?}"
        );
        assert!(
            matches!(errors[2], Some(Error::MissingCredential)),
            "{shown:?}"
        );
        assert!(
            matches!(errors[3], Some(Error::WrongEnvironment { .. })),
            "{shown:?}"
        );
    }

    #[test]
    fn building_outside_a_runtime_is_an_error() {
        assert!(matches!(
            Client::builder("http://127.0.0.1", KEY).build(),
            Err(Error::NoRuntime)
        ));
    }
}
