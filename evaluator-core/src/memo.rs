//! What one evaluation has already worked out: segment membership and prerequisite outcomes.
//!
//! Both depend only on the context (and `now`), never on who asks, so each segment and each
//! prerequisite flag is worked out at most once per evaluation. That makes the cost of an
//! evaluation linear in the size of the snapshot: without it, a chain of segments that each
//! match the next one twice, or a diamond of prerequisites, costs exponential time.
//!
//! The common flag touches a handful of segments and prerequisites, so the first few answers
//! live in a small inline table; only an evaluation that touches more spills into a table
//! with a slot for every segment and flag (one allocation).
//!
//! Memoising is exact only because validation bounds nesting (`limits::SEGMENT_DEPTH`,
//! `limits::PREREQUISITE_DEPTH`): the depth cut-offs of evaluation, whose answer would depend
//! on the depth a segment is reached at, never trigger in a compiled snapshot.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, OnceCell, RefCell};

use crate::attribute::ID_UNKNOWN;

/// Answers kept inline before spilling.
const INLINE: usize = 8;
/// A spilled slot not worked out yet.
const UNKNOWN: u32 = u32::MAX;

/// The memo of one evaluation. Nodes are segments (by index), then flags (after the segments).
pub(crate) struct Memo {
    segments: u32,
    nodes: usize,
    /// Set up at the first answer: most evaluations (a flag without segments or prerequisites)
    /// never touch the memo and so never pay for clearing its table.
    state: OnceCell<RefCell<State>>,
    /// The interned id of the context's targeting key, looked up at the first `in` / `notIn`
    /// clause on it (a property of the context, like the answers above).
    key_id: Cell<u32>,
}

struct State {
    len: usize,
    inline: [(u32, u32); INLINE],
    /// Empty until spilled; then one slot per node.
    spilled: Vec<u32>,
}

impl Memo {
    /// An empty memo for a snapshot of `segments` segments and `flags` flags (allocates nothing).
    pub(crate) fn new(segments: usize, flags: usize) -> Self {
        Self {
            segments: u32::try_from(segments).unwrap_or(u32::MAX),
            nodes: segments.saturating_add(flags),
            state: OnceCell::new(),
            key_id: Cell::new(ID_UNKNOWN),
        }
    }

    /// The cell of the targeting key's interned id (see [`crate::attribute::AttrCache`]).
    pub(crate) fn key_id(&self) -> &Cell<u32> {
        &self.key_id
    }

    /// Whether the user is in segment `index`, worked out by `compute` the first time.
    pub(crate) fn segment(&self, index: u32, compute: impl FnOnce() -> bool) -> bool {
        if let Some(known) = self.get(index) {
            return known != 0;
        }
        let member = compute();
        self.put(index, u32::from(member));
        member
    }

    /// The outcome of flag `flag` as a prerequisite: the variation it serves, `None` when it is
    /// disabled or fails. Worked out by `compute` the first time.
    pub(crate) fn prerequisite(
        &self,
        flag: u32,
        compute: impl FnOnce() -> Option<u32>,
    ) -> Option<u32> {
        let node = self.segments.saturating_add(flag);
        if let Some(known) = self.get(node) {
            return known.checked_sub(1);
        }
        let served = compute();
        // 0 = failed, v + 1 = variation v (variations are far fewer than u32::MAX).
        self.put(
            node,
            served.map_or(0, |v| v.saturating_add(1).min(UNKNOWN - 1)),
        );
        served
    }

    fn get(&self, node: u32) -> Option<u32> {
        // Never borrowed across a `compute`, so this cannot fail; answer "unknown" if it did.
        let state = self.state.get()?.try_borrow().ok()?;
        if !state.spilled.is_empty() {
            return state
                .spilled
                .get(node as usize)
                .copied()
                .filter(|&v| v != UNKNOWN);
        }
        state
            .inline
            .get(..state.len)?
            .iter()
            .find(|&&(key, _)| key == node)
            .map(|&(_, value)| value)
    }

    fn put(&self, node: u32, value: u32) {
        let state = self.state.get_or_init(|| {
            RefCell::new(State {
                len: 0,
                inline: [(0, 0); INLINE],
                spilled: Vec::new(),
            })
        });
        let Ok(mut state) = state.try_borrow_mut() else {
            return;
        };
        if !state.spilled.is_empty() {
            if let Some(slot) = state.spilled.get_mut(node as usize) {
                *slot = value;
            }
            return;
        }
        let len = state.len;
        if let Some(slot) = state.inline.get_mut(len) {
            *slot = (node, value);
            state.len = len + 1;
            return;
        }
        let mut spilled = vec![UNKNOWN; self.nodes];
        for &(key, known) in state.inline.iter().chain(core::iter::once(&(node, value))) {
            if let Some(slot) = spilled.get_mut(key as usize) {
                *slot = known;
            }
        }
        state.spilled = spilled;
    }
}

/// Test-only counters of the work an evaluation does, per thread (tests run in parallel).
#[cfg(test)]
pub(crate) mod count {
    use core::cell::Cell;

    std::thread_local! {
        static SEGMENTS: Cell<usize> = const { Cell::new(0) };
        static PREREQUISITES: Cell<usize> = const { Cell::new(0) };
    }

    /// One segment's rules were matched.
    pub(crate) fn segment() {
        SEGMENTS.with(|c| c.set(c.get() + 1));
    }

    /// One prerequisite flag was resolved.
    pub(crate) fn prerequisite() {
        PREREQUISITES.with(|c| c.set(c.get() + 1));
    }

    /// (segments, prerequisites) counted since the last call; resets both.
    pub(crate) fn take() -> (usize, usize) {
        (
            SEGMENTS.with(|c| c.replace(0)),
            PREREQUISITES.with(|c| c.replace(0)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_answers_from_its_inline_table_then_from_the_spilled_one() {
        let memo = Memo::new(20, 5);
        for i in 0..20u32 {
            assert_eq!(memo.segment(i, || i % 3 == 0), i % 3 == 0);
        }
        for i in 0..20u32 {
            assert_eq!(
                memo.segment(i, || panic!("segment {i} worked out twice")),
                i % 3 == 0
            );
        }
        assert_eq!(memo.prerequisite(2, || Some(7)), Some(7));
        assert_eq!(memo.prerequisite(3, || None), None);
        assert_eq!(memo.prerequisite(2, || panic!("worked out twice")), Some(7));
        assert_eq!(memo.prerequisite(3, || panic!("worked out twice")), None);
    }
}
