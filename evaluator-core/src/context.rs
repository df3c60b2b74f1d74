//! The evaluation context: who is asking, and what we know about them.

use alloc::string::String;
use serde_json::{Map, Value};

/// Targeting key plus free-form attributes (OpenFeature's evaluation context).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationContext {
    /// The user id (the REST API's `userId`, OpenFeature's `targetingKey`).
    pub targeting_key: Option<String>,
    /// Other attributes, e.g. `country`, `plan`, `appVersion`.
    pub attributes: Map<String, Value>,
}

impl EvaluationContext {
    /// A context for one user with no attributes.
    #[must_use]
    pub fn with_targeting_key(key: impl Into<String>) -> Self {
        Self {
            targeting_key: Some(key.into()),
            attributes: Map::new(),
        }
    }

    /// Adds (or replaces) one attribute.
    #[must_use]
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Builds a context from an OpenFeature-style JSON object: `targetingKey` (or its alias
    /// `userId`, the REST API's name for it) becomes the targeting key, every other member an attribute.
    ///
    /// Returns `None` when `value` is not an object or the key is present but not a string.
    #[must_use]
    pub fn from_json_object(value: &Value) -> Option<Self> {
        let object = value.as_object()?;
        let mut attributes = Map::new();
        let mut targeting_key = None;
        for (name, v) in object {
            if name == "targetingKey" || name == "userId" {
                match v {
                    Value::String(s) => targeting_key = Some(s.clone()),
                    Value::Null => {}
                    _ => return None,
                }
            } else {
                attributes.insert(name.clone(), v.clone());
            }
        }
        Some(Self {
            targeting_key,
            attributes,
        })
    }

    /// Like [`EvaluationContext::from_json_object`], taking the object by value: its attribute
    /// names and values move into the context instead of being copied (a request body parsed
    /// once, then evaluated).
    ///
    /// Returns `None` when `value` is not an object or the key is present but not a string.
    #[must_use]
    pub fn from_json_value(value: Value) -> Option<Self> {
        let Value::Object(object) = value else {
            return None;
        };
        let mut attributes = Map::new();
        let mut targeting_key = None;
        for (name, v) in object {
            if name == "targetingKey" || name == "userId" {
                match v {
                    Value::String(s) => targeting_key = Some(s),
                    Value::Null => {}
                    _ => return None,
                }
            } else {
                attributes.insert(name, v);
            }
        }
        Some(Self {
            targeting_key,
            attributes,
        })
    }
}
