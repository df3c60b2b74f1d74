//! The OpenFeature provider: the `open-feature` crate's `FeatureProvider` over a [`Client`].

use std::time::Duration;

use evaluator_core::{ErrorCode, Evaluation, Reason, ValueType};
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationReason, EvaluationResult,
    FlagMetadata, StructValue,
};
use serde_json::Value;

use crate::client::Client;
use crate::convert::{context_from_open_feature, json_to_int, json_to_struct};
use crate::status::Status;

/// How long [`FeatureProvider::initialize`] waits for the first snapshot by default.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// An OpenFeature provider evaluating in-process from the client's snapshot.
///
/// ```no_run
/// # async fn example() -> edgeflags_client::Result<()> {
/// use edgeflags_client::{Client, EdgeflagsProvider};
/// use open_feature::{EvaluationContext, OpenFeature};
///
/// let client = Client::builder("https://flags.example.com", "efs.production.0123456789abcdef0123456789abcdef")
///     .build()?;
/// OpenFeature::singleton_mut()
///     .await
///     .set_provider(EdgeflagsProvider::new(client.clone()))
///     .await; // waits for the first snapshot (10 s at most)
/// let flags = OpenFeature::singleton().await.create_client();
/// let context = EvaluationContext::default().with_targeting_key("user-1");
/// let on = flags
///     .get_bool_value("new-checkout-flow", Some(&context), None)
///     .await
///     .unwrap_or(false);
/// # let _ = on;
/// client.shutdown().await;
/// # Ok(()) }
/// ```
///
/// - Reasons are evaluator-core's (`STATIC`, `TARGETING_MATCH`, `SPLIT`, `DEFAULT`,
///   `DISABLED`); a failed evaluation is an `Err` whose code is OpenFeature's
///   (`FLAG_NOT_FOUND`, `TYPE_MISMATCH`, `TARGETING_KEY_MISSING`, `PARSE_ERROR` for a flag whose
///   configuration is invalid, `INVALID_CONTEXT`, `PROVIDER_NOT_READY` before the first
///   snapshot), so the application's default applies.
/// - Flag metadata: `flagVersion`, `snapshotVersion`, `environment` and `reasonDetail` (the
///   step of the evaluation order that decided, e.g. `user-in-segment`, as in OFREP answers).
/// - `status()` follows the client: `NotReady`, `Ready`, `STALE` (serving the last good snapshot
///   while the server is unreachable or sent a bad one), `Error` (no snapshot, retrying).
/// - Integers are numbers without fraction (`5.0` resolves as the integer 5); floats are any
///   number; structures are JSON objects (`null` members are left out; an array holding `null`
///   is a `TYPE_MISMATCH`, OpenFeature values having no `null`).
#[derive(Clone, Debug)]
pub struct EdgeflagsProvider {
    client: Client,
    metadata: ProviderMetadata,
    init_timeout: Duration,
}

impl EdgeflagsProvider {
    /// A provider over `client` (keep a clone to [`Client::shutdown`] it).
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self {
            client,
            metadata: ProviderMetadata::new("edgeflags"),
            init_timeout: DEFAULT_INIT_TIMEOUT,
        }
    }

    /// How long `initialize` (called by `set_provider`) waits for the first snapshot; the
    /// provider reports `NotReady` or `Error` after that until one arrives.
    #[must_use]
    pub fn with_init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// The client underneath.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Evaluates `flag_key` as `expected` and converts the value with `convert`; a value the
    /// conversion refuses is a `TYPE_MISMATCH`.
    fn resolve<T>(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
        expected: ValueType,
        convert: impl FnOnce(&Value) -> Option<T>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let Some(snapshot) = self.client.snapshot() else {
            return Err(error(
                EvaluationErrorCode::ProviderNotReady,
                "no snapshot has been loaded yet".to_owned(),
            ));
        };
        let context = context_from_open_feature(context);
        let evaluation = snapshot.evaluate(flag_key, &context).expect_type(expected);
        if evaluation.reason == Reason::Error {
            return Err(failure(&evaluation));
        }
        let Some(value) = convert(evaluation.value) else {
            return Err(error(
                EvaluationErrorCode::TypeMismatch,
                format!(
                    "flag \"{flag_key}\" serves a value that is not {}",
                    match expected {
                        ValueType::Number => "an integer",
                        ValueType::Object => "an object (without null in its arrays)",
                        other => other.as_str(),
                    }
                ),
            ));
        };
        let mut metadata = FlagMetadata::default()
            .with_value("snapshotVersion", clamp_i64(snapshot.version()))
            .with_value("environment", snapshot.environment())
            .with_value("reasonDetail", evaluation.detail);
        if let Some(version) = evaluation.version {
            metadata.add_value("flagVersion", clamp_i64(version));
        }
        Ok(ResolutionDetails {
            value,
            variant: evaluation.variant.map(str::to_owned),
            reason: Some(reason(evaluation.reason)),
            flag_metadata: Some(metadata),
        })
    }
}

#[open_feature::async_trait]
impl FeatureProvider for EdgeflagsProvider {
    async fn initialize(&mut self, _context: &EvaluationContext) {
        if let Err(error) = self.client.wait_ready(self.init_timeout).await {
            // Not fatal: the client keeps trying, and `status()` says where it stands.
            tracing::warn!(%error, "edgeflags: provider initialised without a snapshot");
        }
    }

    fn status(&self) -> ProviderStatus {
        match self.client.status() {
            Status::Ready => ProviderStatus::Ready,
            Status::Stale => ProviderStatus::STALE,
            Status::Error => ProviderStatus::Error,
            Status::NotReady => ProviderStatus::NotReady,
        }
    }

    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(flag_key, context, ValueType::Boolean, Value::as_bool)
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve(flag_key, context, ValueType::Number, json_to_int)
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve(flag_key, context, ValueType::Number, Value::as_f64)
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve(flag_key, context, ValueType::String, |v| {
            v.as_str().map(str::to_owned)
        })
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        // evaluator-core's `Object` also accepts arrays; an OpenFeature structure is an object.
        self.resolve(flag_key, context, ValueType::Object, |v| {
            v.as_object().and_then(json_to_struct)
        })
    }
}

fn reason(reason: Reason) -> EvaluationReason {
    match reason {
        Reason::Static => EvaluationReason::Static,
        Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        Reason::Split => EvaluationReason::Split,
        Reason::Default => EvaluationReason::Default,
        Reason::Disabled => EvaluationReason::Disabled,
        Reason::Error => EvaluationReason::Error,
        other => EvaluationReason::Other(other.as_str().to_owned()),
    }
}

fn failure(evaluation: &Evaluation<'_>) -> EvaluationError {
    let code = match evaluation.error_code.unwrap_or(ErrorCode::General) {
        ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
        ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
        ErrorCode::TargetingKeyMissing => EvaluationErrorCode::TargetingKeyMissing,
        ErrorCode::ParseError => EvaluationErrorCode::ParseError,
        ErrorCode::InvalidContext => EvaluationErrorCode::InvalidContext,
        // OpenFeature's GENERAL carries its text as the code's display.
        other => EvaluationErrorCode::General(other.as_str().to_owned()),
    };
    let message = evaluation
        .error_message
        .clone()
        .unwrap_or_else(|| format!("flag \"{}\" could not be evaluated", evaluation.flag_key));
    error(code, message)
}

fn error(code: EvaluationErrorCode, message: String) -> EvaluationError {
    EvaluationError {
        code,
        message: Some(message),
    }
}

/// OpenFeature metadata integers are `i64`; versions never come near its end.
fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
