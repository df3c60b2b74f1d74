//! Compiling a snapshot: flags, duplicates, prerequisite cycles, invalid segments.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::Deserialize;
use serde_json::Value;

use super::client_keys::compile_client_keys;
use super::segments::{compile_segments, index_segments};
use super::{CompiledSnapshot, Entry};
use crate::bucketing::SaltState;
use crate::cycles::prerequisite_cycles;
use crate::flag::{compile_flag, Body, CompiledFlag, FlagLists, FlagScope};
use crate::model::{ClientKey, Flag, Segment, Snapshot};
use crate::nesting::prerequisite_depths;
use crate::operators::{ClauseCompiler, KeyIndex};
use crate::path::{Diagnostics, Path};
use crate::segment::SegmentLists;
use crate::validate::{index_u32, too_deep_prerequisites, ValidationError};

/// A snapshot whose flags and segments are still raw JSON, for degrading per flag.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LooseSnapshot {
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

pub(super) struct Input<'s> {
    environment: &'s str,
    version: u64,
    generated_at: &'s str,
    flags: Vec<Entry<'s, Flag>>,
    segments: Vec<Entry<'s, Segment>>,
    client_keys: Vec<core::result::Result<&'s ClientKey, String>>,
}

impl<'s> Input<'s> {
    pub(super) fn of(snapshot: &'s Snapshot) -> Self {
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
pub(super) struct Lists {
    pub(super) flags: Vec<FlagLists>,
    pub(super) segments: Vec<SegmentLists>,
}

impl Lists {
    /// Moves the (possibly huge) user lists out of `snapshot`'s flags and segments instead of
    /// copying them.
    pub(super) fn take(snapshot: &mut Snapshot) -> Self {
        Self {
            flags: snapshot.flags.iter_mut().map(FlagLists::take).collect(),
            segments: snapshot
                .segments
                .iter_mut()
                .map(SegmentLists::take)
                .collect(),
        }
    }
}

/// Compiles a borrowed snapshot (copying what the compiled form keeps): for validation.
pub(crate) fn compile_snapshot(snapshot: &Snapshot) -> (CompiledSnapshot, Vec<ValidationError>) {
    compile_input(&Input::of(snapshot), None)
}

pub(super) fn compile_loose(loose: &LooseSnapshot) -> (CompiledSnapshot, Vec<ValidationError>) {
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

pub(super) fn compile_input(
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

    // Prerequisites nested deeper than the limit: evaluation would cut them off (and the memo of
    // prerequisite outcomes relies on it never doing so).
    let depths = prerequisite_depths(&kept_entries, &scope.index);
    for (position, (flag, depth)) in flags.iter_mut().zip(depths).enumerate() {
        let original = kept.get(position).copied().unwrap_or(position);
        let Some(depth) = depth else { continue };
        if too_deep_prerequisites(&mut diag, &flags_path.index(original), depth) {
            flag.break_with(format!(
                "invalid flag configuration: prerequisites nest {depth} levels deep, beyond the limit of {}",
                crate::validate::limits::PREREQUISITE_DEPTH
            ));
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

    // Reported, never degraded: see `Regexes`.
    diag.errors.extend(clauses.regex_budget_error());

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
        attributes: clauses.attributes,
    };
    (compiled, diag.errors)
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
        context_free: false,
        salt: SaltState::new(key.as_bytes()),
        variations: Vec::new(),
        body: Body::Broken {
            message: format!("invalid flag configuration: {message}"),
            variation: None,
            value,
        },
    }
}
