//! Helpers for the origin's HTTP tests: an in-process app over a `#[sqlx::test]` database,
//! tokens, and requests through `oneshot`.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use origin::auth::Role;
use origin::{app, AppState, Settings};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

pub const SECRET: &str = "test-secret-0123456789-test-secret-0123456789";

/// Settings for tests: no rate limit, a 64 KiB body limit, client keys optional.
pub fn settings() -> Settings {
    Settings {
        jwt_secret: SECRET.to_owned(),
        admin_rate_per_second: 0.0,
        admin_rate_burst: 1,
        max_body_bytes: 64 * 1024,
        require_client_keys: false,
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A response, with its body parsed as JSON when it is JSON (`Value::Null` when empty).
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn assert_status(&self, expected: StatusCode) -> &Self {
        assert_eq!(
            self.status, expected,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts an error body: its status and `error.code`.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: &str) -> &Self {
        self.assert_status(status);
        assert_eq!(self.code(), code, "body: {}", self.text);
        self
    }

    /// Asserts a 409 `VERSION_CONFLICT` naming the version that is current instead.
    #[track_caller]
    pub fn assert_version_conflict(&self, current: i64) -> &Self {
        self.assert_error(StatusCode::CONFLICT, "VERSION_CONFLICT");
        assert_eq!(
            self.body["error"]["currentVersion"], current,
            "body: {}",
            self.text
        );
        self
    }

    /// Asserts a 422 whose first validation problem names `field`.
    #[track_caller]
    pub fn assert_invalid(&self, field: &str) -> &Self {
        self.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            self.body["error"]["details"][0]["field"], field,
            "body: {}",
            self.text
        );
        self
    }

    /// Asserts an error body naming the offending field: status, `error.code` and `error.field`.
    #[track_caller]
    pub fn assert_field_error(&self, status: StatusCode, code: &str, field: &str) -> &Self {
        self.assert_error(status, code);
        assert_eq!(self.body["error"]["field"], field, "body: {}", self.text);
        self
    }
}

#[derive(Clone)]
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub pool: PgPool,
    admin_token: String,
}

impl TestApp {
    pub fn new(pool: PgPool) -> Self {
        Self::with_settings(pool, settings())
    }

    /// An app whose evaluation routes accept only requests carrying a client key.
    pub fn requiring_client_keys(pool: PgPool) -> Self {
        Self::with_settings(
            pool,
            Settings {
                require_client_keys: true,
                ..settings()
            },
        )
    }

    pub fn with_settings(pool: PgPool, settings: Settings) -> Self {
        let state = AppState::new(pool.clone(), settings).unwrap();
        let router = app(state.clone());
        let admin_token = state
            .tokens
            .issue("root", Role::Admin, None, now_secs(), 3600)
            .unwrap();
        Self {
            state,
            router,
            pool,
            admin_token,
        }
    }

    pub fn token(&self, sub: &str, role: Role, environments: Option<&[&str]>) -> String {
        let environments = environments.map(|e| e.iter().map(|s| (*s).to_owned()).collect());
        self.state
            .tokens
            .issue(sub, role, environments, now_secs(), 3600)
            .unwrap()
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Sends one request; `token` becomes `Authorization: Bearer`.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Body>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(body.unwrap_or_else(Body::empty)).unwrap();
        self.send_request(request).await
    }

    /// Sends a request built by the caller (raw header bytes, any body).
    pub async fn send_request(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            text,
        }
    }

    /// A request with a JSON body (or none) as `token`.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        body: Option<Value>,
    ) -> TestResponse {
        self.send(method, uri, Some(token), body.map(json_body), &[])
            .await
    }

    /// A request as an unrestricted admin.
    pub async fn admin(&self, method: Method, uri: &str, body: Option<Value>) -> TestResponse {
        self.admin_with(method, uri, body, &[]).await
    }

    /// `GET uri` as an unrestricted admin.
    pub async fn get(&self, uri: &str) -> TestResponse {
        self.admin(Method::GET, uri, None).await
    }

    /// `PUT uri` with a JSON body as an unrestricted admin.
    pub async fn put(&self, uri: &str, body: Value) -> TestResponse {
        self.admin(Method::PUT, uri, Some(body)).await
    }

    /// `POST uri` with a JSON body as an unrestricted admin.
    pub async fn post(&self, uri: &str, body: Value) -> TestResponse {
        self.admin(Method::POST, uri, Some(body)).await
    }

    /// `DELETE uri` as an unrestricted admin.
    pub async fn delete(&self, uri: &str) -> TestResponse {
        self.admin(Method::DELETE, uri, None).await
    }

    /// A request as an unrestricted admin, with extra headers (`If-Match`, ...).
    pub async fn admin_with(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let token = Some(self.admin_token.as_str());
        self.send(method, uri, token, body.map(json_body), headers)
            .await
    }

    /// A request without a token, as an evaluation client sends it.
    pub async fn public(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        self.send(method, uri, None, body.map(json_body), headers)
            .await
    }

    /// Creates environment `key`, unprotected whatever its key (`production` is protected by
    /// default): tests of other behaviour toggle flags in it without `X-Edgeflags-Confirm`.
    pub async fn create_environment(&self, key: &str) -> TestResponse {
        let body = json!({"key": key, "protected": false});
        let response = self.post("/admin/environments", body).await;
        response.assert_status(StatusCode::CREATED);
        response
    }

    /// A new environment holding one flag.
    pub async fn create_environment_with_flag(&self, environment: &str, flag: Value) {
        self.create_environment(environment).await;
        self.create_flag(environment, flag).await;
    }

    /// Creates a client key named `name` and returns its secret.
    pub async fn create_client_key(&self, environment: &str, name: &str) -> String {
        let uri = format!("/admin/environments/{environment}/client-keys");
        let created = self.post(&uri, json!({"name": name})).await;
        created.assert_status(StatusCode::CREATED);
        created.body["key"].as_str().unwrap().to_owned()
    }

    /// Creates a server key named `name` and returns its secret.
    pub async fn create_server_key(&self, environment: &str, name: &str) -> String {
        let uri = format!("/admin/environments/{environment}/server-keys");
        let created = self.post(&uri, json!({"name": name})).await;
        created.assert_status(StatusCode::CREATED);
        created.body["key"].as_str().unwrap().to_owned()
    }

    pub async fn create_segment(&self, environment: &str, segment: Value) -> TestResponse {
        let uri = format!("/admin/segments?environment={environment}");
        let response = self.post(&uri, segment).await;
        response.assert_status(StatusCode::CREATED);
        response
    }

    pub async fn create_flag(&self, environment: &str, flag: Value) -> TestResponse {
        let uri = format!("/admin/flags?environment={environment}");
        let response = self.post(&uri, flag).await;
        response.assert_status(StatusCode::CREATED);
        response
    }
}

