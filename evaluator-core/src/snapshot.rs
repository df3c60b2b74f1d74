//! The compiled snapshot: one environment's flags, indexed and pre-parsed for evaluation.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use hashbrown::{HashMap, HashSet};
use serde::Deserialize;
use serde_json::Value;

use crate::bucketing::SaltState;
use crate::cycles::{prerequisite_cycles, segment_cycles};
use crate::error::{Error, Result};
use crate::flag::{compile_flag, Body, CompiledFlag, FlagLists, FlagScope};
use crate::model::{ClientKey, Flag, Segment, Snapshot};
use crate::operators::{ClauseCompiler, KeyIndex};
use crate::path::{Diagnostics, Path};
use crate::segment::{compile_segment, CompiledSegment, SegmentLists};
use crate::sets::Interner;
use crate::validate::{index_u32, ValidationError};

/// A snapshot compiled for evaluation: flag key → index hash map, user id hash sets, compiled
/// regexes, parsed versions and timestamps, rollout weights in integer units of 0.001 %.
///
/// Build it once per snapshot version (it is `Send + Sync`; share it behind an `Arc`) and
/// evaluate as often as needed.
#[derive(Clone)]
pub struct CompiledSnapshot {
    environment: String,
    version: u64,
    generated_at: String,
    pub(crate) flags: Vec<CompiledFlag>,
    flag_index: HashMap<String, u32>,
    /// By position in the snapshot's `segments`; `None` for invalid ones.
    pub(crate) segments: Vec<Option<CompiledSegment>>,
    client_keys: HashSet<[u8; 32]>,
    has_client_keys: bool,
    /// String operands of all `in` / `notIn` clauses.
    pub(crate) interner: Interner,
}

impl fmt::Debug for CompiledSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledSnapshot")
            .field("environment", &self.environment)
            .field("version", &self.version)
            .field("flags", &self.flags.len())
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}

impl CompiledSnapshot {
    /// Compiles a parsed snapshot.
    ///
    /// Never fails: an invalid flag compiles to a flag that evaluates to `ERROR`/`PARSE_ERROR`
    /// serving its off or default value (or null), and its problems are returned as warnings
    /// (the same list [`crate::validate_snapshot`] gives). Of duplicate flag keys the first
    /// wins; flags referencing an invalid segment, and flags on a prerequisite cycle, are
    /// compiled as errors too.
    #[must_use]
    pub fn compile(mut snapshot: Snapshot) -> (CompiledSnapshot, Vec<ValidationError>) {
        // The snapshot is ours: move its (possibly huge) user lists instead of copying them.
        let mut lists = Lists {
            flags: snapshot.flags.iter_mut().map(FlagLists::take).collect(),
            segments: snapshot
                .segments
                .iter_mut()
                .map(SegmentLists::take)
                .collect(),
        };
        compile_input(&Input::of(&snapshot), Some(&mut lists))
    }

    /// Parses JSON, then compiles it like [`CompiledSnapshot::compile`].
    ///
    /// A flag or segment that does not even have the right shape (a weight that is a string,
    /// a clause without operator) is compiled as an error and reported, like any invalid flag.
    ///
    /// # Errors
    /// [`Error::Parse`] only when the bytes are not a snapshot at all: not JSON, or not an
    /// object with `environment` and `version`.
    pub fn from_json(bytes: &[u8]) -> Result<(CompiledSnapshot, Vec<ValidationError>)> {
        // The fast path: a well-formed snapshot parses straight into the model.
        if let Ok(snapshot) = serde_json::from_slice::<Snapshot>(bytes) {
            return Ok(Self::compile(snapshot));
        }
        let loose: LooseSnapshot = serde_json::from_slice(bytes).map_err(|e| Error::Parse {
            message: e.to_string(),
        })?;
        Ok(compile_loose(&loose))
    }

    /// The environment key, e.g. `production`.
    #[must_use]
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The snapshot version (increases by one per change of the environment).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the origin built the snapshot (RFC 3339, as published).
    #[must_use]
    pub fn generated_at(&self) -> &str {
        &self.generated_at
    }

