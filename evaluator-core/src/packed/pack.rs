//! Packing: reading every flag's and segment's key and references out of the snapshot JSON,
//! then writing the directory [`super::format`] describes. Runs once per publish, so it may
//! parse the whole document; the readers never do.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use hashbrown::{HashMap, HashSet};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::format::{
    checksum, Span, CHECKSUM_LEN, ENTRY_LEN, FORMAT_VERSION, HEADER_LEN, MAGIC, OPAQUE,
};
use crate::error::{Error, Result};
use crate::CompiledSnapshot;

/// The snapshot's top level with every member kept as its raw JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document<'j> {
    #[serde(borrow)]
    environment: &'j RawValue,
    #[serde(borrow)]
    version: &'j RawValue,
    #[serde(default, borrow, deserialize_with = "present")]
    generated_at: Option<&'j RawValue>,
    #[serde(default, borrow)]
    flags: Vec<&'j RawValue>,
    #[serde(default, borrow)]
    segments: Vec<&'j RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    client_keys: Option<&'j RawValue>,
}

/// A member that is there, whatever its value (`Option` alone would read `null` as absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// What a flag or segment refers to, by key.
#[derive(Default)]
struct References {
    flags: Vec<String>,
    segments: Vec<String>,
}

/// A flag or segment as the directory records it; `references` is `None` when they could not
/// be read.
struct Item {
    key: String,
    raw: Span,
    references: Option<References>,
}

/// Packs a snapshot's JSON: the JSON verbatim behind a directory of its flags and segments.
///
/// Compiles the snapshot once, so that packing fails exactly when compiling would.
///
/// # Errors
/// [`Error::Parse`] when the bytes are not a snapshot at all (exactly when
/// [`CompiledSnapshot::from_json`] fails), or when the JSON is 4 GiB or larger.
pub fn pack(json: &[u8]) -> Result<Vec<u8>> {
    // Compiling has a fast path and a per-flag fallback that each accept documents the other
    // rejects; asking it is the only way to accept exactly what it accepts.
    CompiledSnapshot::from_json(json)?;
    pack_valid(json)
}

/// Packs a snapshot's JSON that the caller has just compiled without errors, skipping
/// [`pack`]'s own compile: a publish path that validates by compiling would otherwise compile a
/// 1,000-flag snapshot twice.
///
/// Bytes that do not compile may still pack; a reader then fails to compile their subsets
/// (an error, never a different answer), so only pass bytes that compiled.
///
/// # Errors
/// [`Error::Parse`] when the bytes are not a snapshot document, or when the JSON is 4 GiB or
/// larger.
pub fn pack_valid(json: &[u8]) -> Result<Vec<u8>> {
    let document: Document<'_> = serde_json::from_slice(json).map_err(parse_error)?;
    let environment: String =
        serde_json::from_str(document.environment.get()).map_err(parse_error)?;
    let version: u64 = serde_json::from_str(document.version.get()).map_err(parse_error)?;

    // Compiling keeps the first flag of each key and drops flags without one.
    let mut flags = Vec::with_capacity(document.flags.len());
    let mut seen: HashSet<String> = HashSet::with_capacity(document.flags.len());
    for raw in &document.flags {
        let (key, references) = read(raw, "flagKey", flag_references)?;
        if let Some(key) = key {
            if seen.insert(key.clone()) {
                flags.push(Item {
                    key,
                    raw: span_in(json, raw)?,
                    references,
                });
            }
        }
    }
    // Every segment with a key, duplicates too: a subset then drops the same ones.
    let mut segments = Vec::with_capacity(document.segments.len());
    for raw in &document.segments {
        let (key, references) = read(raw, "segmentKey", segment_references)?;
        if let Some(key) = key {
            segments.push(Item {
                key,
                raw: span_in(json, raw)?,
                references,
            });
        }
    }
    // Stable: segments of one key stay in document order.
    flags.sort_by(|a, b| a.key.cmp(&b.key));
    segments.sort_by(|a, b| a.key.cmp(&b.key));

    let members = [
        Some(document.environment),
        Some(document.version),
        document.generated_at,
        document.client_keys,
    ];
    let members = members
        .into_iter()
        .map(|m| m.map_or(Ok(Span::default()), |raw| span_in(json, raw)))
        .collect::<Result<Vec<Span>>>()?;
    write(&environment, version, &members, &flags, &segments, json)
}

