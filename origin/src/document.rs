//! Turning submitted JSON into model types with errors that name the field.
//!
//! Bodies are parsed in two steps so that each failure gets the right answer: bytes that are not
//! JSON are a 400 `MALFORMED_JSON`; JSON of the wrong shape (a string where a boolean belongs, a
//! missing `flagKey`, a misspelt `targetingRule`) is a 422 `VALIDATION_FAILED` whose details say
//! which field, e.g. `targetingRules.rules[0].clauses[1].negate`.
//!
//! Parsing is also the input boundary for what PostgreSQL cannot store: a body holding a NUL
//! character (`\u0000`) anywhere, in a value or a member name, is refused here with a 422 naming
//! the field, so it never reaches the database as a query error. (serde_json already refuses
//! lone surrogates, invalid UTF-8 and nesting beyond 128 levels as malformed JSON.)

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, FieldError, Result};

/// Parses a request body that must be a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::MalformedJson(
            "the body is empty; expected a JSON object".into(),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => {
            let mut problems = Vec::new();
            unstorable_members("", &map, &mut problems);
            if problems.is_empty() {
                Ok(map)
            } else {
                Err(Error::Validation(problems))
            }
        }
        Ok(other) => Err(Error::invalid(
            "",
            format!("expected a JSON object, found {}", json_type(&other)),
        )),
        Err(e) => Err(Error::MalformedJson(e.to_string())),
    }
}

/// The problem of a text PostgreSQL cannot store (in `text` or in `jsonb`), if it has one: both
/// refuse the NUL character. Shared by bodies and request parameters.
pub fn unstorable_text(text: &str) -> Option<&'static str> {
    text.contains('\0')
        .then_some("contains a NUL character (U+0000), which cannot be stored")
}

/// Most problems one body reports: enough to fix a document, bounded for a hostile one.
const MAX_PROBLEMS: usize = 100;

/// Records every member name and string inside `value` (at `path`) that cannot be stored.
fn unstorable(path: &str, value: &Value, problems: &mut Vec<FieldError>) {
    if problems.len() >= MAX_PROBLEMS {
        return;
    }
    match value {
        Value::String(text) => {
            if let Some(message) = unstorable_text(text) {
                problems.push(FieldError::new(path, message));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                unstorable(&format!("{path}[{i}]"), item, problems);
            }
        }
        Value::Object(members) => unstorable_members(path, members, problems),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn unstorable_members(path: &str, members: &Map<String, Value>, problems: &mut Vec<FieldError>) {
    for (key, member) in members {
        let member_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match unstorable_text(key) {
            Some(message) => problems.push(FieldError::new(member_path, message)),
            None => unstorable(&member_path, member, problems),
        }
    }
}

/// Converts `value` to `T`, rejecting unknown fields; every problem names its field path.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T> {
    let mut unknown = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| unknown.push(render(&path));
    let ignored = serde_ignored::Deserializer::new(value, &mut record);
    let parsed: std::result::Result<T, _> = serde_path_to_error::deserialize(ignored);
    match parsed {
        Ok(parsed) if unknown.is_empty() => Ok(parsed),
        Ok(_) => Err(Error::Validation(
            unknown
                .into_iter()
                .map(|field| FieldError::new(field, "unknown field"))
                .collect(),
        )),
        Err(e) => {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            Err(Error::Validation(vec![FieldError::new(
                field_of(&path, &message),
                message,
            )]))
        }
    }
}

/// The field a serde error is about: its path, extended by the field name for a missing field
/// (serde reports those at the enclosing object).
fn field_of(path: &str, message: &str) -> String {
    let mut path: String = path.replace(".?", "").replace('?', "");
    if path == "." {
        path.clear();
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some(name) = rest.split('`').next() {
            if path.is_empty() {
                return name.to_owned();
            }
            return format!("{path}.{name}");
        }
    }
    path
}

fn render(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", render(parent)),
        Path::Map { parent, key } => {
            let parent = render(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => render(parent),
    }
}

/// Name of a JSON value's type, for messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Applies a partial update: every top-level member of `patch` replaces the stored one, and
/// `null` removes it (back to its default). Nested objects are replaced whole, as in the REST
/// API's `PUT {"enabled": true, "targetingRules": {...}}`, so a client never has to send `null` to drop
/// a list it left out of a new `targetingRules`.
pub fn merge_top_level(stored: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            stored.remove(&key);
        } else {
            stored.insert(key, value);
        }
    }
}

