//! Validation: every problem of a snapshot, flag or segment, with the path of the field at fault.
//!
//! Validation and compilation are one pass ([`crate::CompiledSnapshot::compile`] reports the
//! same list as warnings), so what validates is exactly what evaluates.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::cycles::{prerequisite_cycles, segment_cycles};
use crate::flag::{compile_flag, FlagScope};
use crate::model::{Flag, Segment, Snapshot};
use crate::nesting::{longest_paths, prerequisite_graph, reaching, segment_graph};
use crate::operators::{ClauseCompiler, KeyIndex};
use crate::path::{Diagnostics, Path};
use crate::segment::compile_segment;
use crate::snapshot::{compile_snapshot, Entry, Keyed};

/// Size limits of `docs/flag-model.md` ("Validation"). They bound the work and memory one
/// evaluation can cost, whoever wrote the snapshot.
pub mod limits {
    /// Rules per flag (and per segment).
    pub const RULES: usize = 1_000;
    /// Clauses per rule.
    pub const CLAUSES_PER_RULE: usize = 100;
    /// Values per clause.
    pub const VALUES_PER_CLAUSE: usize = 10_000;
    /// Variations per flag.
    pub const VARIATIONS: usize = 100;
    /// Entries of a user id list (`userIds`, `excludedUserIds`, `countries`, `overrides`,
    /// segment `included` / `excluded`).
    pub const USER_IDS: usize = 100_000;
    /// Bytes of one regular expression.
    pub const REGEX_BYTES: usize = 1_024;
    /// Characters of a flag, segment or environment key.
    pub const KEY_CHARS: usize = 255;
    /// Overrides per flag.
    pub const OVERRIDES: usize = USER_IDS;
    /// Prerequisites per flag.
    pub const PREREQUISITES: usize = 100;
    /// Levels of prerequisites below a flag (a flag whose prerequisite has a prerequisite has
    /// two).
    pub const PREREQUISITE_DEPTH: usize = 16;
    /// Segments in a chain of `segmentMatch` (a segment matching no other segment counts one).
    pub const SEGMENT_DEPTH: usize = 32;
    /// `matches` operands of one flag (or one segment).
    pub const REGEXES_PER_FLAG: usize = 100;
    /// Distinct regular expressions of a snapshot.
    pub const REGEXES: usize = 1_000;
    /// States of the compiled automata (Thompson NFAs) of a snapshot's distinct regular
    /// expressions, summed. A state count, not bytes, so that every platform counts the same.
    pub const REGEX_STATES: usize = 100_000;
    /// Bytes of a snapshot as the edge stores it: packed (`crate::packed`), which must fit one
    /// Workers KV value (25 MiB, `publish_protocol::MAX_SNAPSHOT_BYTES`).
    pub const SNAPSHOT_BYTES: usize = 25 * 1024 * 1024;
}

/// One problem: where (`flags[3].targetingRules.rules[2].clauses[0].operator`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Path of the offending field, from the validated document's root.
    pub path: String,
    /// What is wrong, for people.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl core::error::Error for ValidationError {}

/// Every problem of a whole snapshot; empty means valid. Paths start at the snapshot
/// (`flags[3].targetingRules.rules[2].clauses[0].operator`).
#[must_use]
pub fn validate_snapshot(snapshot: &Snapshot) -> Vec<ValidationError> {
    compile_snapshot(snapshot).1
}

/// The size budget of a snapshot's text (the exact bytes that will be published): whether its
/// packed form, the value the edge stores in Workers KV, fits [`limits::SNAPSHOT_BYTES`].
/// Empty means it fits.
///
/// [`validate_snapshot`] cannot check this: a model has no text until it is serialised, and only
/// the text that is stored counts. Call it on the text before storing it, so that a change that
/// would make the environment unpublishable is refused instead of failing at the edge.
#[must_use]
pub fn validate_snapshot_bytes(json: &[u8]) -> Vec<ValidationError> {
    // The packed form holds the JSON, so text over the limit never fits; otherwise pack it (the
    // directory's size depends on the flags' references, so there is no cheaper exact bound).
    let packed = if json.len() > limits::SNAPSHOT_BYTES {
        json.len()
    } else {
        match crate::packed::pack_valid(json) {
            Ok(packed) => packed.len(),
            // Not a snapshot document: parsing reports that, not this budget.
            Err(_) => return Vec::new(),
        }
    };
    if packed <= limits::SNAPSHOT_BYTES {
        return Vec::new();
    }
    Vec::from([ValidationError {
        path: String::from("snapshot"),
        message: format!(
            "the snapshot would take {packed} bytes at the edge (packed), beyond the limit of {} \
             bytes (25 MiB, one Workers KV value): remove flags, segments or user lists",
            limits::SNAPSHOT_BYTES
        ),
    }])
}

