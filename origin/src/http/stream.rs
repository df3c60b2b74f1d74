//! OFREP event streams at the origin (`GET /ofrep/v1/event-stream?token=…`, ADR-0008; the
//! contract is docs/event-streams.md): the same endpoint as the edge's, so that deployments
//! without an edge get changes pushed too.
//!
//! Tokens, refusals and every byte a stream sends come from `evaluation_api::stream`, as at the
//! edge; this module holds the connections. A stream follows its environment's
//! [`crate::live::LiveSnapshots::watch`], which every installed snapshot version reaches, whether
//! this replica committed it or its outbox follower read another replica's commit after a
//! NOTIFY. Each open stream costs one task-less future, one watch receiver and one slot of the
//! limits below; nothing accumulates per message.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use evaluation_api::stream::{
    parse_stream_request, refetch_event, stream_head, stream_key_revoked, stream_opening,
    too_many_streams, ConfigVersion, StreamKey, HEARTBEAT, HEARTBEAT_SECONDS,
};
use evaluator_core::CompiledSnapshot;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::evaluate::into_axum_with_body;
use super::openapi::evaluation::EvaluationErrorBody;
use super::AppState;
use crate::config::Config;

/// How the origin's event streams are keyed and bounded.
#[derive(Clone)]
pub struct StreamSettings {
    /// The secret stream tokens are signed under (see [`StreamSettings::new`]); empty: no
    /// streams are advertised and every token is refused.
    secret: Vec<u8>,
    /// Streams open at once per environment; more get 429.
    pub per_environment: usize,
    /// Streams open at once per client key; more get 429.
    pub per_client_key: usize,
    /// Silence after which a stream sends a heartbeat comment.
    pub heartbeat: Duration,
}

impl StreamSettings {
    /// Default streams per environment (`EDGEFLAGS_STREAMS_PER_ENVIRONMENT`).
    pub const PER_ENVIRONMENT: usize = 1000;
    /// Default streams per client key (`EDGEFLAGS_STREAMS_PER_CLIENT_KEY`).
    pub const PER_CLIENT_KEY: usize = 100;

    /// Streams signed under `secret` with the default limits and heartbeat. The secret is the
    /// edge's publish secret where there is an edge, so that tokens (and so bulk answers) are
    /// the edge's; else the admin-token secret ([`StreamSettings::from`] picks).
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.as_bytes().to_vec(),
            per_environment: Self::PER_ENVIRONMENT,
            per_client_key: Self::PER_CLIENT_KEY,
            heartbeat: Duration::from_secs(u64::from(HEARTBEAT_SECONDS)),
        }
    }
}

impl fmt::Debug for StreamSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSettings")
            .field("secret", &"..")
            .field("per_environment", &self.per_environment)
            .field("per_client_key", &self.per_client_key)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

impl From<&Config> for StreamSettings {
    fn from(config: &Config) -> Self {
        // Streams off: no secret, so nothing is advertised and every token is refused.
        let secret = if config.event_streams {
            config
                .publish
                .edge_publish_secret
                .as_deref()
                .unwrap_or(&config.jwt_secret)
        } else {
            ""
        };
        Self {
            per_environment: config.streams_per_environment,
            per_client_key: config.streams_per_client_key,
            ..Self::new(secret)
        }
    }
}

/// The event streams open at this replica, and their limits.
#[derive(Debug)]
pub struct Streams {
    /// `None` without a secret: nothing advertises a stream then.
    advertised: Option<StreamKey>,
    /// The key tokens are checked with: the advertised one, or without one a random key, under
    /// which no token was ever issued.
    verifying: StreamKey,
    settings: StreamSettings,
    open: Mutex<OpenStreams>,
}

/// Open streams per environment and per client key hash; an entry goes when its last stream
/// closes, so the maps hold only what is open.
#[derive(Debug, Default)]
struct OpenStreams {
    environments: HashMap<String, usize>,
    keys: HashMap<String, usize>,
}

impl Streams {
    /// Streams under `settings`.
    pub fn new(settings: StreamSettings) -> Self {
        let advertised = (!settings.secret.is_empty()).then(|| StreamKey::derive(&settings.secret));
        let verifying = advertised.unwrap_or_else(|| {
            let mut random = [0u8; 32];
            if let Err(e) = getrandom::fill(&mut random) {
                // all zeroes is still a key no token was issued under: none is, without a secret
                tracing::warn!(error = %e, "no randomness for the unused stream key");
            }
            StreamKey::derive(&random)
        });
        Self {
            advertised,
            verifying,
            settings,
            open: Mutex::new(OpenStreams::default()),
        }
    }

    /// The key bulk answers advertise streams with, if any.
    pub fn key(&self) -> Option<StreamKey> {
        self.advertised
    }

    /// Streams open now for `environment`.
    pub fn open_for(&self, environment: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.environments.get(environment).copied().unwrap_or(0)
    }

