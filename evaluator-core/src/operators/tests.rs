//! Each operator of the "Rule and clause" table, through compile + match.

use super::*;
use alloc::format;
use alloc::string::ToString;
use serde_json::Value;

use crate::attribute::{AttrTable, CACHE_SLOTS};
use crate::context::EvaluationContext;
use crate::memo::Memo;
use crate::model::Clause;
use crate::path::{Diagnostics, Path};
use crate::segment::Scope;
use crate::sets::Interner;
use serde_json::json;

fn ctx(attributes: Value) -> EvaluationContext {
    EvaluationContext::from_json_object(&attributes).unwrap()
}

fn compile_with(clause: Value) -> (Result<CompiledClause, Vec<String>>, Interner) {
    let clause: Clause = serde_json::from_value(clause).unwrap();
    let mut diag = Diagnostics::default();
    let mut segments = KeyIndex::new();
    segments.insert("beta", 0);
    let mut compiler = ClauseCompiler::new(&segments);
    let compiled = compiler
        .compile(&clause, &mut AttrTable::default(), &mut diag, &Path::ROOT)
        .ok_or_else(|| diag.errors.iter().map(ToString::to_string).collect());
    (compiled, compiler.interner)
}

fn compile(clause: Value) -> Result<CompiledClause, Vec<String>> {
    compile_with(clause).0
}

/// The errors of compiling a clause on attribute `a` with `operator` and `values` (which must
/// fail).
fn operand_errors(operator: &str, values: Value) -> Vec<String> {
    compile(json!({"attribute": "a", "operator": operator, "values": values})).unwrap_err()
}

fn matches(clause: Value, context: Value) -> bool {
    let (compiled, interner) = compile_with(clause);
    let context = ctx(context);
    compiled.unwrap().matches(&Scope::new(
        &context,
        &[],
        &interner,
        0,
        &Memo::new(0, 0),
        &[],
    ))
}

#[test]
fn in_matches_same_typed_values_and_numbers_numerically() {
    let clause = json!({"attribute": "plan", "operator": "in", "values": ["pro", 3, true]});
    assert!(matches(clause.clone(), json!({"plan": "pro"})));
    assert!(matches(clause.clone(), json!({"plan": 3.0})));
    assert!(matches(clause.clone(), json!({"plan": true})));
    assert!(!matches(clause.clone(), json!({"plan": "3"})));
    assert!(!matches(clause, json!({"plan": false})));
}

#[test]
fn equals_is_an_alias_of_in() {
    let clause = json!({"attribute": "plan", "operator": "equals", "values": ["pro"]});
    assert!(matches(clause.clone(), json!({"plan": "pro"})));
    assert!(!matches(clause, json!({"plan": "free"})));
}

#[test]
fn in_over_many_values_uses_the_whole_list() {
    let values: Vec<Value> = (0..1000).map(|i| json!(format!("u{i}"))).collect();
    let clause = json!({"attribute": "id", "operator": "in", "values": values});
    assert!(matches(clause.clone(), json!({"id": "u999"})));
    assert!(!matches(clause, json!({"id": "u1000"})));
}

#[test]
fn user_id_key_and_targeting_key_name_the_targeting_key() {
    for attribute in ["userId", "key", "targetingKey"] {
        let clause = json!({"attribute": attribute, "operator": "in", "values": ["alice"]});
        assert!(
            matches(clause, json!({"targetingKey": "alice"})),
            "{attribute}"
        );
    }
}

#[test]
fn an_array_attribute_matches_if_any_element_does() {
    let clause = json!({"attribute": "groups", "operator": "in", "values": ["admin"]});
    assert!(matches(
        clause.clone(),
        json!({"groups": ["staff", "admin"]})
    ));
    assert!(!matches(clause, json!({"groups": ["staff"]})));
}

#[test]
fn not_in_matches_when_the_attribute_equals_none_of_the_values() {
    let clause = json!({"attribute": "country", "operator": "notIn", "values": ["US", "CA"]});
    assert!(matches(clause.clone(), json!({"country": "FR"})));
    assert!(!matches(clause, json!({"country": "US"})));
}

#[test]
fn string_operators_match_substrings_prefixes_and_suffixes() {
    let email = json!({"email": "ann@example.com"});
    assert!(matches(
        json!({"attribute": "email", "operator": "contains", "values": ["@exa"]}),
        email.clone()
    ));
    assert!(matches(
        json!({"attribute": "email", "operator": "startsWith", "values": ["x", "ann"]}),
        email.clone()
    ));
    assert!(matches(
        json!({"attribute": "email", "operator": "endsWith", "values": [".com"]}),
        email.clone()
    ));
    assert!(!matches(
        json!({"attribute": "email", "operator": "endsWith", "values": [".org"]}),
        email
    ));
    assert!(!matches(
        json!({"attribute": "n", "operator": "contains", "values": ["1"]}),
        json!({"n": 1})
    ));
}

