//! Cycle detection for prerequisites (flag → flag) and `segmentMatch` (segment → segment).
//!
//! Both graphs are built from the wire model, not from compiled flags, so a cycle is reported
//! even when a flag on it has other errors. Strongly connected components (Tarjan, iterative so
//! that a long chain cannot overflow the stack) find exactly the edges that lie on a cycle.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::model::{Flag, Segment};
use crate::operators::KeyIndex;
use crate::snapshot::{Entry, Keyed};

/// A prerequisite edge on a cycle: `flags[flag].prerequisites[prerequisite]`.
pub(crate) struct PrerequisiteCycle {
    pub(crate) flag: usize,
    pub(crate) prerequisite: usize,
    pub(crate) message: String,
}

/// A `segmentMatch` operand on a cycle: `segments[segment].rules[rule].clauses[clause].values[value]`.
pub(crate) struct SegmentCycle {
    pub(crate) segment: usize,
    pub(crate) rule: usize,
    pub(crate) clause: usize,
    pub(crate) value: usize,
    pub(crate) message: String,
}

/// Every prerequisite edge that lies on a cycle, with the cycle spelled out by key.
pub(crate) fn prerequisite_cycles(
    entries: &[Entry<'_, Flag>],
    index: &KeyIndex<'_>,
) -> Vec<PrerequisiteCycle> {
    // (prerequisite, target) of every prerequisite naming a known flag.
    let edges = |entry: &Entry<'_, Flag>| {
        prerequisites(entry)
            .iter()
            .enumerate()
            .filter_map(|(p, prerequisite)| {
                let target = index.get(prerequisite.flag_key.as_str())?;
                Some((p, *target))
            })
            .collect()
    };
    cyclic_edges(entries, edges, "prerequisite")
        .into_iter()
        .map(|(flag, prerequisite, message)| PrerequisiteCycle {
            flag,
            prerequisite,
            message,
        })
        .collect()
}

/// Every `segmentMatch` operand that closes a cycle of segments.
pub(crate) fn segment_cycles(
    entries: &[Entry<'_, Segment>],
    index: &KeyIndex<'_>,
) -> Vec<SegmentCycle> {
    // ((rule, clause, value), target) of every segmentMatch operand naming a known segment.
    let edges = |entry: &Entry<'_, Segment>| {
        let mut out = Vec::new();
        if let Entry::Parsed(segment) = entry {
            for (r, rule) in segment.rules.iter().enumerate() {
                for (c, clause) in rule.clauses.iter().enumerate() {
                    if clause.operator != "segmentMatch" {
                        continue;
                    }
                    for (v, value) in clause.values.iter().enumerate() {
                        if let Some(&target) = value.as_str().and_then(|k| index.get(k)) {
                            out.push(((r, c, v), target));
                        }
                    }
                }
            }
        }
        out
    };
    cyclic_edges(entries, edges, "segment")
        .into_iter()
        .map(|(segment, (rule, clause, value), message)| SegmentCycle {
            segment,
            rule,
            clause,
            value,
            message,
        })
        .collect()
}

