//! Cloudflare Worker: evaluates flags at the edge from per-environment snapshots in Workers KV.
//!
//! Routes (`routes`):
//! - the evaluation API (REST API `/api/v1/flags…`, OFREP `/ofrep/v1/evaluate/flags…`),
//!   answered by `evaluation_api` exactly as the origin answers it;
//! - `PUT /internal/snapshots/{environment}`: signed snapshot delivery from the origin
//!   (`publish`, over the `publish_protocol` crate);
//! - `GET /ofrep/v1/event-stream?token=…`: OFREP event streams (`stream`), held by one Durable
//!   Object per environment (class `EnvironmentStreams`) that every publish notifies;
//! - `GET /sdk/v1/snapshot`: the environment's snapshot for in-process SDKs, to server keys only
//!   (`snapshot`, answered by `evaluation_api::snapshot` as the origin answers it);
//! - `GET /healthz`: liveness, plus the snapshot versions this isolate holds;
//! - `GET /internal/constant`: a constant answer with the API's headers and no KV or evaluation,
//!   the baseline the throughput benchmark compares the evaluation route with.
//!
//! Modules: `routes` (dispatch, evaluation glue), `publish` (the publish endpoint), `snapshot`
//! (the snapshot route), `stream`
//! (event streams: the route, the Durable Object, its pure policy in `stream::hub`), `cache`
//! (the isolate's snapshots and when to re-check KV; pure, natively tested), `index` (which
//! environments and keys exist), `kv` (reads and writes of the two keys), `settings` (vars and
//! secret), `timing` (clock, `Server-Timing`), `http` (conversions to `worker::Response`),
//! `error`.
//!
//! Bindings (`wrangler.toml`): KV namespace `FLAGS`; Durable Object namespace `STREAMS` (class
//! `EnvironmentStreams`); vars `SNAPSHOT_TTL_SECONDS` (how often an isolate re-checks KV,
//! default 5, fractions to the millisecond allowed), `REQUIRE_CLIENT_KEYS` (`"true"`/`"false"`,
//! default true), `SUBSET_CACHE_LIMIT` (flag subsets an isolate compiles per snapshot version
//! before it compiles the whole snapshot, default 32; see `cache`), `CACHE_MIB`,
//! `STREAMS_PER_ENVIRONMENT` (default 1000), `STREAMS_PER_CLIENT_KEY` (default 100) and
//! `STREAM_HEARTBEAT_SECONDS` (default 25); secret `PUBLISH_SECRET` (at least 32 bytes; it also
//! keys the stream tokens, and without it there are no streams).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod cache;
mod error;
#[cfg(test)]
mod fakes;
mod http;
mod index;
mod kv;
mod publish;
mod routes;
mod settings;
mod snapshot;
mod stream;
mod timing;

use worker::{console_error, event, Context, Env, Request, Response};

pub use error::{Error, Result};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    match routes::route(req, &env).await {
        Ok(response) => Ok(response),
        Err(error) => {
            // Client errors are the caller's to read; server errors (an unset or too short
            // PUBLISH_SECRET included) are the operator's, in the log.
            if error.status_code() >= 500 {
                console_error!("{error}");
            }
            http::error_response(&error)
        }
    }
}
