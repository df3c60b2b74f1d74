//! A fake edgeflags server on 127.0.0.1 implementing the SDK contract of docs/sdk.md: the
//! snapshot endpoint (server key, gzip, `ETag` / `If-None-Match` → `304`, the
//! `X-Edgeflags-Event-Stream` header) and the event stream of docs/event-streams.md (`retry:`,
//! `Last-Event-ID`, `refetchEvaluation` events). It records what clients asked, and can be
//! stopped (connections closed, port refused) and started again on the same port.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const KEY: &str = "efs.production.0123456789abcdef0123456789abcdef";
pub const ENVIRONMENT: &str = "production";

/// The server key the fake accepts for a snapshot of `environment` ([`KEY`] for `production`).
pub fn key_for(environment: &str) -> String {
    format!("efs.{environment}.0123456789abcdef0123456789abcdef")
}
/// Every wait of a test is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the fake serves and what it saw.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Snapshot requests answered 200 / 304, and how many 200s were gzip-compressed.
    pub full: usize,
    pub not_modified: usize,
    pub gzipped: usize,
    /// `If-None-Match` of each snapshot request (`None`: unconditional).
    pub if_none_match: Vec<Option<String>>,
    /// `Last-Event-ID` of each stream opened or refused.
    pub last_event_ids: Vec<Option<String>>,
    /// Stream requests refused for their token.
    pub stream_refusals: usize,
}

struct Served {
    body: Vec<u8>,
    etag: String,
    version: u64,
}

pub struct FakeState {
    /// The server key accepted: the one of the first snapshot's environment.
    key: String,
    served: Mutex<Served>,
    pub recorded: Mutex<Recorded>,
    /// The version streams announce; every send is an event (even of the same version).
    announce: watch::Sender<u64>,
    /// Whether snapshot answers advertise a stream.
    streams: Mutex<bool>,
    /// The stream token currently valid; snapshot answers carry it.
    token: Mutex<String>,
    open_streams: Mutex<usize>,
    /// Ends every open stream (a stop, or a token rotation).
    end_streams: Mutex<CancellationToken>,
}

pub struct FakeServer {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
    running: Option<(CancellationToken, JoinHandle<()>)>,
}

/// A snapshot of `environment` at `version` whose flag `checkout` serves `value` to everyone
/// (its `on` variation), plus one flag of each value type.
pub fn snapshot(version: u64, value: bool) -> Value {
    json!({
        "environment": ENVIRONMENT,
        "version": version,
        "generatedAt": "2026-11-24T10:00:00Z",
        "flags": [
            {"flagKey": "checkout", "enabled": true, "version": version,
             "variations": [{"key": "on", "value": value}, {"key": "off", "value": !value}],
             "onVariation": "on", "offVariation": "off", "defaultVariation": "off"},
            {"flagKey": "banner", "enabled": true, "version": 3,
             "variations": [{"key": "blue", "value": "blue"}, {"key": "red", "value": "red"}],
             "onVariation": "red", "offVariation": "blue", "defaultVariation": "blue",
             "targetingRules": {"userIds": ["vip"]}},
            {"flagKey": "limit", "enabled": true, "version": 1,
             "variations": [{"key": "small", "value": 10}, {"key": "large", "value": 1000}],
             "onVariation": "large", "offVariation": "small", "defaultVariation": "small"},
            {"flagKey": "ratio", "enabled": true, "version": 1,
             "variations": [{"key": "half", "value": 0.5}],
             "onVariation": "half", "offVariation": "half", "defaultVariation": "half"},
            {"flagKey": "theme", "enabled": true, "version": 1,
             "variations": [{"key": "dark", "value": {"background": "black", "sizes": [1, 2]}}],
             "onVariation": "dark", "offVariation": "dark", "defaultVariation": "dark"},
            {"flagKey": "rollout", "enabled": true, "version": 1,
             "targetingRules": {"percentage": 50}},
            {"flagKey": "off", "enabled": false, "version": 1}
        ]
    })
}

impl FakeServer {
    /// Serves `snapshot` on a fresh port.
    pub async fn start(snapshot: &Value) -> Self {
        let version = snapshot["version"].as_u64().unwrap();
        let (announce, _) = watch::channel(version);
        let state = Arc::new(FakeState {
            key: key_for(snapshot["environment"].as_str().unwrap()),
            served: Mutex::new(Served {
                body: serde_json::to_vec(snapshot).unwrap(),
                etag: etag(version, "a"),
                version,
            }),
            recorded: Mutex::new(Recorded::default()),
            announce,
            streams: Mutex::new(true),
            token: Mutex::new("t1".to_owned()),
            open_streams: Mutex::new(0),
            end_streams: Mutex::new(CancellationToken::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = Self {
            addr,
            state,
            running: None,
        };
        server.serve(listener);
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&mut self, listener: TcpListener) {
        let app = Router::new()
            .route("/sdk/v1/snapshot", get(snapshot_endpoint))
            .route("/ofrep/v1/event-stream", get(stream_endpoint))
            .with_state(self.state.clone());
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { signal.cancelled().await })
                .await
                .unwrap();
        });
        self.running = Some((stop, task));
    }

    /// Stops the server: open streams end, idle connections close, the port refuses.
    pub async fn stop(&mut self) {
        self.end_streams();
        if let Some((stop, task)) = self.running.take() {
            stop.cancel();
            tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        }
    }

    /// Starts serving again on the same port.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// Serves a new snapshot and announces its version on every stream.
    pub fn publish(&self, snapshot: &Value) {
        let version = snapshot["version"].as_u64().unwrap();
        self.publish_raw(serde_json::to_vec(snapshot).unwrap(), version);
    }

