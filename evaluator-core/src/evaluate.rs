//! The evaluation order of `docs/flag-model.md` ("Evaluation order"): which step decides, and
//! what it serves. The result, [`Evaluation`], and its JSON live in a module of their own and are
//! re-exported here.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use crate::attribute::{Attr, AttrValue, Known, COUNTRY};
use crate::bucketing::format_integer;
use crate::context::EvaluationContext;
use crate::evaluation::{enabled, NULL};
use crate::flag::{Body, CompiledFlag, CompiledRollout, Serve, Targeting};
use crate::memo::Memo;
use crate::reason::{detail, ErrorCode, Reason};
use crate::segment::Scope;
use crate::snapshot::{CompiledSnapshot, FlagPosition};

pub use crate::evaluation::{Evaluation, ValueType};

/// How deep prerequisites may nest. Validation rejects cycles and deeper chains
/// ([`crate::validate::limits::PREREQUISITE_DEPTH`]); this only keeps the stack bounded should
/// that ever not hold (a deeper chain fails its prerequisite).
#[allow(clippy::cast_possible_truncation)]
pub const MAX_PREREQUISITE_DEPTH: u8 = crate::validate::limits::PREREQUISITE_DEPTH as u8;

/// What went wrong, resolved to a code and message only for the top-level flag.
#[derive(Clone, Copy)]
enum Failure<'a> {
    Invalid(&'a str),
    TargetingKeyMissing,
    AttributeMissing(&'a str),
    NoOnVariation,
}

/// The outcome of the evaluation order, before values are looked up.
#[derive(Clone, Copy)]
struct Outcome<'a> {
    /// Index into the flag's variations; `None` serves the broken flag's fallback value.
    variation: Option<u32>,
    reason: Reason,
    detail: &'static str,
    failure: Option<Failure<'a>>,
}

impl Outcome<'_> {
    const fn serve(variation: u32, reason: Reason, detail: &'static str) -> Self {
        Self {
            variation: Some(variation),
            reason,
            detail,
            failure: None,
        }
    }
}

