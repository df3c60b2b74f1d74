//! Turning an HTTP request into an [`ApiRequest`]: routing, body and query decoding, credentials
//! and the environment to evaluate.

use alloc::string::String;
use alloc::vec::Vec;
use evaluator_core::EvaluationContext;

use crate::auth::{self, ClientKey};
use crate::error::Error;
use crate::input::{ofrep_body, rest_batch_body, rest_query_context};
use crate::query;
use crate::response::{ApiResponse, ResponseBuilder, CORS_ALLOW_HEADERS};
use crate::stream::StreamKey;
use crate::{Api, MAX_BODY_BYTES};

/// The request headers the evaluation API reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestHeaders<'a> {
    /// `Authorization` (`Bearer <client key>`).
    pub authorization: Option<&'a str>,
    /// `X-Client-Key`.
    pub client_key: Option<&'a str>,
    /// `X-API-Key` (OFREP's API-key scheme).
    pub api_key: Option<&'a str>,
    /// `If-None-Match` (bulk routes answer 304 when it matches).
    pub if_none_match: Option<&'a str>,
}

impl<'a> RequestHeaders<'a> {
    /// Picks the headers the API reads from `(name, value)` pairs, names compared ASCII
    /// case-insensitively; the first occurrence of a name wins.
    #[must_use]
    pub fn from_pairs<I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut headers = Self::default();
        for (name, value) in pairs {
            let slot = if name.eq_ignore_ascii_case("authorization") {
                &mut headers.authorization
            } else if name.eq_ignore_ascii_case("x-client-key") {
                &mut headers.client_key
            } else if name.eq_ignore_ascii_case("x-api-key") {
                &mut headers.api_key
            } else if name.eq_ignore_ascii_case("if-none-match") {
                &mut headers.if_none_match
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        headers
    }
}

/// A framework-independent view of one HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST`, `OPTIONS`, ...
    pub method: &'a str,
    /// The path, still percent-encoded, without the query (e.g. `/api/v1/flags/new-checkout`).
    pub path: &'a str,
    /// The raw query string without `?` (empty when there is none).
    pub query: &'a str,
    /// The headers the API reads.
    pub headers: RequestHeaders<'a>,
    /// The whole body (empty for `GET`).
    pub body: &'a [u8],
}

/// Deployment settings of the evaluation API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// When `true` (the default, and production's setting) every request must present a client
    /// key. When `false` (local development, tests that say so) a request without a key names its
    /// environment itself; a key that is presented is still checked.
    pub require_client_keys: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            require_client_keys: true,
        }
    }
}

/// What is being evaluated, per route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /api/v1/flags/{flagKey}`.
    RestFlag { flag_key: String },
    /// `POST /api/v1/flags/batch`; `None` = every flag.
    RestBatch { flag_keys: Option<Vec<String>> },
    /// `POST /ofrep/v1/evaluate/flags/{key}`.
    OfrepFlag { key: String },
    /// `POST /ofrep/v1/evaluate/flags`.
    OfrepBulk,
}

/// A parsed, well-formed evaluation request; answer it with [`crate::respond`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub(crate) route: Route,
    pub(crate) environment: String,
    pub(crate) client_key: Option<ClientKey>,
    pub(crate) context: EvaluationContext,
    pub(crate) if_none_match: Option<String>,
    /// Advertise this environment's event stream in bulk answers, with tokens under this key.
    pub(crate) event_streams: Option<StreamKey>,
    /// The snapshot version a bulk request's `flagConfigEtag` names (sent after an event).
    pub(crate) config_version_hint: Option<u64>,
}

impl ApiRequest {
    /// The environment whose snapshot [`crate::respond`] needs.
    #[must_use]
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// Lowercase hex SHA-256 of the client key the request presented (as snapshots list their
    /// keys), `None` without one. Only well-formed keys get this far; whether the environment
    /// holds it is [`crate::respond`]'s decision.
    #[must_use]
    pub fn client_key_sha256(&self) -> Option<&str> {
        self.client_key.as_ref().map(ClientKey::sha256_hex)
    }

    /// Makes an OFREP bulk answer advertise the environment's event stream
    /// (`eventStreams`, ADR-0008) with a token signed with `key`; other routes ignore it. An
    /// adapter that serves [`crate::stream::STREAM_PATH`] sets it.
    #[must_use]
    pub fn with_event_streams(mut self, key: StreamKey) -> Self {
        self.event_streams = Some(key);
        self
    }

