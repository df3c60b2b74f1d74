//! Writes the seed corpus of every target into `corpus/<target>/` from the repository's own
//! inputs: the conformance snapshots, contexts and validation cases (`tests/conformance`),
//! packed values made with `pack`, signed publish bodies, and the hostile bodies and requests of
//! `origin/tests/hostile.rs`. Run from anywhere:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! scripts/fuzz cmin all    # then drop what adds no coverage
//! ```
//!
//! Files are named by a hash of their bytes, so writing again adds nothing twice. Inputs over a
//! target's size limit (`scripts/fuzz`, `-max_len`) are left out: libFuzzer would cut them.

use std::fs;
use std::path::{Path, PathBuf};

use edgeflags_fuzz::fixtures::{self, client_key, Fixture};
use edgeflags_fuzz::request::Request;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// `-max_len` of each target in `scripts/fuzz`.
const MAX_LEN: [(&str, usize); 5] = [
    ("snapshot_compile", 65_536),
    ("packed", 65_536),
    ("evaluate", 16_384),
    ("publish_verify", 4_096),
    ("admin_decode", 16_384),
];

/// The validation conformance files: snapshots that are invalid in every documented way.
const VALIDATION_FILES: [&str; 3] = [
    "19-validation.json",
    "20-validation-limits.json",
    "21-budgets.json",
];

struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn add(&mut self, target: &str, bytes: &[u8]) {
        let limit = MAX_LEN
            .iter()
            .find(|(name, _)| *name == target)
            .map_or(0, |(_, len)| *len);
        if bytes.len() > limit {
            return;
        }
        let dir = self.root.join(target);
        let hash: String = Sha256::digest(bytes)
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = dir.join(format!("seed-{hash}"));
        if !path.exists() {
            fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            self.written += 1;
        }
    }
}

fn main() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut corpus = Corpus {
        root: crate_dir.join("corpus"),
        written: 0,
    };
    let conformance = crate_dir.join("../tests/conformance");
    let validation: Vec<Vec<u8>> = VALIDATION_FILES
        .iter()
        .flat_map(|name| validation_snapshots(&conformance.join(name)))
        .collect();

    snapshots(&mut corpus, &validation);
    evaluate(&mut corpus);
    publish(&mut corpus);
    admin(&mut corpus);
    println!(
        "wrote {} new seeds under {}",
        corpus.written,
        corpus.root.display()
    );
}

fn validation_snapshots(path: &Path) -> Vec<Vec<u8>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let document: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    document["validationCases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|case| serde_json::to_vec(&case["snapshot"]).ok())
        .collect()
}

/// `snapshot_compile` and `packed`: every snapshot as JSON, the valid ones packed too, and
/// documents that are barely snapshots.
fn snapshots(corpus: &mut Corpus, validation: &[Vec<u8>]) {
    let edge_cases: [&[u8]; 6] = [
        b"{\"environment\":\"e\",\"version\":1}",
        b"{\"environment\":\"e\",\"version\":1,\"flags\":[{}],\"segments\":[{}]}",
        b"{\"environment\":\"e\",\"version\":1,\"flags\":[{\"flagKey\":\"a\"},{\"flagKey\":\"a\"}]}",
        b"{\"environment\":\"\",\"version\":18446744073709551615,\"clientKeys\":[{\"sha256\":\"zz\"}]}",
        b"{\"environment\":\"e\",\"version\":1,\"flags\":[{\"flagKey\":\"a\",\"prerequisites\":[{\"flagKey\":\"a\",\"variation\":\"on\"}]}]}",
        b"[]",
    ];
    let fixtures = fixtures::fixtures();
    let all = fixtures
        .iter()
        .map(|f| f.json.clone())
        .chain(validation.iter().cloned())
        .chain(edge_cases.iter().map(|b| b.to_vec()));
    for json in all {
        corpus.add("snapshot_compile", &json);
        corpus.add("packed", &json);
        if let Ok(packed) = evaluator_core::packed::pack(&json) {
            corpus.add("packed", &packed);
        }
    }
}

