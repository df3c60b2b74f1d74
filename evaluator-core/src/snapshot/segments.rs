//! Compiling a snapshot's segments: index, compile, then invalidate cycles and dependents.

use alloc::format;
use alloc::vec::Vec;

use super::Entry;
use crate::cycles::segment_cycles;
use crate::model::Segment;
use crate::nesting::segment_depths;
use crate::operators::{ClauseCompiler, KeyIndex};
use crate::path::{Diagnostics, Path};
use crate::segment::{compile_segment, CompiledSegment, SegmentLists};
use crate::validate::{index_u32, too_deep_segment};

/// Indexes segments by key (the first of duplicates wins); also says which are duplicates.
pub(super) fn index_segments<'s>(
    entries: &'s [Entry<'s, Segment>],
    diag: &mut Diagnostics,
    root: &Path<'_>,
) -> (KeyIndex<'s>, Vec<bool>) {
    let path = root.field("segments");
    let mut index = KeyIndex::with_capacity(entries.len());
    let mut duplicate = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let is_duplicate = match entry.key() {
            Some(key) if index.contains_key(key) => {
                let item = path.index(i);
                diag.report(
                    &item.field("segmentKey"),
                    format!("duplicate segment key \"{key}\"; dropped"),
                );
                true
            }
            Some(key) => {
                index.insert(key, index_u32(i));
                false
            }
            None => false,
        };
        duplicate.push(is_duplicate);
    }
    (index, duplicate)
}

/// Compiles segments in place (by position), then invalidates those on cycles and those that
/// depend on invalid ones.
pub(super) fn compile_segments(
    entries: &[Entry<'_, Segment>],
    duplicate: &[bool],
    mut lists: Option<&mut Vec<SegmentLists>>,
    clauses: &mut ClauseCompiler<'_>,
    diag: &mut Diagnostics,
    root: &Path<'_>,
) -> Vec<Option<CompiledSegment>> {
    let path = root.field("segments");
    let mut segments: Vec<Option<CompiledSegment>> = entries
        .iter()
        .zip(duplicate)
        .enumerate()
        .map(|(i, (entry, &is_duplicate))| match entry {
            _ if is_duplicate => None,
            Entry::Parsed(segment) => {
                let moved = lists
                    .as_deref_mut()
                    .and_then(|l| l.get_mut(i))
                    .map(core::mem::take);
                compile_segment(segment, moved, clauses, diag, &path.index(i))
            }
            Entry::Unparsable { message, .. } => {
                diag.report(&path.index(i), message.clone());
                None
            }
        })
        .collect();

    for cycle in segment_cycles(entries, clauses.segments) {
        let item = path.index(cycle.segment);
        let rules = item.field("rules");
        let rule = rules.index(cycle.rule);
        let clauses = rule.field("clauses");
        let clause = clauses.index(cycle.clause);
        let values = clause.field("values");
        diag.report(&values.index(cycle.value), cycle.message);
        if let Some(slot) = segments.get_mut(cycle.segment) {
            *slot = None;
        }
    }

    // A chain deeper than the limit: evaluation would cut it off (and the memo of segment
    // membership relies on it never doing so).
    for (i, depth) in segment_depths(entries, clauses.segments)
        .into_iter()
        .enumerate()
    {
        let compiled = segments.get(i).is_some_and(Option::is_some);
        if let (true, Some(depth)) = (compiled, depth) {
            if too_deep_segment(diag, &path.index(i), depth) {
                if let Some(slot) = segments.get_mut(i) {
                    *slot = None;
                }
            }
        }
    }

    // Invalidity spreads to every segment that (transitively) matches an invalid one.
    let mut dependents: Vec<Vec<usize>> = alloc::vec![Vec::new(); segments.len()];
    for (i, segment) in segments.iter().enumerate() {
        for target in segment.iter().flat_map(CompiledSegment::refs) {
            if let Some(list) = dependents.get_mut(target as usize) {
                list.push(i);
            }
        }
    }
    let mut queue: Vec<usize> = (0..segments.len())
        .filter(|&i| matches!(segments.get(i), Some(None)))
        .collect();
    while let Some(invalid) = queue.pop() {
        for &dependent in dependents.get(invalid).map_or(&[][..], Vec::as_slice) {
            if let Some(slot @ Some(_)) = segments.get_mut(dependent) {
                *slot = None;
                let key = entries.get(invalid).and_then(Entry::key).unwrap_or("?");
                diag.report(
                    &path.index(dependent),
                    format!("matches segment \"{key}\", which is invalid"),
                );
                queue.push(dependent);
            }
        }
    }
    segments
}
