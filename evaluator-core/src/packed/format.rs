//! The packed format: the binary layout of the directory in front of the snapshot JSON, its
//! checksum, and reading it back — [`Packed::parse`] checks every offset, index and key once, so
//! that [`super::pack`] (writing) and [`super::subset`] (reading subsets) can rely on it without
//! re-checking. Kept apart from both because it is the one contract they share: the writer and
//! the readers change only together with [`FORMAT_VERSION`].
//!
//! # Layout (format version 2)
//!
//! Integers are little-endian `u32` unless noted. A *JSON range* is `(start, length)` in the JSON
//! that follows the directory; a *key range* is `(offset, length)` in the key bytes.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `89 45 46 50` (`\x89EFP`: no JSON text starts with it) |
//! | 4 | 1 | format version, `2` (`1` is still read) |
//! | 5 | 3 | zero |
//! | 8 | 4 | directory length `D`: everything before the JSON, checksum included |
//! | 12 | 4 | JSON length `J`; the packed value is exactly `D + J` bytes |
//! | 16 | 4 | flag entries `F` |
//! | 20 | 4 | segment entries `S` |
//! | 24 | 4 | dependency words `N` |
//! | 28 | 4 | key bytes `K` |
//! | 32 | 8 | `version` (`u64`) |
//! | 40 | 8 | key range of `environment` (unescaped) |
//! | 48 | 32 | JSON ranges of the members `environment`, `version`, `generatedAt`, `clientKeys` (length 0: absent) |
//! | 80 | 32 × F | flag entries, sorted by key, one per key (the occurrence compiling keeps) |
//! | … | 32 × S | segment entries, sorted by key then position, one per segment with a string key |
//! | … | 4 × N | dependency words: entry indexes |
//! | … | K | key bytes (UTF-8) |
//! | D − 8 | 8 | checksum (`u64`) of every other byte: `0 .. D − 8`, then the JSON (see [`checksum`]) |
//! | D | J | the snapshot JSON, byte for byte as it was packed |
//!
//! An entry is eight words: key range, JSON range of the flag or segment, index of its first
//! dependency word, number of flag dependencies (indexes of flag entries; always 0 for segments),
//! number of segment dependencies (indexes of segment entries, which follow the flag ones), and
//! bits. Bit 0 says that packing could not read the entry's references; a subset that needs such
//! an entry is the whole snapshot. Dependency words are laid out entry after entry, flags first,
//! so every word belongs to exactly one entry.
//!
//! The checksum covers the whole value, the JSON included, so that damage anywhere in a stored
//! value (a flipped byte inside a flag's JSON still parses, and would otherwise be served) is
//! refused when the value is read and the last good snapshot stays in service. Hashing the JSON
//! costs one pass at four independent 64-bit lanes (about a byte per cycle even in V8's baseline
//! code), small beside the compile it guards. Format version 1 checksummed only the directory;
//! it is still read, with that weaker check, so values an older worker stored keep serving until
//! the next publish replaces them.

use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

use crate::error::{Error, Result};

/// The first four bytes of every packed snapshot.
pub const MAGIC: [u8; 4] = [0x89, b'E', b'F', b'P'];
/// The layout version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 2;
/// The previous layout version: identical, but its checksum covers only the directory.
const DIRECTORY_CHECKSUM_VERSION: u8 = 1;

pub(super) const HEADER_LEN: usize = 80;
pub(super) const ENTRY_LEN: usize = 32;
pub(super) const CHECKSUM_LEN: usize = 8;
/// Entry bit: the entry's references could not be read.
pub(super) const OPAQUE: u32 = 1;

/// Whether `bytes` are a packed snapshot rather than snapshot JSON (which starts with `{` or
/// whitespace).
#[must_use]
pub fn is_packed(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// `(start, length)` of a run of bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: u32,
    pub(super) len: u32,
}

impl Span {
    pub(super) fn of(self, bytes: &[u8]) -> Option<&[u8]> {
        let start = self.start as usize;
        bytes.get(start..start.checked_add(self.len as usize)?)
    }

