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

/// Longest query or path parameter accepted, in bytes once percent-decoded. Nothing the API
/// stores or looks up is longer (keys: 255 characters; override user ids: 2,048 bytes), and a
/// lookup by a longer value could only find nothing.
pub const MAX_PARAMETER_BYTES: usize = 4096;

/// The parameter names the API documents, so errors can name the one at fault; any other is
/// reported as `query` or `path`, as a parameter that fails to deserialise is.
const PARAMETER_NAMES: &[&str] = &[
    "environment",
    "limit",
    "cursor",
    "flagKey",
    "segmentKey",
    "entityType",
    "entityKey",
    "actor",
    "from",
    "to",
    "flag_key",
    "segment_key",
    "user_id",
    "name",
    "tag",
    "q",
    "enabled",
    "hasRules",
    "changedSince",
];

/// The input boundary for request parameters: every query and path parameter must be text
/// PostgreSQL can store and at most [`MAX_PARAMETER_BYTES`] long, or the request is a 400
/// naming it before any handler (and so any query) sees it.
/// Request parameters as (name, value) pairs, decoded.
type Pairs = Vec<(String, String)>;

fn check_parameters(pairs: &[(String, String)], unnamed: &'static str) -> Result<()> {
    for (name, value) in pairs {
        let problem = if value.len() > MAX_PARAMETER_BYTES {
            Some(format!(
                "is {} bytes long; the limit is {MAX_PARAMETER_BYTES} bytes",
                value.len()
            ))
        } else {
            document::unstorable_text(value).map(str::to_owned)
        };
        if let Some(problem) = problem {
            let known = PARAMETER_NAMES.iter().find(|known| *known == name);
            return Err(Error::InvalidParameter {
                name: known.copied().unwrap_or(unnamed),
                message: format!("{name} {problem}"),
            });
        }
    }
    Ok(())
}

/// Query parameters; a bad one → 400 `INVALID_PARAMETER`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let pairs = axum::extract::Query::<Pairs>::try_from_uri(&parts.uri).map_err(query_error)?;
        check_parameters(&pairs.0, "query")?;
        let query = axum::extract::Query::try_from_uri(&parts.uri).map_err(query_error)?;
        Ok(Query(query.0))
    }
}

fn query_error(e: QueryRejection) -> Error {
    Error::InvalidParameter {
        name: "query",
        message: e.body_text(),
    }
}

/// Path parameters; undecodable → 400 `INVALID_PARAMETER`.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let pairs = axum::extract::Path::<Pairs>::from_request_parts(parts, state).await;
        check_parameters(&pairs.map_err(path_error)?.0, "path")?;
        let path = axum::extract::Path::from_request_parts(parts, state).await;
        Ok(Path(path.map_err(path_error)?.0))
    }
}

fn path_error(e: PathRejection) -> Error {
    Error::InvalidParameter {
        name: "path",
        message: e.body_text(),
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

/// Header carrying the author's comment on a change.
pub const COMMENT_HEADER: &str = "x-edgeflags-comment";

/// Longest change comment, in characters once decoded.
pub const MAX_COMMENT_CHARS: usize = 500;

/// The change comment of `X-Edgeflags-Comment`: the header's bytes percent-decoded (so any
/// UTF-8 text fits in a header; a `%` not followed by two hex digits stays as it is, so plain
/// ASCII text is taken as it is), then UTF-8, at most [`MAX_COMMENT_CHARS`] characters, no control
/// characters (they would reach audit views and logs as they are). Absent or blank → `None`; a
/// bad one → 400 `INVALID_PARAMETER` naming the header.
pub fn change_comment(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get(COMMENT_HEADER) else {
        return Ok(None);
    };
    let bad = |message: String| Error::InvalidParameter {
        name: "X-Edgeflags-Comment",
        message,
    };
    let text = String::from_utf8(percent_decode(value.as_bytes()))
        .map_err(|_| bad("is not UTF-8 once percent-decoded".to_owned()))?;
    let chars = text.chars().count();
    if chars > MAX_COMMENT_CHARS {
        return Err(bad(format!(
            "is {chars} characters long; the limit is {MAX_COMMENT_CHARS}"
        )));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(bad(format!(
            "contains the control character U+{:04X}",
            u32::from(c)
        )));
    }
    let trimmed = text.trim();
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// `%XX` sequences decoded; every other byte, a lone `%` included, kept.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)),
            _ => None,
        };
        match escaped {
            // two hex digits make at most 255
            Some((h, l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
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

    fn comment(value: &[u8]) -> Result<Option<String>> {
        let mut headers = HeaderMap::new();
        headers.insert(COMMENT_HEADER, HeaderValue::from_bytes(value).unwrap());
        change_comment(&headers)
    }

    #[test]
    fn a_comment_is_taken_plain_or_percent_decoded() {
        assert_eq!(comment(b"fix typo").unwrap().as_deref(), Some("fix typo"));
        assert_eq!(
            comment(b"caf%C3%A9 100%").unwrap().as_deref(),
            Some("caf\u{e9} 100%")
        );
        assert_eq!(comment(b"  ").unwrap(), None);
        assert_eq!(change_comment(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn a_comment_that_is_too_long_not_utf8_or_has_control_characters_is_refused() {
        let long = "é".repeat(MAX_COMMENT_CHARS + 1).replace('é', "%C3%A9");
        assert!(comment(
            "é".repeat(MAX_COMMENT_CHARS)
                .replace('é', "%C3%A9")
                .as_bytes()
        )
        .is_ok());
        for value in [long.as_bytes(), b"a%0Ab", b"%FF", b"a\tb"] {
            assert!(
                matches!(
                    comment(value),
                    Err(Error::InvalidParameter {
                        name: "X-Edgeflags-Comment",
                        ..
                    })
                ),
                "{value:?}"
            );
        }
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
    fn parameters_with_nul_or_over_the_limit_are_refused_by_name() {
        let pair = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
        let long = "k".repeat(MAX_PARAMETER_BYTES + 1);
        assert!(check_parameters(&pair("environment", "é"), "query").is_ok());
        assert!(check_parameters(&pair("cursor", &long[1..]), "query").is_ok());
        for (pairs, expected) in [
            (pair("cursor", "a\0"), "cursor"),
            (pair("environment", &long), "environment"),
            (pair("whatever", "\0"), "query"),
        ] {
            match check_parameters(&pairs, "query") {
                Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, expected),
                other => panic!("expected a parameter error, got {other:?}"),
            }
        }
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