/// `evaluate`: each file's case contexts against its snapshot, and requests of every route,
/// credential and hostile shape against each snapshot.
fn evaluate(corpus: &mut Corpus) {
    for (index, fixture) in fixtures::fixtures().iter().enumerate() {
        let snapshot = u8::try_from(index << 2).unwrap_or(0);
        for (context, _) in &fixture.contexts {
            let mut input = vec![snapshot];
            input.extend(serde_json::to_vec(context).unwrap_or_default());
            corpus.add("evaluate", &input);
        }
        for (keys_required, request) in requests(fixture) {
            let mut input = vec![snapshot | 1 | if keys_required { 2 } else { 0 }];
            input.extend(request.encode());
            corpus.add("evaluate", &input);
        }
    }
}

fn get(path: String, query: &str) -> Request {
    Request {
        method: "GET".into(),
        path,
        query: query.into(),
        ..Request::default()
    }
}

fn post(path: &str, body: &Value) -> Request {
    Request {
        method: "POST".into(),
        path: path.into(),
        body: serde_json::to_vec(body).unwrap_or_default(),
        ..Request::default()
    }
}

fn with_header(mut request: Request, name: &str, value: &str) -> Request {
    request.headers.push((name.into(), value.into()));
    request
}

/// Requests for `fixture`'s environment: `(client keys required, request)`.
fn requests(fixture: &Fixture) -> Vec<(bool, Request)> {
    let environment = fixture.snapshot.environment();
    let key = client_key(environment);
    let flags: Vec<&str> = fixture.snapshot.flag_keys().collect();
    let first = flags.first().copied().unwrap_or("missing");
    let context = fixture
        .contexts
        .first()
        .map_or_else(|| json!({"targetingKey": "user-1"}), |(c, _)| c.clone());
    let user = context["targetingKey"]
        .as_str()
        .unwrap_or("user-1")
        .to_owned();
    let env_query = format!("environment={environment}");
    let mut out = vec![
        (
            false,
            get(
                format!("/api/v1/flags/{first}"),
                &format!("{env_query}&userId={user}&country=US&plan=pro&plan=free"),
            ),
        ),
        (
            true,
            with_header(
                get(format!("/api/v1/flags/{first}"), &format!("userId={user}")),
                "Authorization",
                &format!("Bearer {key}"),
            ),
        ),
        (
            false,
            post(
                "/api/v1/flags/batch",
                &json!({"environment": environment, "userId": user,
                    "flagKeys": flags.iter().take(4).collect::<Vec<_>>(), "context": context}),
            ),
        ),
        (
            true,
            with_header(
                post("/api/v1/flags/batch", &json!({"context": context})),
                "X-Client-Key",
                &key,
            ),
        ),
        (
            true,
            with_header(
                post(
                    &format!("/ofrep/v1/evaluate/flags/{first}"),
                    &json!({"context": context}),
                ),
                "X-API-Key",
                &key,
            ),
        ),
        (
            false,
            with_header(
                post(
                    "/ofrep/v1/evaluate/flags",
                    &json!({"context": {"targetingKey": user, "environment": environment}}),
                ),
                "If-None-Match",
                "\"stale\"",
            ),
        ),
        (
            false,
            Request {
                method: "OPTIONS".into(),
                path: "/ofrep/v1/evaluate/flags".into(),
                ..Request::default()
            },
        ),
    ];
    // After origin/tests/hostile.rs, `evaluation()`.
    let hostile = [
        get("/api/v1/flags/a%00".into(), &env_query),
        get(format!("/api/v1/flags/{}", "k".repeat(256)), &env_query),
        get("/api/v1/flags/%3Cscript%3E".into(), &env_query),
        get(format!("/api/v1/flags/{first}"), "environment=%00"),
        get(format!("/api/v1/flags/{first}"), "userId=u1"),
        get(
            format!("/api/v1/flags/{first}"),
            &format!("{env_query}&userId=%FF"),
        ),
        with_header(
            get(format!("/api/v1/flags/{first}"), ""),
            "x-client-key",
            &format!("efk.{environment}.nothex"),
        ),
        with_header(
            get(format!("/api/v1/flags/{first}"), ""),
            "x-client-key",
            &format!("efk.{environment}.00000000000000000000000000000000"),
        ),
        with_header(
            get(format!("/api/v1/flags/{first}"), &env_query),
            "x-client-key",
            &client_key("staging"),
        ),
        with_header(
            get(format!("/api/v1/flags/{first}"), ""),
            "Authorization",
            &format!("Basic {key}"),
        ),
        Request {
            method: "DELETE".into(),
            path: format!("/api/v1/flags/{first}"),
            ..Request::default()
        },
        get("/api/v1/%00".into(), ""),
        Request {
            method: "POST".into(),
            path: "/api/v1/flags/batch".into(),
            body: b"{\"environment\":".to_vec(),
            ..Request::default()
        },
        post("/api/v1/flags/batch", &json!([])),
        post(
            "/api/v1/flags/batch",
            &json!({"environment": environment, "flagKeys": first}),
        ),
        post(
            "/api/v1/flags/batch",
            &json!({"environment": environment, "flagKeys": [1]}),
        ),
        post(
            "/api/v1/flags/batch",
            &json!({"environment": environment, "userId": 5}),
        ),
        post(
            "/api/v1/flags/batch",
            &json!({"environment": environment, "context": []}),
        ),
        post("/api/v1/flags/batch", &json!({"environment": 5})),
        post(
            "/api/v1/flags/batch",
            &json!({"environment": format!("{environment}\u{0}")}),
        ),
        Request {
            method: "POST".into(),
            path: "/api/v1/flags/batch".into(),
            body: b"{\"environment\":\"\xFF\"}".to_vec(),
            ..Request::default()
        },
        Request {
            method: "POST".into(),
            path: "/api/v1/flags/batch".into(),
            body: format!(
                "{{\"environment\":\"{environment}\",\"context\":{{\"a\":{}1{}}}}}",
                "[".repeat(200),
                "]".repeat(200)
            )
            .into_bytes(),
            ..Request::default()
        },
        get("/api/v1/flags/batch".into(), ""),
        Request {
            method: "POST".into(),
            path: format!("/ofrep/v1/evaluate/flags/{first}"),
            body: b"{\"context\":".to_vec(),
            ..Request::default()
        },
        post(
            &format!("/ofrep/v1/evaluate/flags/{first}"),
            &json!({"context": "x"}),
        ),
        post(
            &format!("/ofrep/v1/evaluate/flags/{first}"),
            &json!({"context": {"targetingKey": 5, "environment": environment}}),
        ),
        post(
            &format!("/ofrep/v1/evaluate/flags/{first}"),
            &json!({"context": {"environment": 5}}),
        ),
        post(
            "/ofrep/v1/evaluate/flags/a%00",
            &json!({"context": {"environment": environment}}),
        ),
        post("/ofrep/v1/evaluate/flags", &json!([1])),
        get("/ofrep/v1/evaluate/flags".into(), ""),
    ];
    out.extend(hostile.into_iter().map(|r| (false, r)));
    out
}

