//! The snapshot route through `parse_snapshot_request` + `respond_snapshot`.

use alloc::string::String;
use alloc::vec::Vec;
use evaluator_core::CompiledSnapshot;
use serde_json::{json, Value};

use super::*;
use crate::stream::{parse_stream_request, StreamKey};
use crate::{Config, HttpRequest, RequestHeaders};

const NOW: i64 = 1_790_000_000_000;
/// `printf %s efk.production.0123456789abcdef0123456789abcdef | sha256sum`
const CLIENT_BEARER: &str = "Bearer efk.production.0123456789abcdef0123456789abcdef";
const CLIENT_SHA256: &str = "8ea1b6fea071e237e0facd3020a1096c514dd7a0b71ed7dff3319816011817ba";
/// `printf %s efs.production.0123456789abcdef0123456789abcdef | sha256sum`
const SERVER_BEARER: &str = "Bearer efs.production.0123456789abcdef0123456789abcdef";
const SERVER_SHA256: &str = "1e9f86ea7354bc466101128e9061b435e2faffbc5a11d88d980caa617156fafe";
const KEYS_ON: Config = Config {
    require_client_keys: true,
};
const KEYS_OFF: Config = Config {
    require_client_keys: false,
};

fn document(keys: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "environment": "production", "version": 7, "generatedAt": "2026-11-24T10:00:00Z",
        "flags": [{ "flagKey": "f", "enabled": true, "targetingRules": { "userIds": ["u1"] } }],
        "clientKeys": keys,
    }))
    .unwrap()
}

fn both_keys() -> Vec<u8> {
    document(json!([
        { "name": "web", "sha256": CLIENT_SHA256 },
        { "name": "backend", "sha256": SERVER_SHA256, "kind": "server" },
    ]))
}

fn compiled(json: &[u8]) -> CompiledSnapshot {
    let (snapshot, warnings) = CompiledSnapshot::from_json(json).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    snapshot
}

fn request(
    method: &'static str,
    query: &'static str,
    authorization: Option<&'static str>,
    if_none_match: Option<&'static str>,
) -> HttpRequest<'static> {
    HttpRequest {
        method,
        path: SNAPSHOT_PATH,
        query,
        headers: RequestHeaders {
            authorization,
            if_none_match,
            ..RequestHeaders::default()
        },
        body: &[],
    }
}

/// Parses and answers from `json` (the environment's snapshot).
fn answer(http: &HttpRequest<'_>, config: &Config, json: &[u8]) -> ApiResponse {
    let parsed = match parse_snapshot_request(http, config) {
        Ok(parsed) => parsed,
        Err(answer) => return answer,
    };
    let snapshot = compiled(json);
    let etag = snapshot_etag(snapshot.version(), json);
    let document = SnapshotDocument { json, etag: &etag };
    respond_snapshot(&parsed, Some((&snapshot, document)), NOW)
}

fn error_code(answer: &ApiResponse) -> (u16, String, Option<String>) {
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    (
        answer.status,
        body["error"]["code"].as_str().unwrap().into(),
        body["error"]["field"].as_str().map(String::from),
    )
}

#[test]
fn a_server_key_gets_the_document_byte_for_byte_with_its_etag_and_version() {
    let json = both_keys();
    let answer = answer(
        &request("GET", "", Some(SERVER_BEARER), None),
        &KEYS_ON,
        &json,
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json);
    let etag = answer.header("ETag").unwrap();
    assert!(
        etag.starts_with("\"7-") && etag.len() == 2 + 2 + 16,
        "{etag}"
    );
    assert_eq!(answer.header("X-Edgeflags-Snapshot-Version"), Some("7"));
    assert_eq!(answer.header("Content-Type"), Some("application/json"));
    assert_eq!(answer.header("Cache-Control"), Some("private, no-cache"));
    // No browser page may read a snapshot.
    assert_eq!(answer.header("Access-Control-Allow-Origin"), None);
    // Without a stream key, no stream is named.
    assert_eq!(answer.header(EVENT_STREAM_HEADER), None);
}

