//! One evaluation as one `u32`, and the table of served values it points into.
//!
//! A hot evaluation crosses the JS↔wasm boundary once, with small integers in and one integer
//! out: no strings, no objects. The integer names the reason, the reason detail, the error code,
//! `enabled`, and a *slot*: one (variant, value) pair a flag has served, numbered once per
//! snapshot. The JS layer fetches a slot's JSON the first time it sees its number, parses it
//! once, and from then on answers from its own array. `sdk/js/ts/codes.ts` decodes the same
//! layout; the two lists of names below and there must stay in the same order.
//!
//! Layout, from the least significant bit:
//! - bits 0-2: reason, an index into [`REASONS`] ([`UNKNOWN3`] for one this crate does not know);
//! - bits 3-6: detail, an index into [`DETAILS`] ([`UNKNOWN4`] likewise);
//! - bits 7-9: error code, 0 for none, else 1 + an index into [`ERROR_CODES`];
//! - bit 10: `enabled`;
//! - bits 11-31: the slot, or [`SLOW`]: the JS layer then asks for the whole evaluation as JSON
//!   (an unknown reason, detail or code, or more slots than the field holds).

use evaluator_core::reason::detail;
use evaluator_core::{ErrorCode, Evaluation, Reason};

/// OpenFeature reasons, in code order.
pub const REASONS: [&str; 6] = [
    "STATIC",
    "TARGETING_MATCH",
    "SPLIT",
    "DEFAULT",
    "DISABLED",
    "ERROR",
];
/// Reason details (`evaluator_core::reason::detail`), in code order.
pub const DETAILS: [&str; 13] = [
    detail::STATIC,
    detail::DEFAULT,
    detail::FLAG_DISABLED,
    detail::PREREQUISITE_FAILED,
    detail::USER_OVERRIDE,
    detail::USER_EXCLUDED,
    detail::USER_TARGETED,
    detail::USER_IN_SEGMENT,
    detail::RULE_MATCH,
    detail::RULE_ROLLOUT,
    detail::PERCENTAGE_ROLLOUT,
    detail::COUNTRY_TARGETED,
    detail::ERROR,
];
/// OpenFeature error codes, in code order (code 0 is "no error").
pub const ERROR_CODES: [&str; 6] = [
    "FLAG_NOT_FOUND",
    "TYPE_MISMATCH",
    "TARGETING_KEY_MISSING",
    "PARSE_ERROR",
    "INVALID_CONTEXT",
    "GENERAL",
];

/// A 3-bit field's "not one of ours".
pub const UNKNOWN3: u32 = 7;
/// A 4-bit field's "not one of ours".
pub const UNKNOWN4: u32 = 15;
const ENABLED: u32 = 1 << 10;
/// Where the slot field starts.
pub const SLOT_SHIFT: u32 = 11;
/// The slot field's "ask for the JSON instead".
pub const SLOW: u32 = (1 << (32 - SLOT_SHIFT)) - 1;

fn reason_code(reason: Reason) -> u32 {
    match reason {
        Reason::Static => 0,
        Reason::TargetingMatch => 1,
        Reason::Split => 2,
        Reason::Default => 3,
        Reason::Disabled => 4,
        Reason::Error => 5,
        _ => UNKNOWN3,
    }
}

fn detail_code(name: &str) -> u32 {
    DETAILS
        .iter()
        .position(|&d| d == name)
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or(UNKNOWN4)
}

fn error_code(code: Option<ErrorCode>) -> u32 {
    match code {
        None => 0,
        Some(ErrorCode::FlagNotFound) => 1,
        Some(ErrorCode::TypeMismatch) => 2,
        Some(ErrorCode::TargetingKeyMissing) => 3,
        Some(ErrorCode::ParseError) => 4,
        Some(ErrorCode::InvalidContext) => 5,
        Some(ErrorCode::General) => 6,
        Some(_) => UNKNOWN3,
    }
}

/// The (variant, value) pairs each flag has served so far, numbered in order of first sight.
///
/// A pair is recognised by the addresses of its value and variant key inside the compiled
/// snapshot (an evaluation borrows both from it, or from a static null), so recognising one
/// costs a few integer comparisons and no hashing of JSON. The snapshot never changes once
/// compiled, so an address stays the same pair for the engine's life.
#[derive(Default)]
pub struct Slots {
    /// By flag position: (value address, variant address, variant length, slot).
    by_flag: Vec<Vec<(usize, usize, usize, u32)>>,
    /// By slot: `[variant, value, flag version]` as JSON.
    json: Vec<String>,
}

impl Slots {
    /// A table for `flags` flags.
    #[must_use]
    pub fn new(flags: usize) -> Self {
        Self {
            by_flag: (0..flags).map(|_| Vec::new()).collect(),
            json: Vec::new(),
        }
    }

    fn slot(&mut self, flag: usize, evaluation: &Evaluation<'_>) -> u32 {
        let (value, variant) = (evaluation.value, evaluation.variant);
        let value_at = core::ptr::from_ref(value) as usize;
        let (variant_at, variant_len) = variant.map_or((0, 0), |v| (v.as_ptr() as usize, v.len()));
        let Some(seen) = self.by_flag.get_mut(flag) else {
            return SLOW;
        };
        if let Some(&(_, _, _, slot)) = seen
            .iter()
            .find(|&&(v, k, l, _)| v == value_at && k == variant_at && l == variant_len)
        {
            return slot;
        }
        let Ok(slot) = u32::try_from(self.json.len()) else {
            return SLOW;
        };
        if slot >= SLOW {
            return SLOW;
        }
        // Serialising a `&Value`, an optional `&str` and an optional integer cannot fail. The
        // version is the flag's, the same for all its slots.
        self.json
            .push(serde_json::to_string(&(variant, value, evaluation.version)).unwrap_or_default());
        seen.push((value_at, variant_at, variant_len, slot));
        slot
    }

