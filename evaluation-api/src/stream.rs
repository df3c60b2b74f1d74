//! OFREP event streams (ADR-0008 of the OpenFeature protocol, `service/adrs/` and
//! `service/event-streams.yaml` in open-feature/protocol): the stream location the bulk answer
//! advertises, the token that authorises a stream, and the bytes a stream sends. Pure like the
//! rest of the crate: the adapter holds the connections (a Durable Object per environment at
//! the edge, a broadcast of the live snapshots at the origin) and writes what these functions
//! render. The contract is written down in `docs/event-streams.md`.
//!
//! Why a token: browsers open the stream with `EventSource`, which sends no headers, so the
//! credential must be in the URL, and URLs end up in proxy and CDN logs. The URL therefore never
//! holds the client key: it holds a token that only lets its bearer learn *that* an
//! environment's configuration changed (a version number), for one environment, for at most two
//! hours, bound to the key it was issued for so that revoking the key ends its streams. Tokens are
//! HMACs under a key both ends derive from the publish secret, so a token from the edge's bulk
//! answer is valid at the origin too, and the two answer byte for byte the same.

use alloc::format;
use alloc::string::String;
use core::fmt;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::auth;
use crate::error::Error;
use crate::query;
use crate::response::{ApiResponse, ResponseBuilder};
use crate::Api;

/// Path of the event stream (GET).
pub const STREAM_PATH: &str = "/ofrep/v1/event-stream";
/// `inactivityDelaySec` advertised: seconds of client inactivity (hidden tab) after which the
/// provider closes the stream and re-fetches when it is back (the ADR's default).
pub const INACTIVITY_DELAY_SEC: u32 = 120;
/// Seconds between heartbeat comments, below the 30-100 s idle timeouts of common proxies.
pub const HEARTBEAT_SECONDS: u32 = 25;
/// The reconnect delay a stream asks browsers for (`retry:`), in milliseconds.
const RETRY_MS: u32 = 2_000;
/// Tokens are minted per hour: valid until the end of the next hour (1-2 h), and the same
/// all hour long, so the bulk answer (and its ETag) does not change with every request.
const TOKEN_BUCKET_SECONDS: u64 = 3_600;
/// Hex characters of the token's MAC (128 bits).
const MAC_HEX: usize = 32;

/// The key stream tokens are signed with, derived from a deployment secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StreamKey([u8; 32]);

impl StreamKey {
    /// The stream key of a deployment whose publish secret (or, for an origin without an edge,
    /// whose admin-token secret) is `secret`: a separate key, so a token never reveals anything
    /// usable against publishes or admin tokens.
    #[must_use]
    pub fn derive(secret: &[u8]) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(&mac(secret, b"edgeflags event-stream tokens v1"));
        Self(out)
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey(..)")
    }
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut hmac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(hmac) => hmac,
        Err(_) => return [0; 32],
    };
    hmac.update(message);
    hmac.finalize().into_bytes().into()
}

/// What a valid stream token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGrant {
    environment: String,
    key_sha256: Option<String>,
    expires_at: u64,
}

impl StreamGrant {
    /// The one environment whose changes the stream may carry.
    #[must_use]
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// SHA-256 (lowercase hex) of the client key the token was issued for; `None` when it was
    /// issued without one (client keys off). The adapter checks it against the environment's
    /// current keys when the stream opens and on every change, and closes the stream once the
    /// key is revoked.
    #[must_use]
    pub fn key_sha256(&self) -> Option<&str> {
        self.key_sha256.as_deref()
    }

