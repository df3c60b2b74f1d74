//! Compiling a segment from the model: key and list limits, then each rule's clauses through the
//! shared [`ClauseCompiler`]. Problems are reported; a segment with any does not compile.

use alloc::vec::Vec;

use super::CompiledSegment;
use crate::attribute::AttrTable;
use crate::model::Segment;
use crate::operators::{regex_operands, ClauseCompiler, CompiledClause};
use crate::path::{Diagnostics, Path};
use crate::sets::StrList;
use crate::validate::{check_key, limits};

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
        diag.within_limit(&path.field(name), list.len, limits::USER_IDS, "user ids");
    }
    let rules_path = path.field("rules");
    if !diag.within_limit(&rules_path, segment.rules.len(), limits::RULES, "rules") {
        return None;
    }
    diag.within_limit(
        &rules_path,
        regex_operands(segment.rules.iter().flat_map(|r| &r.clauses)),
        limits::REGEXES_PER_FLAG,
        "regular expressions",
    );
    let mut attrs = AttrTable::default();
    let mut rules = Vec::with_capacity(segment.rules.len());
    for (r, rule) in segment.rules.iter().enumerate() {
        let rule_path = rules_path.index(r);
        let clauses_path = rule_path.field("clauses");
        if !diag.within_limit(
            &clauses_path,
            rule.clauses.len(),
            limits::CLAUSES_PER_RULE,
            "clauses",
        ) {
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
