//! Every route and error of the evaluation API, through `parse` + `respond`.

use alloc::string::String;
use alloc::vec::Vec;
use evaluator_core::CompiledSnapshot;
use serde_json::{json, Value};

use crate::{parse, respond, ApiResponse, Config, HttpRequest, RequestHeaders};

const NOW: i64 = 1_790_000_000_000;
/// `printf %s efk.production.0123456789abcdef0123456789abcdef | sha256sum`
const KEY: &str = "efk.production.0123456789abcdef0123456789abcdef";
const KEY_SHA256: &str = "8ea1b6fea071e237e0facd3020a1096c514dd7a0b71ed7dff3319816011817ba";

fn snapshot_json(version: u64) -> String {
    let snapshot = json!({
        "environment": "production",
        "version": version,
        "generatedAt": "2026-11-24T10:00:00Z",
        "flags": [
            { "flagKey": "static-on", "enabled": true, "version": 1 },
            { "flagKey": "kill", "enabled": false, "version": 2 },
            { "flagKey": "targeted", "enabled": true, "version": 3, "targetingRules": { "userIds": ["u1"] } },
            { "flagKey": "rollout", "enabled": true, "version": 4, "targetingRules": { "percentage": 50 } },
            {
                "flagKey": "theme", "enabled": true, "version": 5,
                "variations": [ { "key": "light", "value": "light" }, { "key": "dark", "value": "dark" } ],
                "defaultVariation": "light",
                "targetingRules": { "rules": [
                    { "clauses": [ { "attribute": "plan", "operator": "in", "values": ["pro"] } ], "variation": "dark" }
                ] }
            },
            {
                "flagKey": "checkout", "enabled": true, "version": 6,
                "variations": [ { "key": "v1", "value": { "flow": "v1" } }, { "key": "v2", "value": { "flow": "v2" } } ],
                "defaultVariation": "v1", "onVariation": "v2",
                "targetingRules": { "countries": ["US"] }
            }
        ],
        "clientKeys": [ { "name": "web", "sha256": KEY_SHA256 } ]
    });
    String::from_utf8(serde_json::to_vec(&snapshot).unwrap()).unwrap()
}

fn snapshot(version: u64) -> CompiledSnapshot {
    let (snapshot, warnings) =
        CompiledSnapshot::from_json(snapshot_json(version).as_bytes()).unwrap();
    assert!(
        warnings.is_empty(),
        "fixture must be valid: {:?}",
        warnings.iter().map(|w| w.path.clone()).collect::<Vec<_>>()
    );
    snapshot
}

const OPEN: Config = Config {
    require_client_keys: false,
};
const KEYED: Config = Config {
    require_client_keys: true,
};

struct Call<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
    config: Config,
}

fn get(path: &str, query: &str) -> Call<'static> {
    // Leaking is fine in tests: it keeps the call builders free of lifetimes.
    Call {
        method: "GET",
        path: String::from(path).leak(),
        query: String::from(query).leak(),
        headers: Vec::new(),
        body: b"",
        config: OPEN,
    }
}

fn post(path: &str, body: &str) -> Call<'static> {
    Call {
        method: "POST",
        path: String::from(path).leak(),
        query: "",
        headers: Vec::new(),
        body: String::from(body).leak().as_bytes(),
        config: OPEN,
    }
}

impl<'a> Call<'a> {
    fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    fn send_to(&self, snapshot: Option<&CompiledSnapshot>) -> ApiResponse {
        let request = HttpRequest {
            method: self.method,
            path: self.path,
            query: self.query,
            headers: RequestHeaders::from_pairs(self.headers.iter().copied()),
            body: self.body,
        };
        match parse(&request, &self.config) {
            Err(finished) => finished,
            Ok(api_request) => respond(&api_request, snapshot, NOW),
        }
    }

    fn send(&self) -> ApiResponse {
        self.send_to(Some(&snapshot(7)))
    }
}

fn body(response: &ApiResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap()
}

#[track_caller]
fn assert_json_headers(response: &ApiResponse) {
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert_eq!(response.header("Cache-Control"), Some("private, no-store"));
    assert_eq!(response.header("Access-Control-Allow-Origin"), Some("*"));
}

// ---- seed: GET /api/v1/flags/{flagKey} ------------------------------------------------------

#[test]
fn seed_get_evaluates_the_flag_with_query_parameters_as_attributes() {
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
fn seed_get_serves_the_default_when_nothing_targets_the_user() {
    let response = get("/api/v1/flags/targeted", "userId=u2&environment=production").send();
    assert_eq!(
        body(&response),
        json!({ "flagKey": "targeted", "enabled": false, "value": false, "variant": "off",
                "reason": "default", "version": 3, "openFeatureReason": "DEFAULT" })
    );
}

#[test]
fn seed_get_reports_a_rollout_without_user_as_error_with_the_default_value() {
    let response = get("/api/v1/flags/rollout", "environment=production").send();
    assert_eq!(response.status, 200);
    let answer = body(&response);
    assert_eq!(answer["openFeatureReason"], "ERROR");
    assert_eq!(answer["errorCode"], "TARGETING_KEY_MISSING");
    assert_eq!(answer["value"], false);
}

#[test]
fn seed_get_of_an_unknown_flag_is_404_flag_not_found() {
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
fn seed_get_of_a_syntactically_invalid_flag_key_is_400() {
    let response = get("/api/v1/flags/bad%20key", "environment=production").send();
    assert_eq!(response.status, 400);
    assert_eq!(body(&response)["error"]["code"], "INVALID_FLAG_KEY");
    assert_eq!(body(&response)["error"]["field"], "flagKey");
}

#[test]
fn get_of_batch_path_is_the_flag_named_batch() {
    let response = get("/api/v1/flags/batch", "environment=production").send();
    assert_eq!(response.status, 404);
    assert_eq!(body(&response)["error"]["code"], "FLAG_NOT_FOUND");
}

#[test]
fn seed_get_without_environment_is_400_naming_the_field() {
    let response = get("/api/v1/flags/static-on", "userId=u1").send();
    assert_eq!(response.status, 400);
    assert_eq!(body(&response)["error"]["code"], "MISSING_ENVIRONMENT");
    assert_eq!(body(&response)["error"]["field"], "environment");
}

#[test]
fn seed_get_with_an_invalid_environment_is_400() {
    let response = get("/api/v1/flags/static-on", "environment=prod.uction").send();
    assert_eq!(response.status, 400);
    assert_eq!(body(&response)["error"]["code"], "INVALID_ENVIRONMENT");
}

#[test]
fn seed_get_with_a_broken_query_escape_is_400_naming_the_parameter() {
    let response = get("/api/v1/flags/static-on", "environment=production&plan=%zz").send();
    assert_eq!(response.status, 400);
    assert_eq!(body(&response)["error"]["code"], "INVALID_QUERY");
    assert_eq!(body(&response)["error"]["field"], "plan");
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
fn seed_get_without_a_client_key_is_401_when_keys_are_required() {
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
fn seed_get_without_snapshot_serves_the_fallback_with_503() {
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

// ---- seed: POST /api/v1/flags/batch ---------------------------------------------------------

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