    /// Serves `body` (anything) as version `version` and announces it.
    pub fn publish_raw(&self, body: Vec<u8>, version: u64) {
        {
            let mut served = self.state.served.lock().unwrap();
            served.etag = etag(version, &format!("{:x}", body.len()));
            served.body = body;
            served.version = version;
        }
        self.state.announce.send_replace(version);
    }

    /// Announces the version already served again (an event the client needs no download for).
    pub fn announce_again(&self) {
        let version = self.state.served.lock().unwrap().version;
        self.state.announce.send_replace(version);
    }

    /// Snapshot answers stop (or start) advertising the stream.
    pub fn set_streams(&self, on: bool) {
        *self.state.streams.lock().unwrap() = on;
    }

    /// A new stream token: the old one is refused from now on, and open streams end (as
    /// after a restart of the server, when the client's token has expired meanwhile).
    pub fn rotate_token(&self, token: &str) {
        *self.state.token.lock().unwrap() = token.to_owned();
        self.end_streams();
    }

    /// Ends every open stream, the server staying up.
    pub fn end_streams(&self) {
        let old = std::mem::take(&mut *self.state.end_streams.lock().unwrap());
        old.cancel();
    }

    pub fn open_streams(&self) -> usize {
        *self.state.open_streams.lock().unwrap()
    }

    pub fn recorded<T>(&self, read: impl FnOnce(&Recorded) -> T) -> T {
        read(&self.state.recorded.lock().unwrap())
    }
}

fn etag(version: u64, salt: &str) -> String {
    format!("\"{version}-{salt:0>16}\"")
}

async fn snapshot_endpoint(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header_str("authorization") != Some(&format!("Bearer {}", state.key)) {
        let body = json!({"error": {"code": "INVALID_CLIENT_KEY", "message": "unknown key"}});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let if_none_match = header_str("if-none-match").map(str::to_owned);
    let gzip = header_str("accept-encoding").is_some_and(|e| e.contains("gzip"));
    let served = state.served.lock().unwrap();
    let mut recorded = state.recorded.lock().unwrap();
    recorded.if_none_match.push(if_none_match.clone());
    let common = [
        (header::ETAG.as_str(), served.etag.clone()),
        ("x-edgeflags-snapshot-version", served.version.to_string()),
        (
            header::CACHE_CONTROL.as_str(),
            "private, no-cache".to_owned(),
        ),
    ];
    let mut response = if if_none_match.as_deref() == Some(served.etag.as_str()) {
        // As docs/sdk.md words it: the same ETag and version headers, no body (and here no
        // stream location, which a client must then remember from the last 200).
        recorded.not_modified += 1;
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        recorded.full += 1;
        let mut response = if gzip {
            recorded.gzipped += 1;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&served.body).unwrap();
            let mut response = Body::from(encoder.finish().unwrap()).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
            response
        } else {
            Body::from(served.body.clone()).into_response()
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        headers.insert(header::VARY, "Accept-Encoding".parse().unwrap());
        if *state.streams.lock().unwrap() {
            let token = state.token.lock().unwrap().clone();
            let location = format!("/ofrep/v1/event-stream?token={token}");
            headers.insert("x-edgeflags-event-stream", location.parse().unwrap());
        }
        response
    };
    for (name, value) in common {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

#[derive(serde::Deserialize)]
struct StreamQuery {
    token: Option<String>,
}

/// Counts an open stream until its body is dropped (the client went, or the stream ended).
struct OpenStream(Arc<FakeState>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        *self.0.open_streams.lock().unwrap() -= 1;
    }
}

async fn stream_endpoint(
    State(state): State<Arc<FakeState>>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Response {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state
        .recorded
        .lock()
        .unwrap()
        .last_event_ids
        .push(last_event_id.clone());
    if query.token.as_deref() != Some(state.token.lock().unwrap().as_str()) {
        state.recorded.lock().unwrap().stream_refusals += 1;
        let body = json!({"error": {"code": "INVALID_STREAM_TOKEN", "message": "expired", "field": "token"}});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let mut versions = state.announce.subscribe();
    let current = *versions.borrow_and_update();
    let seen: Option<u64> = last_event_id.and_then(|id| id.parse().ok());
    // The opening of evaluation-api's streams: the reconnection delay, then the change the
    // client missed, or the current version as the last event id.
    let opening = match seen {
        Some(seen) if seen < current => format!("retry: 50\n\n{}", event(current)),
        _ => format!("retry: 50\nid: {current}\n\n"),
    };
    let end = state.end_streams.lock().unwrap().clone();
    *state.open_streams.lock().unwrap() += 1;
    let guard = OpenStream(state.clone());
    let first =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(opening)) });
    let rest = futures_util::stream::unfold(
        (versions, end, guard),
        |(mut versions, end, guard)| async move {
            tokio::select! {
                () = end.cancelled() => None,
                changed = versions.changed() => {
                    changed.ok()?;
                    let version = *versions.borrow_and_update();
                    Some((Ok(Bytes::from(event(version))), (versions, end, guard)))
                }
            }
        },
    );
    use futures_util::StreamExt;
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from_stream(first.chain(rest)))
        .unwrap()
}

fn event(version: u64) -> String {
    format!(
        "id: {version}\nevent: message\ndata: {{\"type\":\"refetchEvaluation\",\"etag\":\"\\\"{version}\\\"\",\"lastModified\":1771622898}}\n\n"
    )
}

/// Waits until `condition` holds, polling every 10 ms; panics with `what` after [`WAIT`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < WAIT, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}