    /// Unix seconds after which the token is refused.
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// The token for streams of `environment` requested with the key hashing to `key_sha256`, at
/// `now_ms`.
#[must_use]
pub fn stream_token(
    key: &StreamKey,
    environment: &str,
    key_sha256: Option<&str>,
    now_ms: i64,
) -> String {
    let now = u64::try_from(now_ms / 1000).unwrap_or(0);
    let expires_at = (now / TOKEN_BUCKET_SECONDS + 2) * TOKEN_BUCKET_SECONDS;
    let payload = format!(
        "v1.{environment}.{}.{expires_at}",
        key_sha256.unwrap_or("-")
    );
    let signature = auth::hex(&mac(&key.0, payload.as_bytes()));
    format!("{payload}.{}", &signature[..MAC_HEX])
}

/// Checks `token` at `now_ms`.
fn verify_token(key: &StreamKey, token: &str, now_ms: i64) -> Result<StreamGrant, &'static str> {
    const MALFORMED: &str = "malformed stream token";
    let (payload, signature) = token.rsplit_once('.').ok_or(MALFORMED)?;
    let expected = auth::hex(&mac(&key.0, payload.as_bytes()));
    // Compared in full, without an early exit, so timing tells nothing about the MAC.
    let matches = signature.len() == MAC_HEX
        && signature
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
    if !matches {
        return Err("stream token rejected");
    }
    let mut parts = payload.split('.');
    let (Some("v1"), Some(environment), Some(hash), Some(expires_at), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(MALFORMED);
    };
    let expires_at: u64 = expires_at.parse().map_err(|_| MALFORMED)?;
    let now = u64::try_from(now_ms / 1000).unwrap_or(0);
    if now >= expires_at {
        return Err("stream token expired; fetch the bulk evaluation again for a new one");
    }
    Ok(StreamGrant {
        environment: String::from(environment),
        key_sha256: (hash != "-").then(|| String::from(hash)),
        expires_at,
    })
}

/// The `eventStreams` entry of a bulk answer: the stream of `environment` as a request path (the
/// provider prefixes its own base URL's origin, so the same answer works behind any host name).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventStream {
    #[serde(rename = "type")]
    kind: &'static str,
    endpoint: Endpoint,
    inactivity_delay_sec: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    request_uri: String,
}

impl EventStream {
    pub(crate) fn new(
        key: &StreamKey,
        environment: &str,
        key_sha256: Option<&str>,
        now_ms: i64,
    ) -> Self {
        Self {
            kind: "sse",
            endpoint: Endpoint {
                request_uri: format!(
                    "{STREAM_PATH}?token={}",
                    stream_token(key, environment, key_sha256, now_ms)
                ),
            },
            inactivity_delay_sec: INACTIVITY_DELAY_SEC,
        }
    }
}

/// A parsed request to open a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// What the token grants.
    pub grant: StreamGrant,
    /// The `Last-Event-ID` the client resumes from (a snapshot version), if it sent a valid one.
    pub last_event_id: Option<u64>,
}

/// Parses a request for [`STREAM_PATH`]: `method`, the raw `query` (holding `token`) and the
/// `Last-Event-ID` header. `Err` is the finished answer: 405 for another method, 401
/// `INVALID_STREAM_TOKEN` for a missing, malformed, forged or expired token.
///
/// # Errors
/// The answer to send as is.
pub fn parse_stream_request(
    method: &str,
    query: &str,
    last_event_id: Option<&str>,
    key: &StreamKey,
    now_ms: i64,
) -> Result<StreamRequest, ApiResponse> {
    if method != "GET" {
        let error = Error::MethodNotAllowed {
            method: String::from(method),
            allow: "GET",
        };
        return Err(error.to_response(Api::Rest, None));
    }
    let token = query::parse_query(query)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(name, _)| name == "token"))
        .map(|(_, value)| value);
    let Some(token) = token else {
        return Err(Error::InvalidStreamToken {
            reason: "no token: open the stream at the URL the bulk evaluation's eventStreams gives",
        }
        .to_response(Api::Rest, None));
    };
    let grant = verify_token(key, &token, now_ms)
        .map_err(|reason| Error::InvalidStreamToken { reason }.to_response(Api::Rest, None))?;
    Ok(StreamRequest {
        grant,
        last_event_id: last_event_id.and_then(|id| id.trim().parse().ok()),
    })
}

