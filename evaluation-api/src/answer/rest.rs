//! The REST API's answer bodies (`GET /api/v1/flags/{flagKey}`, `POST /api/v1/flags/batch`):
//! the batch wrapper around evaluated flag results, and the fallback results served when no
//! snapshot is available. An evaluated flag result is [`Evaluation`]'s own JSON (its `Serialize`
//! documents every field); the fallback has the same shape, so a client reads both alike.

use alloc::vec::Vec;
use evaluator_core::reason::detail;
use evaluator_core::{ErrorCode, Evaluation, Reason};
use serde::Serialize;
use serde_json::Value;

/// `POST /api/v1/flags/batch`: `{"flags": [flag result, ...]}`, in the order evaluated.
#[derive(Serialize)]
pub(super) struct FlagResults<'a> {
    /// One flag result per requested key (every flag, in snapshot order, when none were named).
    pub(super) flags: &'a [Evaluation<'a>],
}

/// The flag result of a flag that could not be evaluated because no snapshot is available:
/// the same fields as an evaluated result, always an error.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FallbackResult<'a> {
    /// `flagKey`: the key the request named.
    flag_key: &'a str,
    /// `enabled`: always `false`, nobody is in a feature that cannot be evaluated.
    enabled: bool,
    /// `value`: always `null`, there is no configuration to serve a value from.
    value: Value,
    /// `reason`: always [`detail::ERROR`] (`"error"`), the REST API's reason for a failed
    /// evaluation (the other reasons are listed in [`evaluator_core::reason::detail`]).
    reason: &'static str,
    /// `openFeatureReason`: always `ERROR`.
    open_feature_reason: &'static str,
    /// `errorCode`: always `GENERAL` (OpenFeature has no code for a missing snapshot).
    error_code: &'static str,
    /// `errorMessage`: why the snapshot is unavailable.
    error_message: &'a str,
}

impl<'a> FallbackResult<'a> {
    pub(super) fn new(flag_key: &'a str, message: &'a str) -> Self {
        Self {
            flag_key,
            enabled: false,
            value: Value::Null,
            reason: detail::ERROR,
            open_feature_reason: Reason::Error.as_str(),
            error_code: ErrorCode::General.as_str(),
            error_message: message,
        }
    }
}

/// The batch answer without a snapshot: a fallback result per requested key, plus the error.
#[derive(Serialize)]
pub(super) struct FallbackBatch<'a> {
    /// One [`FallbackResult`] per key of `flagKeys` (none when the request named no keys).
    pub(super) flags: Vec<FallbackResult<'a>>,
    /// Why there are no real results, as in the REST API's error body.
    pub(super) error: FallbackError<'a>,
}

/// `{"code", "message"}` of the batch fallback.
#[derive(Serialize)]
pub(super) struct FallbackError<'a> {
    /// `SNAPSHOT_UNAVAILABLE` ([`crate::Error::code`]).
    pub(super) code: &'static str,
    /// The error's description.
    pub(super) message: &'a str,
}
