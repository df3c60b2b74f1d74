//! `GET /sdk/v1/snapshot`: the environment's snapshot for in-process SDKs, to server keys only
//! (`docs/sdk.md`). Parsing, the key checks and the answer are the `evaluation-api` crate's (the
//! edge answers byte for byte the same); this module supplies the live snapshot and its
//! document, and compresses: the gzipped body is made once per version, on the blocking pool.

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use evaluation_api::snapshot::{
    accepts_gzip, parse_snapshot_request, respond_snapshot, respond_snapshot_unknown_environment,
    SnapshotDocument,
};
use evaluation_api::{Config, HttpRequest, RequestHeaders};
use flate2::write::GzEncoder;
use flate2::Compression;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::evaluate::{into_axum_with_body, rate_limited};
use super::openapi::evaluation::EvaluationErrorBody;
use super::AppState;
use crate::live::Document;

pub(super) fn router() -> OpenApiRouter<AppState> {
    // every method reaches the handler: the crate answers the others with its own 405
    OpenApiRouter::new().routes(routes!(snapshot).map(|methods| methods.fallback(snapshot)))
}

#[utoipa::path(
    get,
    path = "/sdk/v1/snapshot",
    tag = "sdk",
    operation_id = "getSnapshot",
    summary = "The environment's snapshot, for in-process SDKs (server keys only)",
    description = "The snapshot document exactly as published to the edge (see \
        docs/flag-model.md), gzipped when `Accept-Encoding` allows. Revalidate with \
        `If-None-Match`: 304 while the ETag is current. `X-Edgeflags-Event-Stream` names the \
        event stream that announces the next versions. A client key gets 403: snapshots hold \
        targeting rules and user ids. See docs/sdk.md.",
    params(
        ("environment" = Option<String>, Query,
            description = "With keys off only (local development): the environment"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag held"),
    ),
    security(("clientKey" = []), ("apiKeyHeader" = []), ()),
    responses(
        (status = 200, description = "The snapshot document", content_type = "application/json",
            body = evaluator_core::model::Snapshot, headers(
            ("ETag" = String, description = "`\"<version>-<16 hex>\"`"),
            ("X-Edgeflags-Snapshot-Version" = u64, description = "The snapshot's version"),
            ("X-Edgeflags-Event-Stream" = String,
                description = "The event stream's path and token, when event streams are on"),
        )),
        (status = 304, description = "Not modified: the ETag named is current"),
        (status = 400, description = "`INVALID_ENVIRONMENT`, `MISSING_ENVIRONMENT` or \
            `INVALID_QUERY`", body = EvaluationErrorBody),
        (status = 401, description = "`MISSING_CLIENT_KEY` or `INVALID_CLIENT_KEY`: no key, or \
            one the environment does not hold", body = EvaluationErrorBody),
        (status = 403, description = "`SERVER_KEY_REQUIRED` (a client key) or \
            `FORBIDDEN_ENVIRONMENT`", body = EvaluationErrorBody),
        (status = 405, description = "`METHOD_NOT_ALLOWED`: only `GET`", body = EvaluationErrorBody,
            headers(("Allow" = String, description = "`GET`"))),
        (status = 429, description = "`RATE_LIMITED`", body = EvaluationErrorBody),
        (status = 503, description = "`SNAPSHOT_UNAVAILABLE`: no snapshot of the environment \
            (with keys off, also one that does not exist)", body = EvaluationErrorBody),
    ),
)]
async fn snapshot(State(state): State<AppState>, req: Request) -> Response {
    let client = super::client_ip(&req);
    let path = req.uri().path().to_owned();
    if let Some(refused) = rate_limited(&state, &client, &path) {
        return refused;
    }
    let headers = RequestHeaders::from_pairs(
        req.headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
    );
    let request = HttpRequest {
        method: req.method().as_str(),
        path: &path,
        query: req.uri().query().unwrap_or(""),
        headers,
        body: &[],
    };
    let config = Config {
        require_client_keys: state.settings.require_client_keys,
    };
    let parsed = match parse_snapshot_request(&request, &config) {
        Ok(parsed) => match state.streams.key() {
            Some(key) => parsed.with_event_streams(key),
            None => parsed,
        },
        Err(finished) => return into_axum_with_body(finished, None),
    };
    let wants_gzip = accepts_gzip(
        req.headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    // Every environment gets a snapshot when it is created: none means it does not exist.
    let Some((compiled, document)) = state.live.get_document(parsed.environment()) else {
        return into_axum_with_body(respond_snapshot_unknown_environment(&parsed), None);
    };
    let view = SnapshotDocument {
        json: document.json.as_bytes(),
        etag: &document.etag,
    };
    let mut answer = respond_snapshot(
        &parsed,
        Some((&compiled, view)),
        chrono::Utc::now().timestamp_millis(),
    );
    if answer.status != 200 || !wants_gzip {
        return into_axum_with_body(answer, None);
    }
    let Some(gzipped) = gzipped(&document).await else {
        return into_axum_with_body(answer, None);
    };
    answer.body = Vec::new();
    let mut response = into_axum_with_body(answer, Some(Body::from(gzipped)));
    response
        .headers_mut()
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    response
}

/// The document's JSON gzipped, compressing it (once) on the blocking pool; `None` if that
/// failed, and the answer goes out uncompressed.
async fn gzipped(document: &Arc<Document>) -> Option<Bytes> {
    if let Some(done) = document.gzip.get() {
        return Some(done.clone());
    }
    let document = Arc::clone(document);
    let made = tokio::task::spawn_blocking(move || {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(document.json.as_bytes()).ok()?;
        let gzip = encoder.finish().ok()?;
        Some(document.gzip.get_or_init(|| Bytes::from(gzip)).clone())
    })
    .await;
    made.ok().flatten()
}
