//! The HTTP surface: admin API (`/admin/...`), public evaluation API (`/api/v1/...`,
//! `/ofrep/v1/...`, with OFREP's event stream) and operations (`/healthz`, `/readyz`,
//! `/metrics`, `/openapi.json`).

mod access;
mod audit;
mod bulk;
mod client_keys;
mod delivery;
mod environments;
mod evaluate;
mod evaluate_as;
pub mod extract;
mod flag_index;
mod flags;
pub mod openapi;
mod ops;
mod overrides;
mod sdk;
mod segments;
pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{Caller, TokenKeys};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::live::LiveSnapshots;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use extract::BodyLimit;
use stream::{StreamSettings, Streams};

/// Settings the HTTP layer needs (a subset of [`Config`], so tests can build one directly).
#[derive(Debug, Clone)]
pub struct Settings {
    /// HS256 secret of admin tokens.
    pub jwt_secret: String,
    /// Admin requests per second per subject/IP; 0 disables the limit.
    pub admin_rate_per_second: f64,
    /// Token bucket capacity.
    pub admin_rate_burst: u32,
    /// Admin body limit in bytes.
    pub max_body_bytes: usize,
    /// Whether evaluation requests need a client key.
    pub require_client_keys: bool,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Self {
            jwt_secret: config.jwt_secret.clone(),
            admin_rate_per_second: config.admin_rate_per_second,
            admin_rate_burst: config.admin_rate_burst,
            max_body_bytes: config.max_body_bytes,
            require_client_keys: config.require_client_keys,
        }
    }
}

/// Shared state of every handler: cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Database pool.
    pub pool: PgPool,
    /// Admin token keys.
    pub tokens: Arc<TokenKeys>,
    /// Admin rate limiter.
    pub limiter: Arc<RateLimiter>,
    /// Prometheus registry and HTTP collectors; other parts register their own collectors here.
    pub metrics: Metrics,
    /// Compiled snapshots the evaluation API answers from.
    pub live: Arc<LiveSnapshots>,
    /// Limits and switches.
    pub settings: Arc<Settings>,
    /// The OFREP event streams open at this replica, their key and limits.
    pub streams: Arc<Streams>,
    /// Cancelled when the process stops: open event streams end then, so that the server's
    /// graceful shutdown does not wait for clients that never leave.
    pub shutdown: CancellationToken,
}

impl AppState {
    /// State over `pool` with `settings` and a fresh metrics registry.
    pub fn new(pool: PgPool, settings: Settings) -> Result<Self, prometheus::Error> {
        let metrics = Metrics::new()?;
        Ok(Self {
            pool,
            tokens: Arc::new(TokenKeys::new(settings.jwt_secret.as_bytes())),
            limiter: Arc::new(RateLimiter::new(
                settings.admin_rate_per_second,
                settings.admin_rate_burst,
            )),
            live: Arc::new(LiveSnapshots::new(metrics.clone())),
            metrics,
            streams: Arc::new(Streams::new(StreamSettings::new(&settings.jwt_secret))),
            settings: Arc::new(settings),
            shutdown: CancellationToken::new(),
        })
    }

    /// The same state with event streams keyed and bounded by `streams` (default: signed under
    /// the admin-token secret, [`StreamSettings::new`]'s limits).
    #[must_use]
    pub fn with_streams(mut self, streams: StreamSettings) -> Self {
        self.streams = Arc::new(Streams::new(streams));
        self
    }

    /// The same state, ending its event streams when `shutdown` is cancelled.
    #[must_use]
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The same state, accepting admin tokens that live up to `max` (default
    /// [`crate::auth::DEFAULT_MAX_TOKEN_LIFETIME`]).
    #[must_use]
    pub fn with_max_token_lifetime(mut self, max: std::time::Duration) -> Self {
        self.tokens =
            Arc::new(TokenKeys::new(self.settings.jwt_secret.as_bytes()).with_max_lifetime(max));
        self
    }
}

/// Every route with its documentation: the admin routes (which [`app`] puts behind
/// `admin_guard`), the public ones, and the OpenAPI document describing both.
struct Routes {
    admin: Router<AppState>,
    public: Router<AppState>,
    document: utoipa::openapi::OpenApi,
}

fn routes() -> Routes {
    let (admin, admin_document) = OpenApiRouter::new()
        .merge(flags::router())
        .merge(flag_index::router())
        .merge(evaluate_as::router())
        .merge(bulk::router())
        .merge(overrides::router())
        .merge(segments::router())
        .merge(environments::router())
        .merge(client_keys::router())
        .merge(delivery::router())
        .merge(audit::router())
        .split_for_parts();
    let (public, public_document) = OpenApiRouter::new()
        .merge(evaluate::router())
        .merge(stream::router())
        .merge(sdk::router())
        .merge(ops::router())
        .split_for_parts();
    let mut document = openapi::base();
    document.merge(openapi::guarded(admin_document));
    document.merge(public_document);
    Routes {
        admin,
        public,
        document: openapi::finish(document),
    }
}

/// The OpenAPI 3.1 document of [`app`]'s routes (served at `/openapi.json`, printed by
/// `origin openapi`).
pub fn document() -> utoipa::openapi::OpenApi {
    routes().document
}

/// The whole application; `main` serves it and tests call it through `oneshot`.
pub fn app(state: AppState) -> Router {
    let Routes { admin, public, .. } = routes();
    let admin = admin
        // route_layer: unknown paths fall through to the 404 fallback instead of asking for a token
        .route_layer(middleware::from_fn_with_state(state.clone(), admin_guard))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes));
    Router::new()
        .merge(admin)
        .merge(public)
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(CatchPanicLayer::new())
        // outermost, so that every admin answer carries it: rejections by the guard, 404s of
        // unknown admin paths, 405s, even a caught panic's 500
        .layer(middleware::from_fn(admin_no_store))
        .with_state(state)
}

