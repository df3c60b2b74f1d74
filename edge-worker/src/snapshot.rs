//! `GET /sdk/v1/snapshot` at the edge (`docs/sdk.md`): the environment's snapshot for in-process
//! SDKs, to server keys only. Parsing, the key checks and the answer are
//! `evaluation_api::snapshot`'s, as at the origin; this module screens the caller like an
//! evaluation (the environment index, then the snapshot the isolate holds), checks the key
//! against a compiled subset without flags (its key list is all the check needs, so a download
//! never compiles the whole snapshot), and serves the JSON straight from the stored value.
//!
//! Compression is the runtime's: a response whose `Content-Encoding` is `gzip` is compressed by
//! workerd as it is sent (the `Response`'s default `encodeBody: "automatic"`), in native code
//! and outside the isolate's CPU time, so the worker carries no deflate of its own.

use evaluation_api::snapshot::{
    accepts_gzip, parse_snapshot_request, respond_snapshot, respond_snapshot_unknown_environment,
    SnapshotDocument, SNAPSHOT_PATH,
};
use evaluation_api::{Config, HttpRequest, RequestHeaders};
use worker::{console_error, Env, Request, Response};

use crate::cache;
use crate::error::Result;
use crate::http;
use crate::index::Caller;
use crate::routes::{screened_snapshot, Screened};
use crate::settings::{self, Settings};
use crate::timing::{self, Runtime, Timing};

/// Answers a request for the snapshot route.
pub(crate) async fn download(req: Request, env: &Env, query: &str) -> Result<Response> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let authorization = header("authorization");
    let client_key = header("x-client-key");
    let api_key = header("x-api-key");
    let if_none_match = header("if-none-match");
    let accept_encoding = header("accept-encoding");
    let method = req.method();
    let request = HttpRequest {
        method: method.as_ref(),
        path: SNAPSHOT_PATH,
        query,
        headers: RequestHeaders {
            authorization: authorization.as_deref(),
            client_key: client_key.as_deref(),
            api_key: api_key.as_deref(),
            if_none_match: if_none_match.as_deref(),
        },
        body: &[],
    };
    let settings = Settings::of(env);
    let config = Config {
        require_client_keys: settings.require_client_keys,
    };
    let mut parsed = match parse_snapshot_request(&request, &config) {
        Ok(parsed) => parsed,
        Err(answer) => return http::api_response(answer),
    };
    if let Some(key) = settings::stream_key(env) {
        parsed = parsed.with_event_streams(key);
    }
    let now_ms = timing::now_ms();
    let mut timing = Timing::default();
    let caller = Caller {
        environment: parsed.environment(),
        key_sha256: parsed.key_sha256(),
    };
    let loaded = match screened_snapshot(env, caller, None, &settings, now_ms, &mut timing).await {
        Screened::Snapshot(loaded) => loaded,
        Screened::Refused => {
            return http::api_response(respond_snapshot_unknown_environment(&parsed))
        }
    };
    let keys = loaded.as_ref().and_then(|loaded| {
        loaded
            .compiled_for(&Runtime, Some(&[]), settings.subset_limit, &mut timing)
            .map_err(|message| {
                console_error!(
                    "snapshot {} v{}: {message}",
                    parsed.environment(),
                    loaded.version()
                );
            })
            .ok()
    });
    if timing.worked() {
        cache::isolate().trim(&Runtime, parsed.environment(), settings.cache_bytes);
    }
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let snapshot = loaded
        .as_deref()
        .zip(keys.as_deref())
        .map(|(loaded, keys)| {
            let document = SnapshotDocument {
                json: loaded.json(),
                etag: loaded.etag(),
            };
            (keys, document)
        });
    let mut answer = respond_snapshot(&parsed, snapshot, now);
    if answer.status == 200 && accepts_gzip(accept_encoding.as_deref()) {
        answer
            .headers
            .push(("Content-Encoding", String::from("gzip")));
    }
    http::api_response(answer)
}
