//! The evaluation cases of the conformance suite (`tests/conformance/*.json`, format in its
//! README.md) through the client's public API: each file's snapshot is served by the fake
//! server, downloaded (gzipped) by a client, and every case evaluated from the client's
//! snapshot. Judged like evaluator-core's runner: each field a case pins must be equal, and an
//! error code and message come exactly with reason `ERROR`. Bucket vectors and validation
//! cases concern evaluator-core alone and are not repeated here.

mod support;

use std::path::PathBuf;

use edgeflags_client::{Client, Context, Snapshot};
use evaluator_core::{parse_rfc3339_millis, ValueType};
use serde_json::{json, Value};
use support::{key_for, FakeServer, WAIT};

const PINNED: &[&str] = &[
    "value",
    "variant",
    "reason",
    "detail",
    "enabled",
    "errorCode",
    "version",
];

#[tokio::test]
async fn every_evaluation_case_of_the_conformance_suite_passes_through_the_client() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let (mut cases, mut failures, mut files_with_cases) = (0, Vec::new(), 0);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let Some(served) = doc.get("snapshot") else {
            continue;
        };
        files_with_cases += 1;
        let server = FakeServer::start(served).await;
        let environment = served["environment"].as_str().unwrap();
        let client = Client::builder(server.url(), key_for(environment))
            .build()
            .unwrap();
        client.wait_ready(WAIT).await.unwrap();
        let snapshot = client.snapshot().unwrap();
        for (i, case) in doc["cases"].as_array().unwrap().iter().enumerate() {
            cases += 1;
            if let Err(problem) = check(&snapshot, case, doc["now"].as_str()) {
                failures.push(format!("{name} cases[{i}] {}: {problem}", case["name"]));
            }
        }
        client.shutdown().await;
    }
    assert!(
        files_with_cases >= 19 && cases >= 450,
        "{files_with_cases} files, {cases} cases"
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("{cases} cases of {files_with_cases} files passed");
}

fn check(snapshot: &Snapshot, case: &Value, file_now: Option<&str>) -> Result<(), String> {
    let flag_key = case["flagKey"].as_str().ok_or("no flagKey")?;
    let context = Context::from_json_object(&case["context"]).ok_or("bad context")?;
    let now = case["now"].as_str().or(file_now).ok_or("no now")?;
    let now_ms = parse_rfc3339_millis(now).ok_or("bad now")?;
    let mut evaluation = snapshot.evaluate_at(flag_key, &context, now_ms);
    if let Some(expected) = case.get("expectType") {
        evaluation = evaluation.expect_type(match expected.as_str() {
            Some("boolean") => ValueType::Boolean,
            Some("string") => ValueType::String,
            Some("number") => ValueType::Number,
            Some("object") => ValueType::Object,
            _ => return Err(format!("bad expectType {expected}")),
        });
    }
    let actual = json!({
        "value": evaluation.value,
        "variant": evaluation.variant,
        "reason": evaluation.reason.as_str(),
        "detail": evaluation.detail,
        "enabled": evaluation.enabled,
        "errorCode": evaluation.error_code.map(|c| c.as_str()),
        "version": evaluation.version,
    });
    let expected = case["expected"].as_object().ok_or("no expected")?;
    let mut diffs: Vec<String> = PINNED
        .iter()
        .filter_map(|field| {
            let want = expected.get(*field)?;
            (actual.get(*field) != Some(want))
                .then(|| format!("{field}: expected {want}, got {}", actual[*field]))
        })
        .collect();
    let is_error = evaluation.reason == evaluator_core::Reason::Error;
    let has_message = evaluation
        .error_message
        .as_deref()
        .is_some_and(|m| !m.is_empty());
    if is_error != evaluation.error_code.is_some() || is_error != has_message {
        diffs.push(format!(
            "error code and message must come exactly with ERROR: {actual}"
        ));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}
