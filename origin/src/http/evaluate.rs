//! The public evaluation API (`/api/v1/flags...`, `/ofrep/v1/evaluate/flags...`) served by the
//! origin. Routing, parsing, credentials, evaluation and rendering all come from the
//! `evaluation-api` crate, the same code the edge runs, so both answer identically; this module
//! only adapts axum's request and response types and supplies the snapshot and the clock.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use evaluation_api::{
    parse, payload_too_large, respond, ApiResponse, Config, HttpRequest, RequestHeaders,
};

use super::AppState;

pub(super) fn router() -> Router<AppState> {
    // one catch-all per API: the evaluation-api crate does the routing, so unknown paths and
    // methods get its 404/405 bodies, exactly as at the edge
    Router::new()
        .route("/api/v1/{*path}", any(evaluate))
        .route("/ofrep/v1/{*path}", any(evaluate))
}

async fn evaluate(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = declared.filter(|l| *l > evaluation_api::MAX_BODY_BYTES) {
        return into_axum(payload_too_large(path, length));
    }
    // one byte over the limit is enough for `parse` to see the body is too large
    let bytes: Bytes = match axum::body::to_bytes(body, evaluation_api::MAX_BODY_BYTES + 1).await {
        Ok(bytes) => bytes,
        Err(_) => return into_axum(payload_too_large(path, evaluation_api::MAX_BODY_BYTES + 1)),
    };
    let headers = RequestHeaders::from_pairs(
        parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
    );
    let request = HttpRequest {
        method: parts.method.as_str(),
        path,
        query: parts.uri.query().unwrap_or(""),
        headers,
        body: &bytes,
    };
    let config = Config {
        require_client_keys: state.settings.require_client_keys,
    };
    let response = match parse(&request, &config) {
        Err(finished) => finished,
        Ok(api_request) => {
            let snapshot = state.live.get(api_request.environment());
            respond(
                &api_request,
                snapshot.as_deref(),
                chrono::Utc::now().timestamp_millis(),
            )
        }
    };
    into_axum(response)
}

fn into_axum(response: ApiResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = (status, Body::from(response.body)).into_response();
    let headers = out.headers_mut();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    out
}
