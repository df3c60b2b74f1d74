//! Matching compiled clauses against a context: the hot path of evaluation. Kept small for the
//! common case (one string attribute under a string operator); everything else goes through one
//! general, non-inlined path so the common one stays compact.

use serde_json::Value;

use crate::attribute::{any_elem, Attr, AttrValue, Elem};
use crate::segment::Scope;
use crate::text;
use crate::version::SemVer;

use super::{CompiledClause, Op, ValueSet};

impl ValueSet {
    /// Membership of a string, by its interned id (`None`: equal to no operand in the snapshot).
    #[inline]
    fn contains_str(&self, id: Option<u32>) -> bool {
        id.is_some_and(|id| self.strings.contains(id))
    }

    /// Membership of a single string attribute `s`; `id` gives its interned id, asked only
    /// for a set too long to scan.
    #[inline]
    fn contains_single_str(&self, s: &str, id: impl FnOnce() -> Option<u32>) -> bool {
        if self.short {
            let s = s.as_bytes();
            return self
                .short_strings
                .iter()
                .any(|o| text::bytes_eq(o.as_bytes(), s));
        }
        self.contains_str(id())
    }

    /// Membership of one element; `id` is the interned id when the element is a string (`None`
    /// for strings no operand in the snapshot equals).
    fn contains(&self, elem: Elem<'_>, id: Option<u32>) -> bool {
        match elem {
            Elem::Str(_) => id.is_some_and(|id| self.strings.contains(id)),
            Elem::Num(n) => self.numbers.contains(&n),
            Elem::Bool(true) => self.has_true,
            Elem::Bool(false) => self.has_false,
            Elem::Other => false,
        }
    }
}

impl CompiledClause {
    /// Whether the clause holds for the scope's context (see "Rule and clause" in the spec).
    ///
    /// Kept small for the common case, a single string attribute under a string operator;
    /// everything else goes through [`CompiledClause::general`].
    pub(crate) fn matches(&self, scope: &Scope<'_>) -> bool {
        let value = match &self.op {
            Op::SegmentMatch(segments) => {
                return segments.iter().any(|&s| scope.in_segment(s)) != self.negate
            }
            Op::Exists => {
                return self
                    .attr
                    .lookup_cached(scope.ctx, scope.batch, &scope.cache)
                    .is_some()
                    != self.negate
            }
            // A missing attribute never matches, whatever `negate` says.
            _ => match self
                .attr
                .lookup_cached(scope.ctx, scope.batch, &scope.cache)
            {
                Some(value) => value,
                None => return false,
            },
        };
        let matched = match (&self.op, value.as_single_str()) {
            (Op::In(set), Some(s)) => set
                .contains_single_str(s, || self.attr.interned_id(s, scope.interner, &scope.cache)),
            (Op::NotIn(set), Some(s)) => !set
                .contains_single_str(s, || self.attr.interned_id(s, scope.interner, &scope.cache)),
            (Op::EndsWith(suffixes), Some(s)) => suffixes.iter().any(|p| text::ends_with(s, p)),
            (Op::StartsWith(prefixes), Some(s)) => prefixes.iter().any(|p| text::starts_with(s, p)),
            _ => self.general(value, scope),
        };
        matched != self.negate
    }

