//! wasm-bindgen bindings over `evaluator-core`: the engine of the `@edgeflags/sdk` npm package.
//!
//! The JS layer (`sdk/js/ts/`) is the public API; this crate is its engine, shaped so that a hot
//! evaluation is one call with small integers across the JS↔wasm boundary:
//! - [`Engine`]: one compiled snapshot. Its flag keys, in position order, go to the JS side once
//!   (as JSON), which resolves a flag key to its position with a `Map` of its own.
//! - [`Context`]: an evaluation context converted once from JSON and reused for any number of
//!   evaluations, across snapshots.
//! - [`Engine::evaluate`]: (context, flag position, expected type, now) → one `u32`
//!   ([`packing`]); the served value (with its variant and the flag's version) is a slot number
//!   whose JSON the JS side fetches and parses once per snapshot.
//! - [`Engine::evaluate_json`]: the whole evaluation as JSON, for what the integer cannot say
//!   (error messages, unknown keys, codes newer than this crate).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod packing;

use evaluator_core::{CompiledSnapshot, EvaluationContext, ValueType};
use serde_json::Value;
use wasm_bindgen::prelude::*;

use packing::{Slots, SLOT_SHIFT, SLOW};

/// One compiled snapshot and the slots its evaluations have served.
#[wasm_bindgen]
pub struct Engine {
    snapshot: CompiledSnapshot,
    /// Flag keys by position: evaluator-core evaluates by key only (see sdk/js/README.md).
    keys: Vec<String>,
    slots: Slots,
    warnings: Vec<String>,
    needs_clock: bool,
}

/// An evaluation context: targeting key and attributes, parsed once.
#[wasm_bindgen]
pub struct Context {
    inner: EvaluationContext,
}

#[wasm_bindgen]
impl Context {
    /// Parses an OpenFeature-style JSON object: `targetingKey` (or `userId`) is the targeting
    /// key, every other member an attribute.
    ///
    /// # Errors
    /// When the text is not a JSON object, or its targeting key is neither a string nor null.
    #[wasm_bindgen(constructor)]
    pub fn new(json: &str) -> Result<Context, JsError> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| JsError::new(&format!("context is not JSON: {e}")))?;
        let inner = EvaluationContext::from_json_object(&value).ok_or_else(|| {
            JsError::new("context must be an object whose targetingKey is a string or null")
        })?;
        Ok(Context { inner })
    }
}

/// OpenFeature's typed resolution asked for by the JS side: 0 none, then boolean, string,
/// number, object.
fn value_type(code: u32) -> Option<ValueType> {
    match code {
        1 => Some(ValueType::Boolean),
        2 => Some(ValueType::String),
        3 => Some(ValueType::Number),
        4 => Some(ValueType::Object),
        _ => None,
    }
}

/// Whether evaluation may read `now`: only override expiry does (`docs/flag-model.md`), so a
/// snapshot that never spells `expiresAt` can be evaluated at any time. A `\u` escape could spell
/// it in disguise, so that counts too; text that is not UTF-8 counts as reading it.
fn reads_clock(json: &[u8]) -> bool {
    core::str::from_utf8(json).map_or(true, |text| {
        text.contains("\"expiresAt\"") || text.contains("\\u")
    })
}

/// The millisecond clock value the JS side passes as a number (exact below 2^53).
#[allow(clippy::cast_possible_truncation)]
fn millis(now: f64) -> i64 {
    now as i64
}

#[wasm_bindgen]
impl Engine {
    /// Compiles snapshot JSON (UTF-8 bytes). Invalid flags do not fail the load: they evaluate
    /// to `ERROR`/`PARSE_ERROR` and are listed in [`Engine::warnings`].
    ///
    /// # Errors
    /// When the bytes are not a snapshot at all (not JSON, or no `environment`/`version`).
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(json: &[u8]) -> Result<Engine, JsError> {
        let (snapshot, warnings) =
            CompiledSnapshot::from_json(json).map_err(|e| JsError::new(&e.to_string()))?;
        let keys = snapshot.flag_keys().map(str::to_owned).collect();
        Ok(Engine {
            slots: Slots::new(snapshot.len()),
            snapshot,
            keys,
            warnings: warnings.iter().map(ToString::to_string).collect(),
            needs_clock: reads_clock(json),
        })
    }

