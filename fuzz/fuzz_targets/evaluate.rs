//! Fixed, realistic snapshots (every evaluation conformance file's, and one of evaluator-core's
//! generator, each allowing one client key) against arbitrary input, in two modes chosen by the
//! first byte:
//!
//! - bit 0 clear: the rest is an evaluation context as JSON; every flag is evaluated for it
//!   (each result well-formed, one per flag, deterministic, the entry points agreeing:
//!   [`edgeflags_fuzz::check::evaluate_all`]);
//! - bit 0 set: the rest is an HTTP request in the text form of [`edgeflags_fuzz::request`],
//!   parsed by [`evaluation_api::parse`] (bit 1: whether client keys are required) and answered
//!   by [`evaluation_api::respond`].
//!
//! The other bits pick the snapshot. For requests it checks that parsing never answers 5xx; that
//! a request for the snapshot's environment never gets 500 or 503 from a snapshot that compiled
//! without warnings (500 is only the fallback for a missing snapshot); that a request for another
//! environment gets exactly the no-snapshot fallback; that answers are deterministic, JSON where
//! they say so, and carry the CORS and cache headers; and that an ETag sent back in
//! `If-None-Match` gives 304.
#![no_main]

use edgeflags_fuzz::check;
use edgeflags_fuzz::fixtures::{self, Fixture};
use edgeflags_fuzz::request::Request;
use evaluation_api::{parse, respond, Api, ApiResponse, Config};
use evaluator_core::EvaluationContext;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let all = fixtures::fixtures();
    let fixture = &all[usize::from(control >> 2) % all.len()];
    if control & 1 == 0 {
        context(fixture, rest);
    } else {
        let config = Config {
            require_client_keys: control & 2 != 0,
        };
        http(fixture, &Request::decode(rest), &config);
    }
});

fn context(fixture: &Fixture, json: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let Some(ctx) = EvaluationContext::from_json_object(&value) else {
        return;
    };
    for now in fixtures::INSTANTS {
        check::evaluate_all(&fixture.snapshot, &ctx, now);
    }
}

fn http(fixture: &Fixture, request: &Request, config: &Config) {
    let http = request.http();
    let parsed = parse(&http, config);
    assert_eq!(parse(&http, config), parsed, "parsing is deterministic");
    let api_request = match parsed {
        Ok(api_request) => api_request,
        Err(finished) => {
            assert!(
                finished.status < 500,
                "parse answered {}: {}",
                finished.status,
                String::from_utf8_lossy(&finished.body)
            );
            well_formed(&finished);
            return;
        }
    };
    let snapshot = &fixture.snapshot;
    let now = fixtures::NOW_MS;
    let response = respond(&api_request, Some(snapshot), now);
    assert_eq!(
        respond(&api_request, Some(snapshot), now),
        response,
        "answers are deterministic"
    );
    well_formed(&response);

    if api_request.environment() != snapshot.environment() {
        // An adapter would have found no snapshot: the documented fallback, whichever it holds.
        let fallback = respond(&api_request, None, now);
        assert_eq!(
            response, fallback,
            "another environment's snapshot is no snapshot"
        );
        let expected = match api_request.api() {
            Api::Rest => 503,
            Api::Ofrep => 500,
        };
        assert_eq!(fallback.status, expected, "the no-snapshot fallback");
        return;
    }
    if fixture.valid {
        assert!(
            response.status < 500,
            "{}: {} answered {}: {}",
            fixture.name,
            request.path,
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    if response.status == 200 {
        if let Some(etag) = response.header("etag") {
            let mut again = http;
            again.headers.if_none_match = Some(etag);
            let Ok(conditional) = parse(&again, config) else {
                panic!("adding If-None-Match made the request invalid");
            };
            let answer = respond(&conditional, Some(snapshot), now);
            assert_eq!(answer.status, 304, "If-None-Match with the ETag just sent");
            assert_eq!(answer.header("etag"), Some(etag));
        }
    }
}

/// Headers every answer carries, and a JSON body wherever the content type says so.
fn well_formed(response: &ApiResponse) {
    assert_eq!(
        response.header("cache-control"),
        Some("private, no-store"),
        "{response:?}"
    );
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("*"),
        "{response:?}"
    );
    if response.header("content-type") == Some("application/json") {
        if let Err(e) = serde_json::from_slice::<Value>(&response.body) {
            panic!("a JSON answer is not JSON: {e}: {response:?}");
        }
    }
}
