//! OFREP's answer bodies (`POST /ofrep/v1/evaluate/flags[/{key}]`): `evaluationSuccess` and
//! `evaluationFailure` per flag, and the bulk wrapper with its metadata.

use crate::stream::EventStream;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use evaluator_core::{ErrorCode, Evaluation, Reason};
use serde::Serialize;
use serde_json::Value;

/// One OFREP flag answer: `evaluationSuccess` or `evaluationFailure`.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum OfrepItem<'a> {
    Success(OfrepSuccess<'a>),
    Failure(OfrepFailure<'a>),
}

#[derive(Serialize)]
pub(super) struct OfrepSuccess<'a> {
    key: &'a str,
    value: &'a Value,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    metadata: FlagMetadata,
}

/// OFREP metadata values must be booleans, strings or numbers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlagMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    flag_version: Option<u64>,
    /// `reasonDetail`: the REST API's reason (`user-in-segment`, `rule-match`, ...; listed in
    /// [`evaluator_core::reason::detail`]), finer than OpenFeature's.
    reason_detail: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OfrepFailure<'a> {
    key: &'a str,
    pub(super) error_code: &'static str,
    error_details: String,
}

impl<'a> OfrepItem<'a> {
    pub(super) fn from_evaluation(evaluation: &'a Evaluation<'a>) -> Self {
        if evaluation.reason == Reason::Error {
            let code = evaluation.error_code.unwrap_or(ErrorCode::General);
            let details = match (&evaluation.error_message, code) {
                (Some(message), _) => message.clone(),
                (None, ErrorCode::FlagNotFound) => {
                    format!("flag {:?} was not found", evaluation.flag_key)
                }
                (None, code) => format!(
                    "flag {:?} could not be evaluated: {code}",
                    evaluation.flag_key
                ),
            };
            return Self::Failure(OfrepFailure {
                key: evaluation.flag_key,
                error_code: code.as_str(),
                error_details: details,
            });
        }
        Self::Success(OfrepSuccess {
            key: evaluation.flag_key,
            value: evaluation.value,
            reason: evaluation.reason.as_str(),
            variant: evaluation.variant,
            metadata: FlagMetadata {
                flag_version: evaluation.version,
                reason_detail: evaluation.detail,
            },
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OfrepBulk<'a> {
    pub(super) flags: Vec<OfrepItem<'a>>,
    /// ADR-0008's stream of this environment's changes, when the adapter serves streams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) event_streams: Option<[EventStream; 1]>,
    pub(super) metadata: BulkMetadata<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BulkMetadata<'a> {
    pub(super) environment: &'a str,
    pub(super) snapshot_version: u64,
}
