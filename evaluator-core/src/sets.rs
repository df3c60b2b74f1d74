//! Sets for membership tests: user lists by string, `in` operands by interned id.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::hash::BuildHasher;
use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// A set of strings (user ids, countries), stored as one byte buffer plus spans into it: a
/// snapshot holds tens of thousands of user ids, and one allocation per id dominated loading
/// (malloc when parsing, free when dropping). A short list is faster to scan than to hash.
#[derive(Clone, Default)]
pub(crate) struct StrSet {
    /// The members as read (a duplicate is kept, but indexed once), concatenated.
    bytes: Vec<u8>,
    /// `(start, len)` of each member in `bytes`.
    spans: Vec<(u32, u32)>,
    /// Positions in `spans` by hash; empty (never allocated) while the set is scanned.
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl fmt::Debug for StrSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                self.spans
                    .iter()
                    .map(|&span| String::from_utf8_lossy(member(&self.bytes, span))),
            )
            .finish()
    }
}

/// The bytes of one member (empty for a span that does not fit, which `append` never makes).
#[inline]
fn member(bytes: &[u8], (start, len): (u32, u32)) -> &[u8] {
    let start = start as usize;
    bytes
        .get(start..start.saturating_add(len as usize))
        .unwrap_or_default()
}

impl StrSet {
    const SCAN_LIMIT: usize = 8;

    pub(crate) fn new(items: Vec<String>) -> Self {
        let mut set = Self::default();
        set.bytes.reserve(items.iter().map(String::len).sum());
        set.spans.reserve(items.len());
        for item in &items {
            set.append(item.as_bytes());
        }
        set.index();
        set
    }

    #[inline]
    pub(crate) fn contains(&self, s: &str) -> bool {
        let needle = s.as_bytes();
        if self.table.is_empty() {
            return self
                .spans
                .iter()
                .any(|&span| crate::text::bytes_eq(member(&self.bytes, span), needle));
        }
        let hash = self.hasher.hash_one(needle);
        self.table
            .find(hash, |&i| member_at(&self.bytes, &self.spans, i) == needle)
            .is_some()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Adds a member; [`StrSet::index`] must follow the last one.
    fn append(&mut self, s: &[u8]) {
        // Offsets are u32: a snapshot list cannot reach 4 GiB (KV values are at most 25 MiB).
        let start = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(s);
        self.spans.push((start, len));
    }

    /// Hashes the members once all are known: one table of the right size, no rehashing while
    /// reading. A duplicate keeps its span (scans and lookups still answer right) but is
    /// indexed once.
    fn index(&mut self) {
        if self.spans.len() <= Self::SCAN_LIMIT {
            return;
        }
        let Self {
            bytes,
            spans,
            table,
            hasher,
        } = self;
        let hash_of = |i: &u32| hasher.hash_one(member_at(bytes, spans, *i));
        *table = HashTable::with_capacity(spans.len());
        for (i, &span) in spans.iter().enumerate() {
            let item = member(bytes, span);
            let hash = hasher.hash_one(item);
            if table
                .find(hash, |&j| member_at(bytes, spans, j) == item)
                .is_none()
            {
                table.insert_unique(hash, crate::validate::index_u32(i), hash_of);
            }
        }
    }
}

/// Member `i` of `spans` (empty if out of range, which `index` never makes).
#[inline]
fn member_at<'b>(bytes: &'b [u8], spans: &[(u32, u32)], i: u32) -> &'b [u8] {
    spans
        .get(i as usize)
        .map_or(&[][..], |&span| member(bytes, span))
}

/// A string list as read from a snapshot: its length as written (duplicates included, which is
/// what the limits count) and the set it compiles to. Deserializes straight from a JSON array
/// of strings into the set, without a `String` per element.
#[derive(Debug, Default)]
pub(crate) struct StrList {
    pub(crate) len: usize,
    pub(crate) set: StrSet,
}

