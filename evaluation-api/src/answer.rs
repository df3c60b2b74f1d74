//! Evaluating a parsed request against a snapshot and rendering the answer: the checks and
//! conditional requests (ETag) both APIs share here, each API's body shapes in `rest` and
//! `ofrep`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use evaluator_core::{CompiledSnapshot, ErrorCode, EvaluationContext};
use serde_json::Value;
use sha2::{Digest, Sha256};

mod ofrep;
mod rest;

use ofrep::{BulkMetadata, OfrepBulk, OfrepItem};
use rest::{FallbackBatch, FallbackError, FallbackResult, FlagResults};

use crate::auth;
use crate::error::Error;
use crate::request::{ApiRequest, Route};
use crate::response::{internal_error, ApiResponse, ResponseBuilder, SNAPSHOT_VERSION_HEADER};
use crate::stream::EventStream;
use crate::Api;

/// Answers `request` from `snapshot` (the environment's, as [`ApiRequest::environment`] named
/// it; `None` when none is available) at `now_ms` (Unix milliseconds).
///
/// Checks the client key against the snapshot, evaluates, and renders the route's JSON. Without a
/// snapshot it serves the fallback: REST API 503 with `reason: "error"` results, OFREP 500 `GENERAL`.
/// A snapshot of another environment than the request's is treated as no snapshot.
#[must_use]
pub fn respond(
    request: &ApiRequest,
    snapshot: Option<&CompiledSnapshot>,
    now_ms: i64,
) -> ApiResponse {
    let Some(snapshot) = snapshot.filter(|s| s.environment() == request.environment) else {
        return unavailable(request);
    };
    if let Some(key) = &request.client_key {
        if !key.held_by(snapshot) {
            return unknown_key(request);
        }
    }
    let mut response = match &request.route {
        Route::RestFlag { flag_key } => rest_flag(snapshot, flag_key, &request.context, now_ms),
        Route::RestBatch { flag_keys } => {
            let evaluations = match flag_keys {
                Some(keys) => {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    snapshot.evaluate_many(&keys, &request.context, now_ms)
                }
                None => snapshot.evaluate_all(&request.context, now_ms),
            };
            match serde_json::to_vec(&FlagResults {
                flags: &evaluations,
            }) {
                Ok(body) => conditional(request, snapshot, body),
                Err(_) => internal_error(),
            }
        }
        Route::OfrepFlag { key } => ofrep_flag(snapshot, key, &request.context, now_ms),
        Route::OfrepBulk => {
            let evaluations = snapshot.evaluate_all(&request.context, now_ms);
            let flags: Vec<OfrepItem<'_>> =
                evaluations.iter().map(OfrepItem::from_evaluation).collect();
            let event_streams = request.event_streams.map(|key| {
                [EventStream::new(
                    &key,
                    &request.environment,
                    request.client_key_sha256(),
                    now_ms,
                )]
            });
            let body = OfrepBulk {
                flags,
                event_streams,
                metadata: BulkMetadata {
                    environment: snapshot.environment(),
                    snapshot_version: snapshot.version(),
                },
            };
            match serde_json::to_vec(&body) {
                Ok(body) => conditional(request, snapshot, body),
                Err(_) => internal_error(),
            }
        }
    };
    response
        .headers
        .push((SNAPSHOT_VERSION_HEADER, format!("{}", snapshot.version())));
    response
}

/// Answers `request`, which names an environment the adapter knows does not exist (the origin's
/// database or the edge's environment index has no snapshot of it).
///
/// With a client key this is exactly [`respond`]'s answer to an unknown or revoked key of an
/// environment that does exist, so a caller cannot tell a missing environment from a wrong key
/// and probe which environments exist. Without one (client keys off, local development) it is
/// the no-snapshot fallback.
#[must_use]
pub fn respond_unknown_environment(request: &ApiRequest) -> ApiResponse {
    if request.client_key.is_some() {
        unknown_key(request)
    } else {
        unavailable(request)
    }
}

/// The answer to a well-formed client key that the environment does not hold.
fn unknown_key(request: &ApiRequest) -> ApiResponse {
    let flag_key = match &request.route {
        Route::OfrepFlag { key } => Some(key.as_str()),
        _ => None,
    };
    unknown_key_answer(request.api(), flag_key)
}

/// [`unknown_key`] for `api`, echoing `flag_key` (OFREP's single-flag route).
pub(crate) fn unknown_key_answer(api: Api, flag_key: Option<&str>) -> ApiResponse {
    let error = Error::InvalidClientKey {
        reason: "unknown or revoked key",
    };
    error.to_response(api, flag_key)
}