    /// The snapshot version the client was told about by an event (`flagConfigEtag` on a bulk
    /// request): an adapter holding an older snapshot should look for a newer one before it
    /// answers, or the client re-fetches stale flags.
    #[must_use]
    pub fn config_version_hint(&self) -> Option<u64> {
        self.config_version_hint
    }

    /// Which API flavour the request used.
    #[must_use]
    pub const fn api(&self) -> Api {
        match self.route {
            Route::RestFlag { .. } | Route::RestBatch { .. } => Api::Rest,
            Route::OfrepFlag { .. } | Route::OfrepBulk => Api::Ofrep,
        }
    }

    /// The flags the answer evaluates: `Some(keys)` for a single flag or a batch naming its
    /// flags, `None` when it evaluates every flag of the snapshot (a batch without `flagKeys`,
    /// OFREP bulk). An adapter that loads snapshots lazily compiles just these.
    #[must_use]
    pub fn flag_keys(&self) -> Option<Vec<&str>> {
        match &self.route {
            Route::RestFlag { flag_key } => Some(Vec::from([flag_key.as_str()])),
            Route::OfrepFlag { key } => Some(Vec::from([key.as_str()])),
            Route::RestBatch {
                flag_keys: Some(keys),
            } => Some(keys.iter().map(String::as_str).collect()),
            Route::RestBatch { flag_keys: None } | Route::OfrepBulk => None,
        }
    }

    /// The evaluation context built from the request.
    #[must_use]
    pub const fn context(&self) -> &EvaluationContext {
        &self.context
    }
}

const REST_FLAG_PREFIX: &str = "/api/v1/flags/";
const REST_BATCH_PATH: &str = "/api/v1/flags/batch";
const OFREP_BULK_PATH: &str = "/ofrep/v1/evaluate/flags";
const OFREP_FLAG_PREFIX: &str = "/ofrep/v1/evaluate/flags/";

/// Whether `path` belongs to the evaluation API (so an adapter can route it to [`parse`]).
#[must_use]
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/v1/") || path.starts_with("/ofrep/v1/")
}

/// Routes the path to an API flavour, a route shape, and the methods it allows.
enum Matched<'p> {
    RestFlag(&'p str),
    RestBatch,
    OfrepFlag(&'p str),
    OfrepBulk,
}

fn match_path(path: &str) -> Option<Matched<'_>> {
    if path == OFREP_BULK_PATH {
        return Some(Matched::OfrepBulk);
    }
    if let Some(key) = path.strip_prefix(OFREP_FLAG_PREFIX) {
        return (!key.contains('/')).then_some(Matched::OfrepFlag(key));
    }
    if path == REST_BATCH_PATH {
        return Some(Matched::RestBatch);
    }
    if let Some(key) = path.strip_prefix(REST_FLAG_PREFIX) {
        return (!key.is_empty() && !key.contains('/')).then_some(Matched::RestFlag(key));
    }
    None
}

/// Parses `request` into an [`ApiRequest`], or returns the response to send right away: an
/// error (404, 405, 413, 400, 401, 403) or the answer to a CORS preflight (`OPTIONS`, 204).
///
/// # Errors
/// The `Err` variant is a complete response, not a failure of the adapter.
pub fn parse(request: &HttpRequest<'_>, config: &Config) -> Result<ApiRequest, ApiResponse> {
    let api = if request.path.starts_with("/ofrep/") {
        Api::Ofrep
    } else {
        Api::Rest
    };
    let Some(matched) = match_path(request.path) else {
        return Err(Error::RouteNotFound {
            path: String::from(request.path),
        }
        .to_response(api, None));
    };
    // `GET /api/v1/flags/batch` is the flag named "batch"; only POST is the batch route.
    let (allowed, matched) = match (matched, request.method) {
        (Matched::RestBatch, "GET") => ("GET, POST, OPTIONS", Matched::RestFlag("batch")),
        (Matched::RestBatch, _) => ("GET, POST, OPTIONS", Matched::RestBatch),
        (m @ Matched::RestFlag(_), _) => ("GET, OPTIONS", m),
        (m, _) => ("POST, OPTIONS", m),
    };
    let expected = match matched {
        Matched::RestFlag(_) => "GET",
        _ => "POST",
    };
    let path_key = match matched {
        Matched::RestFlag(k) | Matched::OfrepFlag(k) => Some(k),
        _ => None,
    };
    if request.method == "OPTIONS" {
        return Err(preflight(allowed));
    }
    if request.method != expected {
        let error = Error::MethodNotAllowed {
            method: String::from(request.method),
            allow: allowed,
        };
        return Err(error.to_response(api, path_key));
    }
    parse_route(request, config, matched).map_err(|error| error.to_response(api, path_key))
}

