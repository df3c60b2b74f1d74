//! The REST API: `GET /api/v1/flags/{flagKey}`, `POST /api/v1/flags/batch`, and the routing,
//! credential and limit rules both APIs share.

use alloc::format;
use alloc::vec::Vec;
use serde_json::{json, Value};

use super::*;

// ---- REST API: GET /api/v1/flags/{flagKey} ------------------------------------------------------

#[test]
fn rest_get_evaluates_the_flag_with_query_parameters_as_attributes() {
    let response = get(
        "/api/v1/flags/theme",
        "userId=u9&environment=production&plan=pro",
    )
    .send();
    assert_eq!(response.status, 200);
    assert_json_headers(&response);
    assert_eq!(response.header("X-Edgeflags-Snapshot-Version"), Some("7"));
    assert_eq!(
        body(&response),
        json!({ "flagKey": "theme", "enabled": true, "value": "dark", "variant": "dark",
                "reason": "rule-match", "version": 5, "openFeatureReason": "TARGETING_MATCH" })
    );
}

#[test]
fn rest_get_serves_the_default_when_nothing_targets_the_user() {
    let response = get("/api/v1/flags/targeted", "userId=u2&environment=production").send();
    assert_eq!(
        body(&response),
        json!({ "flagKey": "targeted", "enabled": false, "value": false, "variant": "off",
                "reason": "default", "version": 3, "openFeatureReason": "DEFAULT" })
    );
}

#[test]
fn rest_get_reports_a_rollout_without_user_as_error_with_the_default_value() {
    let response = get("/api/v1/flags/rollout", "environment=production").send();
    assert_eq!(response.status, 200);
    let answer = body(&response);
    assert_eq!(answer["openFeatureReason"], "ERROR");
    assert_eq!(answer["errorCode"], "TARGETING_KEY_MISSING");
    assert_eq!(answer["value"], false);
}

#[test]
fn rest_get_of_an_unknown_flag_is_404_flag_not_found() {
    let response = get("/api/v1/flags/nope", "environment=production").send();
    assert_eq!(response.status, 404);
    assert_json_headers(&response);
    assert_eq!(
        body(&response),
        json!({ "error": { "code": "FLAG_NOT_FOUND",
                           "message": "flag \"nope\" does not exist in environment \"production\"",
                           "field": "flagKey" } })
    );
}

#[test]
fn rest_get_rejections_answer_their_status_and_error_code_naming_the_field() {
    // (flag key in the path, query, status, error code, the field it names if checked)
    let cases = [
        // A syntactically invalid flag key.
        (
            "bad%20key",
            "environment=production",
            400,
            "INVALID_FLAG_KEY",
            Some("flagKey"),
        ),
        // GET of the batch path is the flag named "batch".
        (
            "batch",
            "environment=production",
            404,
            "FLAG_NOT_FOUND",
            None,
        ),
        (
            "static-on",
            "userId=u1",
            400,
            "MISSING_ENVIRONMENT",
            Some("environment"),
        ),
        (
            "static-on",
            "environment=prod.uction",
            400,
            "INVALID_ENVIRONMENT",
            None,
        ),
        // A broken query escape names the parameter.
        (
            "static-on",
            "environment=production&plan=%zz",
            400,
            "INVALID_QUERY",
            Some("plan"),
        ),
    ];
    for (key, query, status, code, field) in cases {
        let response = get(&format!("/api/v1/flags/{key}"), query).send();
        assert_eq!(response.status, status, "{key}?{query}");
        let error = &body(&response)["error"];
        assert_eq!(error["code"], code, "{key}?{query}");
        if let Some(field) = field {
            assert_eq!(error["field"], field, "{key}?{query}");
        }
    }
}

#[test]
fn repeated_query_parameters_become_an_array_attribute() {
    let request = HttpRequest {
        method: "GET",
        path: "/api/v1/flags/static-on",
        query: "environment=production&segments=a&segments=b&country=US",
        headers: RequestHeaders::default(),
        body: b"",
    };
    let parsed = parse(&request, &OPEN).unwrap();
    assert_eq!(parsed.context().attributes["segments"], json!(["a", "b"]));
    assert_eq!(parsed.context().attributes["country"], json!("US"));
    assert_eq!(parsed.context().attributes.get("environment"), None);
}

#[test]
fn rest_get_without_a_client_key_is_401_when_keys_are_required() {
    let response = get("/api/v1/flags/static-on", "environment=production")
        .config(KEYED)
        .send();
    assert_eq!(response.status, 401);
    assert_eq!(response.header("WWW-Authenticate"), Some("Bearer"));
    assert_eq!(body(&response)["error"]["code"], "MISSING_CLIENT_KEY");
    assert_eq!(body(&response)["error"]["field"], "Authorization");
}

