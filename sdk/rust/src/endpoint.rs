//! The two requests of the SDK contract (docs/sdk.md): `GET /sdk/v1/snapshot` with the server
//! key and `If-None-Match`, and the event stream it names in `X-Edgeflags-Event-Stream`.

use std::time::Duration;

use evaluator_core::validate::limits::SNAPSHOT_BYTES;
use evaluator_core::CompiledSnapshot;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG};
use reqwest::{Response, StatusCode};
use url::Url;

use crate::error::{redact, Error, Result};
use crate::snapshot::Snapshot;

/// The header naming the event stream of the snapshot's environment.
const EVENT_STREAM_HEADER: &str = "x-edgeflags-event-stream";
/// An error body larger than this is not read for its code.
const ERROR_BODY_BYTES: usize = 16 * 1024;

/// Where and as whom the client asks.
pub(crate) struct Endpoint {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Url,
    pub(crate) snapshot_url: Url,
    /// `Bearer efs.…`; `None` against a server with keys switched off.
    pub(crate) authorization: Option<HeaderValue>,
    /// The key's environment (or the configured one): any other snapshot is refused.
    pub(crate) environment: Option<String>,
    pub(crate) request_timeout: Duration,
}

/// A snapshot request's answer.
pub(crate) struct Fetch {
    /// `None`: `304 Not Modified`.
    pub(crate) snapshot: Option<Snapshot>,
    /// The event stream, resolved against the base URL.
    pub(crate) stream: Option<Url>,
}

impl Endpoint {
    /// `GET /sdk/v1/snapshot`, conditional on `etag`. The body is compiled off the async
    /// threads (a large snapshot takes milliseconds).
    pub(crate) async fn fetch(&self, etag: Option<&str>) -> Result<Fetch> {
        let url = &self.snapshot_url;
        let mut request = self
            .http
            .get(url.clone())
            .timeout(self.request_timeout)
            .header(ACCEPT, "application/json");
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        if let Some(etag) = etag.filter(|e| !e.is_empty()) {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request.send().await.map_err(|e| http_error(url, e))?;
        let status = response.status();
        let stream = self.stream_location(response.headers());
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetch {
                snapshot: None,
                stream,
            });
        }
        if status != StatusCode::OK {
            return Err(refusal(url, response).await);
        }
        let etag = header(response.headers(), ETAG.as_str())
            .unwrap_or_default()
            .to_owned();
        let body =
            read_limited(url, response, SNAPSHOT_BYTES)
                .await?
                .ok_or(Error::SnapshotTooLarge {
                    limit: SNAPSHOT_BYTES,
                })?;
        let (compiled, warnings) =
            tokio::task::spawn_blocking(move || CompiledSnapshot::from_json(&body))
                .await
                .map_err(|_| Error::Protocol {
                    url: redact(url),
                    problem: "compiling the snapshot failed",
                })??;
        if let Some(expected) = &self.environment {
            if compiled.environment() != expected {
                return Err(Error::WrongEnvironment {
                    expected: expected.clone(),
                    got: compiled.environment().to_owned(),
                });
            }
        }
        for warning in &warnings {
            tracing::warn!(
                environment = compiled.environment(),
                version = compiled.version(),
                %warning,
                "edgeflags: a flag of the snapshot is invalid and evaluates to ERROR"
            );
        }
        Ok(Fetch {
            snapshot: Some(Snapshot::new(compiled, etag, warnings.len())),
            stream,
        })
    }

    /// Opens the event stream. `last_version`, sent as `Last-Event-ID`, makes the server send
    /// at once a change the client has not seen (event ids are snapshot versions).
    pub(crate) async fn open_stream(
        &self,
        url: &Url,
        last_version: Option<u64>,
    ) -> Result<Response> {
        let mut request = self
            .http
            .get(url.clone())
            .header(ACCEPT, "text/event-stream")
            .header(reqwest::header::CACHE_CONTROL, "no-cache");
        if let Some(version) = last_version {
            request = request.header("last-event-id", version.to_string());
        }
        // Only the head is bounded in time: the body is open-ended.
        let response = tokio::time::timeout(self.request_timeout, request.send())
            .await
            .map_err(|_| Error::Protocol {
                url: redact(url),
                problem: "the event stream did not answer in time",
            })?
            .map_err(|e| http_error(url, e))?;
        if response.status() != StatusCode::OK {
            return Err(refusal(url, response).await);
        }
        let is_event_stream = header(response.headers(), CONTENT_TYPE.as_str())
            .is_some_and(|t| t.trim_start().starts_with("text/event-stream"));
        if !is_event_stream {
            return Err(Error::Protocol {
                url: redact(url),
                problem: "the event stream is not text/event-stream",
            });
        }
        Ok(response)
    }

    fn stream_location(&self, headers: &HeaderMap) -> Option<Url> {
        let location = header(headers, EVENT_STREAM_HEADER)?.trim();
        if location.is_empty() {
            return None;
        }
        match self.base.join(location) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                tracing::warn!("edgeflags: ignoring an unusable event stream location");
                None
            }
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn http_error(url: &Url, source: reqwest::Error) -> Error {
    Error::Http {
        url: redact(url),
        source: source.without_url(),
    }
}

/// An error answer: its status, the REST error body's `error.code` and `Retry-After`.
async fn refusal(url: &Url, response: Response) -> Error {
    let status = response.status().as_u16();
    let retry_after = header(response.headers(), "retry-after")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = read_limited(url, response, ERROR_BODY_BYTES)
        .await
        .ok()
        .flatten();
    let code = body
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    Error::Status {
        url: redact(url),
        status,
        code,
        retry_after,
    }
}

/// The whole body, or `None` when it exceeds `limit` bytes (decompressed).
async fn read_limited(url: &Url, mut response: Response, limit: usize) -> Result<Option<Vec<u8>>> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| http_error(url, e))? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}
