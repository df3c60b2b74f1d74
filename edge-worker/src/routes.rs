//! Which request goes where, and the evaluation route's glue: it reads the request into
//! `evaluation_api`'s terms, gets the snapshot from the isolate's cache (over KV) and copies the
//! answer out. The publish route is `publish`'s, the event stream route `stream`'s.

use std::rc::Rc;

use evaluation_api::snapshot::SNAPSHOT_PATH;
use evaluation_api::stream::STREAM_PATH;
use evaluation_api::{Config, HttpRequest, RequestHeaders};
use publish_protocol::PUBLISH_PATH_PREFIX;
use worker::{console_error, Env, Method, Request, Response};

use crate::cache::{self, Loaded};
use crate::error::{Error, Result};
use crate::http;
use crate::index::{self, Admission, Caller};
use crate::kv::{self, Kv};
use crate::publish;
use crate::settings::{self, Settings};
use crate::snapshot;
use crate::stream;
use crate::timing::{self, Runtime, Timing};

/// Answers `req`: the worker's own routes by path, everything else by the evaluation API (which
/// answers unknown paths itself).
pub(crate) async fn route(req: Request, env: &Env) -> Result<Response> {
    let url = req.inner().url();
    let (path, query) = http::split_url(&url);
    let method = req.method();
    match path {
        "/healthz" => {
            only(&method, Method::Get, "GET")?;
            http::json(200, &health_body(Settings::of(env).require_client_keys))
        }
        "/internal/constant" => {
            only(&method, Method::Get, "GET")?;
            // Same header set and conversion path as an evaluation answer, minus the work.
            http::api_response(evaluation_api::ApiResponse::json(
                200,
                br#"{"ok":true}"#.to_vec(),
            ))
        }
        path if path.starts_with(PUBLISH_PATH_PREFIX) => {
            only(&method, Method::Put, "PUT")?;
            let environment = path.trim_start_matches(PUBLISH_PATH_PREFIX).to_owned();
            publish::handle(req, env, &environment).await
        }
        // Without a stream key (no usable publish secret) there are no streams, and the path is
        // answered like any unknown one.
        STREAM_PATH => match settings::stream_key(env) {
            Some(key) => stream::open(req, env, query, key).await,
            None => evaluate(req, env, path, query).await,
        },
        SNAPSHOT_PATH => snapshot::download(req, env, query).await,
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

/// `/healthz`: up, and how many snapshots this isolate holds. Which environments and versions
/// only with client keys off (local development): an unauthenticated route must not tell a caller
/// which environments exist.
fn health_body(require_client_keys: bool) -> serde_json::Value {
    let versions = cache::isolate().versions();
    if require_client_keys {
        return serde_json::json!({ "status": "ok", "snapshotsHeld": versions.len() });
    }
    let snapshots: Vec<serde_json::Value> = versions
        .into_iter()
        .map(|(environment, version)| serde_json::json!({ "environment": environment, "version": version }))
        .collect();
    serde_json::json!({ "status": "ok", "snapshotsHeld": snapshots.len(), "snapshots": snapshots })
}

async fn evaluate(mut req: Request, env: &Env, path: &str, query: &str) -> Result<Response> {
    let arrived_ms = timing::clock_ms();
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
        Method::Post | Method::Put | Method::Patch => {
            let limit = evaluation_api::MAX_BODY_BYTES;
            match http::body_within(&mut req, declared_length, limit).await? {
                Some(body) => body,
                // As the origin answers a body it stopped reading at the limit.
                None => {
                    return http::api_response(evaluation_api::payload_too_large(path, limit + 1))
                }
            }
        }
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
    let settings = Settings::of(env);
    let config = Config {
        require_client_keys: settings.require_client_keys,
    };
    let mut api_request = match evaluation_api::parse(&request, &config) {
        Ok(api_request) => api_request,
        Err(answer) => return http::api_response(answer),
    };
    if let Some(key) = settings::stream_key(env) {
        api_request = api_request.with_event_streams(key);
    }
    let now_ms = timing::now_ms();
    let environment = api_request.environment();
    let mut timing = Timing::default();
    let caller = Caller {
        environment,
        key_sha256: api_request.client_key_sha256(),
    };
    let hint = api_request.config_version_hint();
    let loaded = match screened_snapshot(env, caller, hint, &settings, now_ms, &mut timing).await {
        Screened::Snapshot(loaded) => loaded,
        Screened::Refused => {
            let answer = evaluation_api::respond_unknown_environment(&api_request);
            return http::api_response(answer);
        }
    };
    let cache = cache::isolate();
    let keys = api_request.flag_keys();
    let snapshot = loaded.and_then(|loaded| {
        loaded
            .compiled_for(
                &Runtime,
                keys.as_deref(),
                settings.subset_limit,
                &mut timing,
            )
            .map_err(|message| {
                console_error!("snapshot {environment} v{}: {message}", loaded.version());
            })
            .ok()
    });
    if timing.worked() {
        // Something was read or compiled: the cache may have grown past its bytes.
        cache.trim(&Runtime, environment, settings.cache_bytes);
    }
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let mut answer = evaluation_api::respond(&api_request, snapshot.as_deref(), now);
    timing.set_total(timing::clock_ms() - arrived_ms);
    // Not on refusals: whether KV was read must not tell a wrong key from a missing environment.
    if let Some(header) = timing.header().filter(|_| answer.status != 401) {
        answer.headers.push(("Server-Timing", header));
    }
    http::api_response(answer)
}

/// What the isolate has for a request naming an environment.
pub(crate) enum Screened {
    /// No such environment, or one that cannot hold the key presented: answer like a wrong key.
    Refused,
    /// The snapshot to answer with; `None` when none could be loaded (the fallback).
    Snapshot(Option<Rc<Loaded>>),
}

/// Screens `caller` and gets its environment's snapshot (shared by evaluations and event
/// streams). An environment this isolate holds is screened by its snapshot; any other by the
/// index first, so a made-up name costs no read of its own and no cache entry. `version_hint`
/// is a version the caller was told of (a bulk request after an event): an isolate holding an
/// older one reads KV now rather than at the end of its TTL.
pub(crate) async fn screened_snapshot(
    env: &Env,
    caller: Caller<'_>,
    version_hint: Option<u64>,
    settings: &Settings,
    now_ms: u64,
    timing: &mut Timing,
) -> Screened {
    let environment = caller.environment;
    let cache = cache::isolate();
    let namespace = match kv::namespace(env) {
        Ok(namespace) => namespace,
        Err(e) => {
            // A missing binding is a deployment mistake; still answer from memory or fallback.
            console_error!("KV binding {} unavailable: {e}", kv::BINDING);
            return Screened::Snapshot(cache.cached(environment));
        }
    };
    let store = Kv::new(&namespace, env);
    let ttl = settings.ttl_ms;
    let admission = if cache.cached(environment).is_some() {
        Admission::Admitted
    } else {
        index::isolate()
            .admit(&store, &Runtime, caller, now_ms, ttl, timing)
            .await
    };
    match admission {
        Admission::Admitted => {
            if let Some(hinted) = version_hint {
                cache.expect(environment, hinted, now_ms);
            }
            let loaded = cache
                .snapshot(&store, &Runtime, environment, now_ms, ttl, timing)
                .await;
            Screened::Snapshot(loaded)
        }
        Admission::Refused => Screened::Refused,
        // KV cannot list: the fallback, without reading the environment.
        Admission::Unknown => Screened::Snapshot(None),
    }
}
