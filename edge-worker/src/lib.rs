//! Cloudflare Worker: evaluates flags at the edge from per-environment snapshots in Workers KV.
//!
//! Routes:
//! - the evaluation API (seed `/api/v1/flags…`, OFREP `/ofrep/v1/evaluate/flags…`), answered by
//!   `evaluation_api` exactly as the origin answers it;
//! - `PUT /internal/snapshots/{environment}`: signed snapshot delivery from the origin
//!   (module `publish`);
//! - `GET /healthz`: liveness, plus the snapshot versions this isolate holds;
//! - `GET /internal/constant`: a constant answer with the API's headers and no KV or evaluation,
//!   the baseline the throughput benchmark compares the evaluation route with.
//!
//! Bindings (`wrangler.toml`): KV namespace `FLAGS`; vars `SNAPSHOT_TTL_SECONDS` (how often an
//! isolate re-checks KV, default 5), `REQUIRE_CLIENT_KEYS` (`"true"`/`"false"`, default
//! true) and `SUBSET_CACHE_LIMIT` (flag subsets an isolate compiles per snapshot version before
//! it compiles the whole snapshot, default 32; see `store`); secret `PUBLISH_SECRET`.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod error;
mod http;
mod publish;
mod store;

use evaluation_api::{Config, HttpRequest, RequestHeaders};
use worker::{console_error, console_warn, event, Context, Date, Env, Method, Request, Response};

pub use error::{Error, Result};

/// KV namespace binding holding the snapshots.
const KV_BINDING: &str = "FLAGS";
const DEFAULT_TTL_SECONDS: u64 = 5;
const PUBLISH_PREFIX: &str = "/internal/snapshots/";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    match route(req, &env).await {
        Ok(response) => Ok(response),
        Err(error) => {
            if error.status_code() >= 500 {
                console_error!("{error}");
            }
            http::error_response(&error)
        }
    }
}

async fn route(req: Request, env: &Env) -> Result<Response> {
    let url = req.inner().url();
    let (path, query) = http::split_url(&url);
    let method = req.method();
    match path {
        "/healthz" => {
            only(&method, Method::Get, "GET")?;
            http::json(200, &health_body())
        }
        "/internal/constant" => {
            only(&method, Method::Get, "GET")?;
            // Same header set and conversion path as an evaluation answer, minus the work.
            http::api_response(evaluation_api::ApiResponse::json(
                200,
                br#"{"ok":true}"#.to_vec(),
            ))
        }
        path if path.starts_with(PUBLISH_PREFIX) => {
            only(&method, Method::Put, "PUT")?;
            let environment = path.trim_start_matches(PUBLISH_PREFIX).to_owned();
            publish_snapshot(req, env, &environment).await
        }
        _ => evaluate(req, env, path, query).await,
    }
}

fn only(method: &Method, expected: Method, allow: &'static str) -> Result<()> {
    if *method == expected {
        Ok(())
    } else {
        Err(Error::MethodNotAllowed { allow })
    }
}

fn health_body() -> serde_json::Value {
    let snapshots: Vec<serde_json::Value> = store::cached_versions()
        .into_iter()
        .map(|(environment, version)| serde_json::json!({ "environment": environment, "version": version }))
        .collect();
    serde_json::json!({ "status": "ok", "snapshots": snapshots })
}

async fn evaluate(mut req: Request, env: &Env, path: &str, query: &str) -> Result<Response> {
    let arrived_ms = store::clock_ms();
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let authorization = header("authorization");
    let client_key = header("x-client-key");
    let api_key = header("x-api-key");
    let if_none_match = header("if-none-match");
    let declared_length = header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(length) = declared_length.filter(|l| *l > evaluation_api::MAX_BODY_BYTES) {
        // Refuse before buffering the body.
        return http::api_response(evaluation_api::payload_too_large(path, length));
    }
    let method = req.method();
    let body = match method {
        Method::Post | Method::Put | Method::Patch => req.bytes().await?,
        _ => Vec::new(),
    };
    let request = HttpRequest {
        method: method.as_ref(),
        path,
        query,
        headers: RequestHeaders {
            authorization: authorization.as_deref(),
            client_key: client_key.as_deref(),
            api_key: api_key.as_deref(),
            if_none_match: if_none_match.as_deref(),
        },
        body: &body,
    };
    let settings = settings(env);
    let config = Config {
        require_client_keys: settings.require_client_keys,
    };
    let api_request = match evaluation_api::parse(&request, &config) {
        Ok(api_request) => api_request,
        Err(answer) => return http::api_response(answer),
    };
    let now_ms = Date::now().as_millis();
    let environment = api_request.environment();
    let mut timing = store::Timing::default();
    let loaded = match env.kv(KV_BINDING) {
        Ok(kv) => store::snapshot(&kv, environment, now_ms, settings.ttl_ms, &mut timing).await,
        Err(e) => {
            // A missing binding is a deployment mistake; still answer from memory or fallback.
            console_error!("KV binding {KV_BINDING} unavailable: {e}");
            store::cached(environment)
        }
    };
    let keys = api_request.flag_keys();
    let snapshot = loaded.and_then(|loaded| {
        loaded
            .compiled_for(keys.as_deref(), settings.subset_limit, &mut timing)
            .map_err(|message| {
                console_error!("snapshot {environment} v{}: {message}", loaded.version());
            })
            .ok()
    });
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let mut answer = evaluation_api::respond(&api_request, snapshot.as_deref(), now);
    timing.set_total(store::clock_ms() - arrived_ms);
    if let Some(header) = timing.header() {
        answer.headers.push(("Server-Timing", header));
    }
    http::api_response(answer)
}

