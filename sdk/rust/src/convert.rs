//! Between OpenFeature's types and evaluator-core's (JSON) ones.

use evaluator_core::EvaluationContext as Context;
use open_feature::{EvaluationContext, EvaluationContextFieldValue, StructValue, Value};
use serde_json::{Map, Number, Value as Json};

/// Converts an OpenFeature evaluation context into the evaluator's: the targeting key stays the
/// targeting key, every custom field becomes an attribute.
///
/// - booleans, integers, floats and strings map to the JSON values;
/// - a date-time becomes its Unix milliseconds, a number the `before` / `after` operators
///   compare exactly;
/// - a structure is only readable when it holds a `serde_json::Value` (or a
///   `serde_json::Map`): `EvaluationContextFieldValue::new_struct(json!({"plan": "pro"}))`;
///   others are left out, so clauses on them see a missing attribute;
/// - floats that are not finite are left out too (JSON has no such numbers).
///
/// Convert once and evaluate many flags with [`crate::Client::evaluate`] or a
/// [`crate::Snapshot`] to pay for this once per request rather than once per flag.
#[must_use]
pub fn context_from_open_feature(context: &EvaluationContext) -> Context {
    let mut attributes = Map::new();
    for (name, value) in &context.custom_fields {
        if let Some(json) = field_to_json(value) {
            attributes.insert(name.clone(), json);
        }
    }
    Context {
        targeting_key: context.targeting_key.clone(),
        attributes,
    }
}

fn field_to_json(value: &EvaluationContextFieldValue) -> Option<Json> {
    Some(match value {
        EvaluationContextFieldValue::Bool(b) => Json::Bool(*b),
        EvaluationContextFieldValue::Int(i) => Json::from(*i),
        EvaluationContextFieldValue::Float(f) => Json::Number(Number::from_f64(*f)?),
        EvaluationContextFieldValue::String(s) => Json::String(s.clone()),
        EvaluationContextFieldValue::DateTime(t) => {
            let millis = t.unix_timestamp_nanos() / 1_000_000;
            Json::from(i64::try_from(millis).ok()?)
        }
        EvaluationContextFieldValue::Struct(any) => {
            if let Some(json) = any.downcast_ref::<Json>() {
                json.clone()
            } else if let Some(map) = any.downcast_ref::<Map<String, Json>>() {
                Json::Object(map.clone())
            } else {
                return None;
            }
        }
    })
}

/// A JSON object as an OpenFeature structure. OpenFeature values have no `null`: `null`
/// members are left out; `None` when an array holds a `null` (its positions would shift).
pub(crate) fn json_to_struct(object: &Map<String, Json>) -> Option<StructValue> {
    let mut fields = std::collections::HashMap::with_capacity(object.len());
    for (name, value) in object {
        if value.is_null() {
            continue;
        }
        fields.insert(name.clone(), json_to_value(value)?);
    }
    Some(StructValue { fields })
}

fn json_to_value(value: &Json) -> Option<Value> {
    Some(match value {
        Json::Null => return None,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64()?),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(json_to_value).collect::<Option<_>>()?),
        Json::Object(object) => Value::Struct(json_to_struct(object)?),
    })
}

/// A JSON number as an OpenFeature integer: integers, and floats with no fraction within
/// `i64` (`5.0` is the integer 5, as in bucketing).
pub(crate) fn json_to_int(value: &Json) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // 2^63 is exactly representable; every whole float below it converts without loss.
    let in_range = (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f);
    #[allow(clippy::cast_possible_truncation)]
    (in_range && f.fract() == 0.0).then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn context_fields_become_json_attributes() {
        let when = time_of(1_767_225_600_123);
        let context = EvaluationContext::default()
            .with_targeting_key("user-1")
            .with_custom_field("plan", "pro")
            .with_custom_field("beta", true)
            .with_custom_field("seats", 12)
            .with_custom_field("score", 0.5)
            .with_custom_field("since", EvaluationContextFieldValue::DateTime(when))
            .with_custom_field(
                "org",
                EvaluationContextFieldValue::new_struct(json!({"tier": "gold"})),
            )
            .with_custom_field("opaque", EvaluationContextFieldValue::new_struct(3u8))
            .with_custom_field("nan", f64::NAN);
        let converted = context_from_open_feature(&context);
        assert_eq!(converted.targeting_key.as_deref(), Some("user-1"));
        assert_eq!(
            Json::Object(converted.attributes),
            json!({"plan": "pro", "beta": true, "seats": 12, "score": 0.5,
                   "since": 1_767_225_600_123_i64, "org": {"tier": "gold"}})
        );
    }

    fn time_of(millis: i64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap()
    }

    #[test]
    fn objects_become_structures_without_their_null_members() {
        let object = json!({"a": 1, "b": [1.5, "x", {"c": false}], "gone": null});
        let converted = json_to_struct(object.as_object().unwrap()).unwrap();
        let expected = StructValue::default().with_field("a", 1).with_field(
            "b",
            Value::Array(vec![
                Value::Float(1.5),
                "x".into(),
                Value::Struct(StructValue::default().with_field("c", false)),
            ]),
        );
        assert_eq!(converted, expected);
        assert_eq!(
            json_to_struct(json!({"a": [1, null]}).as_object().unwrap()),
            None
        );
    }

    #[test]
    fn whole_floats_are_integers_and_fractions_are_not() {
        assert_eq!(json_to_int(&json!(5)), Some(5));
        assert_eq!(json_to_int(&json!(5.0)), Some(5));
        assert_eq!(json_to_int(&json!(5.5)), None);
        assert_eq!(json_to_int(&json!(1e19)), None);
        assert_eq!(json_to_int(&json!(u64::MAX)), None);
        assert_eq!(json_to_int(&json!("5")), None);
    }
}
