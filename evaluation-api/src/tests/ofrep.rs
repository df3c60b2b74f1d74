//! OFREP: `POST /ofrep/v1/evaluate/flags/{key}` and the bulk route with its ETag.

use alloc::string::String;
use serde_json::json;

use super::*;
use evaluator_core::CompiledSnapshot;

// ---- OFREP: POST /ofrep/v1/evaluate/flags/{key} ---------------------------------------------

#[test]
fn ofrep_single_success_has_key_value_reason_variant_metadata() {
    let response = post(
        "/ofrep/v1/evaluate/flags/checkout",
        r#"{"context":{"targetingKey":"u1","environment":"production","country":"US"}}"#,
    )
    .send();
    assert_eq!(response.status, 200);
    assert_json_headers(&response);
    assert_eq!(
        body(&response),
        json!({ "key": "checkout", "value": { "flow": "v2" }, "reason": "TARGETING_MATCH", "variant": "v2",
                "metadata": { "flagVersion": 6, "reasonDetail": "country-targeted" } })
    );
}

#[test]
fn ofrep_single_of_an_unknown_flag_is_404_flag_not_found() {
    for path in [
        "/ofrep/v1/evaluate/flags/nope",
        "/ofrep/v1/evaluate/flags/bad%20key",
    ] {
        let response = post(path, r#"{"context":{"environment":"production"}}"#).send();
        assert_eq!(response.status, 404, "{path}");
        assert_json_headers(&response);
        let answer = body(&response);
        assert_eq!(answer["errorCode"], "FLAG_NOT_FOUND");
        assert!(answer["key"].is_string());
        assert!(answer["errorDetails"].is_string());
    }
}

#[test]
fn ofrep_single_rollout_without_targeting_key_is_400_targeting_key_missing() {
    let response = post(
        "/ofrep/v1/evaluate/flags/rollout",
        r#"{"context":{"environment":"production"}}"#,
    )
    .send();
    assert_eq!(response.status, 400);
    let answer = body(&response);
    assert_eq!(answer["key"], "rollout");
    assert_eq!(answer["errorCode"], "TARGETING_KEY_MISSING");
    assert!(answer.get("value").is_none());
}

#[test]
fn ofrep_request_errors_use_openfeature_codes() {
    let cases = [
        ("{nope", "PARSE_ERROR"),
        ("{}", "INVALID_CONTEXT"),
        (r#"{"context":"x"}"#, "INVALID_CONTEXT"),
        (
            r#"{"context":{"targetingKey":5,"environment":"production"}}"#,
            "INVALID_CONTEXT",
        ),
        (r#"{"context":{"targetingKey":"u1"}}"#, "INVALID_CONTEXT"),
        (r#"{"context":{"environment":5}}"#, "INVALID_CONTEXT"),
    ];
    for (input, code) in cases {
        let response = post("/ofrep/v1/evaluate/flags/static-on", input).send();
        assert_eq!(response.status, 400, "{input}");
        assert_json_headers(&response);
        let answer = body(&response);
        assert_eq!(answer["errorCode"], code, "{input}");
        assert_eq!(answer["key"], "static-on", "{input}");
        assert!(
            answer["errorDetails"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{input}"
        );
    }
}

#[test]
fn ofrep_401_and_403_have_no_body() {
    let response = post("/ofrep/v1/evaluate/flags/static-on", r#"{"context":{}}"#)
        .config(KEYED)
        .send();
    assert_eq!(response.status, 401);
    assert!(response.body.is_empty());
    assert_eq!(response.header("Content-Type"), None);
    let response = post("/ofrep/v1/evaluate/flags/static-on", r#"{"context":{}}"#)
        .header(
            "Authorization",
            "Bearer efk.production.ffffffffffffffffffffffffffffffff",
        )
        .send();
    assert_eq!(response.status, 401);
    assert!(response.body.is_empty());
}

#[test]
fn ofrep_with_a_key_ignores_the_environment_attribute_for_selection() {
    let response = post(
        "/ofrep/v1/evaluate/flags/static-on",
        r#"{"context":{"environment":"staging"}}"#,
    )
    .header(
        "Authorization",
        "Bearer efk.production.0123456789abcdef0123456789abcdef",
    )
    .config(KEYED)
    .send();
    assert_eq!(response.status, 200);
    assert_eq!(body(&response)["value"], true);
}

#[test]
fn ofrep_single_without_snapshot_is_500_general_with_the_key() {
    let response = post(
        "/ofrep/v1/evaluate/flags/static-on",
        r#"{"context":{"environment":"production"}}"#,
    )
    .send_to(None);
    assert_eq!(response.status, 500);
    assert_json_headers(&response);
    let answer = body(&response);
    assert_eq!(answer["key"], "static-on");
    assert_eq!(answer["errorCode"], "GENERAL");
    assert_eq!(
        answer["errorDetails"],
        "no flag snapshot is available for environment \"production\"; serving the fallback"
    );
}

// ---- OFREP: POST /ofrep/v1/evaluate/flags (bulk) --------------------------------------------

const BULK: &str = "/ofrep/v1/evaluate/flags";

#[test]
fn ofrep_bulk_lists_successes_and_failures_with_metadata() {
    let response = post(
        BULK,
        r#"{"context":{"environment":"production","plan":"pro"}}"#,
    )
    .send();
    assert_eq!(response.status, 200);
    assert_json_headers(&response);
    let answer = body(&response);
    assert_eq!(
        answer["metadata"],
        json!({ "environment": "production", "snapshotVersion": 7 })
    );
    let flags = answer["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 6);
    assert_eq!(
        flags[1],
        json!({ "key": "kill", "value": false, "reason": "DISABLED", "variant": "off",
                "metadata": { "flagVersion": 2, "reasonDetail": "flag-disabled" } })
    );
    assert_eq!(flags[3]["key"], "rollout");
    assert_eq!(flags[3]["errorCode"], "TARGETING_KEY_MISSING");
    assert_eq!(flags[4]["value"], "dark");
}

fn bulk_etag(context: &str, snapshot: &CompiledSnapshot) -> String {
    let response = post(BULK, String::from(context).leak()).send_to(Some(snapshot));
    assert_eq!(response.status, 200);
    String::from(response.header("ETag").unwrap())
}

#[test]
fn ofrep_bulk_etag_changes_with_context_and_snapshot_but_not_member_order() {
    let v7 = snapshot(7);
    let a = bulk_etag(
        r#"{"context":{"environment":"production","targetingKey":"u1","plan":"pro"}}"#,
        &v7,
    );
    let reordered = bulk_etag(
        r#"{"context":{"plan":"pro","targetingKey":"u1","environment":"production"}}"#,
        &v7,
    );
    let other_user = bulk_etag(
        r#"{"context":{"environment":"production","targetingKey":"u2","plan":"pro"}}"#,
        &v7,
    );
    // `x` changes no answer: only the hashed context can make this tag differ.
    let extra_attribute = bulk_etag(
        r#"{"context":{"environment":"production","targetingKey":"u1","plan":"pro","x":1}}"#,
        &v7,
    );
    let newer = bulk_etag(
        r#"{"context":{"environment":"production","targetingKey":"u1","plan":"pro"}}"#,
        &snapshot(8),
    );
    assert!(
        a.starts_with('"') && a.ends_with('"') && a.len() == 34,
        "{a}"
    );
    assert_eq!(a, reordered);
    assert_ne!(a, other_user);
    assert_ne!(a, extra_attribute);
    assert_ne!(a, newer);
}

#[test]
fn ofrep_bulk_if_none_match_answers_304_without_body() {
    let request = r#"{"context":{"environment":"production","targetingKey":"u1"}}"#;
    let etag = bulk_etag(request, &snapshot(7));
    for header in [
        etag.clone(),
        alloc::format!("W/{etag}"),
        alloc::format!("\"zzz\", {etag}"),
        String::from("*"),
    ] {
        let response = post(BULK, request)
            .header("If-None-Match", String::from(header.as_str()).leak())
            .send();
        assert_eq!(response.status, 304, "{header}");
        assert!(response.body.is_empty());
        assert_eq!(response.header("Content-Type"), None);
        assert_eq!(response.header("ETag"), Some(etag.as_str()));
        assert_eq!(response.header("Cache-Control"), Some("private, no-store"));
    }
    let stale = post(BULK, request)
        .header("If-None-Match", "\"0123\"")
        .send();
    assert_eq!(stale.status, 200);
}

#[test]
fn ofrep_bulk_without_snapshot_is_500_general() {
    let response = post(BULK, r#"{"context":{"environment":"production"}}"#).send_to(None);
    assert_eq!(response.status, 500);
    assert_json_headers(&response);
    let answer = body(&response);
    assert_eq!(answer["errorCode"], "GENERAL");
    assert!(answer.get("key").is_none());
}

// ---- OFREP event streams (ADR-0008) ---------------------------------------------------------

fn bulk_with_streams(query: &'static str, headers: &[(&'static str, &'static str)]) -> ApiResponse {
    let key = crate::stream::StreamKey::derive(b"test-publish-secret-of-32-bytes!");
    let request = HttpRequest {
        method: "POST",
        path: BULK,
        query,
        headers: RequestHeaders::from_pairs(headers.iter().copied()),
        body: br#"{"context":{"targetingKey":"u1","environment":"production"}}"#,
    };
    let parsed = parse(&request, &OPEN).unwrap().with_event_streams(key);
    respond(&parsed, Some(&snapshot(7)), NOW)
}

#[test]
fn bulk_answers_advertise_the_environments_stream_without_the_client_key() {
    let response = bulk_with_streams("", &[("X-API-Key", KEY)]);
    assert_eq!(response.status, 200);
    let streams = &body(&response)["eventStreams"];
    assert_eq!(streams.as_array().map(Vec::len), Some(1));
    assert_eq!(streams[0]["type"], "sse");
    assert_eq!(streams[0]["inactivityDelaySec"], 120);
    let uri = streams[0]["endpoint"]["requestUri"].as_str().unwrap();
    assert!(
        uri.starts_with("/ofrep/v1/event-stream?token=v1.production."),
        "{uri}"
    );
    assert!(!uri.contains(KEY) && !uri.contains("efk."), "{uri}");
    // The token opens a stream of this environment, bound to the key it was issued for.
    let key = crate::stream::StreamKey::derive(b"test-publish-secret-of-32-bytes!");
    let query = uri.split_once('?').unwrap().1;
    let opened = crate::stream::parse_stream_request("GET", query, None, &key, NOW).unwrap();
    assert_eq!(opened.grant.environment(), "production");
    assert_eq!(opened.grant.key_sha256(), Some(KEY_SHA256));
    // Stable within the hour: the ETag still answers 304.
    let etag = String::from(response.header("ETag").unwrap());
    let again = bulk_with_streams(
        "",
        &[("X-API-Key", KEY), ("If-None-Match", etag.clone().leak())],
    );
    assert_eq!(again.status, 304);
    // Without streams the answer is what it always was.
    let plain = post(
        BULK,
        r#"{"context":{"targetingKey":"u1","environment":"production"}}"#,
    )
    .send();
    assert!(body(&plain).get("eventStreams").is_none());
}

#[test]
fn bulk_requests_after_an_event_carry_the_version_it_named() {
    let request = |query: &'static str| HttpRequest {
        method: "POST",
        path: BULK,
        query,
        headers: RequestHeaders::default(),
        body: br#"{"context":{"environment":"production"}}"#,
    };
    let hint = |query| parse(&request(query), &OPEN).map(|r| r.config_version_hint());
    assert_eq!(hint(""), Ok(None));
    assert_eq!(
        hint("flagConfigEtag=%2242%22&flagConfigLastModified=1771622898"),
        Ok(Some(42))
    );
    assert_eq!(hint("flagConfigEtag=W%2F%2242%22"), Ok(Some(42)));
    assert_eq!(hint("flagConfigEtag=%22other-server%22"), Ok(None));
    assert_eq!(
        hint("flagConfigLastModified=2026-02-20T21:28:18Z"),
        Ok(None)
    );
    let refused = parse(&request("flagConfigLastModified=yesterday"), &OPEN).unwrap_err();
    assert_eq!(refused.status, 400);
    assert_eq!(body(&refused)["errorCode"], "INVALID_CONTEXT");
}
