//! Subsets: following a flag's dependencies (prerequisites, `targetingRules.segments`,
//! `segmentMatch` operands, transitively) through the directory [`super::format`] checked, and
//! writing the small snapshot JSON that holds just those flags and segments. This is the read
//! side of packing, run once per request a cold isolate serves; it trusts the checked layout and
//! parses no JSON.

use alloc::vec;
use alloc::vec::Vec;

use super::format::{Entry, Packed, Span, OPAQUE};

impl Packed<'_> {
    /// A snapshot JSON with the same `environment`, `version`, `generatedAt` and `clientKeys`,
    /// holding the flags named in `keys` (unknown keys are ignored) and, transitively, every flag
    /// and segment they depend on: prerequisites, `targetingRules.segments` and `segmentMatch`
    /// operands. Flags and segments are copied verbatim and keep their relative order.
    ///
    /// Compiled, it evaluates every flag of `keys` exactly like the whole snapshot does.
    #[must_use]
    pub fn subset_json(&self, keys: &[&str]) -> Vec<u8> {
        let mut flags = Closure::new(self.flag_count());
        let mut segments = Closure::new(self.segment_count());
        for key in keys {
            if let Some(index) = self.find_flag(key) {
                flags.add(index as u32);
            }
        }
        while let Some(index) = flags.next() {
            if !self.follow(self.flags, index, &mut flags, &mut segments) {
                return self.json.to_vec();
            }
        }
        while let Some(index) = segments.next() {
            if !self.follow(self.segments, index, &mut flags, &mut segments) {
                return self.json.to_vec();
            }
        }
        let flags = self.raw_in_order(self.flags, flags.members());
        let segments = self.raw_in_order(self.segments, segments.members());
        self.write_subset(&flags, &segments)
    }

    /// Adds the dependencies of entry `index` of `table` to the closures; `false` when packing
    /// could not read its references (then only the whole snapshot is safe). A segment's entry
    /// has no flag dependencies (checked by [`Packed::parse`]), so one walk serves both tables.
    fn follow(
        &self,
        table: &[u8],
        index: u32,
        flags: &mut Closure,
        segments: &mut Closure,
    ) -> bool {
        let Some(entry) = Entry::read(table, index as usize) else {
            return true;
        };
        if entry.bits & OPAQUE != 0 {
            return false;
        }
        let first = entry.first_dependency;
        let flag_end = first.saturating_add(entry.flag_dependencies);
        let end = flag_end.saturating_add(entry.segment_dependencies);
        for word in first..end {
            if let Some(i) = self.word(word) {
                if word < flag_end {
                    flags.add(i);
                } else {
                    segments.add(i);
                }
            }
        }
        true
    }

    /// The raw JSON of the given entries, in document order.
    fn raw_in_order(&self, table: &[u8], indexes: impl Iterator<Item = u32>) -> Vec<Span> {
        let mut spans: Vec<Span> = indexes
            .filter_map(|i| Entry::read(table, i as usize).map(|e| e.raw))
            .collect();
        spans.sort_unstable_by_key(|span| span.start);
        spans
    }

    fn write_subset(&self, flags: &[Span], segments: &[Span]) -> Vec<u8> {
        let member = |span: Span| span.of(self.json).unwrap_or_default();
        let raw_len: usize = flags
            .iter()
            .chain(segments)
            .map(|s| s.len as usize + 1)
            .sum();
        let mut out = Vec::with_capacity(raw_len + 256);
        out.extend_from_slice(b"{\"environment\":");
        out.extend_from_slice(member(self.members.environment));
        out.extend_from_slice(b",\"version\":");
        out.extend_from_slice(member(self.members.version));
        if self.members.generated_at.len > 0 {
            out.extend_from_slice(b",\"generatedAt\":");
            out.extend_from_slice(member(self.members.generated_at));
        }
        if self.members.client_keys.len > 0 {
            out.extend_from_slice(b",\"clientKeys\":");
            out.extend_from_slice(member(self.members.client_keys));
        }
        for (name, spans) in [
            (&b",\"flags\":["[..], flags),
            (b",\"segments\":[", segments),
        ] {
            out.extend_from_slice(name);
            for (i, span) in spans.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(member(*span));
            }
            out.push(b']');
        }
        out.push(b'}');
        out
    }
}

/// A set of entry indexes grown by following dependencies, with the ones still to follow.
struct Closure {
    seen: Vec<bool>,
    pending: Vec<u32>,
}

impl Closure {
    fn new(len: usize) -> Self {
        Closure {
            seen: vec![false; len],
            pending: Vec::new(),
        }
    }

    fn add(&mut self, index: u32) {
        if let Some(seen @ false) = self.seen.get_mut(index as usize) {
            *seen = true;
            self.pending.push(index);
        }
    }

    fn next(&mut self) -> Option<u32> {
        self.pending.pop()
    }

    fn members(&self) -> impl Iterator<Item = u32> + '_ {
        (0u32..)
            .zip(&self.seen)
            .filter_map(|(i, &seen)| seen.then_some(i))
    }
}