#[test]
fn the_etag_changes_with_the_content_even_at_the_same_version() {
    let a = snapshot_etag(7, &both_keys());
    let b = snapshot_etag(7, &document(json!([])));
    assert_ne!(a, b);
    assert_eq!(a, snapshot_etag(7, &both_keys()));
}

#[test]
fn if_none_match_with_the_current_etag_is_a_304_without_body() {
    let json = both_keys();
    let etag = snapshot_etag(7, &json);
    let header: &'static str = String::leak(format!("\"1-0000000000000000\", W/{etag}"));
    let answer = answer(
        &request("GET", "", Some(SERVER_BEARER), Some(header)),
        &KEYS_ON,
        &json,
    );
    assert_eq!(answer.status, 304);
    assert!(answer.body.is_empty());
    assert_eq!(answer.header("ETag"), Some(etag.as_str()));
    let stale = answer_with_tag("\"6-0000000000000000\"", &json);
    assert_eq!(stale.status, 200);
}

fn answer_with_tag(tag: &'static str, json: &[u8]) -> ApiResponse {
    answer(
        &request("GET", "", Some(SERVER_BEARER), Some(tag)),
        &KEYS_ON,
        json,
    )
}

#[test]
fn a_client_key_the_environment_holds_is_refused_with_403() {
    let answer = answer(
        &request("GET", "", Some(CLIENT_BEARER), None),
        &KEYS_ON,
        &both_keys(),
    );
    assert_eq!(
        error_code(&answer),
        (
            403,
            "SERVER_KEY_REQUIRED".into(),
            Some("Authorization".into())
        )
    );
    assert!(!String::from_utf8_lossy(&answer.body).contains("flags"));
}

#[test]
fn unknown_revoked_or_mislabelled_keys_are_401_like_an_unknown_environment() {
    // The server key's hash listed as a client key: its prefix says server, the list does not.
    let mislabelled = document(json!([{ "name": "backend", "sha256": SERVER_SHA256 }]));
    let revoked = document(json!([{ "name": "web", "sha256": CLIENT_SHA256 }]));
    let auth = Some(SERVER_BEARER);
    for json in [mislabelled, revoked] {
        let answer = answer(&request("GET", "", auth, None), &KEYS_ON, &json);
        assert_eq!(
            error_code(&answer),
            (
                401,
                "INVALID_CLIENT_KEY".into(),
                Some("Authorization".into())
            )
        );
    }
    let parsed = parse_snapshot_request(&request("GET", "", auth, None), &KEYS_ON).unwrap();
    let unknown = respond_snapshot_unknown_environment(&parsed);
    let revoked = answer(
        &request("GET", "", auth, None),
        &KEYS_ON,
        &document(json!([])),
    );
    assert_eq!(unknown, revoked);
}

#[test]
fn missing_and_malformed_keys_and_bad_parameters_are_refused_before_any_snapshot() {
    type Expected = (u16, &'static str, Option<&'static str>);
    let cases: [(HttpRequest<'static>, Config, Expected); 6] = [
        (
            request("GET", "", None, None),
            KEYS_ON,
            (401, "MISSING_CLIENT_KEY", Some("Authorization")),
        ),
        (
            request("GET", "", Some("Bearer efs.production.xyz"), None),
            KEYS_ON,
            (401, "INVALID_CLIENT_KEY", Some("Authorization")),
        ),
        (
            request("GET", "", Some("Basic abc"), None),
            KEYS_ON,
            (401, "INVALID_CLIENT_KEY", Some("Authorization")),
        ),
        (
            request("GET", "", None, None),
            KEYS_OFF,
            (400, "MISSING_ENVIRONMENT", Some("environment")),
        ),
        (
            request("GET", "environment=no%20spaces", None, None),
            KEYS_OFF,
            (400, "INVALID_ENVIRONMENT", Some("environment")),
        ),
        (
            request("GET", "environment=staging", Some(SERVER_BEARER), None),
            KEYS_ON,
            (403, "FORBIDDEN_ENVIRONMENT", Some("environment")),
        ),
    ];
    for (http, config, (status, code, field)) in cases {
        let answer = parse_snapshot_request(&http, &config).unwrap_err();
        assert_eq!(
            error_code(&answer),
            (status, code.into(), field.map(String::from)),
            "{http:?}"
        );
    }
    let answer = parse_snapshot_request(&request("POST", "", None, None), &KEYS_OFF).unwrap_err();
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("Allow"), Some("GET"));
}