#[test]
fn a_valid_client_key_selects_its_environment() {
    for (name, value) in [
        (
            "Authorization",
            "Bearer efk.production.0123456789abcdef0123456789abcdef",
        ),
        ("X-Client-Key", KEY),
        ("x-api-key", KEY),
    ] {
        let response = get("/api/v1/flags/static-on", "")
            .header(name, value)
            .config(KEYED)
            .send();
        assert_eq!(response.status, 200, "{name}");
        assert_eq!(body(&response)["value"], true);
    }
}

#[test]
fn an_unknown_well_formed_client_key_is_401() {
    let response = get("/api/v1/flags/static-on", "")
        .header(
            "X-Client-Key",
            "efk.production.ffffffffffffffffffffffffffffffff",
        )
        .config(KEYED)
        .send();
    assert_eq!(response.status, 401);
    assert_eq!(
        body(&response)["error"]["message"],
        "client key rejected: unknown or revoked key"
    );
}

#[test]
fn a_presented_key_is_checked_even_when_keys_are_optional() {
    let response = get("/api/v1/flags/static-on", "")
        .header(
            "X-Client-Key",
            "efk.production.ffffffffffffffffffffffffffffffff",
        )
        .send();
    assert_eq!(response.status, 401);
}

#[test]
fn a_malformed_client_key_is_401() {
    let response = get("/api/v1/flags/static-on", "")
        .header("X-Client-Key", "secret")
        .config(KEYED)
        .send();
    assert_eq!(response.status, 401);
    assert_eq!(body(&response)["error"]["code"], "INVALID_CLIENT_KEY");
}

#[test]
fn a_key_of_another_environment_than_requested_is_403() {
    let response = get("/api/v1/flags/static-on", "environment=staging")
        .header("X-Client-Key", KEY)
        .send();
    assert_eq!(response.status, 403);
    assert_eq!(
        body(&response),
        json!({ "error": { "code": "FORBIDDEN_ENVIRONMENT",
                           "message": "the client key belongs to environment \"production\", not \"staging\"",
                           "field": "environment" } })
    );
}

#[test]
fn wrong_method_is_405_with_allow() {
    let response = post("/api/v1/flags/static-on", "{}").send();
    assert_eq!(response.status, 405);
    assert_eq!(response.header("Allow"), Some("GET, OPTIONS"));
    assert_eq!(body(&response)["error"]["code"], "METHOD_NOT_ALLOWED");
    let response = get("/ofrep/v1/evaluate/flags", "").send();
    assert_eq!(response.status, 405);
    assert_eq!(response.header("Allow"), Some("POST, OPTIONS"));
    assert_eq!(body(&response)["errorCode"], "GENERAL");
}

#[test]
fn options_is_a_cors_preflight() {
    let mut call = get("/ofrep/v1/evaluate/flags/static-on", "");
    call.method = "OPTIONS";
    let response = call.send();
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
    assert_eq!(response.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(
        response.header("Access-Control-Allow-Methods"),
        Some("POST, OPTIONS")
    );
    assert!(response
        .header("Access-Control-Allow-Headers")
        .unwrap()
        .contains("Authorization"));
}

#[test]
fn unknown_routes_are_404() {
    let response = get("/api/v1/other", "").send();
    assert_eq!(response.status, 404);
    assert_eq!(body(&response)["error"]["code"], "NOT_FOUND");
    let response = get("/api/v1/flags/a/b", "").send();
    assert_eq!(response.status, 404);
    assert!(!crate::is_api_path("/healthz"));
    assert!(crate::is_api_path("/ofrep/v1/evaluate/flags"));
}

#[test]
fn oversized_bodies_are_413() {
    let big = "x".repeat(crate::MAX_BODY_BYTES + 1);
    let response = post("/api/v1/flags/batch", &big).send();
    assert_eq!(response.status, 413);
    assert_eq!(body(&response)["error"]["code"], "PAYLOAD_TOO_LARGE");
    let response = crate::payload_too_large("/ofrep/v1/evaluate/flags", 1 << 20);
    assert_eq!(response.status, 413);
    assert_eq!(body(&response)["errorCode"], "GENERAL");
}

#[test]
fn rest_get_without_snapshot_serves_the_fallback_with_503() {
    let response = get("/api/v1/flags/static-on", "environment=production").send_to(None);
    assert_eq!(response.status, 503);
    assert_json_headers(&response);
    assert_eq!(response.header("Retry-After"), Some("5"));
    assert_eq!(
        body(&response),
        json!({ "flagKey": "static-on", "enabled": false, "value": null, "reason": "error",
                "openFeatureReason": "ERROR", "errorCode": "GENERAL",
                "errorMessage": "no flag snapshot is available for environment \"production\"; serving the fallback" })
    );
}

#[test]
fn a_snapshot_of_another_environment_counts_as_none() {
    let response = get("/api/v1/flags/static-on", "environment=staging").send();
    assert_eq!(response.status, 503);
}

// ---- REST API: POST /api/v1/flags/batch ---------------------------------------------------------

#[test]
fn batch_evaluates_the_requested_flags_in_order() {
    let response = post(
        "/api/v1/flags/batch",
        r#"{"userId":"u1","environment":"production","flagKeys":["targeted","nope","kill"],"context":{"country":"US"}}"#,
    )
    .send();
    assert_eq!(response.status, 200);
    assert_json_headers(&response);
    let flags = body(&response)["flags"].clone();
    assert_eq!(flags[0]["flagKey"], "targeted");
    assert_eq!(flags[0]["reason"], "user-targeted");
    assert_eq!(flags[1]["flagKey"], "nope");
    assert_eq!(flags[1]["errorCode"], "FLAG_NOT_FOUND");
    assert_eq!(flags[1]["value"], Value::Null);
    assert_eq!(flags[2]["openFeatureReason"], "DISABLED");
    assert_eq!(flags.as_array().unwrap().len(), 3);
}

#[test]
fn batch_without_flag_keys_evaluates_every_flag_in_snapshot_order() {
    let response = post(
        "/api/v1/flags/batch",
        r#"{"userId":"u1","environment":"production"}"#,
    )
    .send();
    let keys: Vec<Value> = body(&response)["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flagKey"].clone())
        .collect();
    assert_eq!(
        keys,
        [
            json!("static-on"),
            json!("kill"),
            json!("targeted"),
            json!("rollout"),
            json!("theme"),
            json!("checkout")
        ]
    );
}