#[test]
fn matches_searches_with_a_regular_expression() {
    let clause =
        json!({"attribute": "email", "operator": "matches", "values": ["@(example|test)\\.com$"]});
    assert!(matches(clause.clone(), json!({"email": "ann@test.com"})));
    assert!(!matches(clause, json!({"email": "ann@test.com.evil"})));
}

#[test]
fn numeric_operators_compare_numbers_and_numeric_strings() {
    let age = |op: &str, v: Value| json!({"attribute": "age", "operator": op, "values": [v]});
    assert!(matches(age("lt", json!(18)), json!({"age": 17})));
    assert!(!matches(age("lt", json!(18)), json!({"age": 18})));
    assert!(matches(age("lte", json!(18)), json!({"age": "18"})));
    assert!(matches(age("gt", json!(18)), json!({"age": 18.5})));
    assert!(matches(age("gte", json!(18)), json!({"age": 18})));
    assert!(!matches(age("gte", json!(18)), json!({"age": "adult"})));
    assert!(!matches(age("gte", json!(18)), json!({"age": true})));
}

#[test]
fn numeric_operators_match_any_of_several_values() {
    // lt 10 or lt 20 is lt 20; gt 10 or gt 20 is gt 10.
    assert!(matches(
        json!({"attribute": "n", "operator": "lt", "values": [10, 20]}),
        json!({"n": 15})
    ));
    assert!(matches(
        json!({"attribute": "n", "operator": "gt", "values": [10, 20]}),
        json!({"n": 15})
    ));
}

#[test]
fn semver_operators_pad_short_versions_and_allow_a_leading_v() {
    let v = |op: &str, value: &str| json!({"attribute": "app", "operator": op, "values": [value]});
    assert!(matches(v("semverEq", "1.2"), json!({"app": "v1.2.0"})));
    assert!(matches(v("semverLt", "2.0.0"), json!({"app": "1.10.3"})));
    assert!(matches(v("semverGt", "1.2.3"), json!({"app": "1.10.0"})));
    assert!(matches(
        v("semverLt", "1.0.0"),
        json!({"app": "1.0.0-beta"})
    ));
    assert!(!matches(
        v("semverGt", "1.2.3"),
        json!({"app": "not-a-version"})
    ));
}

#[test]
fn before_and_after_compare_timestamps_and_milliseconds() {
    let clause = |op: &str| json!({"attribute": "signup", "operator": op, "values": ["2026-01-01T00:00:00Z"]});
    assert!(matches(
        clause("before"),
        json!({"signup": "2025-12-31T23:59:59Z"})
    ));
    assert!(matches(clause("before"), json!({"signup": 0})));
    assert!(matches(
        clause("after"),
        json!({"signup": "2026-01-01T01:00:00+00:30"})
    ));
    assert!(!matches(
        clause("after"),
        json!({"signup": "2026-01-01T00:00:00Z"})
    ));
    assert!(!matches(clause("after"), json!({"signup": "yesterday"})));
    let millis = json!({"attribute": "t", "operator": "after", "values": [1000]});
    assert!(matches(millis, json!({"t": "1970-01-01T00:00:01.001Z"})));
}

#[test]
fn exists_is_true_for_present_non_null_attributes() {
    let clause = json!({"attribute": "plan", "operator": "exists"});
    assert!(matches(clause.clone(), json!({"plan": ""})));
    assert!(!matches(clause.clone(), json!({"plan": null})));
    assert!(!matches(clause, json!({})));
}

#[test]
fn negate_inverts_a_present_attribute_but_a_missing_one_never_matches() {
    let clause =
        json!({"attribute": "country", "operator": "in", "values": ["US"], "negate": true});
    assert!(matches(clause.clone(), json!({"country": "FR"})));
    assert!(!matches(clause.clone(), json!({"country": "US"})));
    assert!(!matches(clause.clone(), json!({})));
    assert!(!matches(clause, json!({"country": null})));
}

#[test]
fn negated_exists_matches_a_missing_attribute() {
    let clause = json!({"attribute": "plan", "operator": "exists", "negate": true});
    assert!(matches(clause.clone(), json!({})));
    assert!(!matches(clause, json!({"plan": "pro"})));
}

#[test]
fn unknown_operators_are_reported_at_the_operator() {
    let errors = operand_errors("regexx", json!(["x"]));
    assert_eq!(errors, ["operator: unknown operator \"regexx\""]);
}

