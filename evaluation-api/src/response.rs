//! The framework-independent HTTP answer, and the headers every answer carries.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;

/// An HTTP response to copy into the adapter's framework as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// Header names and values, in order; names are canonical-case ASCII.
    pub headers: Vec<(&'static str, String)>,
    /// The body (JSON, or empty for 204/304 and OFREP's 401/403).
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// A JSON answer with the headers every evaluation answer carries (cache, CORS, content
    /// type), for an adapter's own routes that should look like the API's.
    #[must_use]
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        ResponseBuilder::new(status).json_bytes(body)
    }

    /// The value of header `name` (ASCII case-insensitive), if set.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Headers a browser may send cross-origin to the evaluation API.
pub(crate) const CORS_ALLOW_HEADERS: &str =
    "Authorization, Content-Type, If-None-Match, X-Client-Key, X-API-Key";
/// Headers scripts may read from a cross-origin answer.
const CORS_EXPOSE_HEADERS: &str = "ETag, X-Edgeflags-Snapshot-Version";
/// Header naming the snapshot version an answer was evaluated from.
pub(crate) const SNAPSHOT_VERSION_HEADER: &str = "X-Edgeflags-Snapshot-Version";

/// Builds an [`ApiResponse`] with the headers common to every evaluation answer.
pub(crate) struct ResponseBuilder {
    status: u16,
    headers: Vec<(&'static str, String)>,
}

impl ResponseBuilder {
    pub(crate) fn new(status: u16) -> Self {
        let mut headers = Vec::with_capacity(6);
        // Answers depend on the user's context and credentials: no shared cache (CDN) may keep
        // them, and browsers must revalidate (the bulk route's ETag makes that cheap).
        headers.push(("Cache-Control", String::from("private, no-store")));
        // Client keys are public by design (they ship in browser bundles), and the API reads no
        // cookies, so any origin may call it.
        headers.push(("Access-Control-Allow-Origin", String::from("*")));
        headers.push((
            "Access-Control-Expose-Headers",
            String::from(CORS_EXPOSE_HEADERS),
        ));
        Self { status, headers }
    }

    pub(crate) fn header(&mut self, name: &'static str, value: impl Into<String>) {
        self.headers.push((name, value.into()));
    }

    pub(crate) fn empty(self) -> ApiResponse {
        ApiResponse {
            status: self.status,
            headers: self.headers,
            body: Vec::new(),
        }
    }

    pub(crate) fn json<T: Serialize + ?Sized>(self, value: &T) -> ApiResponse {
        match serde_json::to_vec(value) {
            Ok(body) => self.json_bytes(body),
            // Only a map with non-string keys or a failing Serialize impl can fail; ours have
            // neither, but an answer must never panic: degrade to a generic 500.
            Err(_) => internal_error(),
        }
    }

    pub(crate) fn json_bytes(mut self, body: Vec<u8>) -> ApiResponse {
        self.headers
            .push(("Content-Type", String::from("application/json")));
        ApiResponse {
            status: self.status,
            headers: self.headers,
            body,
        }
    }
}

pub(crate) fn internal_error() -> ApiResponse {
    let mut builder = ResponseBuilder::new(500);
    builder
        .headers
        .push(("Content-Type", String::from("application/json")));
    ApiResponse {
        status: 500,
        headers: builder.headers,
        body: Vec::from(
            &br#"{"error":{"code":"INTERNAL","message":"the answer could not be encoded"},"errorCode":"GENERAL","errorDetails":"the answer could not be encoded"}"#[..],
        ),
    }
}
