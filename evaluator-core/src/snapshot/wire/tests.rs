//! The wire types agree with the model field for field: a field added to one side only, or
//! read differently, fails here instead of silently changing what the fast path of
//! `CompiledSnapshot::from_json` accepts or keeps.

use super::*;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::ToString;
use serde::de::value::Error as ProbeError;
use serde::de::Error as _;
use serde::Serialize;
use serde_json::json;

use crate::model::{Clause, KeyKind, Rollout, WeightedVariation};

/// Every field of every model type set to a value other than its default, optional fields
/// present and lists non-empty, so that serializing it writes every member the model has.
fn full_snapshot() -> Snapshot {
    let clause = Clause {
        attribute: String::from("plan"),
        operator: String::from("in"),
        values: Vec::from([json!("pro"), json!(2)]),
        negate: true,
    };
    let rule = Rule {
        id: Some(String::from("r1")),
        description: Some(String::from("pro users")),
        clauses: Vec::from([clause.clone()]),
        variation: Some(String::from("on")),
        rollout: Some(Rollout {
            bucket_by: Some(String::from("companyId")),
            weights: Vec::from([WeightedVariation {
                variation: String::from("on"),
                weight: 100.0,
            }]),
        }),
    };
    let flag = Flag {
        flag_key: String::from("checkout"),
        description: Some(String::from("new checkout")),
        tags: Vec::from([String::from("team:checkout"), String::from("beta")]),
        enabled: true,
        environment: Some(String::from("production")),
        default_value: Some(json!(false)),
        version: 3,
        created_at: Some(String::from("2026-01-15T10:00:00Z")),
        updated_at: Some(String::from("2026-01-20T14:30:00Z")),
        targeting_rules: Some(TargetingRules {
            percentage: Some(25.5),
            segments: Vec::from([String::from("beta")]),
            user_ids: Vec::from([String::from("u1"), String::from("u2")]),
            countries: Vec::from([String::from("US")]),
            excluded_user_ids: Vec::from([String::from("u3")]),
            rules: Vec::from([rule]),
            bucket_by: Some(String::from("deviceId")),
        }),
        variations: Some(Vec::from([
            Variation {
                key: String::from("on"),
                value: json!(true),
                description: Some(String::from("the new flow")),
            },
            Variation {
                key: String::from("off"),
                value: json!(false),
                description: None,
            },
        ])),
        on_variation: Some(String::from("on")),
        default_variation: Some(String::from("off")),
        off_variation: Some(String::from("off")),
        prerequisites: Vec::from([Prerequisite {
            flag_key: String::from("other"),
            variation: String::from("on"),
        }]),
        overrides: Vec::from([Override {
            user_id: String::from("u9"),
            variation: Some(String::from("on")),
            enabled: Some(true),
            expires_at: Some(String::from("2027-01-01T00:00:00Z")),
        }]),
        salt: Some(String::from("checkout-salt")),
    };
    let segment = Segment {
        segment_key: String::from("beta"),
        description: Some(String::from("beta testers")),
        included: Vec::from([String::from("u1")]),
        excluded: Vec::from([String::from("u4")]),
        rules: Vec::from([SegmentRule {
            clauses: Vec::from([clause]),
        }]),
    };
    Snapshot {
        environment: String::from("production"),
        version: 42,
        generated_at: String::from("2026-11-24T10:00:00Z"),
        flags: Vec::from([flag]),
        segments: Vec::from([segment]),
        client_keys: Vec::from([
            ClientKey {
                name: String::from("web"),
                sha256: "ab".repeat(32),
                kind: KeyKind::Client,
            },
            ClientKey {
                name: String::from("backend"),
                sha256: "cd".repeat(32),
                kind: KeyKind::Server,
            },
        ]),
    }
}