/// The answer to a stream whose client key was revoked (or whose environment no longer
/// exists): 401, as for a forged token.
#[must_use]
pub fn stream_key_revoked() -> ApiResponse {
    Error::InvalidStreamToken {
        reason: "the client key this stream was opened with is unknown or revoked",
    }
    .to_response(Api::Rest, None)
}

/// The answer when an environment (or one client key) has as many streams open as allowed:
/// 429 with `Retry-After`, so `EventSource` backs off instead of failing for good.
#[must_use]
pub fn too_many_streams(limit: usize) -> ApiResponse {
    let mut response = Error::TooManyStreams { limit }.to_response(Api::Rest, None);
    response.headers.push(("Retry-After", String::from("30")));
    response
}

/// The status and headers of an opened stream; the adapter streams the body.
#[must_use]
pub fn stream_head() -> ApiResponse {
    let mut builder = ResponseBuilder::new(200);
    builder.header("Content-Type", "text/event-stream; charset=utf-8");
    // Proxies (nginx) must pass events through as they come.
    builder.header("X-Accel-Buffering", "no");
    builder.empty()
}

/// An environment's configuration as a stream announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigVersion {
    /// The snapshot version: the event id, and the `etag` (quoted).
    pub version: u64,
    /// The snapshot's `generatedAt` in Unix seconds, if it has one.
    pub last_modified: Option<i64>,
}

impl ConfigVersion {
    /// The version of a snapshot.
    #[must_use]
    pub fn of(snapshot: &evaluator_core::CompiledSnapshot) -> Self {
        Self {
            version: snapshot.version(),
            last_modified: evaluator_core::time::parse_rfc3339_millis(snapshot.generated_at())
                .map(|ms| ms.div_euclid(1000)),
        }
    }
}

/// The first bytes of a stream: the reconnect delay, and, when the client resumes from an
/// event older than `current` (it missed a change while disconnected), that change at once.
/// Otherwise the current version as the last event id, in a block without data (which sets
/// `EventSource`'s last event id and dispatches nothing): a client that connected and then lost
/// the connection before any change still resumes with `Last-Event-ID`, and so learns of a change
/// made while it was away.
#[must_use]
pub fn stream_opening(current: Option<ConfigVersion>, last_event_id: Option<u64>) -> String {
    match (current, last_event_id) {
        (Some(current), Some(seen)) if seen < current.version => {
            format!("retry: {RETRY_MS}\n\n{}", refetch_event(current))
        }
        (Some(current), _) => format!("retry: {RETRY_MS}\nid: {}\n\n", current.version),
        (None, _) => format!("retry: {RETRY_MS}\n\n"),
    }
}

/// The message that tells a provider to re-fetch: `id` is the version, `data` the ADR's JSON.
#[must_use]
pub fn refetch_event(config: ConfigVersion) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        #[serde(rename = "type")]
        kind: &'static str,
        etag: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_modified: Option<i64>,
    }
    let data = Data {
        kind: "refetchEvaluation",
        etag: format!("\"{}\"", config.version),
        last_modified: config.last_modified,
    };
    let json = serde_json::to_string(&data).unwrap_or_default();
    format!("id: {}\nevent: message\ndata: {json}\n\n", config.version)
}

/// A comment line that keeps an idle connection open through proxies.
pub const HEARTBEAT: &str = ": heartbeat\n\n";

