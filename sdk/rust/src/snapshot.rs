//! The snapshot the client serves from: compiled once per version, shared behind an `Arc`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use evaluator_core::{CompiledSnapshot, ErrorCode, Evaluation, EvaluationContext, Reason};
use serde_json::Value;

/// One compiled snapshot version. Cloning is cheap (an `Arc`); a clone keeps serving its
/// version after the client has moved on to a newer one, so a request can evaluate all its
/// flags against one consistent version.
#[derive(Clone, Debug)]
pub struct Snapshot {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    compiled: CompiledSnapshot,
    etag: String,
    warnings: usize,
}

impl Snapshot {
    pub(crate) fn new(compiled: CompiledSnapshot, etag: String, warnings: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                compiled,
                etag,
                warnings,
            }),
        }
    }

    /// The environment, e.g. `production`.
    #[must_use]
    pub fn environment(&self) -> &str {
        self.inner.compiled.environment()
    }

    /// The snapshot version (one more per change of the environment).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.inner.compiled.version()
    }

    /// When the origin built it (RFC 3339).
    #[must_use]
    pub fn generated_at(&self) -> &str {
        self.inner.compiled.generated_at()
    }

    /// The `ETag` the server sent with it (`"<version>-<16 hex>"`).
    #[must_use]
    pub fn etag(&self) -> &str {
        &self.inner.etag
    }

    /// How many validation problems compiling it reported: each broken flag evaluates to
    /// `ERROR`/`PARSE_ERROR` while every other flag serves normally.
    #[must_use]
    pub fn warnings(&self) -> usize {
        self.inner.warnings
    }

    /// The flag keys, in snapshot order.
    pub fn flag_keys(&self) -> impl Iterator<Item = &str> {
        self.inner.compiled.flag_keys()
    }

    /// The compiled snapshot itself, for everything else `evaluator-core` offers.
    #[must_use]
    pub fn compiled(&self) -> &CompiledSnapshot {
        &self.inner.compiled
    }

    /// Evaluates one flag now. Borrows from the snapshot: nothing is copied.
    #[must_use]
    pub fn evaluate<'a>(
        &'a self,
        flag_key: &'a str,
        context: &EvaluationContext,
    ) -> Evaluation<'a> {
        self.evaluate_at(flag_key, context, now_ms())
    }

    /// Evaluates one flag at `now_ms` (Unix milliseconds; only override expiry reads it).
    #[must_use]
    pub fn evaluate_at<'a>(
        &'a self,
        flag_key: &'a str,
        context: &EvaluationContext,
        now_ms: i64,
    ) -> Evaluation<'a> {
        self.inner.compiled.evaluate(flag_key, context, now_ms)
    }

    /// Evaluates every flag for one context, in snapshot order (what the segments and
    /// prerequisites of one flag worked out is reused for the others).
    #[must_use]
    pub fn evaluate_all(&self, context: &EvaluationContext) -> Vec<Evaluation<'_>> {
        self.inner.compiled.evaluate_all(context, now_ms())
    }
}

/// The result of one evaluation, owned: what [`crate::Client::evaluate`] returns, free of the
/// snapshot it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The requested key.
    pub flag_key: String,
    /// The served value (`null` for an unknown flag).
    pub value: Value,
    /// The served variation's key.
    pub variant: Option<String>,
    /// "Is this user in the feature?" (see `enabled` in docs/flag-model.md).
    pub enabled: bool,
    /// OpenFeature's reason.
    pub reason: Reason,
    /// Which step of the evaluation order decided (`user-in-segment`, `rule-match`, …).
    pub detail: &'static str,
    /// The flag's version; `None` for an unknown flag.
    pub flag_version: Option<u64>,
    /// The snapshot version it was evaluated against.
    pub snapshot_version: u64,
    /// Set exactly when `reason` is `ERROR`.
    pub error_code: Option<ErrorCode>,
    /// What went wrong, when `reason` is `ERROR`.
    pub error_message: Option<String>,
}

impl Resolved {
    pub(crate) fn of(evaluation: Evaluation<'_>, snapshot_version: u64) -> Self {
        Self {
            flag_key: evaluation.flag_key.to_owned(),
            value: evaluation.value.clone(),
            variant: evaluation.variant.map(str::to_owned),
            enabled: evaluation.enabled,
            reason: evaluation.reason,
            detail: evaluation.detail,
            flag_version: evaluation.version,
            snapshot_version,
            error_code: evaluation.error_code,
            error_message: evaluation.error_message,
        }
    }
}

/// The wall clock in Unix milliseconds (the evaluator itself reads no clock).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
