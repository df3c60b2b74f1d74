//! OpenFeature's vocabulary for why a value was served and what went wrong.

#[cfg(feature = "openapi")] // utoipa's derive names them unqualified, as in a std crate
use alloc::{string::String, vec::Vec};
use core::fmt;
use serde::{Deserialize, Serialize};

/// OpenFeature resolution reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Reason {
    /// An enabled flag with no targeting served its on value.
    Static,
    /// A targeting step (override, user list, segment, rule) chose the value.
    TargetingMatch,
    /// A percentage or weighted rollout chose the value.
    Split,
    /// Nothing matched (or a prerequisite failed): the default value.
    Default,
    /// The flag is switched off.
    Disabled,
    /// Evaluation failed; see the error code.
    Error,
}

impl Reason {
    /// The OpenFeature spelling, e.g. `TARGETING_MATCH`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Static => "STATIC",
            Self::TargetingMatch => "TARGETING_MATCH",
            Self::Split => "SPLIT",
            Self::Default => "DEFAULT",
            Self::Disabled => "DISABLED",
            Self::Error => "ERROR",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// OpenFeature error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No flag with that key in the snapshot.
    FlagNotFound,
    /// The served value is not of the type the caller asked for.
    TypeMismatch,
    /// A rollout needs the targeting key and the context has none.
    TargetingKeyMissing,
    /// The flag's configuration or the snapshot could not be parsed.
    ParseError,
    /// The context lacks or mistypes an attribute evaluation needs.
    InvalidContext,
    /// Anything else.
    General,
}

impl ErrorCode {
    /// The OpenFeature spelling, e.g. `FLAG_NOT_FOUND`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FlagNotFound => "FLAG_NOT_FOUND",
            Self::TypeMismatch => "TYPE_MISMATCH",
            Self::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            Self::ParseError => "PARSE_ERROR",
            Self::InvalidContext => "INVALID_CONTEXT",
            Self::General => "GENERAL",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reason details: which step of the evaluation order (`docs/flag-model.md`) decided. Each is
/// the `reason` of the REST API's flag result (`GET /api/v1/flags/{flagKey}`, `POST
/// /api/v1/flags/batch`) and OFREP's `metadata.reasonDetail`, and [`crate::Evaluation::detail`].
/// Finer than [`Reason`]: `TARGETING_MATCH` alone does not say whether a list, a segment or a rule
/// matched. The strings are part of the wire format and never change.
pub mod detail {
    /// Step 1: the flag is disabled.
    pub const FLAG_DISABLED: &str = "flag-disabled";
    /// Step 2: a prerequisite failed.
    pub const PREREQUISITE_FAILED: &str = "prerequisite-failed";
    /// Step 3: a user override.
    pub const USER_OVERRIDE: &str = "user-override";
    /// Step 4: the user is in `excludedUserIds`.
    pub const USER_EXCLUDED: &str = "user-excluded";
    /// Step 5: the user is in `userIds`.
    pub const USER_TARGETED: &str = "user-targeted";
    /// Step 6: the user is in one of the flag's `targetingRules.segments`.
    pub const USER_IN_SEGMENT: &str = "user-in-segment";
    /// Step 6: a rule serving a variation matched.
    pub const RULE_MATCH: &str = "rule-match";
    /// Step 6: a rule serving a rollout matched.
    pub const RULE_ROLLOUT: &str = "rule-rollout";
    /// Step 7: the user's bucket is inside the percentage.
    pub const PERCENTAGE_ROLLOUT: &str = "percentage-rollout";
    /// Step 7: `countries` without `percentage` matched.
    pub const COUNTRY_TARGETED: &str = "country-targeted";
    /// Step 8: an enabled flag without targeting.
    pub const STATIC: &str = "static";
    /// Step 8: nothing matched.
    pub const DEFAULT: &str = "default";
    /// Evaluation failed (including flag not found).
    pub const ERROR: &str = "error";
}