    /// `None` also when the span does not start and end on character boundaries.
    fn of_str(self, text: &str) -> Option<&str> {
        let start = self.start as usize;
        text.get(start..start.checked_add(self.len as usize)?)
    }
}

/// One flag or segment of the directory.
#[derive(Clone, Copy)]
pub(super) struct Entry {
    pub(super) key: Span,
    pub(super) raw: Span,
    pub(super) first_dependency: u32,
    pub(super) flag_dependencies: u32,
    pub(super) segment_dependencies: u32,
    pub(super) bits: u32,
}

impl Entry {
    pub(super) fn read(table: &[u8], index: usize) -> Option<Entry> {
        let start = index.checked_mul(ENTRY_LEN)?;
        let bytes = table.get(start..start.checked_add(ENTRY_LEN)?)?;
        let [key_start, key_len, raw_start, raw_len, first, flags, segments, bits] =
            words::<8>(bytes)?;
        Some(Entry {
            key: Span {
                start: key_start,
                len: key_len,
            },
            raw: Span {
                start: raw_start,
                len: raw_len,
            },
            first_dependency: first,
            flag_dependencies: flags,
            segment_dependencies: segments,
            bits,
        })
    }
}

/// The JSON ranges of the snapshot's top-level members that a subset repeats.
#[derive(Clone, Copy, Debug)]
pub(super) struct Members {
    pub(super) environment: Span,
    pub(super) version: Span,
    pub(super) generated_at: Span,
    pub(super) client_keys: Span,
}

/// A packed snapshot, read in place: nothing is copied or parsed until
/// [`Packed::subset_json`].
#[derive(Clone, Copy)]
pub struct Packed<'a> {
    environment: &'a str,
    version: u64,
    pub(super) members: Members,
    pub(super) flags: &'a [u8],
    pub(super) segments: &'a [u8],
    dependencies: &'a [u8],
    /// UTF-8, checked whole by [`Packed::parse`]; each key range on character boundaries.
    pub(super) keys: &'a [u8],
    pub(super) json: &'a [u8],
}

/// Where [`Packed::parse`] found each part of the bytes it checked: enough to view the same
/// bytes again without checking them again.
#[derive(Clone, Copy, Debug)]
struct Layout {
    version: u64,
    members: Members,
    /// Within `keys`.
    environment: Span,
    flags: Span,
    segments: Span,
    dependencies: Span,
    keys: Span,
    json: Span,
}

impl Layout {
    /// The view of `bytes`. Only for the bytes this layout was checked against, where every
    /// span is in bounds and the environment is UTF-8; the empty defaults are never taken then.
    fn view<'a>(&self, bytes: &'a [u8]) -> Packed<'a> {
        let part = |span: Span| span.of(bytes).unwrap_or_default();
        let keys = part(self.keys);
        Packed {
            environment: self
                .environment
                .of(keys)
                .and_then(|b| core::str::from_utf8(b).ok())
                .unwrap_or_default(),
            version: self.version,
            members: self.members,
            flags: part(self.flags),
            segments: part(self.segments),
            dependencies: part(self.dependencies),
            keys,
            json: part(self.json),
        }
    }
}

/// A packed snapshot that owns its bytes, checked once: [`PackedSnapshot::view`] reads them
/// without running [`Packed::parse`]'s checks (a pass over the whole directory) again, so a
/// holder that compiles many subsets pays for the checks once.
#[derive(Clone)]
pub struct PackedSnapshot {
    bytes: Vec<u8>,
    layout: Layout,
}

impl PackedSnapshot {
    /// Checks `bytes` like [`Packed::parse`] and keeps them.
    ///
    /// # Errors
    /// As [`Packed::parse`].
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        let layout = Packed::check(&bytes)?;
        Ok(Self { bytes, layout })
    }

    /// Size of the packed value in bytes (directory and JSON).
    #[must_use]
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The checked bytes, read in place.
    #[must_use]
    pub fn view(&self) -> Packed<'_> {
        self.layout.view(&self.bytes)
    }
}

