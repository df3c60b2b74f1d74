//! `GET /sdk/v1/snapshot`: an environment's snapshot for in-process SDKs, to server keys only
//! (`docs/sdk.md`). Parsed and answered here so that the edge and the origin answer byte for
//! byte the same; the adapters supply the snapshot document and compress the body.
//!
//! A snapshot holds targeting rules, user ids and attribute values, so unlike the evaluation
//! routes this one sends no CORS headers (no browser page should read it) and a client key, which
//! is public, gets 403 even when the environment holds it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use evaluator_core::model::KeyKind;
use evaluator_core::CompiledSnapshot;
use sha2::{Digest, Sha256};

use crate::answer::{etag_matches, unknown_key_answer};
use crate::auth::{self, ClientKey};
use crate::error::Error;
use crate::query;
use crate::request::{Config, HttpRequest};
use crate::response::{ApiResponse, SNAPSHOT_VERSION_HEADER};
use crate::stream::{stream_token, StreamKey, STREAM_PATH};
use crate::Api;

/// The route's path.
pub const SNAPSHOT_PATH: &str = "/sdk/v1/snapshot";
/// The answer's header naming the event stream (a path with a token) that announces the
/// environment's next versions.
pub const EVENT_STREAM_HEADER: &str = "X-Edgeflags-Event-Stream";

/// A parsed snapshot request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    environment: String,
    key: Option<ClientKey>,
    if_none_match: Option<String>,
    event_streams: Option<StreamKey>,
}

impl SnapshotRequest {
    /// The environment whose snapshot the answer needs.
    #[must_use]
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// SHA-256 (lowercase hex) of the key presented, if any (to screen it before loading).
    #[must_use]
    pub fn key_sha256(&self) -> Option<&str> {
        self.key.as_ref().map(ClientKey::sha256_hex)
    }

    /// Name the environment's event stream in the answer, with tokens under `key`.
    #[must_use]
    pub fn with_event_streams(mut self, key: StreamKey) -> Self {
        self.event_streams = Some(key);
        self
    }
}

/// The snapshot document as the adapter holds it: its exact JSON and [`snapshot_etag`] of it
/// (computed once per snapshot by the adapter, not per request).
#[derive(Debug, Clone, Copy)]
pub struct SnapshotDocument<'a> {
    /// The snapshot JSON, byte for byte as published.
    pub json: &'a [u8],
    /// Its ETag.
    pub etag: &'a str,
}

/// The ETag of snapshot `json` of `version`: `"<version>-<first 16 hex of its SHA-256>"`. The
/// version alone would repeat after a database is restored or rebuilt; the hash cannot.
#[must_use]
pub fn snapshot_etag(version: u64, json: &[u8]) -> String {
    let digest = auth::hex(&Sha256::digest(json));
    format!("\"{version}-{}\"", &digest[..16])
}

/// Parses a request for [`SNAPSHOT_PATH`]. `Err` is the finished answer: 405 for a method other
/// than `GET`, 401 for a missing or malformed key, 400 for a bad `environment` parameter, 403
/// when it names another environment than the key's.
///
/// # Errors
/// The answer to send as is.
pub fn parse_snapshot_request(
    request: &HttpRequest<'_>,
    config: &Config,
) -> Result<SnapshotRequest, ApiResponse> {
    parse(request, config).map_err(|error| error.to_response(Api::Rest, None))
}

fn parse(request: &HttpRequest<'_>, config: &Config) -> Result<SnapshotRequest, Error> {
    if request.method != "GET" {
        return Err(Error::MethodNotAllowed {
            method: String::from(request.method),
            allow: "GET",
        });
    }
    let key = auth::presented_key(&request.headers)?;
    if key.is_none() && config.require_client_keys {
        return Err(Error::MissingClientKey);
    }
    let mut named = None;
    for (name, value) in query::parse_query(request.query)? {
        if name == "environment" && named.is_none() {
            named = Some(value);
        }
    }
    if let Some(environment) = &named {
        if evaluator_core::validate_flag_key(environment).is_err() {
            return Err(Error::InvalidEnvironment {
                environment: environment.clone(),
            });
        }
    }
    let environment = match (&key, named) {
        (Some(key), Some(requested)) if requested != key.environment() => {
            return Err(Error::ForbiddenEnvironment {
                key_environment: String::from(key.environment()),
                requested,
            })
        }
        (Some(key), _) => String::from(key.environment()),
        (None, Some(requested)) => requested,
        (None, None) => return Err(Error::MissingEnvironment),
    };
    Ok(SnapshotRequest {
        environment,
        key,
        if_none_match: request.headers.if_none_match.map(String::from),
        event_streams: None,
    })
}

/// Answers `request` from the environment's `snapshot` (compiled, for its keys: a subset without
/// flags will do) and its `document`; `None` when none is available (503, retry later).
#[must_use]
pub fn respond_snapshot(
    request: &SnapshotRequest,
    snapshot: Option<(&CompiledSnapshot, SnapshotDocument<'_>)>,
    now_ms: i64,
) -> ApiResponse {
    let Some((snapshot, document)) =
        snapshot.filter(|(s, _)| s.environment() == request.environment)
    else {
        let error = Error::SnapshotUnavailable {
            environment: request.environment.clone(),
        };
        let mut answer = error.to_response(Api::Rest, None);
        answer.headers.push(("Retry-After", String::from("5")));
        return answer;
    };
    if let Some(key) = &request.key {
        if !key.held_by(snapshot) {
            return respond_snapshot_unknown_environment(request);
        }
        if key.kind() != KeyKind::Server {
            return Error::ServerKeyRequired.to_response(Api::Rest, None);
        }
    }
    let mut headers: Vec<(&'static str, String)> = Vec::with_capacity(6);
    // Revalidated on every use (the ETag makes that a 304), and never kept by a shared cache.
    headers.push(("Cache-Control", String::from("private, no-cache")));
    headers.push(("ETag", String::from(document.etag)));
    headers.push((SNAPSHOT_VERSION_HEADER, format!("{}", snapshot.version())));
    headers.push(("Vary", String::from("Accept-Encoding")));
    if let Some(stream_key) = &request.event_streams {
        let token = stream_token(
            stream_key,
            &request.environment,
            request.key_sha256(),
            now_ms,
        );
        headers.push((EVENT_STREAM_HEADER, format!("{STREAM_PATH}?token={token}")));
    }
    let not_modified = request
        .if_none_match
        .as_deref()
        .is_some_and(|header| etag_matches(header, document.etag));
    if not_modified {
        return ApiResponse {
            status: 304,
            headers,
            body: Vec::new(),
        };
    }
    headers.push(("Content-Type", String::from("application/json")));
    ApiResponse {
        status: 200,
        headers,
        body: document.json.to_vec(),
    }
}

/// Answers `request`, which names an environment the adapter knows does not exist: with a key,
/// exactly the answer to a key the environment does not hold (so environments cannot be probed);
/// without one (keys off), no snapshot.
#[must_use]
pub fn respond_snapshot_unknown_environment(request: &SnapshotRequest) -> ApiResponse {
    if request.key.is_some() {
        unknown_key_answer(Api::Rest, None)
    } else {
        respond_snapshot(request, None, 0)
    }
}

/// Whether an `Accept-Encoding` header lists `gzip` (or `*`) without `q=0`: the adapters then
/// send the document gzipped.
#[must_use]
pub fn accepts_gzip(value: Option<&str>) -> bool {
    value.is_some_and(|value| {
        value.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
    })
}

#[cfg(test)]
mod tests;