/// The key and references of one flag or segment.
///
/// Read from a [`Value`], like compiling does for entries that do not fit the model, so that
/// what does not fit still yields its key and whatever references it spells. An entry that
/// `Value` cannot hold (a number beyond `f64`, deep nesting) was compiled by the fast path, which
/// skips unknown members unparsed: its key is read the same way, its references are unknown.
fn read(
    raw: &RawValue,
    key_field: &str,
    references: fn(&Value, &mut References),
) -> Result<(Option<String>, Option<References>)> {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(value) => {
            let key = value
                .get(key_field)
                .and_then(Value::as_str)
                .map(String::from);
            let mut found = References::default();
            references(&value, &mut found);
            Ok((key, Some(found)))
        }
        Err(_) => Ok((string_member(raw, key_field)?, None)),
    }
}

fn flag_references(flag: &Value, out: &mut References) {
    for prerequisite in array(flag.get("prerequisites")) {
        if let Some(key) = prerequisite.get("flagKey").and_then(Value::as_str) {
            out.flags.push(key.to_string());
        }
    }
    let targeting = flag.get("targetingRules");
    let segments = array(targeting.and_then(|t| t.get("segments")));
    out.segments
        .extend(segments.filter_map(Value::as_str).map(String::from));
    for rule in array(targeting.and_then(|t| t.get("rules"))) {
        segment_matches(rule, out);
    }
}

fn segment_references(segment: &Value, out: &mut References) {
    for rule in array(segment.get("rules")) {
        segment_matches(rule, out);
    }
}

/// Operands of the rule's `segmentMatch` clauses (the only operator naming segments).
fn segment_matches(rule: &Value, out: &mut References) {
    for clause in array(rule.get("clauses")) {
        if clause.get("operator").and_then(Value::as_str) == Some("segmentMatch") {
            let values = array(clause.get("values"));
            out.segments
                .extend(values.filter_map(Value::as_str).map(String::from));
        }
    }
}