impl CompiledSnapshot {
    /// Evaluates one flag for `ctx` at `now_ms` (Unix milliseconds; only override expiry reads
    /// it). Never panics; an unknown key gives `FLAG_NOT_FOUND`.
    #[must_use]
    pub fn evaluate<'a>(
        &'a self,
        flag_key: &'a str,
        ctx: &EvaluationContext,
        now_ms: i64,
    ) -> Evaluation<'a> {
        match self.flag_position(flag_key) {
            Some(position) => {
                self.evaluate_position(position.index(), flag_key, ctx, now_ms, &self.memo(), &[])
            }
            None => Evaluation::not_found(flag_key),
        }
    }

    /// Evaluates the flag at `position` (from [`CompiledSnapshot::flag_position`]) like
    /// [`CompiledSnapshot::evaluate`] its key, without looking the key up. A position this
    /// snapshot does not have gives `FLAG_NOT_FOUND` with an empty key.
    #[must_use]
    pub fn evaluate_at(
        &self,
        position: FlagPosition,
        ctx: &EvaluationContext,
        now_ms: i64,
    ) -> Evaluation<'_> {
        self.evaluate_index(position.index(), ctx, now_ms, &self.memo(), &[])
    }

    /// Prepares `ctx` for evaluating many flags of this snapshot at `now_ms` (a batch, OFREP
    /// bulk, an SDK's cache refresh): what one flag works out about the context (segment
    /// memberships, prerequisite outcomes, the targeting key's interned id) then serves the
    /// others. See [`CompiledSnapshot::evaluate_prepared`].
    #[must_use]
    pub fn prepare<'s, 'c>(
        &'s self,
        ctx: &'c EvaluationContext,
        now_ms: i64,
    ) -> PreparedContext<'s, 'c> {
        PreparedContext {
            snapshot: self,
            ctx,
            now_ms,
            memo: self.memo(),
            batch: self.attributes.values(ctx),
        }
    }

    /// Evaluates the flag at `position` for a prepared context, with the same answer as
    /// [`CompiledSnapshot::evaluate_at`] for its context and time. A context prepared by
    /// another snapshot is evaluated afresh (its memo would describe other segments).
    #[must_use]
    pub fn evaluate_prepared(
        &self,
        position: FlagPosition,
        prepared: &PreparedContext<'_, '_>,
    ) -> Evaluation<'_> {
        if !core::ptr::eq(prepared.snapshot, self) {
            return self.evaluate_at(position, prepared.ctx, prepared.now_ms);
        }
        self.evaluate_index(
            position.index(),
            prepared.ctx,
            prepared.now_ms,
            &prepared.memo,
            &prepared.batch,
        )
    }

    /// Evaluates the given flags, in the given order (unknown keys give `FLAG_NOT_FOUND`).
    #[must_use]
    pub fn evaluate_many<'a>(
        &'a self,
        keys: &[&'a str],
        ctx: &EvaluationContext,
        now_ms: i64,
    ) -> Vec<Evaluation<'a>> {
        // One context throughout: what one flag worked out about segments and prerequisites
        // holds for the others.
        let memo = self.memo();
        let batch = if keys.len() > 1 {
            self.attributes.values(ctx)
        } else {
            Vec::new()
        };
        keys.iter()
            .map(|key| match self.flag_position(key) {
                Some(position) => {
                    self.evaluate_position(position.index(), key, ctx, now_ms, &memo, &batch)
                }
                None => Evaluation::not_found(key),
            })
            .collect()
    }

    /// Evaluates every flag, in snapshot order.
    #[must_use]
    pub fn evaluate_all<'a>(&'a self, ctx: &EvaluationContext, now_ms: i64) -> Vec<Evaluation<'a>> {
        let memo = self.memo();
        let batch = self.attributes.values(ctx);
        self.flags
            .iter()
            .enumerate()
            .map(|(position, flag)| {
                self.evaluate_position(position, &flag.key, ctx, now_ms, &memo, &batch)
            })
            .collect()
    }

    /// Evaluates the flag at `index`, under its own key.
    fn evaluate_index(
        &self,
        index: usize,
        ctx: &EvaluationContext,
        now_ms: i64,
        memo: &Memo,
        batch: &[Known<'_>],
    ) -> Evaluation<'_> {
        match self.flags.get(index) {
            Some(flag) => self.evaluate_position(index, &flag.key, ctx, now_ms, memo, batch),
            None => Evaluation::not_found(""),
        }
    }

    /// An empty memo for one context's evaluations (allocates nothing up front).
    fn memo(&self) -> Memo {
        Memo::new(self.segments.len(), self.flags.len())
    }

    fn evaluate_position<'a>(
        &'a self,
        position: usize,
        flag_key: &'a str,
        ctx: &EvaluationContext,
        now_ms: i64,
        memo: &Memo,
        batch: &[Known<'_>],
    ) -> Evaluation<'a> {
        let Some(flag) = self.flags.get(position) else {
            return Evaluation::not_found(flag_key);
        };
        // The most common flags (kill switches, flags without targeting) answer without the
        // evaluation order's call and its set-up.
        let fixed = if flag.context_free {
            context_free(flag)
        } else {
            None
        };
        let outcome = match fixed {
            Some(outcome) => outcome,
            None => self.resolve(flag, ctx, now_ms, 0, memo, batch),
        };
        let (value, variant, variation_index) = served(flag, outcome.variation);
        let (error_code, error_message) = match outcome.failure {
            None => (None, None),
            Some(failure) => {
                let (code, message) = describe(failure);
                (Some(code), Some(message))
            }
        };
        Evaluation {
            flag_key,
            value,
            variant,
            variation_index,
            enabled: enabled(value, outcome.reason, outcome.detail),
            reason: outcome.reason,
            detail: outcome.detail,
            version: Some(flag.version),
            error_code,
            error_message,
        }
    }

    /// Steps 1-8 of "Evaluation order".
    fn resolve<'a>(
        &'a self,
        flag: &'a CompiledFlag,
        ctx: &EvaluationContext,
        now_ms: i64,
        depth: u8,
        memo: &Memo,
        batch: &[Known<'_>],
    ) -> Outcome<'a> {
        let t = match &flag.body {
            Body::Valid(targeting) => targeting.as_ref(),
            Body::Broken {
                message, variation, ..
            } => {
                return Outcome {
                    variation: *variation,
                    reason: Reason::Error,
                    detail: detail::ERROR,
                    failure: Some(Failure::Invalid(message)),
                };
            }
        };
        // 1. Kill switch.
        if !flag.enabled {
            return Outcome::serve(t.off, Reason::Disabled, detail::FLAG_DISABLED);
        }
        if t.context_free {
            return serve_on(t, Reason::Static, detail::STATIC);
        }
        // 2. Prerequisites: each must be on, error-free and serve the required variation. Each
        // prerequisite flag is resolved once per evaluation (a diamond of prerequisites would
        // otherwise cost exponential time); the depth check comes first so that a cut-off
        // answer is never remembered.
        for prerequisite in &t.prerequisites {
            let passed = depth < MAX_PREREQUISITE_DEPTH
                && prerequisite.variation.is_some()
                && memo.prerequisite(prerequisite.flag, || {
                    let other = self.flags.get(prerequisite.flag as usize)?;
                    #[cfg(test)]
                    crate::memo::count::prerequisite();
                    let o = self.resolve(other, ctx, now_ms, depth + 1, memo, batch);
                    o.variation
                        .filter(|_| !matches!(o.reason, Reason::Disabled | Reason::Error))
                }) == prerequisite.variation;
            if !passed {
                return Outcome::serve(t.off, Reason::Default, detail::PREREQUISITE_FAILED);
            }
        }
        // 3-5. Steps that need the targeting key.
        if let Some(user) = ctx.targeting_key.as_deref() {
            if !t.overrides.is_empty() {
                let active = t.overrides.get(user).and_then(|list| {
                    list.iter()
                        .find(|o| o.expires_at.is_none_or(|expires| expires > now_ms))
                });
                if let Some(o) = active {
                    return Outcome::serve(
                        o.variation,
                        Reason::TargetingMatch,
                        detail::USER_OVERRIDE,
                    );
                }
            }
            if !t.excluded.is_empty() && t.excluded.contains(user) {
                return Outcome::serve(t.default, Reason::TargetingMatch, detail::USER_EXCLUDED);
            }
            if !t.user_ids.is_empty() && t.user_ids.contains(user) {
                return serve_on(t, Reason::TargetingMatch, detail::USER_TARGETED);
            }
        }
        // 6. `targetingRules.segments`, then rules in order.
        if !t.segments.is_empty() || !t.rules.is_empty() {
            if let Some(outcome) = self.segments_and_rules(flag, t, ctx, memo, batch) {
                return outcome;
            }
        }
        // 7. Percentage rollout, optionally restricted to countries.
        if t.percentage.is_some() || !t.countries.is_empty() {
            let in_country = t.countries.is_empty() || country_matches(t, ctx, batch);
            if in_country {
                match t.percentage {
                    None => return serve_on(t, Reason::TargetingMatch, detail::COUNTRY_TARGETED),
                    Some(units) => match bucket_of(flag, &t.bucket_by, ctx) {
                        Ok(b) if b < units => {
                            return serve_on(t, Reason::Split, detail::PERCENTAGE_ROLLOUT)
                        }
                        Ok(_) => {}
                        Err(failure) => return error(t.default, failure),
                    },
                }
            }
        }
        // 8. Default.
        if t.is_static {
            return serve_on(t, Reason::Static, detail::STATIC);
        }
        Outcome::serve(t.default, Reason::Default, detail::DEFAULT)
    }
}

