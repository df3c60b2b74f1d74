//! How deep prerequisites and `segmentMatch` nest, for the depth limits of validation
//! (`limits::PREREQUISITE_DEPTH`, `limits::SEGMENT_DEPTH`).
//!
//! Like cycle detection, the graphs come from the wire model. Depths are longest paths, found
//! in topological order (Kahn's algorithm, no recursion, so a long chain cannot overflow the
//! stack); a node on a cycle, or depending on one, has none (the cycle is reported instead).

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use crate::model::{Flag, Segment};
use crate::operators::KeyIndex;
use crate::snapshot::Entry;

/// For every flag, how many prerequisite levels hang below it (0: no prerequisites).
pub(crate) fn prerequisite_depths(
    entries: &[Entry<'_, Flag>],
    index: &KeyIndex<'_>,
) -> Vec<Option<usize>> {
    longest_paths(&prerequisite_graph(entries, index))
}

/// Each flag's prerequisites, as entry indexes.
pub(crate) fn prerequisite_graph(
    entries: &[Entry<'_, Flag>],
    index: &KeyIndex<'_>,
) -> Vec<Vec<u32>> {
    graph_of(entries, |flag: &Flag| {
        flag.prerequisites
            .iter()
            .filter_map(|p| index.get(p.flag_key.as_str()).copied())
            .collect()
    })
}

/// For every segment, how many segments deep its `segmentMatch` chain is (1: it matches no
/// other segment).
pub(crate) fn segment_depths(
    entries: &[Entry<'_, Segment>],
    index: &KeyIndex<'_>,
) -> Vec<Option<usize>> {
    longest_paths(&segment_graph(entries, index))
        .into_iter()
        .map(|edges| edges.map(|e| e + 1))
        .collect()
}

/// The segments each segment's `segmentMatch` clauses name, as entry indexes.
pub(crate) fn segment_graph(entries: &[Entry<'_, Segment>], index: &KeyIndex<'_>) -> Vec<Vec<u32>> {
    graph_of(entries, |segment: &Segment| {
        segment
            .rules
            .iter()
            .flat_map(|rule| &rule.clauses)
            .filter(|clause| clause.operator == "segmentMatch")
            .flat_map(|clause| &clause.values)
            .filter_map(|value| value.as_str().and_then(|key| index.get(key)).copied())
            .collect()
    })
}

/// Which nodes reach `target` by following edges (`target` itself only if it is on a cycle):
/// the flags or segments whose depth a change of `target` can change.
pub(crate) fn reaching(graph: &[Vec<u32>], target: usize) -> Vec<bool> {
    let mut predecessors: Vec<Vec<usize>> = vec![Vec::new(); graph.len()];
    for (node, targets) in graph.iter().enumerate() {
        for &t in targets {
            if let Some(list) = predecessors.get_mut(t as usize) {
                list.push(node);
            }
        }
    }
    let mut reached = vec![false; graph.len()];
    let mut queue: VecDeque<usize> = VecDeque::from([target]);
    while let Some(node) = queue.pop_front() {
        for &p in predecessors.get(node).map_or(&[][..], Vec::as_slice) {
            if let Some(seen) = reached.get_mut(p) {
                if !*seen {
                    *seen = true;
                    queue.push_back(p);
                }
            }
        }
    }
    reached
}

/// The targets of every entry's edges; an unparsable entry has none.
fn graph_of<T>(entries: &[Entry<'_, T>], edges: impl Fn(&T) -> Vec<u32>) -> Vec<Vec<u32>> {
    entries
        .iter()
        .map(|entry| match entry {
            Entry::Parsed(item) => edges(item),
            Entry::Unparsable { .. } => Vec::new(),
        })
        .collect()
}

/// Edges on the longest path from each node; `None` for nodes on or above a cycle.
pub(crate) fn longest_paths(graph: &[Vec<u32>]) -> Vec<Option<usize>> {
    let n = graph.len();
    let mut waiting: Vec<usize> = vec![0; n];
    let mut predecessors: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (node, targets) in graph.iter().enumerate() {
        for &target in targets {
            if let Some(list) = predecessors.get_mut(target as usize) {
                list.push(node);
                if let Some(w) = waiting.get_mut(node) {
                    *w += 1;
                }
            }
        }
    }
    let mut depth: Vec<Option<usize>> = vec![None; n];
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting.get(i) == Some(&0)).collect();
    for &leaf in &ready {
        if let Some(d) = depth.get_mut(leaf) {
            *d = Some(0);
        }
    }
    while let Some(node) = ready.pop_front() {
        let below = depth.get(node).copied().flatten().unwrap_or(0);
        for &p in predecessors.get(node).map_or(&[][..], Vec::as_slice) {
            if let Some(d) = depth.get_mut(p) {
                *d = Some(d.unwrap_or(0).max(below + 1));
            }
            if let Some(w) = waiting.get_mut(p) {
                *w -= 1;
                if *w == 0 {
                    ready.push_back(p);
                }
            }
        }
    }
    // A node whose edges were not all resolved sits on or above a cycle.
    for (d, w) in depth.iter_mut().zip(&waiting) {
        if *w > 0 {
            *d = None;
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_paths_count_edges_of_the_deepest_branch_and_skip_cycles() {
        // 0 -> 1 -> 2, 0 -> 2 (a diamond's worth of sharing), 3 <-> 4, 5 -> 3
        let graph = vec![vec![1, 2], vec![2], vec![], vec![4], vec![3], vec![3]];
        assert_eq!(
            longest_paths(&graph),
            vec![Some(2), Some(1), Some(0), None, None, None]
        );
        assert_eq!(
            reaching(&graph, 2),
            vec![true, true, false, false, false, false]
        );
        assert_eq!(
            reaching(&graph, 3),
            vec![false, false, false, true, true, true]
        );
    }
}
