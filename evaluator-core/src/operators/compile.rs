//! Compiling clauses: every operand checked against its operator and turned into the form
//! matching needs, each problem reported with its field path. A clause with any problem does not
//! compile (its flag or segment then serves an error).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use hashbrown::HashMap;
use regex_automata::meta::Regex;
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use serde_json::Value;

use super::{CompiledClause, KeyIndex, Op, ValueSet, OPERATORS};
use crate::attribute::{AttrNames, AttrTable};
use crate::json::{number_of, Kind};
use crate::model::Clause;
use crate::path::{Diagnostics, Path};
use crate::sets::{IdSet, Interner};
use crate::time::parse_rfc3339_millis;
use crate::validate::limits;
use crate::validate::ValidationError;
use crate::version::SemVer;

/// Compiled size limit of one regular expression's NFA. Patterns are at most 1,024 bytes, but
/// counted repetitions (`(a{100}){100}`) multiply; this bounds memory and matching work.
const REGEX_NFA_LIMIT: usize = 1 << 20;
/// Upper bound of each lazy-DFA cache, so many regexes cannot exhaust an edge isolate's memory.
const REGEX_CACHE_LIMIT: usize = 1 << 18;

/// Compiles clauses for one snapshot (or one validated flag or segment): knows the segment
/// keys, and compiles each distinct regular expression once (compiled regexes are cheap to
/// clone and snapshots repeat patterns across flags).
pub(crate) struct ClauseCompiler<'a> {
    pub(crate) segments: &'a KeyIndex<'a>,
    regexes: Regexes,
    /// String operands of `in` / `notIn`; the compiled snapshot keeps it.
    pub(crate) interner: Interner,
    /// Attribute names clauses read, snapshot-wide; the compiled snapshot keeps it.
    pub(crate) attributes: AttrNames,
}

impl<'a> ClauseCompiler<'a> {
    pub(crate) fn new(segments: &'a KeyIndex<'a>) -> Self {
        Self {
            segments,
            regexes: Regexes::default(),
            interner: Interner::default(),
            attributes: AttrNames::default(),
        }
    }

    /// Compiles one clause, reporting every problem under `path`; `None` if there was any.
    pub(crate) fn compile(
        &mut self,
        clause: &Clause,
        attrs: &mut AttrTable,
        diag: &mut Diagnostics,
        path: &Path<'_>,
    ) -> Option<CompiledClause> {
        let before = diag.len();
        let op_name = clause.operator.as_str();
        let values_path = path.field("values");
        if !diag.within_limit(
            &values_path,
            clause.values.len(),
            limits::VALUES_PER_CLAUSE,
            "values",
        ) {
            return None;
        }
        if clause.attribute.is_empty() && op_name != "segmentMatch" && OPERATORS.contains(&op_name)
        {
            diag.report(
                &path.field("attribute"),
                format!("required for operator \"{op_name}\""),
            );
        }
        let mut operands = Operands {
            op_name,
            values: &clause.values,
            diag,
            path: &values_path,
        };
        let op = match op_name {
            "in" | "equals" => Op::In(operands.value_set(&mut self.interner)),
            "notIn" => Op::NotIn(operands.value_set(&mut self.interner)),
            "contains" => Op::Contains(operands.strings()),
            "startsWith" => Op::StartsWith(operands.strings()),
            "endsWith" => Op::EndsWith(operands.strings()),
            "matches" => Op::Matches(operands.regexes(&mut self.regexes)),
            "lt" => Op::Lt(operands.numbers().into_iter().reduce(f64::max)),
            "lte" => Op::Lte(operands.numbers().into_iter().reduce(f64::max)),
            "gt" => Op::Gt(operands.numbers().into_iter().reduce(f64::min)),
            "gte" => Op::Gte(operands.numbers().into_iter().reduce(f64::min)),
            "semverEq" => Op::SemverEq(operands.versions()),
            "semverLt" => Op::SemverLt(operands.versions().into_iter().max().map(Box::new)),
            "semverGt" => Op::SemverGt(operands.versions().into_iter().min().map(Box::new)),
            "before" => Op::Before(operands.timestamps().into_iter().reduce(f64::max)),
            "after" => Op::After(operands.timestamps().into_iter().reduce(f64::min)),
            "exists" => {
                if !clause.values.is_empty() {
                    operands
                        .diag
                        .report(&values_path, "operator \"exists\" takes no values");
                }
                Op::Exists
            }
            "segmentMatch" => Op::SegmentMatch(operands.segments(self.segments)),
            other => {
                diag.report(
                    &path.field("operator"),
                    format!("unknown operator \"{other}\""),
                );
                return None;
            }
        };
        if diag.len() != before {
            return None;
        }
        let attr = attrs.attr(&clause.attribute, &mut self.attributes);
        if matches!(op, Op::SemverEq(_) | Op::SemverLt(_) | Op::SemverGt(_)) {
            self.attributes.read_as_version(&attr);
        }
        Some(CompiledClause {
            attr,
            negate: clause.negate,
            op,
        })
    }
}