/// `Cache-Control: no-store` on every answer under `/admin`: they hold configuration, audit
/// trails and, once, a new client key's secret, none of which a shared or browser cache may keep.
async fn admin_no_store(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let admin = path == "/admin" || path.starts_with("/admin/");
    let mut response = next.run(req).await;
    if admin {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn fallback(method: Method, uri: axum::http::Uri) -> Error {
    Error::RouteNotFound(format!("{method} {}", uri.path()))
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

/// Authenticates admin requests and applies the rate limit, keyed by the token's subject or, for
/// requests without a valid token, the client address (so credential guessing is limited too).
/// The rate-limit key of a request's peer: `ip:<address>` (`ip:unknown` when the server was
/// not started with connect info, as in-process tests are).
fn client_ip(req: &Request) -> String {
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => format!("ip:{}", addr.ip()),
        None => "ip:unknown".to_owned(),
    }
}

async fn admin_guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = state.tokens.authenticate(authorization);
    let key = match &caller {
        Ok(caller) => format!("sub:{}", caller.sub),
        Err(_) => client_ip(&req),
    };
    if let Err(wait) = state.limiter.check(&key, Instant::now()) {
        let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Error::RateLimited {
            retry_after_secs: retry_after_secs.max(1),
        }
        .into_response();
    }
    match caller {
        Ok(caller) => {
            req.extensions_mut().insert::<Caller>(caller);
            req.extensions_mut()
                .insert(BodyLimit(state.settings.max_body_bytes));
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// Records latency and errors per route template.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let response = next.run(req).await;
    state.metrics.observe(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `ETag` of an entity version (`"3"`).
fn etag(version: u64) -> (header::HeaderName, HeaderValue) {
    // digits and quotes are always a valid header value
    let value = HeaderValue::from_str(&format!("\"{version}\""))
        .unwrap_or(HeaderValue::from_static("\"0\""));
    (header::ETAG, value)
}

/// Header naming the snapshot version a mutation produced.
const SNAPSHOT_VERSION: &str = "x-edgeflags-snapshot-version";

fn snapshot_version_header(version: u64) -> (header::HeaderName, HeaderValue) {
    (
        header::HeaderName::from_static(SNAPSHOT_VERSION),
        HeaderValue::from(version),
    )
}

/// The headers of a change's answer: the version written (`ETag`) and the snapshot version the
/// change produced.
fn change_headers(version: u64, snapshot_version: u64) -> [(header::HeaderName, HeaderValue); 2] {
    [etag(version), snapshot_version_header(snapshot_version)]
}

/// 201 when a change created its entity, 200 when it replaced one.
fn created_or_ok(created: bool) -> axum::http::StatusCode {
    if created {
        axum::http::StatusCode::CREATED
    } else {
        axum::http::StatusCode::OK
    }
}

/// Page size: `limit` (1..=1000, default 100).
fn page_limit(limit: Option<i64>) -> Result<i64> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(n) => Err(Error::InvalidParameter {
            name: "limit",
            message: format!("must be between 1 and 1000, got {n}"),
        }),
    }
}

/// Keyset pagination: list queries fetch `limit + 1` rows; when the extra row came back, it is
/// dropped and the last kept row's key is the cursor of the next page.
fn next_page_cursor<T, K>(rows: &mut Vec<T>, limit: i64, key: impl Fn(&T) -> K) -> Option<K> {
    if rows.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
        rows.pop();
        rows.last().map(key)
    } else {
        None
    }
}

/// The environment a request addresses: the query's `environment`, or the body's, which must
/// agree when both are given. Public for the admin decoding fuzz target (`fuzz/`), which runs
/// the body routes' steps without a database.
pub fn environment_of(query: Option<&str>, body: Option<&serde_json::Value>) -> Result<String> {
    let from_body = match body {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            return Err(Error::invalid(
                "environment",
                format!(
                    "expected a string, found {}",
                    crate::document::json_type(other)
                ),
            ))
        }
    };
    match (query, from_body) {
        (Some(q), Some(b)) if q != b => Err(Error::invalid(
            "environment",
            format!("body names environment {b:?} but the query names {q:?}"),
        )),
        (Some(e), _) | (None, Some(e)) => Ok(e.to_owned()),
        (None, None) => Err(Error::InvalidParameter {
            name: "environment",
            message: "required (query parameter or body field)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn environment_comes_from_query_or_body_and_they_must_agree() {
        assert_eq!(environment_of(Some("dev"), None).unwrap(), "dev");
        assert_eq!(environment_of(None, Some(&json!("dev"))).unwrap(), "dev");
        assert_eq!(
            environment_of(Some("dev"), Some(&json!("dev"))).unwrap(),
            "dev"
        );
        assert!(matches!(
            environment_of(Some("dev"), Some(&json!("production"))),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            environment_of(None, None),
            Err(Error::InvalidParameter {
                name: "environment",
                ..
            })
        ));
    }

    #[test]
    fn page_limit_defaults_and_bounds() {
        assert_eq!(page_limit(None).unwrap(), 100);
        assert_eq!(page_limit(Some(1000)).unwrap(), 1000);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(1001)).is_err());
    }

    #[test]
    fn next_page_cursor_drops_the_extra_row_and_names_the_last_kept_one() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(next_page_cursor(&mut rows, 2, |r| *r), Some(2));
        assert_eq!(rows, [1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(next_page_cursor(&mut rows, 2, |r| *r), None);
        assert_eq!(rows, [1, 2]);
    }

    #[test]
    fn etag_is_the_quoted_version() {
        assert_eq!(etag(42).1, "\"42\"");
    }
}