/// The version a bulk request's `flagConfigEtag` (sent after an event) names: `"42"`, `W/"42"`
/// or `42`. An adapter holding an older snapshot refreshes before it answers.
pub(crate) fn etag_version(etag: &str) -> Option<u64> {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    let etag = etag
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag);
    etag.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000_000;
    const HASH: &str = "8ea1b6fea071e237e0facd3020a1096c514dd7a0b71ed7dff3319816011817ba";

    fn key() -> StreamKey {
        StreamKey::derive(b"test-publish-secret-of-32-bytes!")
    }

    #[test]
    fn tokens_verify_until_they_expire_and_are_stable_within_the_hour() {
        let token = stream_token(&key(), "production", Some(HASH), NOW);
        assert!(!token.contains("efk."), "{token}");
        let grant = verify_token(&key(), &token, NOW).unwrap();
        assert_eq!(grant.environment(), "production");
        assert_eq!(grant.key_sha256(), Some(HASH));
        let expires = i64::try_from(grant.expires_at()).unwrap() * 1000;
        assert!(expires - NOW > 3_600_000 && expires - NOW <= 7_200_000);
        assert_eq!(
            stream_token(&key(), "production", Some(HASH), NOW + 1_000),
            token
        );
        assert!(verify_token(&key(), &token, expires - 1).is_ok());
        assert!(verify_token(&key(), &token, expires)
            .unwrap_err()
            .contains("expired"));
        let open = stream_token(&key(), "dev", None, NOW);
        assert_eq!(verify_token(&key(), &open, NOW).unwrap().key_sha256(), None);
    }

    #[test]
    fn forged_tampered_and_foreign_tokens_are_refused() {
        let token = stream_token(&key(), "production", Some(HASH), NOW);
        let other = StreamKey::derive(b"another-secret-of-at-least-32-b!");
        assert!(verify_token(&other, &token, NOW).is_err());
        let tampered = token.replacen("production", "staging", 1);
        assert!(verify_token(&key(), &tampered, NOW).is_err());
        let later = token.replacen(".17900", ".99999", 1);
        assert!(verify_token(&key(), &later, NOW).is_err());
        for bad in [
            "",
            ".",
            "v1",
            "v1.production.-.1.",
            &token[..token.len() - 1],
        ] {
            assert!(verify_token(&key(), bad, NOW).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stream_requests_need_get_and_a_valid_token() {
        let token = stream_token(&key(), "production", None, NOW);
        let query = format!("token={token}");
        let parsed = parse_stream_request("GET", &query, Some("41"), &key(), NOW).unwrap();
        assert_eq!(parsed.grant.environment(), "production");
        assert_eq!(parsed.last_event_id, Some(41));
        let garbage = parse_stream_request("GET", &query, Some("x"), &key(), NOW).unwrap();
        assert_eq!(garbage.last_event_id, None);
        let refused = parse_stream_request("GET", "", None, &key(), NOW).unwrap_err();
        assert_eq!(refused.status, 401);
        let body: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
        assert_eq!(body["error"]["code"], "INVALID_STREAM_TOKEN");
        let post = parse_stream_request("POST", &query, None, &key(), NOW).unwrap_err();
        assert_eq!(post.status, 405);
        assert_eq!(post.header("Allow"), Some("GET"));
        assert_eq!(too_many_streams(3).status, 429);
        assert_eq!(
            stream_head().header("Content-Type"),
            Some("text/event-stream; charset=utf-8")
        );
    }

    #[test]
    fn events_are_the_adr_format_with_the_version_as_id() {
        let config = ConfigVersion {
            version: 42,
            last_modified: Some(1_771_622_898),
        };
        assert_eq!(
            refetch_event(config),
            "id: 42\nevent: message\ndata: {\"type\":\"refetchEvaluation\",\"etag\":\"\\\"42\\\"\",\"lastModified\":1771622898}\n\n"
        );
        assert_eq!(stream_opening(None, None), "retry: 2000\n\n");
        assert_eq!(
            stream_opening(Some(config), None),
            "retry: 2000\nid: 42\n\n"
        );
        assert_eq!(
            stream_opening(Some(config), Some(42)),
            "retry: 2000\nid: 42\n\n"
        );
        assert_eq!(
            stream_opening(Some(config), Some(41)),
            format!("retry: 2000\n\n{}", refetch_event(config))
        );
        assert_eq!(etag_version("\"42\""), Some(42));
        assert_eq!(etag_version("W/\"42\""), Some(42));
        assert_eq!(etag_version("42"), Some(42));
        assert_eq!(etag_version("\"abc\""), None);
    }
}
