//! Segments: compiled membership tests, and the evaluation scope that clauses match in.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use crate::attribute::{AttrCache, AttrTable};
use crate::context::EvaluationContext;
use crate::model::Segment;
use crate::operators::{ClauseCompiler, CompiledClause};
use crate::path::{Diagnostics, Path};
use crate::sets::{Interner, StrList, StrSet};
use crate::validate::{check_key, limits};

/// How deep `segmentMatch` may nest. Validation rejects cycles, so this only bounds a snapshot
/// that skipped validation; a deeper chain does not match.
pub(crate) const MAX_SEGMENT_DEPTH: u8 = 32;

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

/// A segment's user lists, moved out of an owned snapshot so compiling need not copy them.
#[derive(Default)]
pub(crate) struct SegmentLists {
    pub(crate) included: StrList,
    pub(crate) excluded: StrList,
}

impl SegmentLists {
    pub(crate) fn take(segment: &mut Segment) -> Self {
        Self {
            included: StrList::of(core::mem::take(&mut segment.included)),
            excluded: StrList::of(core::mem::take(&mut segment.excluded)),
        }
    }
}

/// Compiles a segment; problems are reported and make it `None`. `lists` are the segment's
/// user lists when they were moved out of it (see [`SegmentLists::take`]).
pub(crate) fn compile_segment(
    segment: &Segment,
    lists: Option<SegmentLists>,
    clauses: &mut ClauseCompiler<'_>,
    diag: &mut Diagnostics,
    path: &Path<'_>,
) -> Option<CompiledSegment> {
    let before = diag.len();
    let lists = lists.unwrap_or_else(|| SegmentLists {
        included: StrList::of(segment.included.clone()),
        excluded: StrList::of(segment.excluded.clone()),
    });
    if let Err(message) = check_key(&segment.segment_key) {
        diag.report(&path.field("segmentKey"), message);
    }
    for (name, list) in [("included", &lists.included), ("excluded", &lists.excluded)] {
        if list.len > limits::USER_IDS {
            diag.report(
                &path.field(name),
                format!(
                    "{} user ids exceed the limit of {}",
                    list.len,
                    limits::USER_IDS
                ),
            );
        }
    }
    let rules_path = path.field("rules");
    if segment.rules.len() > limits::RULES {
        diag.report(
            &rules_path,
            format!(
                "{} rules exceed the limit of {}",
                segment.rules.len(),
                limits::RULES
            ),
        );
        return None;
    }
    let mut attrs = AttrTable::default();
    let mut rules = Vec::with_capacity(segment.rules.len());
    for (r, rule) in segment.rules.iter().enumerate() {
        let rule_path = rules_path.index(r);
        let clauses_path = rule_path.field("clauses");
        if rule.clauses.len() > limits::CLAUSES_PER_RULE {
            diag.report(
                &clauses_path,
                format!(
                    "{} clauses exceed the limit of {}",
                    rule.clauses.len(),
                    limits::CLAUSES_PER_RULE
                ),
            );
            continue;
        }
        let compiled: Vec<CompiledClause> = rule
            .clauses
            .iter()
            .enumerate()
            .filter_map(|(c, clause)| {
                clauses.compile(clause, &mut attrs, diag, &clauses_path.index(c))
            })
            .collect();
        rules.push(compiled);
    }
    (diag.len() == before).then(|| CompiledSegment {
        key: segment.segment_key.clone(),
        included: lists.included.set,
        excluded: lists.excluded.set,
        rules,
    })
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
}

impl<'s> Scope<'s> {
    pub(crate) fn new(
        ctx: &'s EvaluationContext,
        segments: &'s [Option<CompiledSegment>],
        interner: &'s Interner,
        depth: u8,
    ) -> Self {
        Self {
            ctx,
            segments,
            depth,
            interner,
            cache: AttrCache::new(),
        }
    }
}

impl Scope<'_> {
    /// Whether the context's user is in segment `index` (see "Segment" in the spec).
    pub(crate) fn in_segment(&self, index: u32) -> bool {
        let Some(Some(segment)) = self.segments.get(index as usize) else {
            return false;
        };
        if self.depth >= MAX_SEGMENT_DEPTH {
            return false;
        }
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
        let inner = Scope::new(self.ctx, self.segments, self.interner, self.depth + 1);
        segment
            .rules
            .iter()
            .any(|clauses| clauses.iter().all(|c| c.matches(&inner)))
    }

    /// The seed's evaluation request names segments directly: `userSegment` (one) or
    /// `segments` (several).
    fn declared_member(&self, key: &str) -> bool {
        let attrs = &self.ctx.attributes;
        if attrs.is_empty() {
            return false;
        }
        let single = matches!(attrs.get("userSegment"), Some(Value::String(s)) if s == key);
        single
            || matches!(attrs.get("segments"), Some(Value::Array(items))
                if items.iter().any(|i| i.as_str() == Some(key)))
    }
}