/// `publish_verify`: `timestamp \n signature \n body`, signed and not.
fn publish(corpus: &mut Corpus) {
    let Ok(secret) = publish_protocol::Secret::new(b"edgeflags-fuzz-secret-of-32-byte") else {
        panic!("the fuzz secret is too short");
    };
    let now: u64 = 1_700_000_000;
    let mut add = |timestamp: &str, signature: &str, body: &[u8]| {
        let mut input = format!("{timestamp}\n{signature}\n").into_bytes();
        input.extend_from_slice(body);
        corpus.add("publish_verify", &input);
    };
    let small = br#"{"environment":"production","version":1}"#;
    for body in [&small[..], b"", b"\n\n\xff"] {
        let signature = publish_protocol::sign(&secret, now, body);
        add(&now.to_string(), &signature, body);
        add(&format!(" {now} "), &format!(" {signature} "), body);
        add("01700000000", &signature, body);
        add(
            &now.to_string(),
            &signature.to_uppercase().replace("V1=", "v1="),
            body,
        );
        add(&now.to_string(), &signature[3..], body);
        add(&now.to_string(), &signature[..66], body);
        add("soon", &signature, body);
        add("1", &signature, body);
        add("-9223372036854775808", &signature, body);
        add(&now.to_string(), "v1=zz", body);
        add(&now.to_string(), "sha256=abc", body);
    }
    for fixture in fixtures::fixtures().iter().take(3) {
        let signature = publish_protocol::sign(&secret, now + 250, &fixture.json);
        add(&(now + 250).to_string(), &signature, &fixture.json);
    }
}

