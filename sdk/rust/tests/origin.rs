//! The client against the real origin, in-process on 127.0.0.1 over a `#[sqlx::test]`
//! database (as origin/tests/common/mod.rs builds it, but behind a real listener: the client
//! speaks HTTP): a server key created through the admin API downloads the snapshot, and a flag
//! changed through the admin API is served by the client after the origin's event stream
//! announced it. The ignored test measures that path (docs/sdk.md; the README gives the
//! command).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edgeflags_client::{Client, Context, Error, Reason, Status};
use origin::auth::Role;
use origin::{app, AppState, Settings};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Every wait is bounded by this.
const WAIT: Duration = Duration::from_secs(10);
const SECRET: &str = "test-secret-0123456789-test-secret-0123456789";

/// An origin serving on a free port until dropped.
struct Origin {
    url: String,
    admin_token: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Origin {
    /// The origin as production runs it: evaluation and snapshot downloads need keys.
    async fn start(pool: PgPool) -> Self {
        let settings = Settings {
            jwt_secret: SECRET.to_owned(),
            admin_rate_per_second: 0.0,
            admin_rate_burst: 1,
            max_body_bytes: 1024 * 1024,
            require_client_keys: true,
        };
        let shutdown = CancellationToken::new();
        let state = AppState::new(pool.clone(), settings)
            .unwrap()
            .with_shutdown(shutdown.clone());
        state.live.load(&pool).await.unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let admin_token = state
            .tokens
            .issue("root", Role::Admin, None, now, 3600)
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let signal = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app(state).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { signal.cancelled().await })
            .await
            .unwrap();
        });
        Self {
            url: format!("http://{addr}"),
            admin_token,
            http: reqwest::Client::new(),
            shutdown,
            server: Some(server),
        }
    }

    /// An admin request; panics unless the status is `expected`.
    async fn admin(&self, method: Method, path: &str, body: Option<Value>, expected: u16) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, expected, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The environment `production` with a flag `checkout` on for user `u1` only, and a server
    /// key for it.
    async fn production_with_checkout(&self) -> String {
        // Unprotected: these tests toggle flags there without the dashboard's confirmation.
        self.admin(
            Method::POST,
            "/admin/environments",
            Some(json!({"key": "production", "protected": false})),
            201,
        )
        .await;
        self.admin(
            Method::POST,
            "/admin/flags?environment=production",
            Some(json!({"flagKey": "checkout", "enabled": true,
                        "targetingRules": {"userIds": ["u1"]}})),
            201,
        )
        .await;
        let created = self
            .admin(
                Method::POST,
                "/admin/environments/production/server-keys",
                Some(json!({"name": "backend"})),
                201,
            )
            .await;
        created["key"].as_str().unwrap().to_owned()
    }

    /// Switches `checkout` on or off; returns when the origin answered.
    async fn set_checkout(&self, enabled: bool) {
        self.admin(
            Method::PUT,
            "/admin/flags/checkout?environment=production",
            Some(json!({"enabled": enabled})),
            200,
        )
        .await;
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
        }
    }
}

