//! Judges the language-neutral conformance files of `tests/conformance/` (format in its
//! README.md). Shared by the native and the wasm32 runner so both apply exactly the same checks:
//! if both pass, native and wasm32 agree on every pinned field of every case.

pub(crate) mod files;

use evaluator_core::model::Snapshot;
use evaluator_core::{
    bucket, parse_rfc3339_millis, validate_snapshot, CompiledSnapshot, EvaluationContext, ValueType,
};
use serde_json::{json, Map, Value};

/// Checks every case of one conformance file and panics with a readable report listing every
/// failing case if any fails. Returns the number of checks (cases, validation cases, vectors).
pub(crate) fn check_file(file: &str, text: &str) -> usize {
    let mut run = Run {
        file,
        checks: 0,
        failures: Vec::new(),
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(doc)) => run.file_document(&doc),
        Ok(_) => run.fail("file", "the top level must be a JSON object".into()),
        Err(e) => run.fail("file", format!("not JSON: {e}")),
    }
    if !run.failures.is_empty() {
        panic!(
            "\n{}\n\n{file}: {} of {} checks failed",
            run.failures.join("\n\n"),
            run.failures.len(),
            run.checks
        );
    }
    run.checks
}

/// The fields a case's `expected` object may pin, in report order.
const EXPECTED_FIELDS: &[&str] = &[
    "value",
    "variant",
    "reason",
    "detail",
    "enabled",
    "errorCode",
    "version",
];

struct Run<'f> {
    file: &'f str,
    checks: usize,
    failures: Vec<String>,
}

