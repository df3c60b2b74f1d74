//! Decoding what a request says into an evaluation context: the REST API's query string, its
//! batch body and OFREP's `{"context": ...}`, each error naming the field at fault.

use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};
use evaluator_core::EvaluationContext;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::query;

/// REST API `GET /api/v1/flags/{flagKey}`: `userId` is the targeting key, `environment` selects the snapshot, every other
/// parameter is a string attribute (a repeated parameter becomes an array of strings, e.g.
/// `segments=a&segments=b`).
pub(crate) fn rest_query_context(
    raw_query: &str,
) -> Result<(Option<String>, EvaluationContext), Error> {
    let mut environment = None;
    let mut context = EvaluationContext::default();
    for (name, value) in query::parse_query(raw_query)? {
        match name.as_str() {
            "userId" => {
                context.targeting_key.get_or_insert(value);
            }
            "environment" => {
                environment.get_or_insert(value);
            }
            _ => match context.attributes.get_mut(&name) {
                Some(Value::Array(values)) => values.push(Value::String(value)),
                Some(first) => {
                    let first = core::mem::take(first);
                    context
                        .attributes
                        .insert(name, Value::Array(vec![first, Value::String(value)]));
                }
                None => {
                    context.attributes.insert(name, Value::String(value));
                }
            },
        }
    }
    Ok((environment, context))
}

pub(crate) type BatchParts = (Option<Vec<String>>, Option<String>, EvaluationContext);

/// REST API batch body (`POST /api/v1/flags/batch`) `{userId?, environment?, flagKeys?, context?}`; unknown members are ignored
/// for forward compatibility. The top-level `userId` wins over one inside `context`.
pub(crate) fn rest_batch_body(body: &[u8]) -> Result<BatchParts, Error> {
    let mut object = json_object(body)?;
    let flag_keys = match object.remove("flagKeys") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut keys = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let Value::String(key) = item else {
                    return Err(invalid_field(format!("flagKeys[{i}]"), "must be a string"));
                };
                if evaluator_core::validate_flag_key(&key).is_err() {
                    return Err(invalid_field(
                        format!("flagKeys[{i}]"),
                        "must be 1-255 characters of letters, digits, '-' and '_'",
                    ));
                }
                keys.push(key);
            }
            Some(keys)
        }
        Some(_) => {
            return Err(invalid_field(
                String::from("flagKeys"),
                "must be an array of flag keys",
            ))
        }
    };
    let environment = optional_string(&mut object, "environment", "environment")?;
    let user_id = optional_string(&mut object, "userId", "userId")?;
    let mut context = match object.remove("context") {
        None | Some(Value::Null) => EvaluationContext::default(),
        Some(value) => context_from_json(&value, "context")?,
    };
    if user_id.is_some() {
        context.targeting_key = user_id;
    }
    Ok((flag_keys, environment, context))
}

/// OFREP body `{"context": {...}}` (the spec requires `context`). Without a client key the
/// environment comes from the context attribute `environment`, which stays an attribute.
pub(crate) fn ofrep_body(
    body: &[u8],
    has_client_key: bool,
) -> Result<(Option<String>, EvaluationContext), Error> {
    let mut object = json_object(body)?;
    let Some(value) = object.remove("context") else {
        return Err(invalid_field(
            String::from("context"),
            "is required (an object)",
        ));
    };
    let context = context_from_json(&value, "context")?;
    let environment = if has_client_key {
        None
    } else {
        match context.attributes.get("environment") {
            None | Some(Value::Null) => None,
            Some(Value::String(environment)) => Some(environment.clone()),
            Some(_) => {
                return Err(invalid_field(
                    String::from("context.environment"),
                    "must be a string",
                ))
            }
        }
    };
    Ok((environment, context))
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(invalid_field(String::from("body"), "must be a JSON object")),
        Err(e) => Err(Error::InvalidJson {
            message: format!("{e}"),
        }),
    }
}

fn optional_string(
    object: &mut Map<String, Value>,
    name: &str,
    field: &str,
) -> Result<Option<String>, Error> {
    match object.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid_field(String::from(field), "must be a string")),
    }
}

fn context_from_json(value: &Value, field: &str) -> Result<EvaluationContext, Error> {
    let Some(object) = value.as_object() else {
        return Err(invalid_field(String::from(field), "must be an object"));
    };
    EvaluationContext::from_json_object(value).ok_or_else(|| {
        // `from_json_object` only refuses a non-string targeting key: name the member at fault.
        let member = ["targetingKey", "userId"]
            .into_iter()
            .find(|m| {
                object
                    .get(*m)
                    .is_some_and(|v| !v.is_string() && !v.is_null())
            })
            .unwrap_or("targetingKey");
        invalid_field(format!("{field}.{member}"), "must be a string")
    })
}

fn invalid_field(field: String, message: &str) -> Error {
    Error::InvalidField {
        field,
        message: String::from(message),
    }
}