/// The operands of one clause while compiling, with where to report problems.
struct Operands<'a, 'p> {
    op_name: &'a str,
    values: &'a [Value],
    diag: &'a mut Diagnostics,
    path: &'a Path<'p>,
}

impl<'a> Operands<'a, '_> {
    /// Maps every operand through `parse`, reporting `expected` for the ones it rejects.
    fn each<T>(&mut self, expected: &str, mut parse: impl FnMut(&'a Value) -> Option<T>) -> Vec<T> {
        let mut out = Vec::with_capacity(self.values.len());
        for (i, value) in self.values.iter().enumerate() {
            match parse(value) {
                Some(parsed) => out.push(parsed),
                None => self.diag.report(
                    &self.path.index(i),
                    format!(
                        "operator \"{}\" needs {expected}, got {}",
                        self.op_name,
                        describe(value)
                    ),
                ),
            }
        }
        out
    }

    fn value_set(&mut self, interner: &mut Interner) -> ValueSet {
        let mut set = ValueSet::default();
        let mut strings = Vec::new();
        self.each("a string, number or boolean", |v| match v {
            Value::String(s) => {
                strings.push(s);
                Some(())
            }
            Value::Number(n) => n.as_f64().map(|n| set.numbers.push(n)),
            Value::Bool(true) => {
                set.has_true = true;
                Some(())
            }
            Value::Bool(false) => {
                set.has_false = true;
                Some(())
            }
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        });
        set.short = strings.len() <= super::SHORT_STRINGS;
        if set.short {
            set.short_strings = strings.iter().map(|s| String::from(s.as_str())).collect();
        }
        set.strings = IdSet::new(strings.into_iter().map(|s| interner.intern(s)).collect());
        set
    }

    fn strings(&mut self) -> Vec<String> {
        self.each("a string", |v| v.as_str().map(ToString::to_string))
    }

    fn numbers(&mut self) -> Vec<f64> {
        self.each("a number", |v| v.as_f64())
    }

    fn versions(&mut self) -> Vec<SemVer> {
        self.each("a semantic version such as \"1.2.3\"", |v| {
            v.as_str().and_then(SemVer::parse)
        })
    }

    fn timestamps(&mut self) -> Vec<f64> {
        self.each("an RFC 3339 timestamp or Unix milliseconds", |v| match v {
            // Milliseconds since 1970 stay far below 2^53, so the conversion is exact.
            Value::String(s) => parse_rfc3339_millis(s).map(|ms| ms as f64),
            Value::Number(_) => number_of(v),
            _ => None,
        })
    }

    fn regexes(&mut self, regexes: &mut Regexes) -> Vec<Regex> {
        let mut out = Vec::new();
        for (i, value) in self.values.iter().enumerate() {
            let path = self.path.index(i);
            let Some(pattern) = value.as_str() else {
                self.diag.report(
                    &path,
                    format!(
                        "operator \"matches\" needs a regular expression string, got {}",
                        describe(value)
                    ),
                );
                continue;
            };
            if pattern.len() > limits::REGEX_BYTES {
                self.diag.report(
                    &path,
                    format!(
                        "pattern of {} bytes exceeds the limit of {}",
                        pattern.len(),
                        limits::REGEX_BYTES
                    ),
                );
                continue;
            }
            match regexes.get(pattern, &path) {
                Ok(regex) => out.push(regex),
                Err(message) => self.diag.report(&path, message),
            }
        }
        out
    }

    fn segments(&mut self, index: &KeyIndex<'_>) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, value) in self.values.iter().enumerate() {
            match value.as_str() {
                Some(key) => match index.get(key) {
                    Some(&s) => out.push(s),
                    None => self
                        .diag
                        .report(&self.path.index(i), format!("unknown segment \"{key}\"")),
                },
                None => self.diag.report(
                    &self.path.index(i),
                    format!(
                        "operator \"segmentMatch\" needs a segment key, got {}",
                        describe(value)
                    ),
                ),
            }
        }
        out
    }
}

/// `matches` operands among `clauses`, for [`limits::REGEXES_PER_FLAG`].
pub(crate) fn regex_operands<'c>(clauses: impl IntoIterator<Item = &'c Clause>) -> usize {
    clauses
        .into_iter()
        .filter(|c| c.operator == "matches")
        .map(|c| c.values.len())
        .sum()
}