impl fmt::Debug for PackedSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

impl fmt::Debug for Packed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packed")
            .field("environment", &self.environment)
            .field("version", &self.version)
            .field("flags", &self.flag_count())
            .field("segments", &self.segment_count())
            .field("json", &self.json.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Packed<'a> {
    /// Checks the directory: magic, format version, lengths, checksum, every range and index in
    /// bounds, keys UTF-8 and sorted. Parses no JSON and allocates nothing.
    ///
    /// # Errors
    /// [`Error::Parse`] when the bytes are not a packed snapshot of this format version, or are
    /// damaged.
    pub fn parse(bytes: &'a [u8]) -> Result<Packed<'a>> {
        Ok(Self::check(bytes)?.view(bytes))
    }

    /// [`Packed::parse`]'s checks; the layout they establish.
    fn check<'b>(bytes: &'b [u8]) -> Result<Layout> {
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or_else(|| corrupt("truncated header"))?;
        if !is_packed(header) {
            return Err(corrupt("no packed magic"));
        }
        let format_version = match header.get(4..8) {
            Some(&[v, 0, 0, 0]) if v == FORMAT_VERSION || v == DIRECTORY_CHECKSUM_VERSION => v,
            _ => return Err(corrupt("unknown format version")),
        };
        let [directory_len, json_len, flag_count, segment_count, dependency_count, key_len] =
            header
                .get(8..32)
                .and_then(words::<6>)
                .ok_or_else(|| corrupt("header"))?;
        let version = header
            .get(32..40)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| corrupt("header"))?;
        let [env_start, env_len, m0, m1, m2, m3, m4, m5, m6, m7] = header
            .get(40..HEADER_LEN)
            .and_then(words::<10>)
            .ok_or_else(|| corrupt("header"))?;

        let entries_len = (flag_count as usize)
            .checked_add(segment_count as usize)
            .and_then(|n| n.checked_mul(ENTRY_LEN));
        let dependencies_len = (dependency_count as usize).checked_mul(4);
        let expected = entries_len
            .zip(dependencies_len)
            .and_then(|(e, d)| HEADER_LEN.checked_add(e)?.checked_add(d))
            .and_then(|n| n.checked_add(key_len as usize)?.checked_add(CHECKSUM_LEN));
        if expected != Some(directory_len as usize) {
            return Err(corrupt("directory length"));
        }
        if (directory_len as usize).checked_add(json_len as usize) != Some(bytes.len()) {
            return Err(corrupt("truncated, or trailing bytes"));
        }
        // The lengths were checked above; `split` only keeps this free of panics.
        let split = |bytes: &'b [u8], at: usize| {
            bytes
                .split_at_checked(at)
                .ok_or_else(|| corrupt("directory length"))
        };
        let (directory, json) = split(bytes, directory_len as usize)?;
        let (covered, stored) = split(directory, directory.len().saturating_sub(CHECKSUM_LEN))?;
        let expected = if format_version == DIRECTORY_CHECKSUM_VERSION {
            directory_checksum(covered)
        } else {
            checksum(covered, json)
        };
        if stored != expected.to_le_bytes() {
            return Err(corrupt("checksum mismatch"));
        }
        // The directory's parts follow the header in this order; the split lengths add up to
        // the directory length checked above.
        let (_, body) = split(covered, HEADER_LEN)?;
        let (flags, body) = split(body, flag_count as usize * ENTRY_LEN)?;
        let (segments, body) = split(body, segment_count as usize * ENTRY_LEN)?;
        let (dependencies, keys) = split(body, dependency_count as usize * 4)?;
        let keys_text = core::str::from_utf8(keys).map_err(|_| corrupt("keys are not UTF-8"))?;
        let environment = Span {
            start: env_start,
            len: env_len,
        };
        if environment.of_str(keys_text).is_none() {
            return Err(corrupt("environment"));
        }
        let span = |start, len| Span { start, len };
        let members = Members {
            environment: span(m0, m1),
            version: span(m2, m3),
            generated_at: span(m4, m5),
            client_keys: span(m6, m7),
        };
        let required = [members.environment, members.version];
        let optional = [members.generated_at, members.client_keys];
        let members_ok = required.iter().all(|m| m.len > 0 && m.of(json).is_some())
            && optional.iter().all(|m| m.len == 0 || m.of(json).is_some());
        if !members_ok {
            return Err(corrupt("member range"));
        }

        // Sizes fit in u32: each is at most the directory length, itself a u32.
        let mut at = HEADER_LEN as u32;
        let mut next_part = |len: usize| {
            let part = span(at, len as u32);
            at += len as u32;
            part
        };
        let layout = Layout {
            version,
            members,
            environment,
            flags: next_part(flags.len()),
            segments: next_part(segments.len()),
            dependencies: next_part(dependencies.len()),
            keys: next_part(keys.len()),
            json: span(directory_len, json_len),
        };
        let packed = layout.view(bytes);
        let mut next_word = 0u32;
        packed.check_table(keys_text, flags, true, &mut next_word)?;
        packed.check_table(keys_text, segments, false, &mut next_word)?;
        if next_word != dependency_count {
            return Err(corrupt("dependency words"));
        }
        Ok(layout)
    }

    /// Every entry of one table: ranges in bounds, keys in order, dependencies contiguous and
    /// pointing at entries.
    /// `keys` is the key bytes as text, checked UTF-8 (a key range must not split a character).
    fn check_table(
        &self,
        keys: &str,
        table: &[u8],
        is_flags: bool,
        next_word: &mut u32,
    ) -> Result<()> {
        let mut previous: Option<(&str, u32)> = None;
        for index in 0..table.len() / ENTRY_LEN {
            let entry = Entry::read(table, index).ok_or_else(|| corrupt("entry"))?;
            let key = entry.key.of_str(keys).ok_or_else(|| corrupt("key range"))?;
            if entry.raw.len == 0 || entry.raw.of(self.json).is_none() {
                return Err(corrupt("JSON range of an entry"));
            }
            if entry.bits & !OPAQUE != 0 || (!is_flags && entry.flag_dependencies != 0) {
                return Err(corrupt("entry bits"));
            }
            // Flags are unique by key; segments keep duplicates, in document order.
            let in_order = previous.is_none_or(|(before, start)| match before.cmp(key) {
                Ordering::Less => true,
                Ordering::Equal => !is_flags && start < entry.raw.start,
                Ordering::Greater => false,
            });
            if !in_order {
                return Err(corrupt("entries out of order"));
            }
            previous = Some((key, entry.raw.start));

            if entry.first_dependency != *next_word {
                return Err(corrupt("dependency words"));
            }
            let flag_end = next_word
                .checked_add(entry.flag_dependencies)
                .ok_or_else(|| corrupt("dependency words"))?;
            let end = flag_end
                .checked_add(entry.segment_dependencies)
                .ok_or_else(|| corrupt("dependency words"))?;
            let flag_count = self.flag_count();
            let segment_count = self.segment_count();
            for word in *next_word..end {
                let target = self.word(word).ok_or_else(|| corrupt("dependency words"))?;
                let bound = if word < flag_end {
                    flag_count
                } else {
                    segment_count
                };
                if target as usize >= bound {
                    return Err(corrupt("dependency index"));
                }
            }
            *next_word = end;
        }
        Ok(())
    }

    /// The environment key.
    #[must_use]
    pub fn environment(&self) -> &'a str {
        self.environment
    }

    /// The snapshot version.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The whole snapshot JSON, byte for byte as it was packed.
    #[must_use]
    pub fn json(&self) -> &'a [u8] {
        self.json
    }

    /// Number of flags compiling keeps (duplicate keys counted once), like
    /// [`crate::CompiledSnapshot::len`].
    #[must_use]
    pub fn flag_count(&self) -> usize {
        self.flags.len() / ENTRY_LEN
    }

    pub(super) fn segment_count(&self) -> usize {
        self.segments.len() / ENTRY_LEN
    }

    /// Whether a flag with this key exists (valid or not), like
    /// [`crate::CompiledSnapshot::contains_flag`].
    #[must_use]
    pub fn contains_flag(&self, key: &str) -> bool {
        self.find_flag(key).is_some()
    }

    pub(super) fn find_flag(&self, key: &str) -> Option<usize> {
        let (mut low, mut high) = (0, self.flag_count());
        while low < high {
            let middle = low + (high - low) / 2;
            let entry = Entry::read(self.flags, middle)?;
            // Byte order is the order of the keys as strings: UTF-8 preserves it.
            match entry.key.of(self.keys)?.cmp(key.as_bytes()) {
                Ordering::Less => low = middle + 1,
                Ordering::Greater => high = middle,
                Ordering::Equal => return Some(middle),
            }
        }
        None
    }

    pub(super) fn word(&self, index: u32) -> Option<u32> {
        let start = (index as usize).checked_mul(4)?;
        let bytes = self.dependencies.get(start..start.checked_add(4)?)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }
}

