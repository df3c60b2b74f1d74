//! Request extractors whose failures are the origin's own JSON errors.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::document;
use crate::domain::Precondition;
use crate::error::{Error, Result};

/// A JSON object body. Not JSON → 400 `MALFORMED_JSON`; not an object → 422; over the body
/// limit → 413 `PAYLOAD_TOO_LARGE`.
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(usize::MAX, |l| l.0);
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(&e, limit))?;
        document::parse_object(&bytes).map(JsonObject)
    }
}

/// The configured body limit, put in request extensions so rejections can name it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn body_error(e: &BytesRejection, limit: usize) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge { limit }
    } else {
        Error::MalformedJson(e.body_text())
    }
}

/// Query parameters; a bad one → 400 `INVALID_PARAMETER`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| Error::InvalidParameter {
                name: "query",
                message: e.body_text(),
            })
    }
}

/// Path parameters; undecodable → 400 `INVALID_PARAMETER`.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| Error::InvalidParameter {
                name: "path",
                message: e.body_text(),
            })
    }
}

/// Optimistic concurrency precondition from `If-Match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: last write wins.
    Absent,
    /// `*`: the entity must exist.
    Any,
    /// `3`, `"3"` or `W/"3"`: the entity must be at this version.
    Version(u64),
}

impl IfMatch {
    /// Parses the header; a value that names no version → 400.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self> {
        let Some(value) = headers.get(header::IF_MATCH) else {
            return Ok(Self::Absent);
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(Self::Any);
        }
        let unquoted = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        unquoted
            .parse()
            .map(Self::Version)
            .map_err(|_| Error::InvalidParameter {
                name: "If-Match",
                message: format!("expected a version number such as \"3\", got {text:?}"),
            })
    }

    /// Checks the precondition against the current version (`None` = the entity is absent,
    /// which the caller has answered with 404 where that applies).
    pub fn check(self, current: u64) -> Result<()> {
        Precondition::from(self).check(current)
    }
}

impl From<IfMatch> for Precondition {
    fn from(if_match: IfMatch) -> Self {
        match if_match {
            IfMatch::Absent => Self::Absent,
            IfMatch::Any => Self::Any,
            IfMatch::Version(v) => Self::Version(v),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        Self::from_headers(&parts.headers)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn parse(value: &str) -> Result<IfMatch> {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_MATCH, HeaderValue::from_str(value).unwrap());
        IfMatch::from_headers(&headers)
    }

    #[test]
    fn if_match_accepts_bare_quoted_and_weak_versions() {
        assert_eq!(parse("3").unwrap(), IfMatch::Version(3));
        assert_eq!(parse("\"3\"").unwrap(), IfMatch::Version(3));
        assert_eq!(parse("W/\"12\"").unwrap(), IfMatch::Version(12));
        assert_eq!(parse("*").unwrap(), IfMatch::Any);
        assert_eq!(
            IfMatch::from_headers(&HeaderMap::new()).unwrap(),
            IfMatch::Absent
        );
        assert!(matches!(
            parse("abc"),
            Err(Error::InvalidParameter {
                name: "If-Match",
                ..
            })
        ));
    }

    #[test]
    fn stale_version_is_a_conflict_naming_the_current_one() {
        assert!(IfMatch::Version(3).check(3).is_ok());
        assert!(matches!(
            IfMatch::Version(2).check(3),
            Err(Error::VersionConflict {
                expected: 2,
                current: 3
            })
        ));
        assert!(IfMatch::Absent.check(9).is_ok());
    }
}