/// The distinct regular expressions of one snapshot, each compiled once, and the snapshot's
/// budgets: [`limits::REGEXES`] patterns and [`limits::REGEX_STATES`] automaton states. The first
/// pattern, in document order, that takes the snapshot over a budget is reported (so validation
/// refuses the snapshot), but nothing is degraded: a budget of the whole snapshot must not change
/// how a flag evaluates, or a subset of the snapshot (the edge compiles subsets) would evaluate
/// differently from the whole.
#[derive(Default)]
struct Regexes {
    cache: HashMap<String, Result<Regex, String>>,
    /// Patterns compiled so far, and the states of their automata.
    compiled: usize,
    states: usize,
    over_budget: Option<ValidationError>,
}

impl Regexes {
    /// The compiled `pattern`, or the message of why it is invalid; `path` is where it is used.
    fn get(&mut self, pattern: &str, path: &Path<'_>) -> Result<Regex, String> {
        if let Some(known) = self.cache.get(pattern) {
            return known.clone();
        }
        let compiled = build_regex(pattern)
            .map_err(|message| format!("invalid regular expression: {message}"));
        if compiled.is_ok() {
            self.count(pattern, path);
        }
        self.cache.insert(pattern.to_string(), compiled.clone());
        compiled
    }

    /// Counts a newly compiled pattern against the budgets.
    fn count(&mut self, pattern: &str, path: &Path<'_>) {
        // A pattern that compiled has an NFA within the same size limit.
        let states = regex_states(pattern).unwrap_or(0);
        self.compiled += 1;
        self.states = self.states.saturating_add(states);
        if self.over_budget.is_some() {
            return;
        }
        let message = if self.compiled > limits::REGEXES {
            format!(
                "the snapshot's distinct regular expressions exceed the limit of {}",
                limits::REGEXES
            )
        } else if self.states > limits::REGEX_STATES {
            format!(
                "the snapshot's regular expressions compile to more than {} automaton states \
                 (this one has {states}, the ones before it {})",
                limits::REGEX_STATES,
                self.states - states
            )
        } else {
            return;
        };
        self.over_budget = Some(ValidationError {
            path: path.render(),
            message,
        });
    }
}

impl ClauseCompiler<'_> {
    /// The snapshot's regular expressions over a budget, if they are: the problem, at the first
    /// pattern that crossed it.
    pub(crate) fn regex_budget_error(&self) -> Option<ValidationError> {
        self.regexes.over_budget.clone()
    }
}

/// States of the pattern's Thompson NFA: the measure of [`limits::REGEX_STATES`]. Unlike the
/// bytes a compiled regex occupies, it is the same on every platform (32- or 64-bit, with or
/// without the faster engines of `std`).
fn regex_states(pattern: &str) -> Result<usize, String> {
    thompson::Compiler::new()
        .syntax(syntax::Config::new())
        .configure(thompson::Config::new().nfa_size_limit(Some(REGEX_NFA_LIMIT)))
        .build(pattern)
        .map(|nfa| nfa.states().len())
        .map_err(|e| e.to_string())
}

fn build_regex(pattern: &str) -> Result<Regex, String> {
    Regex::builder()
        .syntax(syntax::Config::new())
        .configure(
            Regex::config()
                .nfa_size_limit(Some(REGEX_NFA_LIMIT))
                .onepass_size_limit(Some(REGEX_NFA_LIMIT))
                .dfa_size_limit(Some(REGEX_NFA_LIMIT))
                .hybrid_cache_capacity(REGEX_CACHE_LIMIT),
        )
        .build(pattern)
        .map_err(|e| describe_regex_error(&e))
}

/// What is wrong with a pattern, in one line: regex-automata's own `Display` says only "error
/// parsing pattern 0", and regex-syntax's spans several lines with a caret drawing.
fn describe_regex_error(error: &regex_automata::meta::BuildError) -> String {
    match error.syntax_error() {
        Some(regex_syntax::Error::Parse(e)) => {
            format!("{} at byte {}", e.kind(), e.span().start.offset)
        }
        Some(regex_syntax::Error::Translate(e)) => {
            format!("{} at byte {}", e.kind(), e.span().start.offset)
        }
        Some(other) => other.to_string(),
        None => match error.size_limit() {
            Some(limit) => format!("the compiled pattern exceeds the size limit of {limit} bytes"),
            None => error.to_string(),
        },
    }
}

/// A short rendering of an offending operand for messages.
fn describe(value: &Value) -> String {
    let kind = Kind::of(value).name();
    match value {
        Value::String(s) if s.len() <= 64 => format!("\"{s}\""),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => kind.to_string(),
    }
}
#[cfg(test)]
#[test]
fn regex_states_count_the_thompson_nfa_the_same_everywhere() {
    // Pinned: the conformance budgets (21-budgets.json) rely on these counts.
    assert_eq!(regex_states("^a$"), Ok(6));
    assert_eq!(regex_states("\\w{20}a"), Ok(6332));
}