fn array(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

/// The string member `name` of a JSON object, every other member skipped unparsed.
fn string_member(raw: &RawValue, name: &str) -> Result<Option<String>> {
    struct Member<'n>(&'n str);

    impl<'de> Visitor<'de> for Member<'_> {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<String>()? {
                if key == self.0 {
                    found = Some(map.next_value::<String>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    // Only reachable for entries the fast path compiled, which have a string key: anything else
    // means this reading and compiling disagree, and a directory built on a guess could not be
    // trusted.
    deserializer
        .deserialize_map(Member(name))
        .map_err(parse_error)
}

/// Where `raw`, borrowed from `json`, lies in it.
fn span_in(json: &[u8], raw: &RawValue) -> Result<Span> {
    let text = raw.get();
    let start = (text.as_ptr() as usize).wrapping_sub(json.as_ptr() as usize);
    let fits = start
        .checked_add(text.len())
        .is_some_and(|end| end <= json.len());
    if !fits {
        return Err(Error::Parse {
            message: String::from("a member lies outside the snapshot JSON"),
        });
    }
    Ok(Span {
        start: u32_of(start)?,
        len: u32_of(text.len())?,
    })
}

fn write(
    environment: &str,
    version: u64,
    members: &[Span],
    flags: &[Item],
    segments: &[Item],
    json: &[u8],
) -> Result<Vec<u8>> {
    let mut keys: Vec<u8> = Vec::new();
    let mut add_key = |key: &str| {
        let span = Span {
            start: u32_of(keys.len())?,
            len: u32_of(key.len())?,
        };
        keys.extend_from_slice(key.as_bytes());
        Ok::<Span, Error>(span)
    };
    let environment = add_key(environment)?;
    let flag_keys = flags
        .iter()
        .map(|f| add_key(&f.key))
        .collect::<Result<Vec<_>>>()?;
    let segment_keys = segments
        .iter()
        .map(|s| add_key(&s.key))
        .collect::<Result<Vec<_>>>()?;

    let flag_index: HashMap<&str, u32> = flags
        .iter()
        .enumerate()
        .map(|(i, f)| Ok((f.key.as_str(), u32_of(i)?)))
        .collect::<Result<_>>()?;
    // Key → (first entry, entries): duplicate segments sit next to each other.
    let mut segment_runs: HashMap<&str, (u32, u32)> = HashMap::new();
    for (i, segment) in segments.iter().enumerate() {
        let i = u32_of(i)?;
        segment_runs
            .entry(segment.key.as_str())
            .and_modify(|run| run.1 += 1)
            .or_insert((i, 1));
    }
    let resolve = |references: &References| {
        let mut to_flags: Vec<u32> = references
            .flags
            .iter()
            .filter_map(|k| flag_index.get(k.as_str()).copied())
            .collect();
        let mut to_segments: Vec<u32> = references
            .segments
            .iter()
            .filter_map(|k| segment_runs.get(k.as_str()))
            .flat_map(|&(first, len)| first..first + len)
            .collect();
        for list in [&mut to_flags, &mut to_segments] {
            list.sort_unstable();
            list.dedup();
        }
        (to_flags, to_segments)
    };

    let mut entries: Vec<u8> = Vec::with_capacity((flags.len() + segments.len()) * ENTRY_LEN);
    let mut words: Vec<u32> = Vec::new();
    let tables = [(flags, &flag_keys), (segments, &segment_keys)];
    for (items, item_keys) in tables {
        for (item, key) in items.iter().zip(item_keys.iter()) {
            let (to_flags, to_segments, bits) = match &item.references {
                Some(references) => {
                    let (f, s) = resolve(references);
                    (f, s, 0)
                }
                None => (Vec::new(), Vec::new(), OPAQUE),
            };
            let entry = [
                key.start,
                key.len,
                item.raw.start,
                item.raw.len,
                u32_of(words.len())?,
                u32_of(to_flags.len())?,
                u32_of(to_segments.len())?,
                bits,
            ];
            entries.extend(entry.iter().flat_map(|w| w.to_le_bytes()));
            words.extend(to_flags);
            words.extend(to_segments);
        }
    }

    let directory_len = HEADER_LEN + entries.len() + words.len() * 4 + keys.len() + CHECKSUM_LEN;
    let mut out = Vec::with_capacity(directory_len + json.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[FORMAT_VERSION, 0, 0, 0]);
    let counts = [
        u32_of(directory_len)?,
        u32_of(json.len())?,
        u32_of(flags.len())?,
        u32_of(segments.len())?,
        u32_of(words.len())?,
        u32_of(keys.len())?,
    ];
    out.extend(counts.iter().flat_map(|w| w.to_le_bytes()));
    out.extend_from_slice(&version.to_le_bytes());
    let spans = core::iter::once(&environment).chain(members);
    out.extend(
        spans
            .flat_map(|s| [s.start, s.len])
            .flat_map(u32::to_le_bytes),
    );
    out.extend_from_slice(&entries);
    out.extend(words.iter().flat_map(|w| w.to_le_bytes()));
    out.extend_from_slice(&keys);
    let sum = checksum(&out, json);
    out.extend_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(json);
    Ok(out)
}

fn u32_of(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| too_large())
}

fn too_large() -> Error {
    Error::Parse {
        message: String::from("a packed snapshot holds at most 4 GiB of JSON"),
    }
}

fn parse_error(error: serde_json::Error) -> Error {
    Error::Parse {
        message: error.to_string(),
    }
}