/// Refuses a partial update whose body renames the document: `key_field` (e.g. `flagKey`), when
/// present, must equal the `key` the path names. Checked before any database work.
pub fn reject_rename(
    patch: &Map<String, Value>,
    key_field: &'static str,
    key: &str,
    noun: &str,
) -> Result<()> {
    match patch.get(key_field) {
        Some(Value::String(k)) if k == key => Ok(()),
        None => Ok(()),
        Some(_) => Err(Error::invalid(
            key_field,
            format!("a {noun} cannot be renamed; the path names {key:?}"),
        )),
    }
}

/// The stored document with a partial update's top-level fields merged in (see
/// [`merge_top_level`]); shared by the flag and segment `PUT` handlers.
pub fn patched(stored: Value, patch: Map<String, Value>, noun: &str) -> Result<Map<String, Value>> {
    let Value::Object(mut merged) = stored else {
        return Err(Error::invalid(
            "",
            format!("stored {noun} is not an object"),
        ));
    };
    merge_top_level(&mut merged, patch);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use evaluator_core::model::Flag;
    use serde_json::json;

    use super::*;

    fn details_of(err: Error) -> Vec<FieldError> {
        match err {
            Error::Validation(details) => details,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn wrong_type_deep_inside_names_the_full_path() {
        let value = json!({"flagKey": "f", "targetingRules": {"rules": [
            {"clauses": []},
            {"clauses": [{"attribute": "a", "operator": "in", "negate": "yes"}]}
        ]}});
        let details = details_of(from_value::<Flag>(value).unwrap_err());
        assert_eq!(details.len(), 1);
        assert_eq!(
            details[0].field,
            "targetingRules.rules[1].clauses[0].negate"
        );
        assert!(
            details[0].message.contains("expected a boolean"),
            "{}",
            details[0].message
        );
    }

    #[test]
    fn missing_required_field_is_named() {
        let details = details_of(from_value::<Flag>(json!({"enabled": true})).unwrap_err());
        assert_eq!(details[0].field, "flagKey");
        let value = json!({"flagKey": "f", "targetingRules": {"rules": [{"clauses": [{"attribute": "a"}]}]}});
        let details = details_of(from_value::<Flag>(value).unwrap_err());
        assert_eq!(
            details[0].field,
            "targetingRules.rules[0].clauses[0].operator"
        );
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_paths() {
        let value =
            json!({"flagKey": "f", "targetingRule": {}, "targetingRules": {"percentag": 5}});
        let details = details_of(from_value::<Flag>(value).unwrap_err());
        let fields: Vec<_> = details.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["targetingRule", "targetingRules.percentag"]);
        assert!(details.iter().all(|d| d.message == "unknown field"));
    }

    #[test]
    fn non_json_is_malformed_and_non_objects_are_invalid() {
        assert!(matches!(
            parse_object(b"{not json"),
            Err(Error::MalformedJson(_))
        ));
        assert!(matches!(parse_object(b"  "), Err(Error::MalformedJson(_))));
        assert!(matches!(parse_object(b"[1]"), Err(Error::Validation(_))));
    }

    #[test]
    fn nul_anywhere_in_a_body_is_refused_naming_each_field() {
        let body = br#"{"description": "a\u0000b", "variations": [{"key": "on",
            "value": {"k": [1, "\u0000"]}}], "x\u0000y": 1, "ok": "fine"}"#;
        let details = details_of(parse_object(body).unwrap_err());
        let mut fields: Vec<_> = details.iter().map(|d| d.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["description", "variations[0].value.k[1]", "x\u{0}y"]
        );
        assert!(details[0].message.contains("NUL"), "{}", details[0].message);
        assert!(parse_object(br#"{"description": "a\u0001b \ud83d\ude80"}"#).is_ok());
    }

    #[test]
    fn merge_replaces_top_level_members_and_null_removes() {
        let mut stored = json!({"flagKey": "f", "enabled": false, "description": "d",
            "targetingRules": {"percentage": 5, "userIds": ["a"]}})
        .as_object()
        .cloned()
        .unwrap();
        let patch = json!({"enabled": true, "description": null,
            "targetingRules": {"percentage": 50}})
        .as_object()
        .cloned()
        .unwrap();
        merge_top_level(&mut stored, patch);
        assert_eq!(
            Value::Object(stored),
            json!({"flagKey": "f", "enabled": true, "targetingRules": {"percentage": 50}})
        );
    }
}