/// Every problem of one flag, in the context of its environment's segments and other flags
/// (for references and prerequisite cycles). Paths are relative to the flag
/// (`targetingRules.rules[2].clauses[0].operator`, `flagKey`).
///
/// `others` may contain an older version of the same flag key; it is ignored for that key.
#[must_use]
pub fn validate_flag(flag: &Flag, segments: &[Segment], others: &[Flag]) -> Vec<ValidationError> {
    let mut segment_index = KeyIndex::new();
    for (i, segment) in segments.iter().enumerate() {
        segment_index
            .entry(segment.segment_key.as_str())
            .or_insert(index_u32(i));
    }
    let entries = others_then(flag, others);
    let scope = FlagScope::new(&entries);
    let mut clauses = ClauseCompiler::new(&segment_index);
    let mut diag = Diagnostics::default();
    let _ = compile_flag(flag, None, &scope, &mut clauses, &mut diag, &Path::ROOT);
    diag.errors.extend(clauses.regex_budget_error());
    let own = entries.len().saturating_sub(1);
    for cycle in prerequisite_cycles(&entries, &scope.index) {
        if cycle.flag == own {
            let prerequisites = Path::ROOT.field("prerequisites");
            let prerequisite = prerequisites.index(cycle.prerequisite);
            diag.report(&prerequisite.field("flagKey"), cycle.message);
        }
    }
    let graph = prerequisite_graph(&entries, &scope.index);
    let depths = longest_paths(&graph);
    let own_too_deep = depths
        .get(own)
        .copied()
        .flatten()
        .is_some_and(|depth| too_deep_prerequisites(&mut diag, &Path::ROOT, depth));
    if !own_too_deep {
        // A change of this flag also deepens every flag above it.
        let before = || {
            let old = others.iter().find(|other| other.key() == flag.key())?;
            Some(longest_paths(&prerequisite_graph(
                &others_then(old, others),
                &scope.index,
            )))
        };
        let deepened = deepest_dependent(&graph, &depths, own, limits::PREREQUISITE_DEPTH, before);
        if let Some((i, depth)) = deepened {
            let key = entry_key(&entries, i);
            diag.report(
                &Path::ROOT.field("prerequisites"),
                format!(
                    "would make the prerequisites of flag {key:?} nest {depth} levels deep, \
                     beyond the limit of {}",
                    limits::PREREQUISITE_DEPTH
                ),
            );
        }
    }
    diag.errors
}

/// The first node above `own` (depending on it, directly or not) that the change takes deeper
/// than `limit` edges, with its depth. `before` gives the depths with the stored version of
/// `own` (same entry order), if there is one, and is only called when some node above is over
/// the limit (most changes pay for no second pass): a node that was already as deep is not the
/// change's doing, so an environment stored before the limits existed can still be edited.
fn deepest_dependent(
    graph: &[Vec<u32>],
    depths: &[Option<usize>],
    own: usize,
    limit: usize,
    before: impl FnOnce() -> Option<Vec<Option<usize>>>,
) -> Option<(usize, usize)> {
    if !depths.iter().flatten().any(|&depth| depth > limit) {
        return None;
    }
    let reached = reaching(graph, own);
    let over: Vec<(usize, usize)> = depths
        .iter()
        .zip(reached)
        .enumerate()
        .filter_map(|(i, (depth, above))| {
            let depth = (*depth)?;
            (above && i != own && depth > limit).then_some((i, depth))
        })
        .collect();
    if over.is_empty() {
        return None;
    }
    let before = before();
    over.into_iter().find(|&(i, depth)| {
        let was = before
            .as_deref()
            .and_then(|b| b.get(i).copied().flatten())
            .unwrap_or(0);
        depth > was
    })
}

/// The key of entry `i`, for messages.
fn entry_key<'a, T: Keyed>(entries: &[Entry<'a, T>], i: usize) -> &'a str {
    match entries.get(i) {
        Some(Entry::Parsed(item)) => item.key(),
        _ => "",
    }
}