    /// Takes a slot for a stream of `environment` opened with the key hashing to `key`: `Err`
    /// with the limit reached when the environment or the key has as many as allowed.
    fn try_open(
        self: &Arc<Self>,
        environment: &str,
        key: Option<&str>,
    ) -> Result<StreamSlot, usize> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let in_environment = open.environments.get(environment).copied().unwrap_or(0);
        if in_environment >= self.settings.per_environment {
            return Err(self.settings.per_environment);
        }
        if let Some(key) = key {
            if open.keys.get(key).copied().unwrap_or(0) >= self.settings.per_client_key {
                return Err(self.settings.per_client_key);
            }
            *open.keys.entry(key.to_owned()).or_default() += 1;
        }
        *open.environments.entry(environment.to_owned()).or_default() += 1;
        Ok(StreamSlot {
            streams: Arc::clone(self),
            environment: environment.to_owned(),
            key: key.map(str::to_owned),
        })
    }
}

/// One open stream's place in the limits, given back when the stream ends or its client goes
/// (the body, which holds it, is dropped).
#[derive(Debug)]
struct StreamSlot {
    streams: Arc<Streams>,
    environment: String,
    key: Option<String>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|p| p.into_inner());
        release(&mut open.environments, &self.environment);
        if let Some(key) = &self.key {
            release(&mut open.keys, key);
        }
    }
}

fn release(counts: &mut HashMap<String, usize>, name: &str) {
    if let Some(count) = counts.get_mut(name) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(name);
        }
    }
}

pub(super) fn router() -> OpenApiRouter<AppState> {
    // every method reaches the handler: `parse_stream_request` answers the others with the
    // API's own 405 (and `Allow: GET`), as at the edge
    OpenApiRouter::new().routes(routes!(event_stream).map(|methods| methods.fallback(event_stream)))
}

#[utoipa::path(
    get,
    path = "/ofrep/v1/event-stream",
    tag = "ofrep",
    operation_id = "ofrepEventStream",
    summary = "OFREP: changes of an environment, pushed (ADR-0008)",
    description = "Open it at the `eventStreams[0].endpoint.requestUri` of a bulk answer (the \
        token authorises one environment for 1-2 h, and never holds the client key). Server-sent \
        events: first `retry: 2000`, then (when `Last-Event-ID` names an older version) the \
        missed change at once, then `id: <version>`, `event: message`, \
        `data: {\"type\":\"refetchEvaluation\",\"etag\":\"\\\"<version>\\\"\",\"lastModified\":<unix s>}` \
        on every new snapshot of the environment, and `: heartbeat` after 25 s of silence. The \
        stream ends when the token's client key is revoked, and when the origin shuts down. \
        See docs/event-streams.md.",
    params(
        ("token" = String, Query, description = "The stream token of the bulk answer"),
        ("Last-Event-ID" = Option<String>, Header,
            description = "The last event id (snapshot version) seen, when reconnecting"),
    ),
    responses(
        (status = 200, description = "The stream (`text/event-stream; charset=utf-8`), open \
            until the client goes", content_type = "text/event-stream", body = String),
        (status = 401, description = "`INVALID_STREAM_TOKEN`: no token, or a malformed, \
            forged or expired one, or one for a client key or environment that does not \
            exist (any more)", body = EvaluationErrorBody),
        (status = 405, description = "`METHOD_NOT_ALLOWED`: only `GET`", body = EvaluationErrorBody,
            headers(("Allow" = String, description = "`GET`"))),
        (status = 429, description = "`TOO_MANY_STREAMS`: the environment or the client key has \
            as many streams open as allowed", body = EvaluationErrorBody,
            headers(("Retry-After" = u64, description = "Seconds"))),
    ),
)]
pub(super) async fn event_stream(State(state): State<AppState>, req: Request) -> Response {
    let streams = &state.streams;
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok());
    let parsed = parse_stream_request(
        req.method().as_str(),
        req.uri().query().unwrap_or(""),
        last_event_id,
        &streams.verifying,
        chrono::Utc::now().timestamp_millis(),
    );
    let request = match parsed {
        Ok(request) => request,
        Err(refused) => return into_axum_with_body(refused, None),
    };
    let grant = request.grant;
    // no snapshot: the environment does not exist (any more); answered like a revoked key, so
    // that environments cannot be probed
    let Some(mut changes) = state.live.watch(grant.environment()) else {
        return into_axum_with_body(stream_key_revoked(), None);
    };
    let current = Arc::clone(&changes.borrow_and_update());
    // a token issued without a key, while keys are required now, grants nothing either
    let keyless_refused = grant.key_sha256().is_none() && state.settings.require_client_keys;
    if keyless_refused || !holds_key(&current, grant.key_sha256()) {
        return into_axum_with_body(stream_key_revoked(), None);
    }
    let slot = match streams.try_open(grant.environment(), grant.key_sha256()) {
        Ok(slot) => slot,
        Err(limit) => return into_axum_with_body(too_many_streams(limit), None),
    };
    let current_version = ConfigVersion::of(&current);
    let events = Events {
        opening: Some(stream_opening(Some(current_version), request.last_event_id)),
        sent: current_version.version,
        changes,
        key_sha256: grant.key_sha256().map(str::to_owned),
        heartbeat: streams.settings.heartbeat,
        shutdown: state.shutdown.clone(),
        _slot: slot,
    };
    let body = futures_util::stream::unfold(events, |mut events| async move {
        let message = events.next().await?;
        Some((Ok::<_, Infallible>(message), events))
    });
    into_axum_with_body(stream_head(), Some(Body::from_stream(body)))
}