#[test]
fn operand_types_are_checked_per_operator() {
    let errors = operand_errors("lt", json!([1, "2"]));
    assert_eq!(
        errors,
        ["values[1]: operator \"lt\" needs a number, got \"2\""]
    );
    let errors = operand_errors("semverEq", json!(["1.2.3.4"]));
    assert_eq!(errors, ["values[0]: operator \"semverEq\" needs a semantic version such as \"1.2.3\", got \"1.2.3.4\""]);
    let errors = operand_errors("before", json!(["tomorrow"]));
    assert_eq!(errors, ["values[0]: operator \"before\" needs an RFC 3339 timestamp or Unix milliseconds, got \"tomorrow\""]);
    let errors = operand_errors("in", json!([null]));
    assert_eq!(
        errors,
        ["values[0]: operator \"in\" needs a string, number or boolean, got null"]
    );
    let errors = operand_errors("exists", json!([1]));
    assert_eq!(errors, ["values: operator \"exists\" takes no values"]);
    let errors = compile(json!({"attribute": "", "operator": "in", "values": ["x"]})).unwrap_err();
    assert_eq!(errors, ["attribute: required for operator \"in\""]);
}

#[test]
fn regexes_must_compile_and_stay_small() {
    let errors = operand_errors("matches", json!(["(unclosed"]));
    // One line that says what is wrong and where, not regex-automata's "error parsing pattern 0".
    assert_eq!(
        errors,
        ["values[0]: invalid regular expression: unclosed group at byte 0"]
    );
    let long = "a".repeat(1025);
    let errors = operand_errors("matches", json!([long]));
    assert_eq!(
        errors,
        ["values[0]: pattern of 1025 bytes exceeds the limit of 1024"]
    );
    // Small text, huge automaton: the compiled-size limit rejects it.
    let errors = operand_errors("matches", json!(["(\\w{100}){100}"]));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(
            "values[0]: invalid regular expression: the compiled pattern exceeds the size limit of"
        ),
        "{errors:?}"
    );
}

#[test]
fn segment_match_needs_known_segment_keys() {
    let errors =
        compile(json!({"operator": "segmentMatch", "values": ["beta", "gamma", 3]})).unwrap_err();
    assert_eq!(
        errors,
        [
            "values[1]: unknown segment \"gamma\"",
            "values[2]: operator \"segmentMatch\" needs a segment key, got 3"
        ]
    );
}

#[test]
fn clauses_with_too_many_values_are_rejected() {
    let values: Vec<Value> = (0..10_001).map(|i| json!(i)).collect();
    let errors = operand_errors("in", json!(values));
    assert_eq!(errors, ["values: 10001 values exceed the limit of 10000"]);
}

/// Compiles `clauses` as one flag's clauses are: with one attribute table, so they share its
/// cache slots.
fn compile_together(clauses: impl IntoIterator<Item = Value>) -> (Vec<CompiledClause>, Interner) {
    let mut attrs = AttrTable::default();
    let segments = KeyIndex::new();
    let mut compiler = ClauseCompiler::new(&segments);
    let mut diag = Diagnostics::default();
    let compiled = clauses
        .into_iter()
        .map(|c| {
            let clause: Clause = serde_json::from_value(c).unwrap();
            compiler
                .compile(&clause, &mut attrs, &mut diag, &Path::ROOT)
                .unwrap()
        })
        .collect();
    (compiled, compiler.interner)
}

#[test]
fn cached_attributes_are_looked_up_once_per_evaluation_and_read_consistently() {
    let (clauses, interner) = compile_together([
        json!({"attribute": "country", "operator": "in", "values": ["US"]}),
        json!({"attribute": "country", "operator": "notIn", "values": ["CA"]}),
        json!({"attribute": "plan", "operator": "exists"}),
    ]);
    let [is_us, not_ca, has_plan] = &clauses[..] else {
        panic!("three clauses compiled");
    };
    let context = ctx(json!({"country": "US"}));
    let memo = Memo::new(0, 0);
    let scope = Scope::new(&context, &[], &interner, 0, &memo, &[]);
    // The second clause reads the cached value; the missing attribute is cached as missing.
    assert!(is_us.matches(&scope) && not_ca.matches(&scope));
    assert!(!has_plan.matches(&scope) && !has_plan.matches(&scope));
}

#[test]
fn attributes_beyond_the_cache_slots_are_still_read() {
    let (clauses, interner) = compile_together(
        (0..CACHE_SLOTS + 4)
            .map(|i| json!({"attribute": format!("a{i}"), "operator": "in", "values": [i]})),
    );
    let mut object = serde_json::Map::new();
    for i in 0..CACHE_SLOTS + 4 {
        object.insert(format!("a{i}"), json!(i));
    }
    let context = ctx(Value::Object(object));
    let memo = Memo::new(0, 0);
    let scope = Scope::new(&context, &[], &interner, 0, &memo, &[]);
    assert!(clauses.iter().all(|c| c.matches(&scope)));
}