/// `N` little-endian `u32`s from exactly `4 × N` bytes.
fn words<const N: usize>(bytes: &[u8]) -> Option<[u32; N]> {
    if bytes.len() != 4 * N {
        return None;
    }
    let mut out = [0u32; N];
    for (slot, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *slot = u32::from_le_bytes(chunk.try_into().ok()?);
    }
    Some(out)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// One FNV-1a round over a 64-bit word. Both of its steps are bijections, so for a fixed state
/// a different word always gives a different state, and for a fixed word a different state does.
fn round(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(FNV_PRIME)
}

/// The checksum of a packed value (format version 2): the directory before the checksum field,
/// then the JSON, each folded by [`fold_words`] / [`fold_lanes`] from the state the part before
/// left. One changed word anywhere changes the result; a changed length is caught earlier, by the
/// lengths the covered header holds.
pub(super) fn checksum(directory: &[u8], json: &[u8]) -> u64 {
    fold_lanes(fold_words(FNV_OFFSET, directory), json)
}

/// The checksum of format version 1: the directory only.
pub(super) fn directory_checksum(directory: &[u8]) -> u64 {
    fold_words(FNV_OFFSET, directory)
}

/// FNV-1a 64 over little-endian 8-byte words (the last one zero-padded), from state `h`: a word
/// at a time is eight times fewer dependent multiplications than a byte at a time.
fn fold_words(h: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    let mut h = words.by_ref().fold(h, |h, w| round(h, word(w)));
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut last = [0u8; 8];
        for (slot, &b) in last.iter_mut().zip(tail) {
            *slot = b;
        }
        h = round(h, u64::from_le_bytes(last));
    }
    h
}

/// [`fold_words`] in four independent lanes over 32-byte blocks, folded into `h` at the end, then
/// the remaining bytes word by word. The lanes' multiplications do not wait on each other, which
/// makes hashing the JSON (up to 25 MiB) about four times faster than one chain; a changed word
/// changes its lane, and so the result.
fn fold_lanes(h: u64, bytes: &[u8]) -> u64 {
    let mut lanes = [h, h ^ 1, h ^ 2, h ^ 3];
    let mut blocks = bytes.chunks_exact(32);
    for block in blocks.by_ref() {
        for (lane, w) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = round(*lane, word(w));
        }
    }
    let h = lanes.iter().fold(h, |h, &lane| round(h, lane));
    fold_words(h, blocks.remainder())
}

/// The little-endian word of exactly eight bytes (0 otherwise, which never happens for the
/// `chunks_exact(8)` it is given).
fn word(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_le_bytes)
}

fn corrupt(what: &str) -> Error {
    Error::Parse {
        message: alloc::format!("corrupt packed snapshot: {what}"),
    }
}
