//! Native reference answers for the edge worker's differential test (tests/edge/) and the
//! benchmark snapshot (scripts/bench-edge).
//!
//! ```text
//! cargo run -p evaluation-api --example differential -- snapshot FLAGS SEGMENTS > snapshot.json
//! cargo run -p evaluation-api --example differential -- cases FLAGS SEGMENTS CONTEXTS > cases.json
//! cargo run -p evaluation-api --example differential -- dump FLAGS SEGMENTS N   # one batch body
//! cargo run -p evaluation-api --example differential -- evaluations FLAGS SEGMENTS CONTEXTS
//! ```
//!
//! `evaluations` writes the generated snapshot and, per generated context, evaluator-core's own
//! answers for the npm SDK's differential test (sdk/js/test/): every flag's result
//! (`CompiledSnapshot::evaluate_all`, serialised as the REST flag result, error message
//! included) and a few flags under each typed resolution (`Evaluation::expect_type`), all at
//! the fixed time `nowMs`.
//!
//! `cases` writes the generated snapshot (evaluator-core's deterministic `testdata` generator)
//! and, per generated context, what a correct worker must answer:
//! - `restBatchSha256`: SHA-256 of `{"flags":[...]}` from `CompiledSnapshot::evaluate_all`,
//!   serialised here straight from evaluator-core (independent of evaluation-api);
//! - `requests`: REST API `GET`, OFREP single and (every tenth context) OFREP bulk requests with the
//!   exact status, body (or its SHA-256 when over 4 KB) and ETag `evaluation_api` gives natively.
//!
//! The time is the real clock: generated overrides expire in 2027 and no operator compares with
//! `now`, so the worker (a few seconds later) must answer the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{SystemTime, UNIX_EPOCH};