#[test]
fn batch_top_level_user_id_wins_over_the_context() {
    let response = post(
        "/api/v1/flags/batch",
        r#"{"userId":"u1","environment":"production","flagKeys":["targeted"],"context":{"targetingKey":"u2"}}"#,
    )
    .send();
    assert_eq!(body(&response)["flags"][0]["reason"], "user-targeted");
}

#[test]
fn batch_body_errors_name_the_field() {
    let cases = [
        ("{nope", 400, "INVALID_JSON", "body"),
        ("[1]", 400, "INVALID_FIELD", "body"),
        (
            r#"{"environment":"production","flagKeys":"a"}"#,
            400,
            "INVALID_FIELD",
            "flagKeys",
        ),
        (
            r#"{"environment":"production","flagKeys":["a",2]}"#,
            400,
            "INVALID_FIELD",
            "flagKeys[1]",
        ),
        (
            r#"{"environment":"production","flagKeys":["a","b c"]}"#,
            400,
            "INVALID_FIELD",
            "flagKeys[1]",
        ),
        (
            r#"{"environment":"production","userId":5}"#,
            400,
            "INVALID_FIELD",
            "userId",
        ),
        (r#"{"environment":7}"#, 400, "INVALID_FIELD", "environment"),
        (
            r#"{"environment":"production","context":[]}"#,
            400,
            "INVALID_FIELD",
            "context",
        ),
        (
            r#"{"environment":"production","context":{"targetingKey":1}}"#,
            400,
            "INVALID_FIELD",
            "context.targetingKey",
        ),
        (
            r#"{"flagKeys":["a"]}"#,
            400,
            "MISSING_ENVIRONMENT",
            "environment",
        ),
    ];
    for (input, status, code, field) in cases {
        let response = post("/api/v1/flags/batch", input).send();
        assert_eq!(response.status, status, "{input}");
        assert_json_headers(&response);
        assert_eq!(body(&response)["error"]["code"], code, "{input}");
        assert_eq!(body(&response)["error"]["field"], field, "{input}");
    }
}

#[test]
fn batch_has_an_etag_and_answers_304_when_it_matches() {
    let request = r#"{"userId":"u1","environment":"production"}"#;
    let first = post("/api/v1/flags/batch", request).send();
    let etag = first.header("ETag").unwrap();
    let second = post("/api/v1/flags/batch", request)
        .header("If-None-Match", etag)
        .send();
    assert_eq!(second.status, 304);
    assert!(second.body.is_empty());
    assert_eq!(second.header("ETag"), Some(etag));
}

#[test]
fn batch_without_snapshot_serves_fallbacks_for_the_requested_keys() {
    let response = post(
        "/api/v1/flags/batch",
        r#"{"environment":"production","flagKeys":["a","b"]}"#,
    )
    .send_to(None);
    assert_eq!(response.status, 503);
    let answer = body(&response);
    assert_eq!(answer["flags"][1]["flagKey"], "b");
    assert_eq!(answer["flags"][1]["errorCode"], "GENERAL");
    assert_eq!(answer["error"]["code"], "SNAPSHOT_UNAVAILABLE");
}