    /// Every operator over any attribute value (arrays element by element), before `negate`.
    #[inline(never)]
    fn general(&self, value: AttrValue<'_>, scope: &Scope<'_>) -> bool {
        // In a batch, a `semver*` attribute holding one string was parsed once for all flags.
        if let Some(parsed) = self.batch_version(value, scope) {
            match &self.op {
                Op::SemverEq(versions) => return parsed.is_some_and(|v| versions.contains(v)),
                Op::SemverLt(bound) => {
                    return bound
                        .as_deref()
                        .is_some_and(|b| parsed.is_some_and(|v| v < b))
                }
                Op::SemverGt(bound) => {
                    return bound
                        .as_deref()
                        .is_some_and(|b| parsed.is_some_and(|v| v > b))
                }
                _ => {}
            }
        }
        let id_of = |e: Elem<'_>| match e {
            Elem::Str(s) => scope.interner.get(s),
            _ => None,
        };
        match &self.op {
            Op::In(set) => any_elem(value, |e| set.contains(e, id_of(e))),
            Op::NotIn(set) => any_elem(value, |e| !set.contains(e, id_of(e))),
            op => op_matches(op, value),
        }
    }

    /// The batch's parsed version of the clause's attribute, when `value` (read through the
    /// batch) is one string the batch parsed: `Some(None)` when it is not a version.
    fn batch_version<'b>(
        &self,
        value: AttrValue<'_>,
        scope: &'b Scope<'_>,
    ) -> Option<Option<&'b SemVer>> {
        let (Attr::Named { global, .. }, AttrValue::Json(Value::String(_))) = (&self.attr, value)
        else {
            return None;
        };
        let known = scope.batch.get(*global as usize)?;
        known.version.as_ref().map(Option::as_ref)
    }

    /// The segments this clause refers to (for cycle detection).
    pub(crate) fn segment_refs(&self) -> &[u32] {
        match &self.op {
            Op::SegmentMatch(segments) => segments,
            _ => &[],
        }
    }
}

fn op_matches(op: &Op, value: AttrValue<'_>) -> bool {
    match op {
        Op::Contains(needles) => {
            str_test(value, |s| needles.iter().any(|n| s.contains(n.as_str())))
        }
        Op::StartsWith(prefixes) => {
            str_test(value, |s| prefixes.iter().any(|p| text::starts_with(s, p)))
        }
        Op::EndsWith(suffixes) => {
            str_test(value, |s| suffixes.iter().any(|p| text::ends_with(s, p)))
        }
        Op::Matches(regexes) => str_test(value, |s| regexes.iter().any(|r| r.is_match(s))),
        Op::Lt(bound) => num_test(value, *bound, |a, b| a < b),
        Op::Lte(bound) => num_test(value, *bound, |a, b| a <= b),
        Op::Gt(bound) => num_test(value, *bound, |a, b| a > b),
        Op::Gte(bound) => num_test(value, *bound, |a, b| a >= b),
        Op::SemverEq(versions) => semver_test(value, |v| versions.contains(v)),
        Op::SemverLt(bound) => bound
            .as_deref()
            .is_some_and(|b| semver_test(value, |v| v < b)),
        Op::SemverGt(bound) => bound
            .as_deref()
            .is_some_and(|b| semver_test(value, |v| v > b)),
        Op::Before(bound) => {
            bound.is_some_and(|b| any_elem(value, |e| e.millis().is_some_and(|ms| ms < b)))
        }
        Op::After(bound) => {
            bound.is_some_and(|b| any_elem(value, |e| e.millis().is_some_and(|ms| ms > b)))
        }
        // Handled by `CompiledClause::matches` and `general`.
        Op::In(_) | Op::NotIn(_) | Op::Exists | Op::SegmentMatch(_) => false,
    }
}

#[inline]
fn str_test(value: AttrValue<'_>, mut test: impl FnMut(&str) -> bool) -> bool {
    any_elem(value, |e| matches!(e, Elem::Str(s) if test(s)))
}

fn num_test(value: AttrValue<'_>, bound: Option<f64>, cmp: impl Fn(f64, f64) -> bool) -> bool {
    bound.is_some_and(|b| any_elem(value, |e| e.number().is_some_and(|n| cmp(n, b))))
}

fn semver_test(value: AttrValue<'_>, mut test: impl FnMut(&SemVer) -> bool) -> bool {
    any_elem(
        value,
        |e| matches!(e, Elem::Str(s) if SemVer::parse(s).is_some_and(|v| test(&v))),
    )
}
