//! Every route and error of the evaluation API, through `parse` + `respond`: shared fixture and
//! request helpers here, the REST API routes in `rest` (incl. routing, credentials and limits) and the OFREP ones in `ofrep`.

use alloc::string::String;
use alloc::vec::Vec;
use evaluator_core::CompiledSnapshot;
use serde_json::{json, Value};

use crate::{parse, respond, ApiResponse, Config, HttpRequest, RequestHeaders};

pub(super) const NOW: i64 = 1_790_000_000_000;
/// `printf %s efk.production.0123456789abcdef0123456789abcdef | sha256sum`
pub(super) const KEY: &str = "efk.production.0123456789abcdef0123456789abcdef";
pub(super) const KEY_SHA256: &str =
    "8ea1b6fea071e237e0facd3020a1096c514dd7a0b71ed7dff3319816011817ba";

pub(super) fn snapshot_json(version: u64) -> String {
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

pub(super) fn snapshot(version: u64) -> CompiledSnapshot {
    let (snapshot, warnings) =
        CompiledSnapshot::from_json(snapshot_json(version).as_bytes()).unwrap();
    assert!(
        warnings.is_empty(),
        "fixture must be valid: {:?}",
        warnings.iter().map(|w| w.path.clone()).collect::<Vec<_>>()
    );
    snapshot
}

pub(super) const OPEN: Config = Config {
    require_client_keys: false,
};
pub(super) const KEYED: Config = Config {
    require_client_keys: true,
};

pub(super) struct Call<'a> {
    pub(super) method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
    config: Config,
}

pub(super) fn get(path: &str, query: &str) -> Call<'static> {
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

pub(super) fn post(path: &str, body: &str) -> Call<'static> {
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
    pub(super) fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(super) fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    fn http_request(&self) -> HttpRequest<'_> {
        HttpRequest {
            method: self.method,
            path: self.path,
            query: self.query,
            headers: RequestHeaders::from_pairs(self.headers.iter().copied()),
            body: self.body,
        }
    }

    pub(super) fn send_to(&self, snapshot: Option<&CompiledSnapshot>) -> ApiResponse {
        match parse(&self.http_request(), &self.config) {
            Err(finished) => finished,
            Ok(api_request) => respond(&api_request, snapshot, NOW),
        }
    }

    pub(super) fn send(&self) -> ApiResponse {
        self.send_to(Some(&snapshot(7)))
    }

    /// The answer of an adapter that knows the named environment does not exist.
    pub(super) fn send_to_unknown_environment(&self) -> ApiResponse {
        match parse(&self.http_request(), &self.config) {
            Err(finished) => finished,
            Ok(api_request) => crate::respond_unknown_environment(&api_request),
        }
    }
}

/// An unknown environment with a client key gets byte for byte the answer of a wrong key for an
/// existing environment, on every route: nothing tells a caller which environments exist.
/// Without a key (keys off) it is the no-snapshot fallback.
#[test]
fn unknown_environments_and_unknown_keys_answer_the_same() {
    let routes = || {
        [
            get("/api/v1/flags/static-on", ""),
            post("/api/v1/flags/batch", r#"{"flagKeys":["static-on"]}"#),
            post("/api/v1/flags/batch", "{}"),
            post("/ofrep/v1/evaluate/flags/static-on", r#"{"context":{}}"#),
            post("/ofrep/v1/evaluate/flags", r#"{"context":{}}"#),
        ]
    };
    for (wrong, unknown) in routes().into_iter().zip(routes()) {
        let wrong = wrong
            .config(KEYED)
            .header(
                "X-Client-Key",
                "efk.production.ffffffffffffffffffffffffffffffff",
            )
            .send();
        let unknown = unknown
            .config(KEYED)
            .header(
                "X-Client-Key",
                "efk.nowhere.0123456789abcdef0123456789abcdef",
            )
            .send_to_unknown_environment();
        assert_eq!(wrong.status, 401);
        assert_eq!(unknown, wrong);
    }
    let open_routes = || {
        [
            get("/api/v1/flags/static-on", "environment=nowhere"),
            post("/api/v1/flags/batch", r#"{"environment":"nowhere"}"#),
            post(
                "/ofrep/v1/evaluate/flags",
                r#"{"context":{"environment":"nowhere"}}"#,
            ),
        ]
    };
    for (call, again) in open_routes().into_iter().zip(open_routes()) {
        let unknown = call.send_to_unknown_environment();
        assert!(matches!(unknown.status, 500 | 503), "{}", unknown.status);
        assert_eq!(unknown, again.send_to(None));
    }
}

pub(super) fn body(response: &ApiResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap()
}

#[track_caller]
pub(super) fn assert_json_headers(response: &ApiResponse) {
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert_eq!(response.header("Cache-Control"), Some("private, no-store"));
    assert_eq!(response.header("Access-Control-Allow-Origin"), Some("*"));
}

mod ofrep;
mod rest;