/// `(node, edge, message)` for every edge that lies on a cycle, in entry then edge order, where
/// `edges` lists an entry's edges (each with the index of the entry it points to); the message
/// reads `"{kind} cycle: a -> b -> a"`.
fn cyclic_edges<T: Keyed, E: Copy>(
    entries: &[Entry<'_, T>],
    edges: impl Fn(&Entry<'_, T>) -> Vec<(E, u32)>,
    kind: &str,
) -> Vec<(usize, E, String)> {
    let refs: Vec<Vec<(E, u32)>> = entries.iter().map(edges).collect();
    let graph: Vec<Vec<u32>> = refs
        .iter()
        .map(|r| r.iter().map(|&(_, t)| t).collect())
        .collect();
    let components = cyclic_components(&graph);
    let keys: Vec<&str> = entries.iter().map(|e| e.key().unwrap_or("?")).collect();
    let mut out = Vec::new();
    for (node, edges) in refs.iter().enumerate() {
        let Some(component) = components.get(node).copied().flatten() else {
            continue;
        };
        for &(edge, target) in edges {
            if components.get(target as usize).copied().flatten() == Some(component) {
                let message = format!(
                    "{kind} cycle: {}",
                    spell(&graph, &keys, node, target as usize)
                );
                out.push((node, edge, message));
            }
        }
    }
    out
}

fn prerequisites<'e>(entry: &'e Entry<'_, Flag>) -> &'e [crate::model::Prerequisite] {
    match entry {
        Entry::Parsed(flag) => flag.prerequisites.as_slice(),
        Entry::Unparsable { .. } => &[],
    }
}

/// `a -> b -> ... -> a` for the edge `from -> to` and the shortest way back from `to`.
fn spell(graph: &[Vec<u32>], keys: &[&str], from: usize, to: usize) -> String {
    let name = |i: usize| keys.get(i).copied().unwrap_or("?");
    let mut text = String::from(name(from));
    for node in shortest_path(graph, to, from) {
        text.push_str(" -> ");
        text.push_str(name(node));
    }
    text
}

/// Nodes from `start` to `goal` inclusive (breadth first); just `[start]` if unreachable.
fn shortest_path(graph: &[Vec<u32>], start: usize, goal: usize) -> Vec<usize> {
    let mut previous: Vec<Option<usize>> = vec![None; graph.len()];
    let mut seen = vec![false; graph.len()];
    let mut queue = VecDeque::from([start]);
    if let Some(s) = seen.get_mut(start) {
        *s = true;
    }
    while let Some(node) = queue.pop_front() {
        if node == goal {
            let mut path = Vec::from([node]);
            let mut at = node;
            while let Some(Some(prev)) = previous.get(at) {
                path.push(*prev);
                at = *prev;
            }
            path.reverse();
            return path;
        }
        for &next in graph.get(node).map_or(&[][..], Vec::as_slice) {
            let next = next as usize;
            if let Some(s) = seen.get_mut(next).filter(|s| !**s) {
                *s = true;
                if let Some(p) = previous.get_mut(next) {
                    *p = Some(node);
                }
                queue.push_back(next);
            }
        }
    }
    Vec::from([start])
}

/// For every node, the id of its strongly connected component if that component is a cycle
/// (several nodes, or one node with an edge to itself); `None` otherwise.
pub(crate) fn cyclic_components(graph: &[Vec<u32>]) -> Vec<Option<u32>> {
    const UNVISITED: usize = usize::MAX;
    let n = graph.len();
    let mut order = vec![UNVISITED; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut component: Vec<Option<u32>> = vec![None; n];
    let mut next_order = 0usize;
    let mut next_component = 0u32;
    // (node, next edge to follow): the explicit call stack of the recursive algorithm.
    let mut calls: Vec<(usize, usize)> = Vec::new();

    let edges = |v: usize| graph.get(v).map_or(&[][..], Vec::as_slice);
    for root in 0..n {
        if order.get(root) != Some(&UNVISITED) {
            continue;
        }
        visit(
            root,
            &mut order,
            &mut low,
            &mut on_stack,
            &mut stack,
            &mut next_order,
        );
        calls.push((root, 0));
        while let Some(&(v, edge)) = calls.last() {
            if let Some(&w) = edges(v).get(edge) {
                if let Some(call) = calls.last_mut() {
                    call.1 += 1;
                }
                let w = w as usize;
                match order.get(w).copied() {
                    Some(UNVISITED) => {
                        visit(
                            w,
                            &mut order,
                            &mut low,
                            &mut on_stack,
                            &mut stack,
                            &mut next_order,
                        );
                        calls.push((w, 0));
                    }
                    Some(w_order) if on_stack.get(w) == Some(&true) => lower(&mut low, v, w_order),
                    _ => {}
                }
                continue;
            }
            calls.pop();
            let v_low = low.get(v).copied().unwrap_or(0);
            if let Some(&(parent, _)) = calls.last() {
                lower(&mut low, parent, v_low);
            }
            if Some(v_low) == order.get(v).copied() {
                let mut members = Vec::new();
                while let Some(w) = stack.pop() {
                    if let Some(flag) = on_stack.get_mut(w) {
                        *flag = false;
                    }
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                let cyclic = members.len() > 1 || edges(v).iter().any(|&w| w as usize == v);
                if cyclic {
                    for w in members {
                        if let Some(c) = component.get_mut(w) {
                            *c = Some(next_component);
                        }
                    }
                    next_component += 1;
                }
            }
        }
    }
    component
}

fn visit(
    v: usize,
    order: &mut [usize],
    low: &mut [usize],
    on_stack: &mut [bool],
    stack: &mut Vec<usize>,
    next: &mut usize,
) {
    if let (Some(o), Some(l), Some(s)) = (order.get_mut(v), low.get_mut(v), on_stack.get_mut(v)) {
        *o = *next;
        *l = *next;
        *s = true;
    }
    *next += 1;
    stack.push(v);
}

fn lower(low: &mut [usize], v: usize, candidate: usize) {
    if let Some(l) = low.get_mut(v) {
        *l = (*l).min(candidate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_on_cycles_share_a_component_and_others_have_none() {
        // 0 -> 1 -> 2 -> 0, 3 -> 0, 4 -> 4, 5 alone.
        let graph = vec![vec![1], vec![2], vec![0], vec![0], vec![4], vec![]];
        let c = cyclic_components(&graph);
        assert!(c[0].is_some() && c[0] == c[1] && c[1] == c[2]);
        assert_eq!(c[3], None);
        assert!(c[4].is_some() && c[4] != c[0]);
        assert_eq!(c[5], None);
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let n = 200_000;
        let graph: Vec<Vec<u32>> = (0..n)
            .map(|i| {
                if i + 1 < n {
                    vec![i as u32 + 1]
                } else {
                    vec![0]
                }
            })
            .collect();
        let c = cyclic_components(&graph);
        assert!(c.iter().all(|x| *x == Some(0)));
    }

    #[test]
    fn cycles_are_spelled_from_the_edge_back_to_its_start() {
        let graph = vec![vec![1], vec![2], vec![0]];
        assert_eq!(spell(&graph, &["a", "b", "c"], 0, 1), "a -> b -> c -> a");
        assert_eq!(spell(&[vec![0]], &["a"], 0, 0), "a -> a");
    }
}
