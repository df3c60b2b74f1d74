//! Segments: the compiled form, and membership — the scope that clauses match in, and whether
//! a context's user is in a segment. Compiling a segment from the model is in `compile`; this
//! file is what evaluation runs.

use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use crate::attribute::{AttrCache, Known, SEGMENTS, USER_SEGMENT};
use crate::context::EvaluationContext;
use crate::memo::Memo;
use crate::operators::CompiledClause;
use crate::sets::{Interner, StrSet};

mod compile;

pub(crate) use compile::{compile_segment, SegmentLists};

/// How deep `segmentMatch` may nest. Validation rejects cycles and deeper chains
/// (`limits::SEGMENT_DEPTH`), so this only keeps the stack bounded should that ever not hold; a
/// deeper chain does not match.
pub(crate) const MAX_SEGMENT_DEPTH: u8 = crate::validate::limits::SEGMENT_DEPTH as u8;

/// A segment ready for membership tests.
#[derive(Debug, Clone)]
pub(crate) struct CompiledSegment {
    pub(crate) key: String,
    included: StrSet,
    excluded: StrSet,
    rules: Vec<Vec<CompiledClause>>,
}

impl CompiledSegment {
    /// The segments referenced by this segment's `segmentMatch` clauses.
    pub(crate) fn refs(&self) -> impl Iterator<Item = u32> + '_ {
        self.rules
            .iter()
            .flatten()
            .flat_map(|c| c.segment_refs().iter().copied())
    }
}

/// What clauses are matched against: the context, plus the segments `segmentMatch` names.
pub(crate) struct Scope<'s> {
    pub(crate) ctx: &'s EvaluationContext,
    /// Compiled segments by index; `None` for segments that failed to compile (flags that
    /// reference them are compiled as errors, so evaluation never consults them).
    pub(crate) segments: &'s [Option<CompiledSegment>],
    pub(crate) depth: u8,
    /// Interned string operands of `in` / `notIn`.
    pub(crate) interner: &'s Interner,
    /// Attributes already looked up by the clauses of the flag or segment being matched.
    pub(crate) cache: AttrCache<'s>,
    /// Memberships this evaluation has already worked out.
    pub(crate) memo: &'s Memo,
    /// In a batch of evaluations, the context's value of each of the snapshot's attribute
    /// names (`crate::attribute::AttrNames`), looked up once; empty for one evaluation, which
    /// reads fewer attributes than looking all up would cost.
    pub(crate) batch: &'s [Known<'s>],
}

impl<'s> Scope<'s> {
    pub(crate) fn new(
        ctx: &'s EvaluationContext,
        segments: &'s [Option<CompiledSegment>],
        interner: &'s Interner,
        depth: u8,
        memo: &'s Memo,
        batch: &'s [Known<'s>],
    ) -> Self {
        Self {
            ctx,
            segments,
            depth,
            interner,
            cache: AttrCache::new(memo.key_id()),
            memo,
            batch,
        }
    }
}

impl Scope<'_> {
    /// Whether the context's user is in segment `index` (see "Segment" in the spec).
    ///
    /// Worked out once per evaluation (see `memo`), so nested segments cost linear time.
    pub(crate) fn in_segment(&self, index: u32) -> bool {
        // Before the memo: an answer cut off by depth must not be remembered for shallower
        // callers (validation keeps compiled snapshots from ever getting here).
        if self.depth >= MAX_SEGMENT_DEPTH {
            return false;
        }
        self.memo.segment(index, || self.work_out(index))
    }

    fn work_out(&self, index: u32) -> bool {
        let Some(Some(segment)) = self.segments.get(index as usize) else {
            return false;
        };
        #[cfg(test)]
        crate::memo::count::segment();
        if let Some(user) = self.ctx.targeting_key.as_deref() {
            if segment.excluded.contains(user) {
                return false;
            }
            if segment.included.contains(user) {
                return true;
            }
        }
        if self.declared_member(&segment.key) {
            return true;
        }
        let inner = Scope::new(
            self.ctx,
            self.segments,
            self.interner,
            self.depth + 1,
            self.memo,
            self.batch,
        );
        segment
            .rules
            .iter()
            .any(|clauses| clauses.iter().all(|c| c.matches(&inner)))
    }

    /// Membership the context declares itself: the attribute `userSegment` (one segment key) or
    /// `segments` (an array of them), for clients that know a user's segments already.
    fn declared_member(&self, key: &str) -> bool {
        let (single, list) = match (self.batch.get(USER_SEGMENT), self.batch.get(SEGMENTS)) {
            (Some(single), Some(list)) => (single.value, list.value),
            _ => {
                let attrs = &self.ctx.attributes;
                if attrs.is_empty() {
                    return false;
                }
                (attrs.get("userSegment"), attrs.get("segments"))
            }
        };
        matches!(single, Some(Value::String(s)) if s == key)
            || matches!(list, Some(Value::Array(items))
                if items.iter().any(|i| i.as_str() == Some(key)))
    }
}
