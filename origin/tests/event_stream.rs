//! OFREP event streams at the origin (issue 13, "At the origin"; docs/event-streams.md): the bulk
//! answer advertises the stream exactly as evaluation-api renders it, and the stream pushes every
//! new snapshot version of its environment, whether this replica committed it or another one did
//! (through NOTIFY and the follower), within the limits, until the key is revoked or the origin
//! stops. Every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{with_checkout_flag, TestApp, SECRET};
use evaluation_api::stream::{
    parse_stream_request, refetch_event, stream_key_revoked, stream_opening, stream_token,
    too_many_streams, ConfigVersion, StreamKey, HEARTBEAT, STREAM_PATH,
};
use evaluation_api::{parse, respond, Config, HttpRequest, RequestHeaders};
use evaluator_core::CompiledSnapshot;
use http_body_util::BodyExt;
use origin::http::stream::StreamSettings;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The longest any single step may take.
const WAIT: Duration = Duration::from_secs(10);
const BULK: &str = "/ofrep/v1/evaluate/flags";
const FLAG: &str = "/admin/flags/new-checkout-flow?environment=production";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The bulk context every test sends (no client key: the environment is an attribute).
fn context(environment: &str) -> Value {
    json!({"context": {"targetingKey": "user123", "environment": environment}})
}

/// The stream location of a bulk answer.
#[track_caller]
fn stream_uri(bulk: &common::TestResponse) -> String {
    bulk.assert_status(StatusCode::OK);
    bulk.body["eventStreams"][0]["endpoint"]["requestUri"]
        .as_str()
        .unwrap_or_else(|| panic!("no eventStreams: {}", bulk.text))
        .to_owned()
}

/// The stream location the bulk answer gives for `environment`, asked with `headers`.
async fn advertised(app: &TestApp, environment: &str, headers: &[(&str, &str)]) -> String {
    let bulk = app
        .public(Method::POST, BULK, Some(context(environment)), headers)
        .await;
    stream_uri(&bulk)
}

/// An open stream: its answer's head, and its body read one message at a time.
struct Stream {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Body,
}