impl Run<'_> {
    fn fail(&mut self, what: &str, why: String) {
        self.failures.push(format!(
            "✗ {} › {what}\n    {}",
            self.file,
            why.replace('\n', "\n    ")
        ));
    }

    fn file_document(&mut self, doc: &Map<String, Value>) {
        const KEYS: &[&str] = &[
            "description",
            "now",
            "snapshot",
            "expectedErrors",
            "cases",
            "validationCases",
            "bucketVectors",
        ];
        if let Some(unknown) = doc.keys().find(|k| !KEYS.contains(&k.as_str())) {
            // A typo such as "expectedError" would otherwise silently disable a check.
            self.fail("file", format!("unknown top-level key {unknown:?}"));
        }
        if !doc.get("description").is_some_and(Value::is_string) {
            self.fail("file", "missing \"description\" string".into());
        }
        let mut kinds = 0;
        if let Some(vectors) = doc.get("bucketVectors") {
            kinds += 1;
            self.bucket_vectors(vectors);
        }
        if let Some(cases) = doc.get("validationCases") {
            kinds += 1;
            self.validation_cases(cases);
        }
        if let Some(snapshot) = doc.get("snapshot") {
            kinds += 1;
            self.snapshot_cases(doc, snapshot);
        }
        if kinds != 1 {
            self.fail(
                "file",
                "needs exactly one of \"snapshot\" (+ \"cases\"), \"validationCases\", \"bucketVectors\"".into(),
            );
        }
    }

    fn bucket_vectors(&mut self, vectors: &Value) {
        let Some(vectors) = vectors.as_array() else {
            return self.fail("bucketVectors", "must be an array".into());
        };
        for (i, v) in vectors.iter().enumerate() {
            self.checks += 1;
            let (Some(salt), Some(value), Some(expected)) = (
                v.get("salt").and_then(Value::as_str),
                v.get("value").and_then(Value::as_str),
                v.get("bucket").and_then(Value::as_u64),
            ) else {
                self.fail(
                    &format!("bucketVectors[{i}]"),
                    "needs string salt, string value, integer bucket".into(),
                );
                continue;
            };
            let got = bucket(salt, value);
            if u64::from(got) != expected {
                self.fail(
                    &format!("bucketVectors[{i}]"),
                    format!("bucket({salt:?}, {value:?}): expected {expected}, got {got}"),
                );
            }
        }
    }

    fn validation_cases(&mut self, cases: &Value) {
        let Some(cases) = cases.as_array() else {
            return self.fail("validationCases", "must be an array".into());
        };
        for (i, case) in cases.iter().enumerate() {
            self.checks += 1;
            let name = case_name(case);
            let what = format!("validationCases[{i}] {name:?}");
            let (Some(snapshot), Some(expected)) =
                (case.get("snapshot"), case.get("expectedErrors"))
            else {
                self.fail(&what, "needs \"snapshot\" and \"expectedErrors\"".into());
                continue;
            };
            if let Some(problem) = self.check_validation(snapshot, Some(expected)).err() {
                self.fail(&what, problem);
            }
        }
    }

    /// Validates `snapshot` both ways the API offers (validate_snapshot and the warnings of
    /// compiling it from JSON bytes) and compares each with `expectedErrors`. Returns the
    /// compiled snapshot for evaluation.
    fn check_validation(
        &self,
        snapshot: &Value,
        expected: Option<&Value>,
    ) -> Result<CompiledSnapshot, String> {
        let expected: Vec<&str> = match expected {
            None => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|e| e.as_str().ok_or("expectedErrors must hold strings"))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("expectedErrors must be an array".into()),
        };
        let model: Snapshot = serde_json::from_value(snapshot.clone())
            .map_err(|e| format!("snapshot does not parse as a Snapshot: {e}"))?;
        let validated: Vec<String> = validate_snapshot(&model)
            .iter()
            .map(ToString::to_string)
            .collect();
        let bytes = serde_json::to_vec(snapshot).map_err(|e| e.to_string())?;
        let (compiled, warnings) = CompiledSnapshot::from_json(&bytes)
            .map_err(|e| format!("CompiledSnapshot::from_json failed: {e}"))?;
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        let mut problems = compare_errors("validate_snapshot", &expected, &validated);
        problems.extend(compare_errors(
            "CompiledSnapshot warnings",
            &expected,
            &warnings,
        ));
        if problems.is_empty() {
            Ok(compiled)
        } else {
            Err(problems.join("\n"))
        }
    }

    fn snapshot_cases(&mut self, doc: &Map<String, Value>, snapshot: &Value) {
        let compiled = match self.check_validation(snapshot, doc.get("expectedErrors")) {
            Ok(compiled) => Some(compiled),
            Err(problem) => {
                self.fail("snapshot validation", problem);
                // Evaluation can still be judged when the snapshot compiled; re-compile without
                // the validation comparison to get it.
                serde_json::to_vec(snapshot)
                    .ok()
                    .and_then(|bytes| CompiledSnapshot::from_json(&bytes).ok())
                    .map(|(compiled, _)| compiled)
            }
        };
        let Some(compiled) = compiled else { return };
        let Some(cases) = doc.get("cases").and_then(Value::as_array) else {
            return self.fail("cases", "a snapshot file needs a \"cases\" array".into());
        };
        let file_now = doc.get("now").and_then(Value::as_str);
        for (i, case) in cases.iter().enumerate() {
            self.checks += 1;
            let name = case_name(case);
            if let Err(problem) = evaluate_case(&compiled, case, file_now) {
                self.fail(&format!("cases[{i}] {name:?}"), problem);
            }
        }
    }
}