/// Whether `snapshot` still holds the client key a stream was opened with (a token issued
/// without a key needs none).
fn holds_key(snapshot: &CompiledSnapshot, key_sha256: Option<&str>) -> bool {
    key_sha256.is_none_or(|key| snapshot.client_key_hash_allowed(key))
}

/// The state of one open stream.
struct Events {
    /// The first bytes, until sent.
    opening: Option<String>,
    /// The newest version announced, or at the start the one current when the stream opened:
    /// never announced (again).
    sent: u64,
    changes: watch::Receiver<Arc<CompiledSnapshot>>,
    key_sha256: Option<String>,
    heartbeat: Duration,
    shutdown: CancellationToken,
    _slot: StreamSlot,
}

impl Events {
    /// The next message, or `None` to end the stream: at shutdown, or when the newest snapshot
    /// no longer holds the stream's client key.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(opening) = self.opening.take() {
            return Some(Bytes::from(opening));
        }
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                changed = self.changes.changed() => {
                    // the sender lives as long as the environment's entry, i.e. as the process
                    changed.ok()?;
                    let snapshot = Arc::clone(&self.changes.borrow_and_update());
                    if !holds_key(&snapshot, self.key_sha256.as_deref()) {
                        return None;
                    }
                    if snapshot.version() > self.sent {
                        self.sent = snapshot.version();
                        let event = refetch_event(ConfigVersion::of(&snapshot));
                        return Some(Bytes::from(event));
                    }
                }
                () = tokio::time::sleep(self.heartbeat) => {
                    return Some(Bytes::from_static(HEARTBEAT.as_bytes()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::Cli;

    const JWT: &str = "jwt-secret-jwt-secret-jwt-secret-jwt";
    const PUBLISH: &str = "publish-secret-publish-secret-publish";

    #[test]
    fn tokens_are_the_edges_when_there_is_a_publish_secret_else_the_admin_secrets() {
        let config = |args: &[&str]| {
            let mut all = vec!["origin", "--jwt-secret", JWT];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).unwrap().config
        };
        let with_edge = Streams::new(StreamSettings::from(&config(&[
            "--edge-publish-secret",
            PUBLISH,
        ])));
        assert_eq!(with_edge.key(), Some(StreamKey::derive(PUBLISH.as_bytes())));
        let alone = StreamSettings::from(&config(&[]));
        assert_eq!(alone.per_environment, 1000);
        assert_eq!(alone.per_client_key, 100);
        assert_eq!(alone.heartbeat, Duration::from_secs(25));
        assert_eq!(
            Streams::new(alone).key(),
            Some(StreamKey::derive(JWT.as_bytes()))
        );
        assert_eq!(Streams::new(StreamSettings::new("")).key(), None);
        // EDGEFLAGS_EVENT_STREAMS=false: nothing advertised, every token refused.
        let off = config(&["--edge-publish-secret", PUBLISH, "--event-streams", "false"]);
        assert_eq!(Streams::new(StreamSettings::from(&off)).key(), None);
    }

    #[test]
    fn slots_are_bounded_per_environment_and_per_key_and_freed_when_dropped() {
        let streams = Arc::new(Streams::new(StreamSettings {
            per_environment: 3,
            per_client_key: 2,
            ..StreamSettings::new(JWT)
        }));
        let a1 = streams.try_open("production", Some("a")).unwrap();
        let _a2 = streams.try_open("production", Some("a")).unwrap();
        assert_eq!(streams.try_open("production", Some("a")).unwrap_err(), 2);
        let _b = streams.try_open("production", Some("b")).unwrap();
        assert_eq!(streams.try_open("production", None).unwrap_err(), 3);
        let _other = streams.try_open("staging", Some("c")).unwrap();
        drop(a1);
        assert_eq!(streams.open_for("production"), 2);
        let _a3 = streams.try_open("production", Some("a")).unwrap();
        drop((_a2, _b, _a3, _other));
        let open = streams.open.lock().unwrap();
        assert!(
            open.environments.is_empty() && open.keys.is_empty(),
            "{open:?}"
        );
    }
}