/// A JSON request body.
fn json_body(value: Value) -> Body {
    Body::from(value.to_string())
}

/// The example checkout flag (its segments must exist in the environment).
pub fn checkout_flag() -> Value {
    json!({
        "flagKey": "new-checkout-flow",
        "description": "Enable new checkout experience",
        "enabled": true,
        "environment": "production",
        "targetingRules": {
            "percentage": 25,
            "segments": ["beta-users", "premium-users"],
            "userIds": ["user123", "user456"],
            "countries": ["US", "CA"],
            "excludedUserIds": []
        },
        "defaultValue": false
    })
}

/// An app with an environment `production` holding the checkout flag and its segments.
pub async fn with_checkout_flag(pool: PgPool) -> TestApp {
    let app = TestApp::new(pool);
    app.create_environment("production").await;
    app.create_segment(
        "production",
        json!({"segmentKey": "beta-users", "included": ["b1"]}),
    )
    .await;
    app.create_segment("production", json!({"segmentKey": "premium-users"}))
        .await;
    app.create_flag("production", checkout_flag()).await;
    app
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// The environment's newest outbox snapshot: its version and body.
pub async fn latest_snapshot(pool: &PgPool, environment: &str) -> (u64, String) {
    origin::outbox::latest(pool, environment)
        .await
        .unwrap()
        .unwrap()
}

/// The environment's `snapshot_version` (`None` when there is no such environment).
pub async fn snapshot_version(pool: &PgPool, environment: &str) -> Option<i64> {
    sqlx::query_scalar("select snapshot_version from environment where environment_key = $1")
        .bind(environment)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// Rows of audit, flag history and outbox, and the environment's snapshot version: everything a
/// mutation writes besides the entity itself.
pub async fn side_effects(pool: &PgPool, environment: &str) -> (i64, i64, i64, i64) {
    (
        count(pool, "select count(*) from audit_log").await,
        count(pool, "select count(*) from flag_version").await,
        count(pool, "select count(*) from snapshot").await,
        snapshot_version(pool, environment).await.unwrap(),
    )
}

impl TestApp {
    /// The same app serving `state` instead (e.g. `state.with_max_token_lifetime(..)`); the admin
    /// token stays valid as long as the new state accepts it.
    pub fn with_state(self, state: AppState) -> Self {
        Self {
            router: app(state.clone()),
            state,
            ..self
        }
    }
}

/// Every row of every table the admin API writes, as text in a stable order: equal dumps before
/// and after a batch of requests mean the batch changed nothing.
pub async fn dump(pool: &PgPool) -> String {
    let mut dump = String::new();
    for table in [
        "environment",
        "feature_flag",
        "flag_override",
        "flag_version",
        "segment",
        "client_key",
        "audit_log",
        "snapshot",
        "publish_cursor",
    ] {
        let sql = format!(
            "select coalesce(string_agg(row_to_json(t)::text, E'\\n' order by row_to_json(t)::text), '') from {table} t"
        );
        let rows: String = sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap();
        dump.push_str(&format!("{table}:\n{rows}\n"));
    }
    dump
}

impl TestApp {
    /// Creates environment `key` as an admin would, with the server's default protection.
    pub async fn create_default_environment(&self, key: &str) -> TestResponse {
        let response = self.post("/admin/environments", json!({"key": key})).await;
        response.assert_status(StatusCode::CREATED);
        response
    }
}