/// Every problem of one segment, in the context of the environment's other segments; paths
/// relative to the segment (`rules[0].clauses[1].values[0]`).
#[must_use]
pub fn validate_segment(segment: &Segment, others: &[Segment]) -> Vec<ValidationError> {
    let entries = others_then(segment, others);
    let mut index = KeyIndex::new();
    for (i, entry) in entries.iter().enumerate() {
        if let Entry::Parsed(s) = entry {
            index.entry(s.segment_key.as_str()).or_insert(index_u32(i));
        }
    }
    let mut clauses = ClauseCompiler::new(&index);
    let mut diag = Diagnostics::default();
    let _ = compile_segment(segment, None, &mut clauses, &mut diag, &Path::ROOT);
    diag.errors.extend(clauses.regex_budget_error());
    let own = entries.len().saturating_sub(1);
    for cycle in segment_cycles(&entries, &index) {
        if cycle.segment == own {
            let rules = Path::ROOT.field("rules");
            let rule = rules.index(cycle.rule);
            let clauses = rule.field("clauses");
            let clause = clauses.index(cycle.clause);
            let values = clause.field("values");
            diag.report(&values.index(cycle.value), cycle.message);
        }
    }
    let graph = segment_graph(&entries, &index);
    let depths = longest_paths(&graph);
    // Depth in segments is one more than the edges below.
    let own_too_deep = depths
        .get(own)
        .copied()
        .flatten()
        .is_some_and(|edges| too_deep_segment(&mut diag, &Path::ROOT, edges + 1));
    if !own_too_deep {
        // A change of this segment also deepens every segment that matches it.
        let before = || {
            let old = others.iter().find(|other| other.key() == segment.key())?;
            Some(longest_paths(&segment_graph(
                &others_then(old, others),
                &index,
            )))
        };
        let deepened = deepest_dependent(&graph, &depths, own, limits::SEGMENT_DEPTH - 1, before);
        if let Some((i, edges)) = deepened {
            let key = entry_key(&entries, i);
            diag.report(
                &Path::ROOT.field("rules"),
                format!(
                    "would make segment {key:?} nest segmentMatch {} segments deep, beyond the \
                     limit of {}",
                    edges + 1,
                    limits::SEGMENT_DEPTH
                ),
            );
        }
    }
    diag.errors
}

/// Reports (at `flag.prerequisites`) a flag whose prerequisites nest `depth` levels deep, if
/// that exceeds [`limits::PREREQUISITE_DEPTH`]; whether it did.
pub(crate) fn too_deep_prerequisites(
    diag: &mut Diagnostics,
    flag: &Path<'_>,
    depth: usize,
) -> bool {
    too_deep(
        diag,
        &flag.field("prerequisites"),
        depth,
        limits::PREREQUISITE_DEPTH,
        "prerequisites nest",
        "levels",
    )
}

/// Reports (at `segment.rules`) a segment whose `segmentMatch` chain is `depth` segments deep,
/// if that exceeds [`limits::SEGMENT_DEPTH`]; whether it did.
pub(crate) fn too_deep_segment(diag: &mut Diagnostics, segment: &Path<'_>, depth: usize) -> bool {
    too_deep(
        diag,
        &segment.field("rules"),
        depth,
        limits::SEGMENT_DEPTH,
        "segmentMatch nests",
        "segments",
    )
}

fn too_deep(
    diag: &mut Diagnostics,
    path: &Path<'_>,
    depth: usize,
    limit: usize,
    what: &str,
    unit: &str,
) -> bool {
    if depth <= limit {
        return false;
    }
    diag.report(
        path,
        format!("{what} {depth} {unit} deep, beyond the limit of {limit}"),
    );
    true
}

/// `others` without any of `item`'s key, then `item` itself (last, so its index is
/// `len - 1`), as parsed entries.
fn others_then<'a, T: Keyed>(item: &'a T, others: &'a [T]) -> Vec<Entry<'a, T>> {
    others
        .iter()
        .filter(|other| other.key() != item.key())
        .chain(core::iter::once(item))
        .map(Entry::Parsed)
        .collect()
}

/// Checks key syntax: 1-255 characters of ASCII letters, digits, `-` and `_`. Used for flag,
/// segment and environment keys; the error's path is `flagKey` (callers validating another kind
/// of key replace it).
///
/// # Errors
/// A [`ValidationError`] describing what is wrong with `key`.
pub fn validate_flag_key(key: &str) -> Result<(), ValidationError> {
    check_key(key).map_err(|message| ValidationError {
        path: String::from("flagKey"),
        message,
    })
}

/// Key syntax check with the message only.
pub(crate) fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err(String::from("must not be empty"));
    }
    if key.len() > limits::KEY_CHARS {
        return Err(format!(
            "{} characters exceed the limit of {}",
            key.len(),
            limits::KEY_CHARS
        ));
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "invalid character {bad:?} in \"{key}\": use letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// Position in a list as `u32` (lists are far shorter: the JSON would not fit in memory).
pub(crate) fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