    /// [`Engine::from_bytes`] for a string (wasm-bindgen copies it into wasm memory as UTF-8).
    ///
    /// # Errors
    /// As [`Engine::from_bytes`].
    #[wasm_bindgen(js_name = fromString)]
    pub fn from_string(json: &str) -> Result<Engine, JsError> {
        Self::from_bytes(json.as_bytes())
    }

    /// The snapshot's environment key.
    #[must_use]
    pub fn environment(&self) -> String {
        self.snapshot.environment().to_owned()
    }

    /// The snapshot version (a number: versions stay far below 2^53).
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn version(&self) -> f64 {
        self.snapshot.version() as f64
    }

    /// When the origin built the snapshot (RFC 3339, as published).
    #[must_use]
    #[wasm_bindgen(js_name = generatedAt)]
    pub fn generated_at(&self) -> String {
        self.snapshot.generated_at().to_owned()
    }

    /// The snapshot's validation problems, `path: message`, empty when valid.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// Whether evaluations need the real time (see `reads_clock`); when not, the JS side
    /// skips reading the clock on every evaluation.
    #[must_use]
    #[wasm_bindgen(js_name = needsClock)]
    pub fn needs_clock(&self) -> bool {
        self.needs_clock
    }

    /// The flag keys by position, as a JSON array.
    #[must_use]
    #[wasm_bindgen(js_name = flagKeys)]
    pub fn flag_keys(&self) -> String {
        serde_json::to_string(&self.keys).unwrap_or_default()
    }

    /// Evaluates the flag at position `flag` for `context` at `now` (Unix ms), with typed
    /// resolution `expect` (see `value_type`); the result packed as [`packing`] describes.
    pub fn evaluate(&mut self, context: &Context, flag: u32, expect: u32, now: f64) -> u32 {
        let Some(key) = self.keys.get(flag as usize) else {
            return SLOW << SLOT_SHIFT;
        };
        let mut evaluation = self.snapshot.evaluate(key, &context.inner, millis(now));
        if let Some(expected) = value_type(expect) {
            evaluation = evaluation.expect_type(expected);
        }
        self.slots.pack(flag as usize, &evaluation)
    }

    /// Evaluates every flag for `context`, packed, by position.
    #[wasm_bindgen(js_name = evaluateAll)]
    pub fn evaluate_all(&mut self, context: &Context, now: f64) -> Vec<u32> {
        let evaluations = self.snapshot.evaluate_all(&context.inner, millis(now));
        evaluations
            .iter()
            .enumerate()
            .map(|(position, evaluation)| self.slots.pack(position, evaluation))
            .collect()
    }

    /// Slot `slot` as JSON `[variant, value, version]` (`variant` null when none was served).
    #[must_use]
    pub fn slot(&self, slot: u32) -> String {
        self.slots.json(slot).unwrap_or("null").to_owned()
    }

    /// The whole evaluation of `key` as the REST API's flag result JSON (`flagKey`, `enabled`,
    /// `value`, `variant`, `reason` = detail, `version`, `openFeatureReason`, `errorCode`,
    /// `errorMessage`); any key, known or not.
    #[must_use]
    #[wasm_bindgen(js_name = evaluateJson)]
    pub fn evaluate_json(&self, context: &Context, key: &str, expect: u32, now: f64) -> String {
        let mut evaluation = self.snapshot.evaluate(key, &context.inner, millis(now));
        if let Some(expected) = value_type(expect) {
            evaluation = evaluation.expect_type(expected);
        }
        serde_json::to_string(&evaluation).unwrap_or_default()
    }
}

/// The bucket (0..100 000) of `value` under `salt`, as rollouts compute it.
#[must_use]
#[wasm_bindgen]
pub fn bucket(salt: &str, value: &str) -> u32 {
    evaluator_core::bucket(salt, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_without_expiry_does_not_read_the_clock() {
        assert!(!reads_clock(
            br#"{"flags":[{"overrides":[{"userId":"u"}]}]}"#
        ));
        assert!(reads_clock(
            br#"{"overrides":[{"userId":"u","expiresAt":"2026-01-01T00:00:00Z"}]}"#
        ));
        assert!(reads_clock(br#"{"expires\u0041t":1}"#));
        assert!(reads_clock(b"\xff"));
    }
}
