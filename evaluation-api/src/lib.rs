//! The public evaluation API of edgeflags — the REST API (`/api/v1/flags`) and OpenFeature's
//! OFREP (`/ofrep/v1/evaluate/flags`) — as pure functions from an HTTP request to an HTTP response, so the origin (axum) and the edge
//! (Cloudflare Worker) answer byte for byte the same. No I/O, no clock, no framework: the adapter
//! reads the request, fetches the snapshot its own way, passes `now`, and copies the answer out.
//!
//! # Functions
//! - [`parse`]`(&HttpRequest, &Config) -> Result<ApiRequest, ApiResponse>`: routing, limits,
//!   credentials, body/query decoding. `Err` is a finished response (an error, or the 204 answer
//!   to a CORS preflight): send it as is.
//! - [`ApiRequest::environment`]: the environment whose snapshot to fetch (from the client key,
//!   else the request's `environment` field).
//! - [`respond`]`(&ApiRequest, Option<&CompiledSnapshot>, now_ms) -> ApiResponse`: checks the
//!   client key against the snapshot, evaluates, renders. `None` = no snapshot available: the
//!   documented fallback (REST API 503 with `reason: "error"`, OFREP 500 `GENERAL`), never a panic.
//! - [`respond_unknown_environment`]`(&ApiRequest) -> ApiResponse`: the answer for an environment
//!   the adapter knows does not exist: with a client key, byte for byte the answer to an unknown
//!   key of an existing one (so environments cannot be probed); without, the fallback.
//! - [`ApiRequest::client_key_sha256`]: the presented key's hash, for adapters that screen keys
//!   before they fetch a snapshot (the edge's environment index).
//! - [`is_api_path`]: whether a path belongs here (for adapters with other routes).
//! - [`payload_too_large`]: the 413 answer, for adapters that refuse a body by its
//!   `Content-Length` before reading it. [`MAX_BODY_BYTES`] is the limit [`parse`] enforces.
//! - [`RequestHeaders::from_pairs`]: picks the headers the API reads from any header list.
//!
//! # Routes
//! | route | body / query | answer |
//! |---|---|---|
//! | `GET /api/v1/flags/{flagKey}` | `?userId=&environment=`, other parameters = string attributes (repeated = array) | 200 flag result `{flagKey, enabled, value, variant, reason, version, openFeatureReason[, errorCode, errorMessage]}` (fields: see [`evaluator_core::Evaluation`]); 404 `FLAG_NOT_FOUND` |
//! | `POST /api/v1/flags/batch` | `{userId?, environment?, flagKeys?, context?}` | 200 `{"flags":[flag result…]}`, every flag in snapshot order when `flagKeys` is absent; ETag / 304 |
//! | `POST /ofrep/v1/evaluate/flags/{key}` | `{"context":{targetingKey?, …}}` | 200 `{key, value, reason, variant, metadata}`; 404/400/500 `{key, errorCode, errorDetails}` |
//! | `POST /ofrep/v1/evaluate/flags` | `{"context":{…}}` | 200 `{"flags":[success or failure…], "metadata":{environment, snapshotVersion}}`; ETag / 304 |
//! | `OPTIONS` on any of them | | 204 CORS preflight |
//!
//! Every answer has `Cache-Control: private, no-store` and `Access-Control-Allow-Origin: *`; JSON
//! bodies have `Content-Type: application/json`; evaluated answers carry
//! `X-Edgeflags-Snapshot-Version`. REST API errors are `{"error":{"code","message","field"}}` (codes:
//! [`Error::code`]); OFREP errors follow its spec (401/403 without a body). Bulk ETags change
//! with the snapshot version, the context (canonicalised) and the answer itself.
//!
//! # Credentials
//! A client key `efk.<environment>.<32 hex>` comes in `Authorization: Bearer`, `X-Client-Key` or
//! `X-API-Key`; its environment selects the snapshot and its SHA-256 must be in the snapshot's
//! `clientKeys`. [`Config::require_client_keys`] (default `true`) refuses requests without one;
//! when `false`, the environment comes from the `environment` query/body field or, for OFREP, the
//! `environment` context attribute.
//!
//! # Example (an adapter)
//! ```
//! use evaluation_api::{parse, respond, Config, HttpRequest, RequestHeaders};
//! use evaluator_core::CompiledSnapshot;
//!
//! let snapshot_json = br#"{"environment":"production","version":7,
//!     "flags":[{"flagKey":"new-checkout","enabled":true}]}"#;
//! let (snapshot, _warnings) = CompiledSnapshot::from_json(snapshot_json).unwrap();
//!
//! let request = HttpRequest {
//!     method: "GET",
//!     path: "/api/v1/flags/new-checkout",
//!     query: "userId=u1&environment=production&country=US",
//!     headers: RequestHeaders::from_pairs([("Accept", "application/json")]),
//!     body: b"",
//! };
//! let config = Config { require_client_keys: false };
//! let response = match parse(&request, &config) {
//!     Err(finished) => finished,
//!     Ok(api_request) => {
//!         // Fetch the snapshot of `api_request.environment()` (cache, KV, database...).
//!         let found = (api_request.environment() == "production").then_some(&snapshot);
//!         respond(&api_request, found, 1_790_000_000_000)
//!     }
//! };
//! assert_eq!(response.status, 200);
//! assert_eq!(response.header("content-type"), Some("application/json"));
//! let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
//! assert_eq!(body["enabled"], true);
//! assert_eq!(body["openFeatureReason"], "STATIC");
//! ```
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

extern crate alloc;

mod answer;
mod auth;
mod error;
mod input;
mod query;
mod request;
mod response;
pub mod snapshot;
pub mod stream;

pub use answer::{respond, respond_unknown_environment};
pub use error::{Error, Result};
pub use request::{is_api_path, parse, ApiRequest, Config, HttpRequest, RequestHeaders};
pub use response::ApiResponse;

/// Largest request body the evaluation routes accept (64 KiB); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Which public API a request used; decides the shape of error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// The REST API: `GET /api/v1/flags/{flagKey}` and `POST /api/v1/flags/batch`.
    Rest,
    /// OpenFeature Remote Evaluation Protocol, `/ofrep/v1/evaluate/flags`.
    Ofrep,
}

/// The 413 answer for a body of `length` bytes sent to `path`, for adapters that refuse a body
/// by its `Content-Length` before reading it.
#[must_use]
pub fn payload_too_large(path: &str, length: usize) -> ApiResponse {
    let api = if path.starts_with("/ofrep/") {
        Api::Ofrep
    } else {
        Api::Rest
    };
    Error::PayloadTooLarge { length }.to_response(api, None)
}

#[cfg(test)]
mod tests;