fn parse_route(
    request: &HttpRequest<'_>,
    config: &Config,
    matched: Matched<'_>,
) -> Result<ApiRequest, Error> {
    if request.body.len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge {
            length: request.body.len(),
        });
    }
    // Credentials before the body: an unauthenticated caller learns nothing about validation.
    let client_key = auth::presented_key(&request.headers)?;
    if client_key.is_none() && config.require_client_keys {
        return Err(Error::MissingClientKey);
    }
    let mut config_version_hint = None;
    let (route, requested_environment, context) = match matched {
        Matched::RestFlag(raw) => {
            let flag_key = decode_flag_key(raw)?;
            if evaluator_core::validate_flag_key(&flag_key).is_err() {
                return Err(Error::InvalidFlagKey { key: flag_key });
            }
            let (environment, context) = rest_query_context(request.query)?;
            (Route::RestFlag { flag_key }, environment, context)
        }
        Matched::RestBatch => {
            let (flag_keys, environment, context) = rest_batch_body(request.body)?;
            (Route::RestBatch { flag_keys }, environment, context)
        }
        Matched::OfrepFlag(raw) => {
            let key = decode_flag_key(raw)?;
            let (environment, context) = ofrep_body(request.body, client_key.is_some())?;
            if evaluator_core::validate_flag_key(&key).is_err() {
                return Err(Error::InvalidFlagKey { key });
            }
            (Route::OfrepFlag { key }, environment, context)
        }
        Matched::OfrepBulk => {
            let (environment, context) = ofrep_body(request.body, client_key.is_some())?;
            config_version_hint = bulk_event_metadata(request.query)?;
            (Route::OfrepBulk, environment, context)
        }
    };
    let environment = match (&client_key, requested_environment) {
        (Some(key), Some(requested)) if requested != key.environment() => {
            return Err(Error::ForbiddenEnvironment {
                key_environment: String::from(key.environment()),
                requested,
            });
        }
        (Some(key), _) => String::from(key.environment()),
        (None, Some(requested)) => requested,
        (None, None) => return Err(Error::MissingEnvironment),
    };
    if evaluator_core::validate_flag_key(&environment).is_err() {
        return Err(Error::InvalidEnvironment { environment });
    }
    Ok(ApiRequest {
        route,
        environment,
        client_key,
        context,
        if_none_match: request.headers.if_none_match.map(String::from),
        event_streams: None,
        config_version_hint,
    })
}

/// The event metadata of a bulk request (ADR-0008): `flagConfigEtag` (our events send the
/// snapshot version, quoted) and `flagConfigLastModified` (Unix seconds or an RFC 3339 time). A
/// tag that is not a version (another server's) is ignored; a broken query or an unreadable
/// time is a 400 naming the parameter, as elsewhere.
fn bulk_event_metadata(query: &str) -> Result<Option<u64>, Error> {
    let mut version = None;
    for (name, value) in query::parse_query(query)? {
        match name.as_str() {
            "flagConfigEtag" => version = crate::stream::etag_version(&value),
            "flagConfigLastModified" => {
                let readable = value.trim().parse::<u64>().is_ok()
                    || evaluator_core::time::parse_rfc3339_millis(value.trim()).is_some();
                if !readable {
                    return Err(Error::InvalidField {
                        field: name,
                        message: String::from("must be Unix seconds or an RFC 3339 date-time"),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(version)
}

fn preflight(allowed: &'static str) -> ApiResponse {
    let mut builder = ResponseBuilder::new(204);
    builder.header("Access-Control-Allow-Methods", allowed);
    builder.header("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    builder.header("Access-Control-Max-Age", "86400");
    builder.empty()
}

fn decode_flag_key(raw: &str) -> Result<String, Error> {
    query::decode(raw, false).ok_or_else(|| Error::InvalidFlagKey {
        key: String::from(raw),
    })
}