/// `admin_decode`: each stored environment's own flags and segments as create and update
/// bodies, overrides, keys, `If-Match` values, and the hostile bodies of `origin/tests/hostile.rs`.
fn admin(corpus: &mut Corpus) {
    let environments: Vec<&Fixture> = fixtures::fixtures().iter().filter(|f| f.valid).collect();
    let mut add = |route: u8, environment: usize, body: &[u8]| {
        let mut input = vec![route, u8::try_from(environment).unwrap_or(0)];
        input.extend_from_slice(body);
        corpus.add("admin_decode", &input);
    };
    const WITH_QUERY: u8 = 1 << 3;
    for (index, fixture) in environments.iter().enumerate() {
        let snapshot: Value = serde_json::from_slice(&fixture.json).unwrap_or(Value::Null);
        let environment = snapshot["environment"].clone();
        for flag in snapshot["flags"].as_array().into_iter().flatten() {
            let body = serde_json::to_vec(flag).unwrap_or_default();
            add(0, index, &body);
            add(1, index, &body);
            let mut with_environment = flag.clone();
            with_environment["environment"] = environment.clone();
            add(
                WITH_QUERY,
                index,
                &serde_json::to_vec(&with_environment).unwrap_or_default(),
            );
            let patch = json!({"flagKey": flag["flagKey"], "enabled": flag["enabled"] != true,
                "prerequisites": flag.get("prerequisites").cloned().unwrap_or(json!([]))});
            add(1, index, &serde_json::to_vec(&patch).unwrap_or_default());
            if let Some(variation) = flag["variations"][0]["key"].as_str() {
                let body = json!({"variation": variation, "expiresAt": "2027-01-01T00:00:00Z"});
                add(4, index, format!("user-1\n{body}").as_bytes());
            }
        }
        for segment in snapshot["segments"].as_array().into_iter().flatten() {
            let body = serde_json::to_vec(segment).unwrap_or_default();
            add(2, index, &body);
            add(3, index, &body);
        }
        add(4, index, b"user-2\n{\"enabled\":true}");
    }
    // The nesting environment with a segment outside its chain (the target's last one).
    if let Some(nesting) = environments.iter().find(|f| f.name == "22-nesting.json") {
        let snapshot: Value = serde_json::from_slice(&nesting.json).unwrap_or(Value::Null);
        for segment in snapshot["segments"].as_array().into_iter().flatten() {
            add(
                3,
                environments.len(),
                &serde_json::to_vec(segment).unwrap_or_default(),
            );
        }
    }
    // After origin/tests/hostile.rs: malformed_json, wrong_types, unstorable_characters.
    let malformed: [&[u8]; 24] = [
        b"{",
        b"{\"flagKey\": \"x\"",
        b"{\"flagKey\": \"x",
        b"{\"flagKey\": \"x\",}",
        b"{flagKey: \"x\"}",
        b"{'flagKey': 'x'}",
        b"not json",
        b"",
        b" \n\t ",
        b"{\"flagKey\":\"x\"}{\"flagKey\":\"y\"}",
        b"{\"flagKey\":\"x\"} garbage",
        b"\xEF\xBB\xBF{\"flagKey\":\"x\"}",
        b"{\"flagKey\":\"x\",\"description\":\"\xFF\xFE\"}",
        b"{\"flagKey\":\"x\",\"description\":\"\xC0\xAF\"}",
        b"{\"flagKey\":\"x\",\"description\":\"\\ud800\"}",
        b"{\"flagKey\":\"x\",\"description\":\"\\udc00\\ud800\"}",
        b"{\"flagKey\":\"x\",\"description\":\"\\x41\"}",
        b"{\"flagKey\":\"x\",\"description\":\"a\x00b\"}",
        b"{\"flagKey\":\"x\",\"description\":\"a\x01b\"}",
        b"{\"flagKey\":\"x\",\"targetingRules\":{\"percentage\":NaN}}",
        b"{\"flagKey\":\"x\",\"targetingRules\":{\"percentage\":1e400}}",
        b"{\"flagKey\":\"x\" /* hi */}",
        b"[]",
        b"{\"",
    ];
    for body in malformed {
        add(0, 0, body);
    }
    let nul = "a\u{0}b";
    let flag_bodies = [
        json!({"flagKey": 42}),
        json!({"flagKey": "x", "enabled": "yes"}),
        json!({"flagKey": "x", "targetingRules": {"percentage": "25"}}),
        json!({"flagKey": "x", "targetingRules": {"percentage": 100.5}}),
        json!({"flagKey": "x", "targetingRules": {"percentage": -1}}),
        json!({"flagKey": "x", "targetingRules": {"userIds": [null]}}),
        json!({"flagKey": "x", "targetingRules": {"rules": [{"clauses": "all"}]}}),
        json!({"flagKey": "x", "variations": [{"key": 1, "value": true}]}),
        json!({"flagKey": "x", "overrides": [{"userId": 5, "enabled": true}]}),
        json!({"flagKey": "x", "enabeld": true}),
        json!({"flagKey": "x", "targetingRules": {"rules": [{"clauses": [
            {"attribute": "a", "operator": "in", "values": ["x"], "negate": "no"}]}]}}),
        json!({"flagKey": "x", "environment": 5}),
        json!({"flagKey": "x", "environment": "staging"}),
        json!({"flagKey": "x", "variations": [{"key": "on", "value": {"k": [1, nul]}}]}),
        json!({"flagKey": "x", "description": "d", "x\u{0}y": 1}),
        json!({"flagKey": "ab\u{202E}c"}),
        json!({"flagKey": "k".repeat(256)}),
        json!({"flagKey": "x", "overrides": [{"userId": "u", "variation": "on", "expiresAt": "tomorrow"}]}),
        json!({"flagKey": "x", "overrides": [{"userId": "u", "enabled": true}, {"userId": "u", "enabled": false}]}),
    ];
    for body in &flag_bodies {
        add(0, 0, &serde_json::to_vec(body).unwrap_or_default());
    }
    for body in [
        json!({"segmentKey": 1}),
        json!({"segmentKey": "s", "included": "u1"}),
        json!({"segmentKey": "s", "excluded": [null]}),
        json!({"segmentKey": "s", "rules": [{"clauses": [{"attribute": "a", "operator": "in", "values": [nul]}]}]}),
    ] {
        add(2, 0, &serde_json::to_vec(&body).unwrap_or_default());
    }
    for body in [
        json!({"variation": 5}),
        json!({"enabled": "true"}),
        json!({"variation": "dark", "expiresAt": 1_700_000_000}),
        json!({"variation": "dark", "expiresAt": "2026-13-01T00:00:00Z"}),
    ] {
        add(4, 0, format!("user-3\n{body}").as_bytes());
    }
    for body in [
        json!({"key": 5}),
        json!({"key": "qa", "name": []}),
        json!({"key": ""}),
        json!({"key": "has space", "name": "a.b"}),
        json!({"key": nul}),
        json!({"key": "qa", "name": "web"}),
    ] {
        add(5, 0, &serde_json::to_vec(&body).unwrap_or_default());
    }
    for value in [
        "3",
        "\"3\"",
        "W/\"12\"",
        "*",
        "abc",
        "\"\u{e9}\"",
        "18446744073709551616",
    ] {
        add(6, 0, value.as_bytes());
    }
}