    /// Number of flags (duplicates of a key counted once).
    #[must_use]
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// No flags at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Flag keys in snapshot order.
    pub fn flag_keys(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|f| f.key.as_str())
    }

    /// Whether a flag with this key exists (valid or not).
    #[must_use]
    pub fn contains_flag(&self, key: &str) -> bool {
        self.flag_index.contains_key(key)
    }

    /// Whether the environment restricts evaluation to client keys. True whenever the snapshot
    /// lists any, even if none is well-formed: a broken key list must not open the environment.
    #[must_use]
    pub fn has_client_keys(&self) -> bool {
        self.has_client_keys
    }

    /// Whether a client key whose SHA-256 is `sha256_hex` may evaluate (hex in either case).
    #[must_use]
    pub fn client_key_hash_allowed(&self, sha256_hex: &str) -> bool {
        decode_sha256(sha256_hex).is_some_and(|hash| self.client_keys.contains(&hash))
    }

    pub(crate) fn flag_position(&self, key: &str) -> Option<usize> {
        self.flag_index.get(key).map(|&i| i as usize)
    }
}

/// One flag or segment of the input: parsed, or kept as raw JSON because it has the wrong shape.
pub(crate) enum Entry<'s, T> {
    Parsed(&'s T),
    Unparsable {
        key: Option<&'s str>,
        message: String,
        raw: &'s Value,
    },
}

/// Things with a key.
pub(crate) trait Keyed {
    fn key(&self) -> &str;
}

impl Keyed for Flag {
    fn key(&self) -> &str {
        &self.flag_key
    }
}

impl Keyed for Segment {
    fn key(&self) -> &str {
        &self.segment_key
    }
}

impl<T: Keyed> Entry<'_, T> {
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Self::Parsed(item) => Some(item.key()),
            Self::Unparsable { key, .. } => *key,
        }
    }
}

/// A snapshot whose flags and segments are still raw JSON, for degrading per flag.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LooseSnapshot {
    environment: String,
    version: u64,
    #[serde(default)]
    generated_at: String,
    #[serde(default)]
    flags: Vec<Value>,
    #[serde(default)]
    segments: Vec<Value>,
    #[serde(default)]
    client_keys: Vec<Value>,
}

struct Input<'s> {
    environment: &'s str,
    version: u64,
    generated_at: &'s str,
    flags: Vec<Entry<'s, Flag>>,
    segments: Vec<Entry<'s, Segment>>,
    client_keys: Vec<core::result::Result<&'s ClientKey, String>>,
}

impl<'s> Input<'s> {
    fn of(snapshot: &'s Snapshot) -> Self {
        Input {
            environment: &snapshot.environment,
            version: snapshot.version,
            generated_at: &snapshot.generated_at,
            flags: snapshot.flags.iter().map(Entry::Parsed).collect(),
            segments: snapshot.segments.iter().map(Entry::Parsed).collect(),
            client_keys: snapshot.client_keys.iter().map(Ok).collect(),
        }
    }
}

/// User lists moved out of the input, by position (empty for unparsable entries).
struct Lists {
    flags: Vec<FlagLists>,
    segments: Vec<SegmentLists>,
}

/// Compiles a borrowed snapshot (copying what the compiled form keeps): for validation.
pub(crate) fn compile_snapshot(snapshot: &Snapshot) -> (CompiledSnapshot, Vec<ValidationError>) {
    compile_input(&Input::of(snapshot), None)
}