async fn publish_snapshot(mut req: Request, env: &Env, environment: &str) -> Result<Response> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let timestamp = header("x-edgeflags-timestamp");
    let signature = header("x-edgeflags-signature");
    let declared_length = header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
    let limit = publish::MAX_SNAPSHOT_BYTES;
    if let Some(length) = declared_length.filter(|l| *l > limit) {
        return Err(Error::PayloadTooLarge { length, limit });
    }
    // A missing secret is a deployment mistake; say so instead of rejecting every signature.
    let secret = env
        .secret("PUBLISH_SECRET")
        .map(|s| s.to_string())
        .unwrap_or_default();
    if secret.is_empty() {
        return Err(Error::PublishNotConfigured);
    }
    let body = req.bytes().await?;
    if body.len() > limit {
        return Err(Error::PayloadTooLarge {
            length: body.len(),
            limit,
        });
    }
    let now_ms = Date::now().as_millis();
    let now_seconds = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    publish::verify_signature(
        secret.as_bytes(),
        timestamp.as_deref(),
        signature.as_deref(),
        &body,
        now_seconds,
    )?;
    let compiled = publish::check_snapshot(environment, &body)?;
    let version = compiled.version();
    let kv = env.kv(KV_BINDING).map_err(|e| Error::Storage {
        message: e.to_string(),
    })?;
    let stored = store::stored_version(&kv, environment).await?;
    let written = match publish::decide(version, stored)? {
        publish::Decision::AlreadyStored => false,
        publish::Decision::Store => {
            // The JSON inside is exactly what the origin signed; `check_snapshot` compiled it.
            let packed =
                evaluator_core::packed::pack_valid(&body).map_err(|e| Error::InvalidSnapshot {
                    errors: vec![format!("body: {e}")],
                })?;
            // The directory adds a few percent: a body just under the KV limit may not fit.
            if packed.len() > limit {
                return Err(Error::PayloadTooLarge {
                    length: packed.len(),
                    limit,
                });
            }
            store::write(&kv, environment, &packed, version).await?;
            store::install(packed, compiled, now_ms);
            true
        }
    };
    http::json(
        200,
        &serde_json::json!({ "environment": environment, "version": version, "stored": written }),
    )
}

/// Deployment settings from the worker's vars. Vars cannot change within an isolate, so they are
/// read once: each read is a call into JavaScript, measurable on the hot path.
#[derive(Debug, Clone, Copy)]
struct Settings {
    require_client_keys: bool,
    ttl_ms: u64,
    /// Subsets of a snapshot version an isolate compiles before it compiles the whole.
    subset_limit: usize,
}

thread_local! {
    static SETTINGS: std::cell::Cell<Option<Settings>> = const { std::cell::Cell::new(None) };
}

fn settings(env: &Env) -> Settings {
    SETTINGS.with(|cell| {
        cell.get().unwrap_or_else(|| {
            let settings = Settings {
                require_client_keys: require_client_keys(env),
                ttl_ms: ttl_ms(env),
                subset_limit: subset_limit(env),
            };
            cell.set(Some(settings));
            settings
        })
    })
}

fn require_client_keys(env: &Env) -> bool {
    match env.var("REQUIRE_CLIENT_KEYS").map(|v| v.to_string()) {
        Ok(value) if value.eq_ignore_ascii_case("false") => false,
        Ok(value) if value.eq_ignore_ascii_case("true") => true,
        Ok(value) => {
            console_warn!("REQUIRE_CLIENT_KEYS={value:?} is not true/false; requiring client keys");
            true
        }
        Err(_) => true,
    }
}

fn subset_limit(env: &Env) -> usize {
    match env.var("SUBSET_CACHE_LIMIT").map(|v| v.to_string()) {
        Ok(value) => value.trim().parse::<usize>().unwrap_or_else(|_| {
            console_warn!(
                "SUBSET_CACHE_LIMIT={value:?} is not a number; using {}",
                store::DEFAULT_SUBSET_LIMIT
            );
            store::DEFAULT_SUBSET_LIMIT
        }),
        Err(_) => store::DEFAULT_SUBSET_LIMIT,
    }
}

fn ttl_ms(env: &Env) -> u64 {
    let seconds = match env.var("SNAPSHOT_TTL_SECONDS").map(|v| v.to_string()) {
        Ok(value) => value.trim().parse::<u64>().unwrap_or_else(|_| {
            console_warn!(
                "SNAPSHOT_TTL_SECONDS={value:?} is not a number; using {DEFAULT_TTL_SECONDS}"
            );
            DEFAULT_TTL_SECONDS
        }),
        Err(_) => DEFAULT_TTL_SECONDS,
    };
    seconds.saturating_mul(1000)
}