fn rest_flag(
    snapshot: &CompiledSnapshot,
    key: &str,
    context: &EvaluationContext,
    now_ms: i64,
) -> ApiResponse {
    if !snapshot.contains_flag(key) {
        let error = Error::FlagNotFound {
            key: String::from(key),
            environment: String::from(snapshot.environment()),
        };
        return error.to_response(Api::Rest, None);
    }
    ResponseBuilder::new(200).json(&snapshot.evaluate(key, context, now_ms))
}

fn ofrep_flag(
    snapshot: &CompiledSnapshot,
    key: &str,
    context: &EvaluationContext,
    now_ms: i64,
) -> ApiResponse {
    let evaluation = snapshot.evaluate(key, context, now_ms);
    let item = OfrepItem::from_evaluation(&evaluation);
    let status = match &item {
        OfrepItem::Success(_) => 200,
        OfrepItem::Failure(failure) if failure.error_code == ErrorCode::FlagNotFound.as_str() => {
            404
        }
        OfrepItem::Failure(failure) if failure.error_code == ErrorCode::General.as_str() => 500,
        OfrepItem::Failure(_) => 400,
    };
    ResponseBuilder::new(status).json(&item)
}

/// Bulk answers carry an ETag and honour `If-None-Match` (OFREP's polling contract).
///
/// The tag hashes the environment, the snapshot version, the canonical context and the body. The
/// body alone would already change with every answer change (including an override expiring with
/// time), the context and version make a new context or snapshot always a new tag.
fn conditional(request: &ApiRequest, snapshot: &CompiledSnapshot, body: Vec<u8>) -> ApiResponse {
    let etag = etag(snapshot, &request.context, &body);
    let not_modified = request
        .if_none_match
        .as_deref()
        .is_some_and(|header| etag_matches(header, &etag));
    let mut builder = ResponseBuilder::new(if not_modified { 304 } else { 200 });
    builder.header("ETag", etag);
    if not_modified {
        builder.empty()
    } else {
        builder.json_bytes(body)
    }
}

fn etag(snapshot: &CompiledSnapshot, context: &EvaluationContext, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"edgeflags-etag-v1\0");
    hasher.update(snapshot.environment().as_bytes());
    hasher.update(b"\0");
    hasher.update(snapshot.version().to_le_bytes());
    match &context.targeting_key {
        Some(key) => {
            hasher.update(b"\x01");
            hash_json_string(&mut hasher, key);
        }
        None => hasher.update(b"\x00"),
    }
    hash_canonical(&mut hasher, &Value::Object(context.attributes.clone()));
    hasher.update(body);
    let digest = hasher.finalize();
    format!("\"{}\"", auth::hex(digest.get(..16).unwrap_or(&digest)))
}

/// Feeds `value` as canonical JSON (object members sorted by key) so that equal contexts hash
/// equally whatever the member order the client sent.
fn hash_canonical(hasher: &mut Sha256, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            hasher.update(b"{");
            for (name, member) in members {
                hash_json_string(hasher, name);
                hasher.update(b":");
                hash_canonical(hasher, member);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                hash_canonical(hasher, item);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        Value::String(s) => hash_json_string(hasher, s),
        Value::Number(n) => hasher.update(format!("{n}").as_bytes()),
        Value::Bool(true) => hasher.update(b"true"),
        Value::Bool(false) => hasher.update(b"false"),
        Value::Null => hasher.update(b"null"),
    }
}

fn hash_json_string(hasher: &mut Sha256, s: &str) {
    // Length-prefixed: unambiguous without escaping.
    hasher.update(b"\"");
    hasher.update((s.len() as u64).to_le_bytes());
    hasher.update(s.as_bytes());
}

/// RFC 9110 `If-None-Match`: `*`, or a list of (possibly weak) tags compared weakly.
pub(crate) fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// The fallback when no snapshot is available: never a bare 500, always the route's shape.
fn unavailable(request: &ApiRequest) -> ApiResponse {
    let error = Error::SnapshotUnavailable {
        environment: request.environment.clone(),
    };
    let message = format!("{error}");
    let mut builder = ResponseBuilder::new(error.status_code(request.api()));
    match &request.route {
        Route::RestFlag { flag_key } => {
            builder.header("Retry-After", "5");
            builder.json(&FallbackResult::new(flag_key, &message))
        }
        Route::RestBatch { flag_keys } => {
            builder.header("Retry-After", "5");
            let flags: Vec<FallbackResult<'_>> = flag_keys
                .iter()
                .flatten()
                .map(|key| FallbackResult::new(key, &message))
                .collect();
            builder.json(&FallbackBatch {
                flags,
                error: FallbackError {
                    code: error.code(),
                    message: &message,
                },
            })
        }
        Route::OfrepFlag { key } => error.to_response(Api::Ofrep, Some(key)),
        Route::OfrepBulk => error.to_response(Api::Ofrep, None),
    }
}