use evaluation_api::{parse, respond, Config, HttpRequest, RequestHeaders};
use evaluator_core::testdata;
use evaluator_core::{CompiledSnapshot, EvaluationContext, ValueType};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> usize {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("argument {i} must be a number; see the file's doc"))
    };
    let snapshot = testdata::snapshot(number(1), number(2));
    let snapshot_json = serde_json::to_string(&snapshot).unwrap();
    match args.first().map(String::as_str) {
        Some("snapshot") => println!("{snapshot_json}"),
        Some("cases") => {
            let (compiled, warnings) = CompiledSnapshot::compile(snapshot);
            assert!(warnings.is_empty(), "generated snapshot must be valid");
            let now = now_ms();
            let cases: Vec<Value> = (1..=number(3) as u64)
                .map(|n| case(&compiled, n, now))
                .collect();
            let out = json!({ "snapshot": snapshot_json, "generatedAtMs": now, "cases": cases });
            println!("{out}");
        }
        Some("evaluations") => {
            let (compiled, warnings) = CompiledSnapshot::compile(snapshot);
            assert!(warnings.is_empty(), "generated snapshot must be valid");
            // Before the generated overrides' expiry (2027), so some are active.
            let now = 1_795_514_400_000;
            let contexts: Vec<Value> = (1..=number(3) as u64)
                .map(|n| evaluations(&compiled, n, now))
                .collect();
            let out = json!({ "snapshot": snapshot_json, "nowMs": now, "contexts": contexts });
            println!("{out}");
        }
        Some("dump") => {
            let (compiled, _) = CompiledSnapshot::compile(snapshot);
            println!(
                "{}",
                String::from_utf8(rest_batch(&compiled, &context(number(3) as u64), now_ms()))
                    .unwrap()
            );
        }
        _ => panic!("usage: differential snapshot|cases|dump|evaluations ... (see the file's doc)"),
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Context `n`: evaluator-core's generated one, varied so that every evaluation path shows up
/// (no targeting key, segment hints, an array attribute).
fn context(n: u64) -> EvaluationContext {
    let mut context = testdata::context(n);
    if n % 13 == 0 {
        context.targeting_key = None;
    }
    if n % 17 == 0 {
        context.attributes.insert(
            String::from("userSegment"),
            json!(format!("segment-{:03}", n % 200)),
        );
    }
    if n % 19 == 0 {
        context.attributes.insert(
            String::from("segments"),
            json!([format!("segment-{:03}", (n * 7) % 200)]),
        );
    }
    context
}

/// The JSON object a client sends as its context (`targetingKey` + attributes).
fn context_json(context: &EvaluationContext) -> Map<String, Value> {
    let mut object = context.attributes.clone();
    if let Some(key) = &context.targeting_key {
        object.insert(String::from("targetingKey"), json!(key));
    }
    object
}

/// An OFREP request body for `context` (keys are off in the differential run, so the context
/// names the environment).
fn ofrep_body(context: &EvaluationContext) -> String {
    let mut ofrep_context = context_json(context);
    ofrep_context.insert(String::from("environment"), json!("production"));
    json!({ "context": ofrep_context }).to_string()
}

fn rest_batch(compiled: &CompiledSnapshot, context: &EvaluationContext, now: i64) -> Vec<u8> {
    let evaluations = compiled.evaluate_all(context, now);
    // Written by hand: going through `json!` would sort each result's members.
    let mut body = b"{\"flags\":".to_vec();
    serde_json::to_writer(&mut body, &evaluations).unwrap();
    body.push(b'}');
    body
}

fn case(compiled: &CompiledSnapshot, n: u64, now: i64) -> Value {
    let context = context(n);
    let rest_batch_hash = hex(&Sha256::digest(rest_batch(compiled, &context, now)));
    let keys: Vec<&str> = compiled.flag_keys().collect();
    let mut requests = Vec::new();
    for k in 0..3u64 {
        let flag = keys[((n * 31 + k * 337) % keys.len() as u64) as usize];
        requests.push(native(
            compiled,
            "GET",
            &format!("/api/v1/flags/{flag}"),
            &rest_query(&context),
            "",
            now,
        ));
        let body = ofrep_body(&context);
        requests.push(native(
            compiled,
            "POST",
            &format!("/ofrep/v1/evaluate/flags/{flag}"),
            "",
            &body,
            now,
        ));
    }
    if n % 10 == 0 {
        let body = ofrep_body(&context);
        requests.push(native(
            compiled,
            "POST",
            "/ofrep/v1/evaluate/flags",
            "",
            &body,
            now,
        ));
    }
    let mut batch = context_json(&context);
    let user_id = batch.remove("targetingKey");
    json!({
        "n": n,
        "restBatchRequest": { "userId": user_id, "environment": "production", "context": batch },
        "restBatchSha256": rest_batch_hash,
        "requests": requests,
    })
}

/// Context `n` and evaluator-core's answers for it: every flag, then three flags under each typed
/// resolution.
fn evaluations(compiled: &CompiledSnapshot, n: u64, now: i64) -> Value {
    let context = context(n);
    let all = compiled.evaluate_all(&context, now);
    let keys: Vec<&str> = compiled.flag_keys().collect();
    let mut typed = Vec::new();
    for k in 0..3u64 {
        let flag = keys[((n * 31 + k * 337) % keys.len() as u64) as usize];
        for (name, expected) in [
            ("boolean", ValueType::Boolean),
            ("string", ValueType::String),
            ("number", ValueType::Number),
            ("object", ValueType::Object),
        ] {
            let evaluation = compiled.evaluate(flag, &context, now).expect_type(expected);
            typed.push(json!({ "type": name, "result": evaluation }));
        }
    }
    json!({ "n": n, "context": context_json(&context), "all": all, "typed": typed })
}

/// The REST API `GET` query for a context: every attribute as a string parameter (arrays repeat it).
fn rest_query(context: &EvaluationContext) -> String {
    let mut pairs = vec![(String::from("environment"), String::from("production"))];
    if let Some(key) = &context.targeting_key {
        pairs.push((String::from("userId"), key.clone()));
    }
    for (name, value) in &context.attributes {
        match value {
            Value::Array(items) => {
                pairs.extend(items.iter().map(|item| (name.clone(), plain(item))))
            }
            other => pairs.push((name.clone(), plain(other))),
        }
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// What evaluation_api answers natively: the reference the worker must match byte for byte.
fn native(
    compiled: &CompiledSnapshot,
    method: &str,
    path: &str,
    query: &str,
    body: &str,
    now: i64,
) -> Value {
    let request = HttpRequest {
        method,
        path,
        query,
        headers: RequestHeaders::default(),
        body: body.as_bytes(),
    };
    let response = match parse(
        &request,
        &Config {
            require_client_keys: false,
        },
    ) {
        Err(finished) => finished,
        Ok(api_request) => respond(&api_request, Some(compiled), now),
    };
    // Large (bulk) answers are compared by hash to keep the file small.
    let (text, sha256) = if response.body.len() <= 4096 {
        (
            Some(String::from_utf8(response.body.clone()).unwrap()),
            None,
        )
    } else {
        (None, Some(hex(&Sha256::digest(&response.body))))
    };
    json!({
        "method": method,
        "path": path,
        "query": query,
        "body": body,
        "status": response.status,
        "responseBody": text,
        "responseBodySha256": sha256,
        "etag": response.header("ETag"),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