/// A case's `name`, for messages.
fn case_name(case: &Value) -> &str {
    case.get("name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
}

/// Every expected entry must be a prefix of some reported error, and every reported error must
/// start with some expected entry.
fn compare_errors(source: &str, expected: &[&str], actual: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for e in expected {
        if !actual.iter().any(|a| a.starts_with(e)) {
            problems.push(format!("{source}: expected an error starting with {e:?}"));
        }
    }
    for a in actual {
        if !expected.iter().any(|e| a.starts_with(e)) {
            problems.push(format!("{source}: unexpected error {a:?}"));
        }
    }
    problems
}

fn evaluate_case(
    snapshot: &CompiledSnapshot,
    case: &Value,
    file_now: Option<&str>,
) -> Result<(), String> {
    const KEYS: &[&str] = &[
        "name",
        "flagKey",
        "context",
        "now",
        "expectType",
        "expected",
    ];
    let case = case.as_object().ok_or("a case must be an object")?;
    if let Some(unknown) = case.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unknown case key {unknown:?}"));
    }
    let flag_key = case
        .get("flagKey")
        .and_then(Value::as_str)
        .ok_or("missing \"flagKey\" string")?;
    let context_json = case.get("context").ok_or("missing \"context\"")?;
    let context = EvaluationContext::from_json_object(context_json)
        .ok_or("\"context\" must be an object whose targetingKey/userId is a string or null")?;
    let now = case
        .get("now")
        .and_then(Value::as_str)
        .or(file_now)
        .ok_or("no \"now\" in the case or the file")?;
    let now_ms = parse_rfc3339_millis(now)
        .ok_or_else(|| format!("parse_rfc3339_millis({now:?}) returned None"))?;
    let expected = case
        .get("expected")
        .and_then(Value::as_object)
        .ok_or("missing \"expected\" object")?;
    if let Some(unknown) = expected
        .keys()
        .find(|k| !EXPECTED_FIELDS.contains(&k.as_str()))
    {
        return Err(format!("unknown expected field {unknown:?}"));
    }
    if !expected.contains_key("value") || !expected.contains_key("reason") {
        return Err("every case must pin at least \"value\" and \"reason\"".into());
    }
    let expects_error = expected.get("reason") == Some(&json!("ERROR"));
    if expects_error && !expected.contains_key("errorCode") {
        return Err("a case expecting reason ERROR must pin \"errorCode\"".into());
    }

    let mut evaluation = snapshot.evaluate(flag_key, &context, now_ms);
    if let Some(expect_type) = case.get("expectType") {
        evaluation = evaluation.expect_type(value_type(expect_type)?);
    }
    let actual = json!({
        "value": evaluation.value,
        "variant": evaluation.variant,
        "reason": evaluation.reason.as_str(),
        "detail": evaluation.detail,
        "enabled": evaluation.enabled,
        "errorCode": evaluation.error_code.map(|c| c.as_str()),
        "version": evaluation.version,
        "errorMessage": evaluation.error_message,
    });

    let mut diffs = Vec::new();
    for field in EXPECTED_FIELDS {
        if let Some(want) = expected.get(*field) {
            if actual.get(*field) != Some(want) {
                diffs.push(format!("{field}: expected {want}, got {}", actual[*field]));
            }
        }
    }
    // The result carries errorCode and errorMessage exactly when the reason is ERROR.
    if !expects_error && !actual["errorCode"].is_null() && !expected.contains_key("errorCode") {
        diffs.push(format!(
            "errorCode: expected none, got {}",
            actual["errorCode"]
        ));
    }
    let has_message = actual["errorMessage"]
        .as_str()
        .is_some_and(|m| !m.is_empty());
    let is_error = actual["reason"] == json!("ERROR");
    if is_error != has_message {
        diffs.push(format!(
            "errorMessage: present iff reason is ERROR, got {}",
            actual["errorMessage"]
        ));
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(format!(
        "flagKey {flag_key:?}, now {now}, context {}\n{}\nactual: {actual}",
        Value::Object(context_json.as_object().cloned().unwrap_or_default()),
        diffs.join("\n")
    ))
}

fn value_type(name: &Value) -> Result<ValueType, String> {
    match name.as_str() {
        Some("boolean") => Ok(ValueType::Boolean),
        Some("string") => Ok(ValueType::String),
        Some("number") => Ok(ValueType::Number),
        Some("object") => Ok(ValueType::Object),
        _ => Err(format!(
            "expectType must be boolean, string, number or object, not {name}"
        )),
    }
}