/// A client that only learns of changes from the event stream (its polls are an hour apart).
fn client(origin: &Origin, key: &str) -> Client {
    Client::builder(&origin.url, key)
        .poll_interval(Duration::from_secs(3600))
        .backoff(Duration::from_millis(20), Duration::from_millis(500))
        .build()
        .unwrap()
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < WAIT, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn user(id: &str) -> Context {
    Context::with_targeting_key(id)
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_flag_changed_through_the_admin_api_is_served_after_the_origin_s_event_stream_announces_it(
    pool: PgPool,
) {
    let origin = Origin::start(pool).await;
    let key = origin.production_with_checkout().await;
    let client = client(&origin, &key);
    client.wait_ready(WAIT).await.unwrap();

    let u1 = client.evaluate("checkout", &user("u1")).unwrap();
    assert_eq!(
        (u1.value.clone(), u1.reason, u1.detail),
        (json!(true), Reason::TargetingMatch, "user-targeted")
    );
    let u2 = client.evaluate("checkout", &user("u2")).unwrap();
    assert_eq!(
        (u2.value.clone(), u2.reason),
        (json!(false), Reason::Default)
    );
    let before = client.health().version.unwrap();
    eventually("the event stream is connected", || {
        client.health().streaming
    })
    .await;

    origin.set_checkout(false).await;
    eventually("the change is served", || {
        client.evaluate("checkout", &user("u1")).unwrap().reason == Reason::Disabled
    })
    .await;
    let health = client.health();
    assert_eq!(health.version, Some(before + 1));
    assert_eq!(health.status, Status::Ready);
    assert!(
        health.streaming,
        "pushed, not polled: the stream stayed connected"
    );

    origin.set_checkout(true).await;
    eventually("the second change is served", || {
        client.evaluate("checkout", &user("u1")).unwrap().value == json!(true)
    })
    .await;
    client.shutdown().await;
    origin.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_revoked_server_key_leaves_the_client_stale_serving_the_last_snapshot(pool: PgPool) {
    let origin = Origin::start(pool).await;
    let key = origin.production_with_checkout().await;
    let client = client(&origin, &key);
    client.wait_ready(WAIT).await.unwrap();
    eventually("the event stream is connected", || {
        client.health().streaming
    })
    .await;

    origin
        .admin(
            Method::DELETE,
            "/admin/environments/production/server-keys/backend",
            None,
            204,
        )
        .await;
    // The revocation is itself a change: the stream announces it (or closes), the re-fetch
    // is refused.
    eventually("the client is stale", || client.status() == Status::Stale).await;
    match client.health().last_error.as_deref() {
        Some(Error::Status {
            status: 401, code, ..
        }) => {
            assert_eq!(code.as_deref(), Some("INVALID_CLIENT_KEY"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client.evaluate("checkout", &user("u1")).unwrap().value,
        json!(true),
        "the last good snapshot keeps serving"
    );
    client.shutdown().await;
    origin.stop().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_origin_s_snapshot_is_downloaded_gzipped_and_304_when_unchanged(pool: PgPool) {
    let origin = Origin::start(pool).await;
    let key = origin.production_with_checkout().await;
    let client = Client::builder(&origin.url, &key)
        .streaming(false)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.unwrap();
    let etag = client.snapshot().unwrap().etag().to_owned();
    let version = client.health().version.unwrap();
    assert!(etag.starts_with(&format!("\"{version}-")), "{etag}");

    // polling with the ETag: unchanged, the snapshot in service stays the same object
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.snapshot().unwrap().etag(), etag);
    assert!(!client.health().streaming);
    origin.set_checkout(false).await;
    eventually("the poll finds the change", || {
        client.health().version == Some(version + 1)
    })
    .await;
    client.shutdown().await;
    origin.stop().await;
}

/// The figure of docs/sdk.md: from sending an admin change to the client serving its value,
/// through the origin's event stream. Run with
/// `cargo test -p edgeflags-client --test origin -- --ignored --nocapture`.
#[sqlx::test(migrations = "../../migrations")]
#[ignore = "a measurement, not a check"]
async fn admin_change_to_client_latency(pool: PgPool) {
    const CHANGES: usize = 20;
    let origin = Origin::start(pool).await;
    let key = origin.production_with_checkout().await;
    let client = client(&origin, &key);
    client.wait_ready(WAIT).await.unwrap();
    eventually("the event stream is connected", || {
        client.health().streaming
    })
    .await;
    let mut health = client.watch_health();

    // From sending the PUT to the client serving the new value; and, for comparison, to the
    // PUT's own answer (the commit and the snapshot build).
    let (mut served, mut answered) = (Vec::new(), Vec::new());
    for i in 0..CHANGES {
        let enabled = i % 2 == 1;
        let expected = client.health().version.unwrap() + 1;
        let started = Instant::now();
        let (put, seen) = tokio::join!(
            async {
                origin.set_checkout(enabled).await;
                started.elapsed()
            },
            async {
                tokio::time::timeout(WAIT, health.wait_for(|h| h.version >= Some(expected)))
                    .await
                    .unwrap()
                    .unwrap();
                started.elapsed()
            }
        );
        let value = client.evaluate("checkout", &user("u1")).unwrap().value;
        assert_eq!(value, json!(enabled));
        served.push(seen);
        answered.push(put);
        // spaced out, as human changes are
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "admin change -> value served by the client through the origin's event stream \
         ({CHANGES} changes): {}; the admin PUT's own answer: {}",
        quantiles(served),
        quantiles(answered),
    );
    client.shutdown().await;
    origin.stop().await;
}

/// `p50 …, p95 …, max …` in milliseconds.
fn quantiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |q: f64| {
        let rank = (samples.len() as f64 * q).ceil() as usize;
        ms(samples[rank.saturating_sub(1)])
    };
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        at(0.50),
        at(0.95),
        ms(samples[samples.len() - 1])
    )
}
