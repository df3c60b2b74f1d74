//! Conversions between the framework-independent answers and `worker::Response`.

use evaluation_api::ApiResponse;
use futures_util::StreamExt;
use serde::Serialize;
use worker::{Headers, Request, Response};

use crate::error::{Error, Result};

/// Path (still percent-encoded) and raw query of an absolute request URL.
///
/// Splitting by hand instead of `Request::url()` keeps the `url` crate (and its IDNA tables,
/// about 100 KB of wasm) out of the worker: the runtime already hands us a normalised URL.
pub(crate) fn split_url(url: &str) -> (&str, &str) {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_and_query = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    match path_and_query.split_once('?') {
        Some((path, query)) => (path, query),
        None => (path_and_query, ""),
    }
}

/// The request's body if it is at most `limit` bytes, `Ok(None)` if it is longer.
///
/// A body whose `Content-Length` the caller has checked is read whole (the runtime holds it to
/// that length). One without (`Transfer-Encoding: chunked`) is read chunk by chunk and left
/// unread from the chunk that crosses the limit: a client cannot make the isolate buffer more
/// than the limit by not declaring a length.
pub(crate) async fn body_within(
    req: &mut Request,
    declared_length: Option<usize>,
    limit: usize,
) -> Result<Option<Vec<u8>>> {
    if declared_length.is_some() {
        let body = req.bytes().await?;
        return Ok((body.len() <= limit).then_some(body));
    }
    if req.inner().body().is_none() {
        return Ok(Some(Vec::new()));
    }
    let mut stream = req.stream()?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Copies an `evaluation_api` answer into a worker response.
pub(crate) fn api_response(answer: ApiResponse) -> Result<Response> {
    let headers = Headers::new();
    for (name, value) in &answer.headers {
        headers.set(name, value)?;
    }
    let builder = Response::builder()
        .with_status(answer.status)
        .with_headers(headers);
    // 204/304 must not carry a body, not even an empty one.
    Ok(if answer.body.is_empty() {
        builder.empty()
    } else {
        builder.fixed(answer.body)
    })
}

/// A JSON answer of the worker's own routes.
pub(crate) fn json<T: Serialize>(status: u16, value: &T) -> Result<Response> {
    let body =
        serde_json::to_vec(value).map_err(|e| Error::Runtime(worker::Error::SerdeJsonError(e)))?;
    api_response(ApiResponse::json(status, body))
}

/// The answer to a failed request to the worker's own routes.
pub(crate) fn error_response(error: &Error) -> worker::Result<Response> {
    let mut answer = match serde_json::to_vec(&error.body()) {
        Ok(body) => ApiResponse::json(error.status_code(), body),
        Err(_) => ApiResponse::json(
            500,
            br#"{"code":"INTERNAL","message":"internal error"}"#.to_vec(),
        ),
    };
    if let Error::MethodNotAllowed { allow } = error {
        answer.headers.push(("Allow", (*allow).to_owned()));
    }
    api_response(answer).map_err(|e| match e {
        Error::Runtime(inner) => inner,
        other => worker::Error::RustError(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn splits_path_and_query_of_absolute_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8787/api/v1/flags/a?userId=u1&x=%20"),
            ("/api/v1/flags/a", "userId=u1&x=%20")
        );
        assert_eq!(
            split_url("https://edge.example.com/healthz"),
            ("/healthz", "")
        );
        assert_eq!(split_url("https://edge.example.com"), ("/", ""));
        assert_eq!(
            split_url("https://edge.example.com/a?b=c#frag"),
            ("/a", "b=c")
        );
        assert_eq!(split_url("https://edge.example.com/a#frag?x"), ("/a", ""));
    }
}
