//! The result of evaluating one flag ([`Evaluation`]), its JSON (the REST API's flag result), and
//! OpenFeature's typed resolution over it ([`ValueType`]). Apart from [`crate::evaluate`] because
//! the result is a contract with callers (the evaluation API renders it byte for byte), while
//! the evaluation order that produces it is internal.

use alloc::format;
use alloc::string::String;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;

use crate::json::Kind;
use crate::reason::{detail, ErrorCode, Reason};

pub(crate) static NULL: Value = Value::Null;

/// The result of evaluating one flag for one context.
///
/// Serialized, it is the REST API's flag result (`docs/flag-model.md`, "Result"), members in
/// this order:
/// - `flagKey` ([`Evaluation::flag_key`]), `enabled`, `value`;
/// - `variant`, omitted when no variation was served;
/// - `reason`: the reason detail ([`Evaluation::detail`], one of [`crate::reason::detail`]);
/// - `version`, omitted for an unknown flag;
/// - `openFeatureReason` ([`Evaluation::reason`]);
/// - `errorCode` and `errorMessage`, present exactly when `openFeatureReason` is `ERROR`.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'a> {
    /// The requested key.
    pub flag_key: &'a str,
    /// The served value; `Value::Null` for `FLAG_NOT_FOUND`.
    pub value: &'a Value,
    /// Key of the served variation, when a variation was served.
    pub variant: Option<&'a str>,
    /// Index of the served variation in the flag's `variations` (the implicit `on`, `off` of
    /// a boolean flag without variations are 0 and 1), whenever `variant` is set: lets a
    /// caller that holds the flag's variations (an SDK) skip matching the key. Not serialised.
    pub variation_index: Option<u32>,
    /// "Is this user in the feature?": the value of a boolean flag; for other flags, whether
    /// the user was actively targeted (see `enabled` in `docs/flag-model.md`).
    pub enabled: bool,
    /// OpenFeature reason.
    pub reason: Reason,
    /// The reason detail, e.g. `user-in-segment`: which step decided; one of the constants of
    /// [`crate::reason::detail`].
    pub detail: &'static str,
    /// The flag's version; `None` when not found.
    pub version: Option<u64>,
    /// Set when `reason` is `ERROR`.
    pub error_code: Option<ErrorCode>,
    /// Human description of the error.
    pub error_message: Option<String>,
}

/// The value types of OpenFeature's typed resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `true` / `false`.
    Boolean,
    /// A JSON string.
    String,
    /// A JSON number (integer or float).
    Number,
    /// A JSON object or array.
    Object,
}

impl ValueType {
    /// Lowercase name, as in messages and OFREP.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::String => "string",
            Self::Number => "number",
            Self::Object => "object",
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            Self::Boolean => value.is_boolean(),
            Self::String => value.is_string(),
            Self::Number => value.is_number(),
            Self::Object => value.is_object() || value.is_array(),
        }
    }
}

impl Evaluation<'_> {
    /// OpenFeature typed resolution: if the value is not of `expected`, the result becomes
    /// reason `ERROR`, `TYPE_MISMATCH` (value unchanged so callers can still report it). An
    /// evaluation that already failed keeps its own error.
    #[must_use]
    pub fn expect_type(mut self, expected: ValueType) -> Self {
        if self.reason == Reason::Error || expected.accepts(self.value) {
            return self;
        }
        self.reason = Reason::Error;
        self.detail = detail::ERROR;
        self.error_code = Some(ErrorCode::TypeMismatch);
        self.error_message = Some(format!(
            "flag \"{}\" serves {}, not {}",
            self.flag_key,
            Kind::of(self.value).name(),
            expected.as_str()
        ));
        self.enabled = enabled(self.value, self.reason, self.detail);
        self
    }

    pub(crate) fn not_found(flag_key: &str) -> Evaluation<'_> {
        Evaluation {
            flag_key,
            value: &NULL,
            variant: None,
            variation_index: None,
            enabled: false,
            reason: Reason::Error,
            detail: detail::ERROR,
            version: None,
            error_code: Some(ErrorCode::FlagNotFound),
            error_message: Some(format!("flag \"{flag_key}\" not found")),
        }
    }
}

/// `enabled` of the spec: a boolean value answers itself; otherwise active targeting is "in".
/// An excluded user gets the default variation, so is not in the feature.
pub(crate) fn enabled(value: &Value, reason: Reason, detail: &str) -> bool {
    match value {
        Value::Bool(b) => *b,
        _ => {
            matches!(
                reason,
                Reason::Static | Reason::TargetingMatch | Reason::Split
            ) && detail != detail::USER_EXCLUDED
        }
    }
}

impl Serialize for Evaluation<'_> {
    /// The REST API's flag result; the JSON fields are listed on [`Evaluation`].
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Evaluation", 9)?;
        s.serialize_field("flagKey", self.flag_key)?;
        s.serialize_field("enabled", &self.enabled)?;
        s.serialize_field("value", self.value)?;
        match self.variant {
            Some(variant) => s.serialize_field("variant", variant)?,
            None => s.skip_field("variant")?,
        }
        s.serialize_field("reason", self.detail)?;
        match self.version {
            Some(version) => s.serialize_field("version", &version)?,
            None => s.skip_field("version")?,
        }
        s.serialize_field("openFeatureReason", &self.reason)?;
        match self.error_code {
            Some(code) => s.serialize_field("errorCode", &code)?,
            None => s.skip_field("errorCode")?,
        }
        match &self.error_message {
            Some(message) => s.serialize_field("errorMessage", message)?,
            None => s.skip_field("errorMessage")?,
        }
        s.end()
    }
}
