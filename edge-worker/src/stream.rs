//! OFREP event streams at the edge (`docs/event-streams.md`, "At the edge"): the stream route,
//! and the announcement a publish makes. The bytes and the token are `evaluation_api::stream`'s;
//! the connections are held by one Durable Object per environment (`object`), whose policy
//! (limits, fan-out, revocation, heartbeats) is `hub`'s.
//!
//! `GET /ofrep/v1/event-stream?token=…` is answered here up to the point where a stream would
//! open: the token is verified (401), its key checked against the environment index and the
//! snapshot this isolate holds (401 for a revoked key), then the request goes to the
//! environment's object, which applies the limits (429) and answers the stream. A publish
//! accepted by any isolate tells the object ([`announce`]), which writes the event to every
//! stream of the environment at once, wherever they were opened.

mod hub;
mod object;
mod wire;

use std::pin::pin;
use std::time::Duration;

use evaluation_api::stream::{parse_stream_request, stream_key_revoked, ConfigVersion, StreamKey};
use futures_util::future::{select, Either};
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;
use worker::{console_error, Delay, Env, Request, Response, Stub};

use crate::cache;
use crate::error::{Error, Result};
use crate::http;
use crate::index::Caller;
use crate::routes::{self, Screened};
use crate::settings::Settings;
use crate::timing::{self, Runtime, Timing};

use wire::Known;

/// Durable Object namespace binding of the streams (`wrangler.toml`).
pub(crate) const BINDING: &str = "STREAMS";

/// How long a publish waits for the object to take its announcement: the snapshot is stored
/// already, so a slow object must not hold the publisher (which would retry, and find the
/// version stored).
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers a request for the stream route, with this deployment's stream key.
pub(crate) async fn open(req: Request, env: &Env, query: &str, key: StreamKey) -> Result<Response> {
    let last_event_id = req.headers().get("last-event-id").ok().flatten();
    let now_ms = timing::now_ms();
    let method = req.method();
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let request =
        match parse_stream_request(method.as_ref(), query, last_event_id.as_deref(), &key, now) {
            Ok(request) => request,
            Err(answer) => return http::api_response(answer),
        };
    let grant = &request.grant;
    let settings = Settings::of(env);
    // A token issued without a key opens nothing where evaluations need one.
    if grant.key_sha256().is_none() && settings.require_client_keys {
        return http::api_response(stream_key_revoked());
    }
    let seen = match held(
        env,
        grant.environment(),
        grant.key_sha256(),
        &settings,
        now_ms,
    )
    .await
    {
        Held::Refused => return http::api_response(stream_key_revoked()),
        Held::Version(seen) => seen,
    };
    let open = wire::Open {
        key_sha256: grant.key_sha256().map(str::to_owned),
        last_event_id: request.last_event_id,
        seen,
    };
    let stub = object_of(env, grant.environment())?;
    // The object's answer (the stream, or its refusal) goes to the client as it is.
    Ok(stub
        .fetch_with_request(internal_request(wire::OPEN_PATH, &open.encode())?)
        .await?)
}

/// What this isolate knows of a stream's environment.
enum Held {
    /// The environment does not exist, or its snapshot does not hold the stream's key.
    Refused,
    /// The key may open a stream; the version of the snapshot held, if one is.
    Version(Option<ConfigVersion>),
}

/// Screens a stream as an evaluation is screened (`routes::screened_snapshot`: the index, then
/// the snapshot, read from KV at most once per TTL), and checks its key against the snapshot.
/// When KV cannot tell (failing since the isolate started) the object's own record of the keys
/// decides.
async fn held(
    env: &Env,
    environment: &str,
    key_sha256: Option<&str>,
    settings: &Settings,
    now_ms: u64,
) -> Held {
    let mut timing = Timing::default();
    let caller = Caller {
        environment,
        key_sha256,
    };
    let loaded =
        match routes::screened_snapshot(env, caller, None, settings, now_ms, &mut timing).await {
            Screened::Refused => return Held::Refused,
            Screened::Snapshot(loaded) => loaded,
        };
    let Some(loaded) = loaded else {
        return Held::Version(None);
    };
    // A subset of no flags still holds the snapshot's version, time and keys, and costs next to
    // nothing to compile (or is the whole snapshot, if that is compiled already).
    let compiled = loaded.compiled_for(&Runtime, Some(&[]), settings.subset_limit, &mut timing);
    if timing.worked() {
        cache::isolate().trim(&Runtime, environment, settings.cache_bytes);
    }
    match compiled {
        Ok(compiled) => {
            if key_sha256.is_some_and(|key| !compiled.client_key_hash_allowed(key)) {
                Held::Refused
            } else {
                Held::Version(Some(ConfigVersion::of(&compiled)))
            }
        }
        Err(message) => {
            console_error!("snapshot {environment} v{}: {message}", loaded.version());
            Held::Version(None)
        }
    }
}

/// Tells the environment's object that `config` was stored, holding the client keys hashing to
/// `keys`, so that it announces it to every stream and closes those of revoked keys. Never fails
/// the publish: the snapshot is stored, and streams also learn the version from the next stream
/// that opens; a failure is logged.
pub(crate) async fn announce(
    env: &Env,
    environment: &str,
    config: ConfigVersion,
    keys: Vec<String>,
) {
    let change = Known {
        config: Some(config),
        keys: Some(keys),
    }
    .encode();
    let delivered = async {
        let stub = object_of(env, environment)?;
        let response = stub
            .fetch_with_request(internal_request(wire::CHANGE_PATH, &change)?)
            .await?;
        match response.status_code() {
            200..=299 => Ok(()),
            status => Err(Error::Runtime(worker::Error::RustError(format!(
                "answered {status}"
            )))),
        }
    };
    let delivered = pin!(delivered);
    let timeout = pin!(Delay::from(ANNOUNCE_TIMEOUT));
    match select(delivered, timeout).await {
        Either::Left((Ok(()), _)) => {}
        Either::Left((Err(e), _)) => console_error!(
            "event streams of {environment}: announcing version {} failed: {e}",
            config.version
        ),
        Either::Right(_) => console_error!(
            "event streams of {environment}: announcing version {} took over {} s",
            config.version,
            ANNOUNCE_TIMEOUT.as_secs()
        ),
    }
}

/// The stub of `environment`'s object.
fn object_of(env: &Env, environment: &str) -> Result<Stub> {
    Ok(env
        .durable_object(BINDING)?
        .id_from_name(environment)?
        .get_stub()?)
}

/// A request to an object: POST of `body` to `path` (the host is never resolved).
///
/// Built with `web_sys` rather than `worker::Request::new_with_init`, whose conversion of
/// `RequestInit` carries the serialisers of every `cf` option (about 11 KB of wasm).
fn internal_request(path: &str, body: &str) -> Result<Request> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(body));
    let url = format!("https://streams.internal{path}");
    let request =
        web_sys::Request::new_with_str_and_init(&url, &init).map_err(worker::Error::from)?;
    Ok(Request::from(request))
}
