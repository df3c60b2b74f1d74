//! The repository's own inputs, as the targets and the seed generator use them: the snapshots and
//! contexts of the evaluation conformance files (`tests/conformance/*.json`), a small snapshot of
//! evaluator-core's deterministic generator, and a client key each snapshot allows.
//!
//! The conformance files are embedded, so a fuzz binary needs nothing at run time; only the
//! evaluation files are (the validation files are seeds, read by `examples/seeds.rs`).

use evaluator_core::{testdata, CompiledSnapshot, EvaluationContext};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One conformance file's name and text.
struct File {
    name: &'static str,
    text: &'static str,
}

macro_rules! files {
    ($($name:literal),* $(,)?) => {
        [$(File { name: $name, text: include_str!(concat!("../../tests/conformance/", $name)) }),*]
    };
}

/// Every conformance file with a `snapshot` and evaluation `cases`.
const EVALUATION_FILES: [File; 19] = files![
    "01-static-and-disabled.json",
    "02-operators-equality.json",
    "03-operators-strings.json",
    "04-operators-numeric.json",
    "05-operators-semver.json",
    "06-operators-dates.json",
    "07-operators-exists-segmentmatch.json",
    "08-rules-and-clauses.json",
    "09-evaluation-order.json",
    "10-overrides.json",
    "11-prerequisites.json",
    "12-segments.json",
    "13-percentage-rollout.json",
    "14-weighted-rollouts.json",
    "15-multivariate.json",
    "16-all-basic-targeting-fields.json",
    "17-errors.json",
    "18-degraded-flags.json",
    "22-nesting.json",
];

/// The instant every target evaluates at unless it says otherwise (the conformance files' `now`,
/// 2026-11-24T10:00:00Z, in Unix milliseconds).
pub const NOW_MS: i64 = 1_795_514_400_000;

/// The secret part of the client key of every fixture snapshot; the key of environment `e` is
/// `efk.e.` followed by it.
pub const CLIENT_KEY_SECRET: &str = "0123456789abcdef0123456789abcdef";

/// The client key every fixture snapshot of `environment` allows.
#[must_use]
pub fn client_key(environment: &str) -> String {
    format!("efk.{environment}.{CLIENT_KEY_SECRET}")
}

/// A snapshot the targets evaluate against, as JSON and compiled once.
pub struct Fixture {
    /// Where it comes from: a conformance file name, or `testdata`.
    pub name: &'static str,
    /// The snapshot JSON, with [`client_key`] added to its `clientKeys`.
    pub json: Vec<u8>,
    /// [`Fixture::json`] compiled.
    pub snapshot: CompiledSnapshot,
    /// Whether it compiled without warnings (every fixture but the degraded-flags file).
    pub valid: bool,
    /// The contexts of the file's cases (`targetingKey` and attributes), with their `now`.
    pub contexts: Vec<(Value, i64)>,
}

/// The fixture snapshots: every evaluation conformance file's, then a 40-flag snapshot of
/// evaluator-core's generator (environment `production`). Built on first use.
///
/// # Panics
/// When a conformance file no longer has the shape this reads, or a snapshot no longer compiles.
#[must_use]
pub fn fixtures() -> &'static [Fixture] {
    static FIXTURES: std::sync::OnceLock<Vec<Fixture>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(build)
}

fn build() -> Vec<Fixture> {
    let mut out: Vec<Fixture> = EVALUATION_FILES.iter().map(conformance).collect();
    let generated = serde_json::to_value(testdata::snapshot(40, 10))
        .unwrap_or_else(|e| panic!("the generated snapshot does not serialise: {e}"));
    let contexts = (0..8)
        .map(|n| (context_json(&testdata::context(n)), NOW_MS))
        .collect();
    out.push(fixture("testdata", generated, contexts));
    out
}

fn conformance(file: &File) -> Fixture {
    let document: Value =
        serde_json::from_str(file.text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.name));
    let file_now = document.get("now").and_then(Value::as_str).map(millis);
    let cases = document
        .get("cases")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let contexts = cases
        .iter()
        .filter_map(|case| {
            let now = case.get("now").and_then(Value::as_str).map(millis);
            Some((case.get("context")?.clone(), now.or(file_now)?))
        })
        .collect();
    let snapshot = document
        .get("snapshot")
        .cloned()
        .unwrap_or_else(|| panic!("{}: no snapshot", file.name));
    fixture(file.name, snapshot, contexts)
}

fn fixture(name: &'static str, mut snapshot: Value, contexts: Vec<(Value, i64)>) -> Fixture {
    let environment = snapshot
        .get("environment")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let hash = hex(&Sha256::digest(client_key(&environment).as_bytes()));
    if let Some(object) = snapshot.as_object_mut() {
        object.insert(
            "clientKeys".into(),
            json!([{ "name": "fuzz", "sha256": hash }]),
        );
    }
    let json = serde_json::to_vec(&snapshot).unwrap_or_default();
    let (compiled, warnings) = CompiledSnapshot::from_json(&json)
        .unwrap_or_else(|e| panic!("{name}: the snapshot does not compile: {e}"));
    Fixture {
        name,
        json,
        snapshot: compiled,
        valid: warnings.is_empty(),
        contexts,
    }
}

fn millis(text: &str) -> i64 {
    evaluator_core::parse_rfc3339_millis(text).unwrap_or(NOW_MS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A context as the OpenFeature-style JSON object [`EvaluationContext::from_json_object`] reads.
#[must_use]
pub fn context_json(context: &EvaluationContext) -> Value {
    let mut object = context.attributes.clone();
    if let Some(key) = &context.targeting_key {
        object.insert("targetingKey".into(), Value::String(key.clone()));
    }
    Value::Object(object)
}

/// The fixed contexts the targets evaluate arbitrary snapshots with: a typical user, nobody (no
/// targeting key, no attributes), and a user whose attributes have unusual types.
#[must_use]
pub fn contexts() -> [EvaluationContext; 3] {
    let odd = EvaluationContext::with_targeting_key("")
        .with_attribute("country", json!(["US", "CA"]))
        .with_attribute("plan", json!(null))
        .with_attribute("age", json!(-1.5e300))
        .with_attribute("appVersion", json!("1.2.3-beta.1+build"))
        .with_attribute("email", json!({"nested": true}))
        .with_attribute("createdAt", json!("2026-02-30T25:61:61Z"));
    [testdata::context(1), EvaluationContext::default(), odd]
}

/// The instants arbitrary snapshots are evaluated at: the usual one and both extremes (override
/// expiry compares with them).
pub const INSTANTS: [i64; 3] = [NOW_MS, i64::MIN, i64::MAX];