fn compile_loose(loose: &LooseSnapshot) -> (CompiledSnapshot, Vec<ValidationError>) {
    let mut flags: Vec<core::result::Result<Flag, String>> = loose
        .flags
        .iter()
        .map(|v| Flag::deserialize(v).map_err(|e| e.to_string()))
        .collect();
    let mut segments: Vec<core::result::Result<Segment, String>> = loose
        .segments
        .iter()
        .map(|v| Segment::deserialize(v).map_err(|e| e.to_string()))
        .collect();
    let mut lists = Lists {
        flags: flags
            .iter_mut()
            .map(|f| f.as_mut().map(FlagLists::take).unwrap_or_default())
            .collect(),
        segments: segments
            .iter_mut()
            .map(|s| s.as_mut().map(SegmentLists::take).unwrap_or_default())
            .collect(),
    };
    let client_keys: Vec<core::result::Result<ClientKey, String>> = loose
        .client_keys
        .iter()
        .map(|v| ClientKey::deserialize(v).map_err(|e| e.to_string()))
        .collect();
    fn entries<'s, T>(
        parsed: &'s [core::result::Result<T, String>],
        raw: &'s [Value],
        key_field: &str,
    ) -> Vec<Entry<'s, T>> {
        parsed
            .iter()
            .zip(raw)
            .map(|(p, raw)| match p {
                Ok(item) => Entry::Parsed(item),
                Err(message) => Entry::Unparsable {
                    key: raw.get(key_field).and_then(Value::as_str),
                    message: message.clone(),
                    raw,
                },
            })
            .collect()
    }
    let input = Input {
        environment: &loose.environment,
        version: loose.version,
        generated_at: &loose.generated_at,
        flags: entries(&flags, &loose.flags, "flagKey"),
        segments: entries(&segments, &loose.segments, "segmentKey"),
        client_keys: client_keys
            .iter()
            .map(|k| k.as_ref().map_err(Clone::clone))
            .collect(),
    };
    compile_input(&input, Some(&mut lists))
}

fn compile_input(
    input: &Input<'_>,
    mut lists: Option<&mut Lists>,
) -> (CompiledSnapshot, Vec<ValidationError>) {
    let mut diag = Diagnostics::default();
    let root = Path::ROOT;
    let (segment_index, duplicate) = index_segments(&input.segments, &mut diag, &root);
    let mut clauses = ClauseCompiler::new(&segment_index);
    let segment_lists = lists.as_deref_mut().map(|l| &mut l.segments);
    let segments = compile_segments(
        &input.segments,
        &duplicate,
        segment_lists,
        &mut clauses,
        &mut diag,
        &root,
    );

    // Flags: the first of duplicate keys wins, later ones (and ones without a key) are dropped.
    let flags_path = root.field("flags");
    let mut kept: Vec<usize> = Vec::with_capacity(input.flags.len());
    let mut dropped: Vec<(usize, String)> = Vec::new();
    let mut first_at: KeyIndex<'_> = KeyIndex::with_capacity(input.flags.len());
    for (i, entry) in input.flags.iter().enumerate() {
        match (entry.key(), entry) {
            (None, Entry::Unparsable { message, .. }) => {
                dropped.push((i, format!("{message} (flag dropped: no flagKey)")));
            }
            (None, Entry::Parsed(_)) => {}
            (Some(key), _) => match first_at.get(key) {
                Some(&first) => {
                    dropped.push((
                        i,
                        format!("duplicate flag key \"{key}\" (first at flags[{first}]); dropped"),
                    ));
                }
                None => {
                    first_at.insert(key, index_u32(i));
                    kept.push(i);
                }
            },
        }
    }
    let kept_entries: Vec<Entry<'_, Flag>> = kept
        .iter()
        .filter_map(|&i| match input.flags.get(i)? {
            Entry::Parsed(flag) => Some(Entry::Parsed(*flag)),
            Entry::Unparsable { key, message, raw } => Some(Entry::Unparsable {
                key: *key,
                message: message.clone(),
                raw,
            }),
        })
        .collect();
    let scope = FlagScope::new(&kept_entries);
    let mut flags: Vec<CompiledFlag> = Vec::with_capacity(kept.len());
    let mut dropped = dropped.into_iter().peekable();
    for (&original, entry) in kept.iter().zip(&kept_entries) {
        // Report dropped entries in document order, interleaved with the compiled ones.
        while let Some((i, message)) = dropped.next_if(|(i, _)| *i < original) {
            report_dropped(&mut diag, &flags_path, input, i, message);
        }
        let item = flags_path.index(original);
        flags.push(match entry {
            Entry::Parsed(flag) => {
                let moved = lists
                    .as_deref_mut()
                    .and_then(|l| l.flags.get_mut(original))
                    .map(core::mem::take);
                compile_flag(flag, moved, &scope, &mut clauses, &mut diag, &item)
            }
            Entry::Unparsable { key, message, raw } => {
                diag.report(&item, message.clone());
                unparsable_flag(key.unwrap_or_default(), message, raw)
            }
        });
    }
    for (i, message) in dropped {
        report_dropped(&mut diag, &flags_path, input, i, message);
    }

    // Prerequisite cycles break every flag on them (evaluation would never end).
    for cycle in prerequisite_cycles(&kept_entries, &scope.index) {
        let original = kept.get(cycle.flag).copied().unwrap_or(cycle.flag);
        let item = flags_path.index(original);
        let prerequisites = item.field("prerequisites");
        let prerequisite = prerequisites.index(cycle.prerequisite);
        diag.report(&prerequisite.field("flagKey"), cycle.message.clone());
        if let Some(flag) = flags.get_mut(cycle.flag) {
            flag.break_with(format!("invalid flag configuration: {}", cycle.message));
        }
    }

    // A flag that targets an invalid segment would silently treat it as empty: make it an error.
    for (position, flag) in flags.iter_mut().enumerate() {
        let invalid = flag
            .segment_refs()
            .find(|&s| matches!(segments.get(s as usize), Some(None) | None));
        if let Some(s) = invalid {
            let key = input
                .segments
                .get(s as usize)
                .and_then(Entry::key)
                .unwrap_or("?");
            let message = format!("uses segment \"{key}\", which is invalid");
            let original = kept.get(position).copied().unwrap_or(position);
            let item = flags_path.index(original);
            diag.report(&item.field("targetingRules"), message.clone());
            flag.break_with(format!("invalid flag configuration: {message}"));
        }
    }

    let (client_keys, has_client_keys) = compile_client_keys(&input.client_keys, &mut diag, &root);
    let flag_index = flags
        .iter()
        .enumerate()
        .map(|(i, f)| (f.key.clone(), index_u32(i)))
        .collect();
    let compiled = CompiledSnapshot {
        environment: input.environment.to_string(),
        version: input.version,
        generated_at: input.generated_at.to_string(),
        flags,
        flag_index,
        segments,
        client_keys,
        has_client_keys,
        interner: clauses.interner,
    };
    (compiled, diag.errors)
}