    /// Slot `slot` as JSON `[variant, value, version]`; `None` for a number never handed out.
    #[must_use]
    pub fn json(&self, slot: u32) -> Option<&str> {
        self.json.get(slot as usize).map(String::as_str)
    }

    /// Packs the evaluation of the flag at `flag` (its position in the snapshot).
    pub fn pack(&mut self, flag: usize, evaluation: &Evaluation<'_>) -> u32 {
        let reason = reason_code(evaluation.reason);
        let detail = detail_code(evaluation.detail);
        let code = error_code(evaluation.error_code);
        let slot = if reason == UNKNOWN3 || detail == UNKNOWN4 || code == UNKNOWN3 {
            SLOW
        } else {
            self.slot(flag, evaluation)
        };
        let enabled = if evaluation.enabled { ENABLED } else { 0 };
        reason | detail << 3 | code << 7 | enabled | slot << SLOT_SHIFT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evaluator_core::{CompiledSnapshot, EvaluationContext, ValueType};
    use serde_json::json;

    fn snapshot() -> CompiledSnapshot {
        let json = json!({
            "environment": "test", "version": 3,
            "flags": [
                { "flagKey": "colour", "enabled": true, "version": 2,
                  "variations": [ { "key": "red", "value": "red" }, { "key": "blue", "value": "blue" } ],
                  "offVariation": "red", "defaultVariation": "red", "onVariation": "blue",
                  "targetingRules": { "userIds": ["u1"] } },
                { "flagKey": "off", "enabled": false, "version": 1,
                  "variations": [ { "key": "on", "value": true }, { "key": "off", "value": false } ],
                  "offVariation": "off", "defaultVariation": "off", "onVariation": "on" }
            ],
            "segments": []
        });
        let (compiled, warnings) =
            CompiledSnapshot::from_json(json.to_string().as_bytes()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        compiled
    }

    fn fields(packed: u32) -> (&'static str, &'static str, u32, bool, u32) {
        (
            REASONS[(packed & 7) as usize],
            DETAILS[(packed >> 3 & 15) as usize],
            packed >> 7 & 7,
            packed & ENABLED != 0,
            packed >> SLOT_SHIFT,
        )
    }

    #[test]
    fn a_targeted_user_and_a_default_user_get_two_slots_of_one_flag() {
        let compiled = snapshot();
        let mut slots = Slots::new(compiled.len());
        let u1 = EvaluationContext::with_targeting_key("u1");
        let u2 = EvaluationContext::with_targeting_key("u2");
        let targeted = slots.pack(0, &compiled.evaluate("colour", &u1, 0));
        let default = slots.pack(0, &compiled.evaluate("colour", &u2, 0));
        assert_eq!(
            fields(targeted),
            ("TARGETING_MATCH", "user-targeted", 0, true, 0)
        );
        assert_eq!(fields(default), ("DEFAULT", "default", 0, false, 1));
        assert_eq!(slots.json(0), Some(r#"["blue","blue",2]"#));
        assert_eq!(slots.json(1), Some(r#"["red","red",2]"#));
        assert_eq!(slots.json(2), None);
    }

    #[test]
    fn the_same_served_variation_keeps_its_slot_across_evaluations() {
        let compiled = snapshot();
        let mut slots = Slots::new(compiled.len());
        let ctx = EvaluationContext::with_targeting_key("u2");
        let first = slots.pack(1, &compiled.evaluate("off", &ctx, 0));
        let again = slots.pack(1, &compiled.evaluate("off", &ctx, 0));
        assert_eq!(first, again);
        assert_eq!(fields(first), ("DISABLED", "flag-disabled", 0, false, 0));
        assert_eq!(slots.json(0), Some(r#"["off",false,1]"#));
    }

    #[test]
    fn a_type_mismatch_packs_its_error_code_with_the_value_unchanged() {
        let compiled = snapshot();
        let mut slots = Slots::new(compiled.len());
        let ctx = EvaluationContext::with_targeting_key("u1");
        let evaluation = compiled
            .evaluate("colour", &ctx, 0)
            .expect_type(ValueType::Boolean);
        let packed = slots.pack(0, &evaluation);
        assert_eq!(fields(packed), ("ERROR", "error", 2, false, 0));
        assert_eq!(ERROR_CODES[1], "TYPE_MISMATCH");
        assert_eq!(slots.json(0), Some(r#"["blue","blue",2]"#));
    }

    #[test]
    fn a_position_outside_the_table_asks_for_the_slow_path() {
        let compiled = snapshot();
        let mut slots = Slots::new(1);
        let ctx = EvaluationContext::default();
        let packed = slots.pack(5, &compiled.evaluate("off", &ctx, 0));
        assert_eq!(packed >> SLOT_SHIFT, SLOW);
    }

    #[test]
    fn every_detail_of_evaluator_core_has_a_code() {
        for (i, name) in DETAILS.iter().enumerate() {
            assert_eq!(detail_code(name), i as u32);
        }
        assert_eq!(detail_code("something-new"), UNKNOWN4);
    }
}
