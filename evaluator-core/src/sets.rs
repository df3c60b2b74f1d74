//! Sets for membership tests: user lists by string, `in` operands by interned id.

use alloc::string::String;
use alloc::vec::Vec;
use hashbrown::{HashMap, HashSet};

/// A set of strings (user ids, countries): a short list is faster to scan than to hash.
#[derive(Debug, Clone)]
pub(crate) enum StrSet {
    Small(Vec<String>),
    Large(HashSet<String>),
}

impl Default for StrSet {
    fn default() -> Self {
        Self::Small(Vec::new())
    }
}

impl StrSet {
    const SCAN_LIMIT: usize = 8;

    pub(crate) fn new(items: Vec<String>) -> Self {
        if items.len() <= Self::SCAN_LIMIT {
            Self::Small(items)
        } else {
            Self::Large(items.into_iter().collect())
        }
    }

    #[inline]
    pub(crate) fn contains(&self, s: &str) -> bool {
        match self {
            Self::Small(items) => items.iter().any(|item| crate::text::eq(item, s)),
            Self::Large(items) => items.contains(s),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Self::Small(items) => items.is_empty(),
            Self::Large(items) => items.is_empty(),
        }
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
    }
}
