//! Clause operators: compiled once from a [`Clause`](crate::model::Clause), matched against a
//! context many times.
//!
//! The two halves live apart because they run at different times and have different budgets:
//! `compile` (once per snapshot version; validates every operand, reports problems, builds
//! hash sets, regexes, versions and milliseconds, and folds operators whose "any value"
//! semantics reduce to one comparison: `lt` against any of the values is `lt` against the
//! largest) and `matching` (per evaluation, on the hot path: no parsing, no allocation on the
//! common path). This file holds what both share: the operator names and the compiled form.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use hashbrown::HashMap;
use regex_automata::meta::Regex;

use crate::attribute::Attr;
use crate::sets::IdSet;
use crate::version::SemVer;

mod compile;
mod matching;

pub(crate) use compile::{regex_operands, ClauseCompiler};

/// Every operator name the model accepts, in the order of `docs/flag-model.md`.
pub const OPERATORS: &[&str] = &[
    "in",
    "equals",
    "notIn",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "lt",
    "lte",
    "gt",
    "gte",
    "semverEq",
    "semverLt",
    "semverGt",
    "before",
    "after",
    "exists",
    "segmentMatch",
];

/// Key → index of segments (or flags) while compiling.
pub(crate) type KeyIndex<'a> = HashMap<&'a str, u32>;

/// Up to this many string operands, `in` / `notIn` compare a single string attribute with
/// each directly: a few short comparisons cost less than hashing the attribute to its interned
/// id (which the first such clause of each flag evaluation pays).
const SHORT_STRINGS: usize = 4;

/// Operands of `in` / `notIn`, split by JSON type (equality never crosses types).
#[derive(Debug, Clone, Default)]
pub(crate) struct ValueSet {
    strings: IdSet,
    /// The string operands themselves when there are at most [`SHORT_STRINGS`] of them
    /// (`short`); the same members as `strings`.
    short_strings: Vec<String>,
    short: bool,
    numbers: Vec<f64>,
    has_true: bool,
    has_false: bool,
}

/// A compiled operator with its operands.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    In(ValueSet),
    NotIn(ValueSet),
    Contains(Vec<String>),
    StartsWith(Vec<String>),
    EndsWith(Vec<String>),
    Matches(Vec<Regex>),
    /// Less than the largest operand (`None`: no operands, never matches).
    Lt(Option<f64>),
    Lte(Option<f64>),
    /// Greater than the smallest operand.
    Gt(Option<f64>),
    Gte(Option<f64>),
    SemverEq(Vec<SemVer>),
    SemverLt(Option<Box<SemVer>>),
    SemverGt(Option<Box<SemVer>>),
    Before(Option<f64>),
    After(Option<f64>),
    Exists,
    SegmentMatch(Vec<u32>),
}

/// A clause ready to match.
#[derive(Debug, Clone)]
pub(crate) struct CompiledClause {
    attr: Attr,
    negate: bool,
    op: Op,
}

#[cfg(test)]
mod tests;