impl Stream {
    async fn open(app: &TestApp, uri: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = Request::builder().method(Method::GET).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::empty()).unwrap();
        let response = tokio::time::timeout(WAIT, app.router.clone().oneshot(request))
            .await
            .expect("the stream's head did not come")
            .unwrap();
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Opens `uri` and asserts that it is a stream.
    async fn opened(app: &TestApp, uri: &str, headers: &[(&str, &str)]) -> Self {
        let mut stream = Self::open(app, uri, headers).await;
        if stream.status != StatusCode::OK {
            let refusal = stream.rest().await;
            panic!("{uri}: {} {refusal}", stream.status);
        }
        stream
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next message; `None` when the stream has ended.
    async fn next(&mut self) -> Option<String> {
        self.next_within(WAIT).await
    }

    async fn next_within(&mut self, wait: Duration) -> Option<String> {
        loop {
            let frame = tokio::time::timeout(wait, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("nothing on the stream within {wait:?}"))?
                .unwrap();
            if let Ok(data) = frame.into_data() {
                return Some(String::from_utf8(data.to_vec()).unwrap());
            }
        }
    }

    /// Everything up to the end (a refusal's body).
    async fn rest(&mut self) -> String {
        let mut text = String::new();
        while let Some(message) = self.next().await {
            text.push_str(&message);
        }
        text
    }

    /// Asserts that the stream ends now (within [`WAIT`]), after nothing but heartbeats.
    async fn assert_ends(&mut self) {
        while let Some(message) = self.next().await {
            assert_eq!(message, HEARTBEAT, "the stream went on instead of ending");
        }
    }
}

/// What the stream of `environment` announces for the snapshot installed now.
fn current_event(app: &TestApp, environment: &str) -> String {
    refetch_event(current_version(app, environment))
}

fn current_version(app: &TestApp, environment: &str) -> ConfigVersion {
    ConfigVersion::of(&app.state.live.get(environment).unwrap())
}

/// Turns the checkout flag off or on through the admin API; the snapshot version it produced.
async fn change_flag(app: &TestApp, enabled: bool) -> u64 {
    let changed = app.put(FLAG, json!({"enabled": enabled})).await;
    changed.assert_status(StatusCode::OK);
    changed
        .header("x-edgeflags-snapshot-version")
        .unwrap()
        .parse()
        .unwrap()
}

/// The app with its streams set up by `adjust` (limits, heartbeat).
fn with_streams(app: TestApp, adjust: impl FnOnce(&mut StreamSettings)) -> TestApp {
    let mut settings = StreamSettings::new(SECRET);
    adjust(&mut settings);
    let state = app.state.clone().with_streams(settings);
    app.with_state(state)
}

#[sqlx::test(migrations = "../migrations")]
async fn bulk_answers_advertise_a_stream_whose_token_opens_it(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let bulk = app
        .public(Method::POST, BULK, Some(context("production")), &[])
        .await;
    bulk.assert_status(StatusCode::OK);
    let streams = &bulk.body["eventStreams"];
    assert_eq!(streams.as_array().map(Vec::len), Some(1), "{}", bulk.text);
    assert_eq!(streams[0]["type"], "sse");
    assert_eq!(streams[0]["inactivityDelaySec"], 120);
    let uri = stream_uri(&bulk);
    assert!(
        uri.starts_with("/ofrep/v1/event-stream?token=v1.production.-."),
        "{uri}"
    );

    let mut stream = Stream::opened(&app, &uri, &[]).await;
    for (name, value) in [
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "private, no-store"),
        ("access-control-allow-origin", "*"),
        ("x-accel-buffering", "no"),
    ] {
        assert_eq!(stream.header(name), Some(value), "{name}");
    }
    assert_eq!(stream.header("content-length"), None);
    // The current version as the last event id, so a reconnect after a change made while the
    // client was away resumes from it and gets that change.
    let current = current_version(&app, "production");
    assert_eq!(
        stream.next().await.unwrap(),
        stream_opening(Some(current), None)
    );
    assert_eq!(
        stream_opening(Some(current), None),
        format!("retry: 2000\nid: {}\n\n", current.version)
    );
    assert_eq!(app.state.streams.open_for("production"), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_admin_change_is_announced_with_its_version_as_id(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let uri = advertised(&app, "production", &[]).await;
    let mut stream = Stream::opened(&app, &uri, &[]).await;
    assert_quiet_opening(&stream.next().await.unwrap());

    let started = Instant::now();
    let version = change_flag(&app, false).await;
    let event = stream.next().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let expected = current_event(&app, "production");
    assert_eq!(event, expected);
    assert!(
        event.starts_with(&format!("id: {version}\nevent: message\ndata: {{\"type\":\"refetchEvaluation\",\"etag\":\"\\\"{version}\\\"\",\"lastModified\":")),
        "{event}"
    );
    // and the next one
    let next = change_flag(&app, true).await;
    assert_eq!(next, version + 1);
    assert_eq!(
        stream.next().await.unwrap(),
        current_event(&app, "production")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_change_committed_by_another_replica_reaches_streams_here_through_notify(pool: PgPool) {
    let writer = with_checkout_flag(pool.clone()).await;
    let reader = TestApp::new(pool.clone());
    let shutdown = CancellationToken::new();
    // a long poll interval: only NOTIFY can make this fast
    let (listener, announcements) =
        origin::outbox::spawn_listener(pool.clone(), Duration::from_secs(3600), shutdown.clone());
    let follower = origin::live::spawn_follower(
        pool.clone(),
        reader.state.live.clone(),
        announcements,
        shutdown.clone(),
    );
    let deadline = Instant::now() + WAIT;
    while reader.state.live.version("production").is_none() {
        assert!(
            Instant::now() < deadline,
            "the reader did not load the snapshot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let uri = advertised(&reader, "production", &[]).await;
    let mut stream = Stream::opened(&reader, &uri, &[]).await;
    assert_quiet_opening(&stream.next().await.unwrap());

    let version = change_flag(&writer, false).await;
    let event = stream.next().await.unwrap();
    assert!(event.starts_with(&format!("id: {version}\n")), "{event}");
    assert_eq!(event, current_event(&writer, "production"));
    assert_eq!(reader.state.live.version("production"), Some(version));

    shutdown.cancel();
    tokio::time::timeout(WAIT, follower).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, listener).await.unwrap().unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn another_environments_change_is_not_announced(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    app.create_environment_with_flag("staging", json!({"flagKey": "f", "enabled": true}))
        .await;
    let app = with_streams(app, |s| s.heartbeat = Duration::from_millis(300));
    let uri = advertised(&app, "production", &[]).await;
    let mut stream = Stream::opened(&app, &uri, &[]).await;
    assert_quiet_opening(&stream.next().await.unwrap());

    app.put(
        "/admin/flags/f?environment=staging",
        json!({"enabled": false}),
    )
    .await
    .assert_status(StatusCode::OK);
    // staging's change passes by: the next message is the heartbeat of the silence
    assert_eq!(stream.next().await.unwrap(), HEARTBEAT);
    let version = change_flag(&app, false).await;
    let event = stream.next().await.unwrap();
    assert!(event.starts_with(&format!("id: {version}\n")), "{event}");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_client_resuming_from_an_older_event_gets_the_current_version_at_once(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let uri = advertised(&app, "production", &[]).await;
    let current = current_version(&app, "production");
    let older = (current.version - 1).to_string();
    let mut resumed = Stream::opened(&app, &uri, &[("last-event-id", older.as_str())]).await;
    let opening = resumed.next().await.unwrap();
    assert_eq!(
        opening,
        stream_opening(Some(current), Some(current.version - 1))
    );
    assert_eq!(
        opening,
        format!("retry: 2000\n\n{}", refetch_event(current))
    );

    // up to date, or an id that is none of ours: nothing to catch up on
    for seen in [current.version.to_string(), "not-a-version".to_owned()] {
        let mut stream = Stream::opened(&app, &uri, &[("last-event-id", seen.as_str())]).await;
        assert_quiet_opening(&stream.next().await.unwrap());
    }
    // the resumed stream goes on with the next change, which it announces once
    change_flag(&app, false).await;
    assert_eq!(
        resumed.next().await.unwrap(),
        current_event(&app, "production")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn missing_forged_expired_and_unknown_tokens_are_refused_with_401(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let key = StreamKey::derive(SECRET.as_bytes());
    let now = now_ms();
    let forged = stream_token(
        &StreamKey::derive(b"not-the-origins-secret-not-the-origins"),
        "production",
        None,
        now,
    );
    let expired = stream_token(&key, "production", None, now - 3 * 3_600_000);
    let valid = stream_token(&key, "production", None, now);
    let tampered = valid.replacen("production", "staging", 1);
    let unknown_environment = stream_token(&key, "nowhere", None, now);
    for (case, query) in [
        ("missing", String::new()),
        ("empty", "token=".to_owned()),
        ("forged", format!("token={forged}")),
        ("expired", format!("token={expired}")),
        ("tampered", format!("token={tampered}")),
        (
            "unknown environment",
            format!("token={unknown_environment}"),
        ),
    ] {
        let uri = format!("{STREAM_PATH}?{query}");
        let response = app.public(Method::GET, &uri, None, &[]).await;
        response.assert_field_error(StatusCode::UNAUTHORIZED, "INVALID_STREAM_TOKEN", "token");
        // the bytes evaluation-api renders
        let expected = match parse_stream_request("GET", &query, None, &key, now_ms()) {
            Err(refused) => refused,
            Ok(_) => stream_key_revoked(),
        };
        assert_eq!(response.text.as_bytes(), expected.body, "{case}");
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
        assert_eq!(response.header("cache-control"), Some("private, no-store"));
    }
    // another method: the API's 405
    let uri = format!("{STREAM_PATH}?token={valid}");
    for method in [Method::POST, Method::DELETE, Method::OPTIONS] {
        let response = app.public(method.clone(), &uri, None, &[]).await;
        response.assert_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
        assert_eq!(response.header("allow"), Some("GET"), "{method}");
    }
    assert_eq!(app.state.streams.open_for("production"), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn streams_over_the_limits_get_429_and_a_closed_stream_frees_its_slot(pool: PgPool) {
    let app = TestApp::requiring_client_keys(pool);
    app.create_environment_with_flag("production", json!({"flagKey": "f", "enabled": true}))
        .await;
    let web = app.create_client_key("production", "web").await;
    let ios = app.create_client_key("production", "ios").await;
    let android = app.create_client_key("production", "android").await;
    let app = with_streams(app, |s| {
        s.per_environment = 2;
        s.per_client_key = 1;
    });
    let web_uri = advertised(&app, "production", &[("x-client-key", web.as_str())]).await;
    let ios_uri = advertised(&app, "production", &[("x-client-key", ios.as_str())]).await;

    let first = Stream::opened(&app, &web_uri, &[]).await;
    let refused = app.public(Method::GET, &web_uri, None, &[]).await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_STREAMS");
    assert_eq!(refused.header("retry-after"), Some("30"));
    assert_eq!(refused.text.as_bytes(), too_many_streams(1).body);

    let _second = Stream::opened(&app, &ios_uri, &[]).await;
    // the environment is full now: the third key's stream waits too
    let android_uri = advertised(&app, "production", &[("x-client-key", android.as_str())]).await;
    let full = app.public(Method::GET, &android_uri, None, &[]).await;
    full.assert_error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_STREAMS");
    assert_eq!(full.text.as_bytes(), too_many_streams(2).body);
    assert_eq!(app.state.streams.open_for("production"), 2);

    // a client that goes gives its slot back at once
    drop(first);
    assert_eq!(app.state.streams.open_for("production"), 1);
    let mut again = Stream::opened(&app, &web_uri, &[]).await;
    assert_quiet_opening(&again.next().await.unwrap());
}

#[sqlx::test(migrations = "../migrations")]
async fn silent_streams_send_heartbeats(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let app = with_streams(app, |s| s.heartbeat = Duration::from_millis(100));
    let uri = advertised(&app, "production", &[]).await;
    let mut stream = Stream::opened(&app, &uri, &[]).await;
    assert_quiet_opening(&stream.next().await.unwrap());
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(stream.next().await.unwrap(), HEARTBEAT);
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    // an event in between, then silence again
    change_flag(&app, false).await;
    assert_eq!(
        stream.next().await.unwrap(),
        current_event(&app, "production")
    );
    assert_eq!(stream.next().await.unwrap(), HEARTBEAT);
}

#[sqlx::test(migrations = "../migrations")]
async fn revoking_the_client_key_ends_its_streams_and_refuses_its_token(pool: PgPool) {
    let app = TestApp::requiring_client_keys(pool);
    app.create_environment_with_flag("production", json!({"flagKey": "f", "enabled": true}))
        .await;
    let web = app.create_client_key("production", "web").await;
    let ios = app.create_client_key("production", "ios").await;
    let web_uri = advertised(&app, "production", &[("x-client-key", web.as_str())]).await;
    let ios_uri = advertised(&app, "production", &[("x-client-key", ios.as_str())]).await;
    assert_ne!(web_uri, ios_uri);
    assert!(!web_uri.contains(&web), "{web_uri}");
    let mut revoked = Stream::opened(&app, &web_uri, &[]).await;
    let mut kept = Stream::opened(&app, &ios_uri, &[]).await;
    assert_quiet_opening(&revoked.next().await.unwrap());
    assert_quiet_opening(&kept.next().await.unwrap());

    app.delete("/admin/environments/production/client-keys/web")
        .await
        .assert_status(StatusCode::NO_CONTENT);
    revoked.assert_ends().await;
    // the other key's stream is told of the change
    assert_eq!(
        kept.next().await.unwrap(),
        current_event(&app, "production")
    );
    let reopened = app.public(Method::GET, &web_uri, None, &[]).await;
    reopened.assert_field_error(StatusCode::UNAUTHORIZED, "INVALID_STREAM_TOKEN", "token");
    assert_eq!(reopened.text.as_bytes(), stream_key_revoked().body);
    assert_eq!(app.state.streams.open_for("production"), 1);

    // a token minted without a key opens nothing where keys are required
    let keyless = stream_token(
        &StreamKey::derive(SECRET.as_bytes()),
        "production",
        None,
        now_ms(),
    );
    let uri = format!("{STREAM_PATH}?token={keyless}");
    let refused = app.public(Method::GET, &uri, None, &[]).await;
    assert_eq!(refused.text.as_bytes(), stream_key_revoked().body);
}

#[sqlx::test(migrations = "../migrations")]
async fn streams_end_when_the_origin_shuts_down(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let uri = advertised(&app, "production", &[]).await;
    let mut stream = Stream::opened(&app, &uri, &[]).await;
    assert_quiet_opening(&stream.next().await.unwrap());
    app.state.shutdown.cancel();
    assert_eq!(stream.next().await, None);
    assert_eq!(app.state.streams.open_for("production"), 0);
}

/// The bulk answer's bytes and `ETag` are evaluation-api's for the environment's outbox snapshot,
/// tokens included: the same answer as the edge's, whose secret is the same.
#[sqlx::test(migrations = "../migrations")]
async fn the_bulk_answer_is_byte_for_byte_evaluation_apis(pool: PgPool) {
    let app = TestApp::requiring_client_keys(pool.clone());
    app.create_environment_with_flag("production", json!({"flagKey": "f", "enabled": true}))
        .await;
    let key = app.create_client_key("production", "web").await;
    let (_, snapshot) = common::latest_snapshot(&pool, "production").await;
    let (compiled, _) = CompiledSnapshot::from_json(snapshot.as_bytes()).unwrap();
    let body = context("production").to_string();
    let native = |now: i64| {
        let request = HttpRequest {
            method: "POST",
            path: BULK,
            query: "",
            headers: RequestHeaders::from_pairs([
                ("content-type", "application/json"),
                ("x-client-key", key.as_str()),
            ]),
            body: body.as_bytes(),
        };
        let parsed = parse(
            &request,
            &Config {
                require_client_keys: true,
            },
        )
        .unwrap()
        .with_event_streams(StreamKey::derive(SECRET.as_bytes()));
        respond(&parsed, Some(&compiled), now)
    };
    let before = native(now_ms());
    let answer = app
        .public(
            Method::POST,
            BULK,
            Some(context("production")),
            &[("x-client-key", key.as_str())],
        )
        .await;
    let after = native(now_ms());
    answer.assert_status(StatusCode::OK);
    // tokens change on the hour: the answer is the one of either side of the request
    let expected = if answer.text.as_bytes() == before.body {
        before
    } else {
        after
    };
    assert_eq!(
        answer.text,
        String::from_utf8(expected.body.clone()).unwrap()
    );
    assert_eq!(answer.header("etag"), expected.header("ETag"));
    assert!(answer.body["eventStreams"][0]["endpoint"]["requestUri"]
        .as_str()
        .unwrap()
        .contains(".production."));
}

#[sqlx::test(migrations = "../migrations")]
async fn with_an_edge_publish_secret_tokens_are_the_edges(pool: PgPool) {
    const PUBLISH: &str = "edge-publish-secret-edge-publish-secret";
    let app = with_checkout_flag(pool).await;
    let state = app.state.clone().with_streams(StreamSettings::new(PUBLISH));
    let app = app.with_state(state);
    let uri = advertised(&app, "production", &[]).await;
    let query = uri.split_once('?').unwrap().1;
    let edge = StreamKey::derive(PUBLISH.as_bytes());
    assert!(parse_stream_request("GET", query, None, &edge, now_ms()).is_ok());
    let admin = StreamKey::derive(SECRET.as_bytes());
    assert!(parse_stream_request("GET", query, None, &admin, now_ms()).is_err());
    Stream::opened(&app, &uri, &[]).await;
}

/// After an event from another replica, a re-fetch naming the new version (`flagConfigEtag`)
/// at a replica that has not followed it yet waits for it instead of answering the old one.
#[sqlx::test(migrations = "../migrations")]
async fn a_refetch_naming_a_version_not_followed_yet_waits_for_it(pool: PgPool) {
    let writer = with_checkout_flag(pool.clone()).await;
    let reader = TestApp::new(pool.clone());
    reader.state.live.load(&pool).await.unwrap();
    let held = reader.state.live.version("production").unwrap();
    let version = change_flag(&writer, false).await;
    assert_eq!(reader.state.live.version("production"), Some(held));

    let shutdown = CancellationToken::new();
    let uri = format!("{BULK}?flagConfigEtag=%22{version}%22");
    let refetch = reader.public(Method::POST, &uri, Some(context("production")), &[]);
    let follow = async {
        // the follower starts only once the request is waiting
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (listener, announcements) = origin::outbox::spawn_listener(
            pool.clone(),
            Duration::from_secs(3600),
            shutdown.clone(),
        );
        let follower = origin::live::spawn_follower(
            pool.clone(),
            reader.state.live.clone(),
            announcements,
            shutdown.clone(),
        );
        (listener, follower)
    };
    let (answer, (listener, follower)) = tokio::join!(refetch, follow);
    answer.assert_status(StatusCode::OK);
    assert_eq!(answer.body["metadata"]["snapshotVersion"], version);

    // a tag naming no version of ours costs a bounded wait, then the held snapshot answers
    let started = Instant::now();
    let uri = format!("{BULK}?flagConfigEtag=%22{}%22", version + 1000);
    let answer = reader
        .public(Method::POST, &uri, Some(context("production")), &[])
        .await;
    answer.assert_status(StatusCode::OK);
    assert_eq!(answer.body["metadata"]["snapshotVersion"], version);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    shutdown.cancel();
    tokio::time::timeout(WAIT, follower).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, listener).await.unwrap().unwrap();
}

/// An opening that announces nothing: the reconnect delay and at most the current version as the
/// last event id, with no data (so `EventSource` dispatches no message).
#[track_caller]
fn assert_quiet_opening(opening: &str) {
    assert!(opening.starts_with("retry: 2000\n"), "{opening:?}");
    assert!(!opening.contains("data:"), "{opening:?}");
    assert!(
        opening
            .lines()
            .filter_map(|line| line.strip_prefix("id: "))
            .all(|id| id.parse::<u64>().is_ok()),
        "{opening:?}"
    );
}
