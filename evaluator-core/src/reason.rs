//! OpenFeature's vocabulary for why a value was served and what went wrong.

use core::fmt;
use serde::{Deserialize, Serialize};

/// OpenFeature resolution reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
