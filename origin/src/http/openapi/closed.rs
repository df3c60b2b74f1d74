//! Admin request bodies are closed objects.
//!
//! Every admin handler reads its body through `document::from_value`, which refuses a member the
//! type does not name, at any depth (422 `VALIDATION_FAILED`, "unknown field"). The derived
//! schemas do not say so, so a client (or schemathesis) would take `{"key":"dev","x":1}` for a
//! valid body. [`close_admin_request_bodies`] adds `additionalProperties: false` to every object
//! schema with named properties that an admin request body reaches.
//!
//! A closed part of an `allOf` (serde's `flatten`: `StoredSegment` is a `Segment` plus the
//! server's metadata) would refuse the other parts' members, so [`flatten_all_of`] first turns
//! every component `allOf` of objects into the one object it describes.

use std::collections::{BTreeMap, BTreeSet};

use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Object, Schema, Type};
use utoipa::openapi::{OpenApi, RefOr};

use super::operations_mut;

const SCHEMA_REF_PREFIX: &str = "#/components/schemas/";

/// Closes the object schemas the request bodies of `/admin/...` operations reach (inline or
/// through `$ref`s, followed transitively).
pub(super) fn close_admin_request_bodies(document: &mut OpenApi) {
    let mut pending = Vec::new();
    for (path, item) in &mut document.paths.paths {
        if !path.starts_with("/admin/") {
            continue;
        }
        for operation in operations_mut(item) {
            let Some(body) = &mut operation.request_body else {
                continue;
            };
            for schema in body.content.values_mut().filter_map(|c| c.schema.as_mut()) {
                close(schema, &mut pending);
            }
        }
    }
    let Some(components) = &mut document.components else {
        return;
    };
    flatten_all_of(&mut components.schemas);
    let mut closed = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if closed.insert(name.clone()) {
            if let Some(schema) = components.schemas.get_mut(&name) {
                close(schema, &mut pending);
            }
        }
    }
}

/// Closes `schema` and what it contains inline; pushes the names of the schemas it refers to.
fn close(schema: &mut RefOr<Schema>, refs: &mut Vec<String>) {
    let schema = match schema {
        RefOr::Ref(reference) => {
            if let Some(name) = reference.ref_location.strip_prefix(SCHEMA_REF_PREFIX) {
                refs.push(name.to_owned());
            }
            return;
        }
        RefOr::T(schema) => schema,
    };
    match schema {
        Schema::Object(object) => {
            // Only structs: an object without named properties is a map (free-form context,
            // attribute values), which takes any member.
            if !object.properties.is_empty() && object.additional_properties.is_none() {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
            for property in object.properties.values_mut() {
                close(property, refs);
            }
            if let Some(AdditionalProperties::RefOr(values)) =
                object.additional_properties.as_deref_mut()
            {
                close(values, refs);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                close(items, refs);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(|s| close(s, refs)),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(|s| close(s, refs)),
        // flatten_all_of has merged the component allOfs; an inline one is left open.
        _ => {}
    }
}

/// Replaces each component `allOf` whose parts are all objects (inline or `$ref`s to
/// components) by one object with every part's properties and required members. It is open
/// unless a request body reaches it: no response schema is closed.
fn flatten_all_of(schemas: &mut BTreeMap<String, RefOr<Schema>>) {
    let merged: Vec<(String, Object)> = schemas
        .iter()
        .filter_map(|(name, schema)| match schema {
            RefOr::T(Schema::AllOf(all_of)) => {
                let mut object = Object::with_type(Type::Object);
                object.description.clone_from(&all_of.description);
                for part in &all_of.items {
                    let part = match part {
                        RefOr::T(Schema::Object(part)) => part,
                        RefOr::Ref(reference) => match reference
                            .ref_location
                            .strip_prefix(SCHEMA_REF_PREFIX)
                            .and_then(|name| schemas.get(name))
                        {
                            Some(RefOr::T(Schema::Object(part))) => part,
                            _ => return None,
                        },
                        RefOr::T(_) => return None,
                    };
                    object.properties.extend(part.properties.clone());
                    object.required.extend(part.required.iter().cloned());
                }
                Some((name.clone(), object))
            }
            _ => None,
        })
        .collect();
    for (name, object) in merged {
        schemas.insert(name, RefOr::T(Schema::Object(object)));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn closed(document: Value) -> Value {
        let mut document: OpenApi = serde_json::from_value(document).unwrap();
        close_admin_request_bodies(&mut document);
        serde_json::to_value(document).unwrap()
    }

    fn with_body(path: &str, schemas: Value) -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {path: {"post": {
                "requestBody": {"content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Body"}
                }}},
                "responses": {}
            }}},
            "components": {"schemas": schemas}
        })
    }

    #[test]
    fn an_admin_body_and_the_structs_it_reaches_are_closed_and_maps_stay_open() {
        let document = closed(with_body(
            "/admin/things",
            json!({
                "Body": {"type": "object", "properties": {
                    "rules": {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}},
                    "context": {"type": "object", "additionalProperties": true}
                }},
                "Rule": {"type": "object", "properties": {"name": {"type": "string"}}},
                "Unused": {"type": "object", "properties": {"name": {"type": "string"}}}
            }),
        ));
        let schemas = &document["components"]["schemas"];
        assert_eq!(schemas["Body"]["additionalProperties"], json!(false));
        assert_eq!(schemas["Rule"]["additionalProperties"], json!(false));
        assert_eq!(
            schemas["Body"]["properties"]["context"]["additionalProperties"],
            json!(true)
        );
        assert_eq!(schemas["Unused"].get("additionalProperties"), None);
    }

    #[test]
    fn a_public_body_stays_open() {
        let document = closed(with_body(
            "/api/v1/things",
            json!({"Body": {"type": "object", "properties": {"name": {"type": "string"}}}}),
        ));
        assert_eq!(
            document["components"]["schemas"]["Body"].get("additionalProperties"),
            None
        );
    }

    #[test]
    fn an_all_of_extension_becomes_one_open_object_with_every_member() {
        let document = closed(with_body(
            "/admin/things",
            json!({
                "Body": {"type": "object", "properties": {"key": {"type": "string"}},
                    "required": ["key"]},
                "Stored": {"allOf": [
                    {"$ref": "#/components/schemas/Body"},
                    {"type": "object", "properties": {"version": {"type": "integer"}},
                        "required": ["version"]}
                ], "description": "Body and its version."}
            }),
        ));
        let stored = &document["components"]["schemas"]["Stored"];
        assert_eq!(stored.get("allOf"), None);
        assert_eq!(stored["required"], json!(["key", "version"]));
        assert_eq!(stored["description"], json!("Body and its version."));
        assert_eq!(
            stored["properties"],
            json!({"key": {"type": "string"}, "version": {"type": "integer"}})
        );
        assert_eq!(stored.get("additionalProperties"), None);
        assert_eq!(
            document["components"]["schemas"]["Body"]["additionalProperties"],
            json!(false)
        );
    }
}