/// Indexes segments by key (the first of duplicates wins); also says which are duplicates.
fn index_segments<'s>(
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
fn compile_segments(
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

fn report_dropped(
    diag: &mut Diagnostics,
    flags_path: &Path<'_>,
    input: &Input<'_>,
    i: usize,
    message: String,
) {
    let item = flags_path.index(i);
    match input.flags.get(i) {
        Some(Entry::Parsed(_)) => diag.report(&item.field("flagKey"), message),
        _ => diag.report(&item, message),
    }
}

/// A flag whose JSON does not fit the model: error-serving, with what we can read of it.
fn unparsable_flag(key: &str, message: &str, raw: &Value) -> CompiledFlag {
    let value = match raw.get("defaultValue") {
        Some(v) => v.clone(),
        None if raw.get("variations").is_none() => Value::Bool(false),
        None => Value::Null,
    };
    CompiledFlag {
        key: key.to_string(),
        version: raw.get("version").and_then(Value::as_u64).unwrap_or(0),
        enabled: raw.get("enabled").and_then(Value::as_bool).unwrap_or(false),
        salt: SaltState::new(key.as_bytes()),
        variations: Vec::new(),
        body: Body::Broken {
            message: format!("invalid flag configuration: {message}"),
            variation: None,
            value,
        },
    }
}

fn compile_client_keys(
    keys: &[core::result::Result<&ClientKey, String>],
    diag: &mut Diagnostics,
    root: &Path<'_>,
) -> (HashSet<[u8; 32]>, bool) {
    let path = root.field("clientKeys");
    let mut out = HashSet::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let item = path.index(i);
        match key {
            Ok(key) => match decode_sha256(&key.sha256) {
                Some(hash) => {
                    out.insert(hash);
                }
                None => diag.report(
                    &item.field("sha256"),
                    "expected 64 hexadecimal characters (a SHA-256)",
                ),
            },
            Err(message) => diag.report(&item, message.clone()),
        }
    }
    (out, !keys.is_empty())
}

/// 64 hex characters (either case) to 32 bytes.
fn decode_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (nibble(*hi)?, nibble(*lo)?),
            _ => return None,
        };
        *slot = hi << 4 | lo;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