/// What the fast path keeps of a model snapshot: the model without the fields compiling never
/// reads (checked to be strings by the wire types, not kept), and the user lists moved out.
/// The list of ignored fields is the one place that says which fields the wire types drop.
fn as_the_fast_path_keeps_it(mut snapshot: Snapshot) -> (Snapshot, Lists) {
    let lists = Lists::take(&mut snapshot);
    for flag in &mut snapshot.flags {
        flag.description = None;
        flag.tags.clear();
        flag.environment = None;
        flag.created_at = None;
        flag.updated_at = None;
    }
    for segment in &mut snapshot.segments {
        segment.description = None;
    }
    (snapshot, lists)
}

/// The moved-out user lists, rendered for comparison (the sets have no `PartialEq`).
fn render(lists: &Lists) -> String {
    let mut out = String::new();
    for flag in &lists.flags {
        out += &format!(
            "flag {:?} {:?} {:?}\n",
            flag.user_ids, flag.excluded_user_ids, flag.countries
        );
    }
    for segment in &lists.segments {
        out += &format!("segment {:?} {:?}\n", segment.included, segment.excluded);
    }
    out
}

#[test]
fn the_wire_types_read_a_fully_populated_snapshot_exactly_like_the_model() {
    let full = full_snapshot();
    let json = serde_json::to_vec(&full).unwrap();

    let through_model: Snapshot = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        through_model, full,
        "the model must read back what it writes"
    );
    let (expected, expected_lists) = as_the_fast_path_keeps_it(through_model);

    let wire: WireSnapshot = serde_json::from_slice(&json).unwrap();
    let (through_wire, wire_lists) = wire.into_model();
    assert_eq!(through_wire, expected);
    assert_eq!(render(&wire_lists), render(&expected_lists));
    assert!(
        render(&wire_lists).contains("\"u2\""),
        "the fixture's lists must reach the comparison: {}",
        render(&wire_lists)
    );
}

/// Records the field names a derived `Deserialize` of a struct accepts (serde passes them to
/// `deserialize_struct`), then stops.
struct FieldProbe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        Err(ProbeError::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ProbeError> {
        *self.0 = Some(fields);
        Err(ProbeError::custom("field names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The JSON member names `T`'s `Deserialize` accepts.
fn accepted<T: for<'de> Deserialize<'de>>() -> BTreeSet<&'static str> {
    let mut fields = None;
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields.expect("a struct").iter().copied().collect()
}

/// The member names of a serialized value (an object).
fn written(value: Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

/// A row of the mirrored types: `(name, JSON of value, fields M accepts, fields W accepts)`.
fn mirror<M, W>(
    name: &'static str,
    value: &M,
) -> (
    &'static str,
    Value,
    BTreeSet<&'static str>,
    BTreeSet<&'static str>,
)
where
    M: Serialize + for<'de> Deserialize<'de>,
    W: for<'de> Deserialize<'de>,
{
    (
        name,
        serde_json::to_value(value).unwrap(),
        accepted::<M>(),
        accepted::<W>(),
    )
}

#[test]
fn each_wire_type_accepts_exactly_the_fields_of_its_model_type() {
    let full = full_snapshot();
    let flag = full.flags[0].clone();
    let targeting = flag.targeting_rules.clone().unwrap();
    let segment = full.segments[0].clone();
    // The one list of mirrored types: (model name, JSON of a fully populated model value,
    // fields the model accepts, fields the wire type accepts).
    let mirrors = [
        mirror::<Snapshot, WireSnapshot>("Snapshot", &full),
        mirror::<Flag, WireFlag>("Flag", &flag),
        mirror::<TargetingRules, WireTargetingRules>("TargetingRules", &targeting),
        mirror::<Segment, WireSegment>("Segment", &segment),
    ];
    for (name, json, model_fields, wire_fields) in mirrors {
        let model_fields: BTreeSet<String> = model_fields.iter().map(ToString::to_string).collect();
        // A field the fixture leaves at its default would escape the round-trip test above.
        assert_eq!(
            written(json),
            model_fields,
            "{name}: the fully populated fixture must write every field the model reads"
        );
        let wire_fields: BTreeSet<String> = wire_fields.iter().map(ToString::to_string).collect();
        assert_eq!(
            wire_fields, model_fields,
            "{name}: the wire type must accept exactly the model's fields"
        );
    }
}