impl CompiledSnapshot {
    /// Step 6: `targetingRules.segments`, then the rules in order; `None` when nothing matched.
    fn segments_and_rules<'a>(
        &'a self,
        flag: &'a CompiledFlag,
        t: &'a Targeting,
        ctx: &EvaluationContext,
        memo: &Memo,
        batch: &[Known<'_>],
    ) -> Option<Outcome<'a>> {
        let scope = Scope::new(ctx, &self.segments, &self.interner, 0, memo, batch);
        if t.segments.iter().any(|&s| scope.in_segment(s)) {
            return Some(serve_on(t, Reason::TargetingMatch, detail::USER_IN_SEGMENT));
        }
        let rule = t
            .rules
            .iter()
            .find(|rule| rule.clauses.iter().all(|c| c.matches(&scope)))?;
        Some(match &rule.serve {
            Serve::Variation(v) => Outcome::serve(*v, Reason::TargetingMatch, detail::RULE_MATCH),
            Serve::Rollout(rollout) => match roll(flag, rollout, ctx) {
                Ok(v) => Outcome::serve(v, Reason::Split, detail::RULE_ROLLOUT),
                Err(failure) => error(t.default, failure),
            },
        })
    }
}

/// The outcome of a flag whose answer does not depend on the context: disabled, or enabled
/// without any targeting (what steps 1 and 8 of [`CompiledSnapshot::resolve`] give it).
#[inline]
fn context_free(flag: &CompiledFlag) -> Option<Outcome<'static>> {
    match &flag.body {
        Body::Valid(t) if !flag.enabled => Some(Outcome::serve(
            t.off,
            Reason::Disabled,
            detail::FLAG_DISABLED,
        )),
        Body::Valid(t) if t.context_free => Some(serve_on(t, Reason::Static, detail::STATIC)),
        _ => None,
    }
}

