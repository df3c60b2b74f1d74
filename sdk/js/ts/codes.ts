// The packed result of one evaluation, as the engine (sdk/js/src/packing.rs) writes it. The name
// lists are in the crate's code order; a change there must be made here too (the conformance and
// differential tests catch a mismatch).

/** OpenFeature reasons evaluation gives. */
export type Reason = "STATIC" | "TARGETING_MATCH" | "SPLIT" | "DEFAULT" | "DISABLED" | "ERROR";

/** OpenFeature error codes evaluation gives. */
export type EvaluationErrorCode =
  | "FLAG_NOT_FOUND"
  | "TYPE_MISMATCH"
  | "TARGETING_KEY_MISSING"
  | "PARSE_ERROR"
  | "INVALID_CONTEXT"
  | "GENERAL";

export const REASONS: readonly Reason[] = ["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED", "ERROR"];

export const DETAILS: readonly string[] = [
  "static",
  "default",
  "flag-disabled",
  "prerequisite-failed",
  "user-override",
  "user-excluded",
  "user-targeted",
  "user-in-segment",
  "rule-match",
  "rule-rollout",
  "percentage-rollout",
  "country-targeted",
  "error",
];

/** Index 0 is "no error". */
export const ERROR_CODES: readonly (EvaluationErrorCode | null)[] = [
  null,
  "FLAG_NOT_FOUND",
  "TYPE_MISMATCH",
  "TARGETING_KEY_MISSING",
  "PARSE_ERROR",
  "INVALID_CONTEXT",
  "GENERAL",
];

export const REASON_ERROR = 5;
export const ENABLED_BIT = 1 << 10;
export const SLOT_SHIFT = 11;
/** The slot field's "ask for the whole evaluation as JSON". */
export const SLOW = (1 << (32 - SLOT_SHIFT)) - 1;

/** The value types of OpenFeature's typed resolution, and the engine's numbers for them. */
export type ValueType = "boolean" | "string" | "number" | "object";

export const VALUE_TYPES: Readonly<Record<ValueType, number>> = { boolean: 1, string: 2, number: 3, object: 4 };