#[test]
fn with_keys_off_the_environment_is_named_in_the_query() {
    let json = both_keys();
    let answer = answer(
        &request("GET", "environment=production", None, None),
        &KEYS_OFF,
        &json,
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json);
}

#[test]
fn no_snapshot_is_a_503_with_retry_after() {
    let parsed =
        parse_snapshot_request(&request("GET", "", Some(SERVER_BEARER), None), &KEYS_ON).unwrap();
    let answer = respond_snapshot(&parsed, None, NOW);
    assert_eq!(error_code(&answer).1, "SNAPSHOT_UNAVAILABLE");
    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("Retry-After"), Some("5"));
}

#[test]
fn the_event_stream_header_is_a_stream_token_bound_to_the_server_key() {
    let json = both_keys();
    let stream_key = StreamKey::derive(b"publish secret");
    let parsed = parse_snapshot_request(&request("GET", "", Some(SERVER_BEARER), None), &KEYS_ON)
        .unwrap()
        .with_event_streams(stream_key);
    let snapshot = compiled(&json);
    let etag = snapshot_etag(7, &json);
    let answer = respond_snapshot(
        &parsed,
        Some((
            &snapshot,
            SnapshotDocument {
                json: &json,
                etag: &etag,
            },
        )),
        NOW,
    );
    let location = answer.header(EVENT_STREAM_HEADER).unwrap();
    let query = location.strip_prefix("/ofrep/v1/event-stream?").unwrap();
    let grant = parse_stream_request("GET", query, None, &stream_key, NOW)
        .unwrap()
        .grant;
    assert_eq!(grant.environment(), "production");
    assert_eq!(grant.key_sha256(), Some(SERVER_SHA256));
    // A server key evaluates too, so the stream's key check (the key is still held) passes.
    assert!(snapshot.client_key_hash_allowed(SERVER_SHA256));
}

#[test]
fn a_server_key_evaluates_like_a_client_key() {
    let json = both_keys();
    let snapshot = compiled(&json);
    for bearer in [SERVER_BEARER, CLIENT_BEARER] {
        let http = HttpRequest {
            method: "GET",
            path: "/api/v1/flags/f",
            query: "userId=u1",
            headers: RequestHeaders {
                authorization: Some(bearer),
                ..RequestHeaders::default()
            },
            body: &[],
        };
        let parsed = crate::parse(&http, &KEYS_ON).unwrap();
        let answer = crate::respond(&parsed, Some(&snapshot), NOW);
        assert_eq!(answer.status, 200, "{bearer}");
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(body["value"], json!(true));
    }
    // Not listed: refused, whatever its prefix.
    let only_client = compiled(&document(
        json!([{ "name": "web", "sha256": CLIENT_SHA256 }]),
    ));
    let http = HttpRequest {
        method: "GET",
        path: "/api/v1/flags/f",
        query: "",
        headers: RequestHeaders {
            authorization: Some(SERVER_BEARER),
            ..RequestHeaders::default()
        },
        body: &[],
    };
    let parsed = crate::parse(&http, &KEYS_ON).unwrap();
    assert_eq!(crate::respond(&parsed, Some(&only_client), NOW).status, 401);
}

#[test]
fn gzip_is_accepted_unless_refused() {
    assert!(accepts_gzip(Some("gzip")));
    assert!(accepts_gzip(Some("br, GZIP;q=0.5")));
    assert!(accepts_gzip(Some("*")));
    assert!(!accepts_gzip(Some("gzip;q=0")));
    assert!(!accepts_gzip(Some("br, deflate")));
    assert!(!accepts_gzip(None));
}