fn serve_on(t: &Targeting, reason: Reason, detail: &'static str) -> Outcome<'static> {
    match t.on {
        Some(on) => Outcome::serve(on, reason, detail),
        // Validation requires onVariation wherever these steps can run; kept total anyway.
        None => error(t.default, Failure::NoOnVariation),
    }
}

fn error(default: u32, failure: Failure<'_>) -> Outcome<'_> {
    Outcome {
        variation: Some(default),
        reason: Reason::Error,
        detail: detail::ERROR,
        failure: Some(failure),
    }
}

fn country_matches(t: &Targeting, ctx: &EvaluationContext, batch: &[Known<'_>]) -> bool {
    let country = match batch.get(COUNTRY) {
        Some(known) => known.value,
        None => ctx.attributes.get("country"),
    };
    match country {
        Some(Value::String(country)) => t.countries.contains(country),
        _ => false,
    }
}

/// The bucket of the context under the flag's salt, by `attr` rendered as the spec says.
fn bucket_of<'a>(
    flag: &CompiledFlag,
    attr: &'a Attr,
    ctx: &EvaluationContext,
) -> Result<u32, Failure<'a>> {
    let missing = || match attr {
        Attr::TargetingKey => Failure::TargetingKeyMissing,
        Attr::Named { name, .. } => Failure::AttributeMissing(name),
    };
    let mut digits = [0u8; 40];
    let text: &[u8] = match attr.lookup(ctx).ok_or_else(missing)? {
        AttrValue::Key(key) => key.as_bytes(),
        AttrValue::Json(Value::String(s)) => s.as_bytes(),
        AttrValue::Json(Value::Bool(true)) => b"true",
        AttrValue::Json(Value::Bool(false)) => b"false",
        AttrValue::Json(Value::Number(n)) => {
            let integer = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i128::from(i),
                (_, Some(u), _) => i128::from(u),
                // 5.0 is the integer 5; only whole numbers within f64's exact range qualify.
                (_, _, Some(f)) if f.abs() < 9_007_199_254_740_992.0 && f == (f as i64) as f64 => {
                    i128::from(f as i64)
                }
                _ => return Err(missing()),
            };
            format_integer(integer, &mut digits)
        }
        AttrValue::Json(_) => return Err(missing()),
    };
    Ok(flag.salt.bucket(text))
}

/// Walks the rollout's cumulative weights to the first that exceeds the bucket.
fn roll<'a>(
    flag: &CompiledFlag,
    rollout: &'a CompiledRollout,
    ctx: &EvaluationContext,
) -> Result<u32, Failure<'a>> {
    let b = bucket_of(flag, &rollout.bucket_by, ctx)?;
    let chosen = rollout
        .thresholds
        .iter()
        .find(|&&(threshold, _)| threshold > b);
    // Weights sum to exactly 100 %, so some threshold exceeds every bucket; fall back to the
    // last variation rather than fail should that ever not hold.
    Ok(chosen.or(rollout.thresholds.last()).map_or(0, |&(_, v)| v))
}

/// The value, variant key and variation index an outcome serves.
fn served(flag: &CompiledFlag, variation: Option<u32>) -> (&Value, Option<&str>, Option<u32>) {
    if let Some(index) = variation {
        if let Some(v) = flag.variations.get(index as usize) {
            return (&v.value, Some(v.key.as_str()), Some(index));
        }
    }
    match &flag.body {
        Body::Broken { value, .. } => (value, None, None),
        Body::Valid(_) => (&NULL, None, None),
    }
}

/// A context prepared for evaluating many flags of one snapshot at one time
/// ([`CompiledSnapshot::prepare`]). Build it once per context and request; it holds what
/// evaluation has already worked out about the context, so it is neither `Sync` nor meant to
/// outlive the request.
pub struct PreparedContext<'s, 'c> {
    snapshot: &'s CompiledSnapshot,
    ctx: &'c EvaluationContext,
    now_ms: i64,
    memo: Memo,
    /// The context's value of each attribute name the snapshot's clauses read, by number.
    batch: Vec<Known<'c>>,
}

impl PreparedContext<'_, '_> {
    /// The context it was prepared from.
    #[must_use]
    pub fn context(&self) -> &EvaluationContext {
        self.ctx
    }

    /// The evaluation time it was prepared for (Unix milliseconds).
    #[must_use]
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

impl core::fmt::Debug for PreparedContext<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedContext")
            .field("ctx", self.ctx)
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

fn describe(failure: Failure<'_>) -> (ErrorCode, String) {
    match failure {
        Failure::Invalid(message) => (ErrorCode::ParseError, String::from(message)),
        Failure::TargetingKeyMissing => (
            ErrorCode::TargetingKeyMissing,
            String::from("the rollout buckets by the targeting key, which the context lacks"),
        ),
        Failure::AttributeMissing(name) => (
            ErrorCode::InvalidContext,
            format!("the rollout buckets by attribute \"{name}\", which the context lacks (or is not a string, integer or boolean)"),
        ),
        Failure::NoOnVariation => (ErrorCode::General, String::from("the flag has no onVariation to serve")),
    }
}

#[cfg(test)]
mod nesting_tests;
#[cfg(test)]
mod tests;