impl StrList {
    pub(crate) fn of(items: Vec<String>) -> Self {
        Self {
            len: items.len(),
            set: StrSet::new(items),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, s: &str) {
        if self.len == 0 {
            // Skip the first few doublings: lists that are long at all hold tens of ids.
            self.set.spans.reserve(16);
            self.set.bytes.reserve(16 * s.len().min(64));
        }
        self.len += 1;
        self.set.append(s.as_bytes());
    }
}

impl<'de> Deserialize<'de> for StrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> Visitor<'de> for Items {
            type Value = StrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrList, A::Error> {
                let mut list = StrList::default();
                while seq.next_element_seed(Item(&mut list))?.is_some() {}
                list.set.index();
                Ok(list)
            }
        }
        /// One element, added to the list as it is read.
        struct Item<'l>(&'l mut StrList);
        impl<'de> DeserializeSeed<'de> for Item<'_> {
            type Value = ();
            fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
                deserializer.deserialize_str(self)
            }
        }
        impl Visitor<'_> for Item<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
                self.0.push(s);
                Ok(())
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

/// Every string operand of `in`/`notIn` in a snapshot, numbered. An attribute value is looked
/// up here once per evaluation; each clause then tests a small integer set, however many
/// clauses compare the same attribute.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    ids: HashMap<String, u32>,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        // Ids stay below the cache's sentinels: a snapshot cannot hold 2^32 strings in memory.
        let id = u32::try_from(self.ids.len()).unwrap_or(u32::MAX - 2);
        self.ids.insert(String::from(s), id);
        id
    }

    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

/// A set of interned ids: sorted for binary search while small, hashed when large.
#[derive(Debug, Clone)]
pub(crate) enum IdSet {
    Sorted(Vec<u32>),
    Hashed(HashSet<u32>),
}

impl Default for IdSet {
    fn default() -> Self {
        Self::Sorted(Vec::new())
    }
}

impl IdSet {
    const SORTED_LIMIT: usize = 64;

    pub(crate) fn new(mut ids: Vec<u32>) -> Self {
        if ids.len() <= Self::SORTED_LIMIT {
            ids.sort_unstable();
            ids.dedup();
            Self::Sorted(ids)
        } else {
            Self::Hashed(ids.into_iter().collect())
        }
    }

    #[inline]
    pub(crate) fn contains(&self, id: u32) -> bool {
        match self {
            // A short scan beats binary search's chain of dependent loads.
            Self::Sorted(ids) if ids.len() <= 16 => ids.contains(&id),
            Self::Sorted(ids) => ids.binary_search(&id).is_ok(),
            Self::Hashed(ids) => ids.contains(&id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_gives_each_distinct_string_one_id() {
        let mut interner = Interner::default();
        let a = interner.intern("US");
        let b = interner.intern("CA");
        assert_eq!(interner.intern("US"), a);
        assert_ne!(a, b);
        assert_eq!(interner.get("CA"), Some(b));
        assert_eq!(interner.get("FR"), None);
    }

    #[test]
    fn id_sets_answer_membership_small_and_large() {
        let small = IdSet::new(Vec::from([9, 3, 3, 7]));
        assert!(small.contains(3) && small.contains(9) && !small.contains(4));
        let large = IdSet::new((0..1000).map(|i| i * 2).collect());
        assert!(large.contains(998) && !large.contains(999));
    }

    #[test]
    fn string_sets_answer_membership_small_and_large() {
        let small = StrSet::new(Vec::from([String::from("a")]));
        assert!(small.contains("a") && !small.contains("b"));
        let large = StrSet::new((0..100).map(|i| alloc::format!("u{i}")).collect());
        assert!(large.contains("u99") && !large.contains("u100") && !large.is_empty());
        assert!(StrSet::default().is_empty() && !StrSet::default().contains(""));
    }

    #[test]
    fn string_lists_read_from_json_keep_their_length_and_members() {
        let json = r#"["a", "b\u00e9", "a", "", "c", "d", "e", "f", "g", "h", "i", "a"]"#;
        let list: StrList = serde_json::from_str(json).unwrap();
        assert_eq!(list.len, 12);
        for member in ["a", "b\u{e9}", "", "c", "i"] {
            assert!(list.set.contains(member), "{member:?}");
        }
        assert!(!list.set.contains("b") && !list.set.contains("j"));
        assert_eq!(list.set.table.len(), 10, "duplicates are indexed once");
        let empty: StrList = serde_json::from_str("[]").unwrap();
        assert!(empty.is_empty() && empty.set.is_empty());
        assert!(serde_json::from_str::<StrList>(r#"["a", 1]"#).is_err());
        assert!(serde_json::from_str::<StrList>(r#""a""#).is_err());
        let same = StrList::of(Vec::from([String::from("x"), String::from("x")]));
        assert!(same.len == 2 && same.set.contains("x") && !same.set.contains("y"));
    }
}
