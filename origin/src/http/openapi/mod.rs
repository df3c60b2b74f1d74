//! The origin's OpenAPI 3.1 document, generated from the code.
//!
//! Every route is registered through `utoipa_axum`'s `routes!`, which takes its path and method
//! from the handler's `#[utoipa::path]` attribute: a route cannot exist without its operation
//! in the document. [`super::app`] and [`super::document`] build the same routers, so the
//! document served at `/openapi.json` (and printed by `origin openapi`) is the router's own.
//!
//! This module holds what no single handler owns: the document's header and security schemes
//! ([`base`]), what the admin guard adds to every admin operation ([`guarded`]), and the last
//! touches ([`finish`]). [`admin`] and [`evaluation`] hold the schemas of answers that are built
//! as JSON values or bytes rather than from typed structs.

pub mod admin;
mod closed;
pub mod errors;
pub mod evaluation;

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{AnyOfBuilder, Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Required, Response, ResponseBuilder};
use utoipa::openapi::{OpenApi, Ref, RefOr};
use utoipa::{Modify, OpenApi as _};

/// Name of the admin API's security scheme (a JWT in `Authorization: Bearer`).
pub const ADMIN_SECURITY: &str = "bearer";

/// Security requirements of the evaluation routes: a client key in any of the three places
/// `evaluation-api` reads it from, or none at all where the deployment does not require one
/// (`EDGEFLAGS_REQUIRE_CLIENT_KEYS=false`).
pub const CLIENT_KEY_SECURITY: [&str; 3] = ["clientKey", "clientKeyHeader", "apiKeyHeader"];

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "edgeflags origin API",
        description = "The control plane of edgeflags (admin API under `/admin`), the public \
            evaluation API it serves like the edge does (REST `/api/v1/flags...` and OpenFeature's \
            OFREP `/ofrep/v1/evaluate/flags...`), and operations endpoints.\n\n\
            Every admin mutation is one transaction that also writes an audit row and publishes \
            the environment's next snapshot; its answer carries `X-Edgeflags-Snapshot-Version`. \
            Admin errors are `{\"error\":{\"code\",\"message\",...}}`; `VALIDATION_FAILED` adds \
            `details: [{field, message}]`. See docs/architecture.md and docs/flag-model.md.",
    ),
    servers((url = "http://127.0.0.1:8080", description = "The default `--bind` of `origin serve`")),
    tags(
        (name = "flags", description = "Flags of an environment, their history and overrides"),
        (name = "segments", description = "Reusable user segments of an environment"),
        (name = "environments", description = "Environments and their client and server keys"),
        (name = "audit", description = "The audit trail"),
        (name = "evaluation", description = "REST evaluation API"),
        (name = "ofrep", description = "OpenFeature Remote Evaluation Protocol"),
        (name = "sdk", description = "Snapshots for in-process SDKs (server keys)"),
        (name = "operations", description = "Liveness, readiness, metrics and this document"),
    ),
    components(responses(admin::Unauthorized, admin::RateLimited, admin::Internal)),
    modifiers(&SecuritySchemes),
)]
struct Base;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN_SECURITY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 JWT: iss=edgeflags, aud=edgeflags-admin, claims sub, role \
                         (viewer|editor|admin), optional environments[]. \
                         `origin token --sub alice --role admin` prints one.",
                    ))
                    .build(),
            ),
        );
        let [bearer, header, api_key] = CLIENT_KEY_SECURITY;
        components.add_security_scheme(
            bearer,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("efk.<environment>.<32 hex>")
                    .description(Some(
                        "A client key of the environment (POST \
                         /admin/environments/{environment}/client-keys) in `Authorization: Bearer`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            header,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Client-Key",
                "A client key of the environment.",
            ))),
        );
        components.add_security_scheme(
            api_key,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "A client key of the environment (OFREP's API-key scheme).",
            ))),
        );
    }
}

/// The document's header: info, servers, tags, security schemes and shared responses.
pub(super) fn base() -> OpenApi {
    Base::openapi()
}

/// What `admin_guard` does to every admin operation: it needs the bearer token (401 without a
/// valid one), applies the rate limit (429); and every admin operation reads the database (500).
pub(super) fn guarded(mut admin: OpenApi) -> OpenApi {
    for item in admin.paths.paths.values_mut() {
        for operation in changes_mut(item) {
            if NOT_CHANGES.contains(&operation.operation_id.as_deref().unwrap_or("")) {
                continue;
            }
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(comment_parameter());
            operation
                .responses
                .responses
                .entry("400".to_owned())
                .or_insert_with(|| {
                    RefOr::T(error_response(
                        "`INVALID_PARAMETER`: a bad `X-Edgeflags-Comment`",
                    ))
                });
        }
        for operation in operations_mut(item) {
            operation.security = Some(vec![SecurityRequirement::new(
                ADMIN_SECURITY,
                Vec::<String>::new(),
            )]);
            let responses = &mut operation.responses.responses;
            for (status, name) in [
                ("401", "Unauthorized"),
                ("429", "RateLimited"),
                ("500", "Internal"),
            ] {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        }
    }
    admin
}

/// Operations that change nothing although their method is not `GET` (they take a body).
const NOT_CHANGES: [&str; 1] = ["evaluateAs"];

/// The operations whose method changes something: `PUT`, `POST`, `DELETE`, `PATCH`.
fn changes_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

/// `X-Edgeflags-Comment`, which every admin change accepts (`http::extract::change_comment`).
fn comment_parameter() -> Parameter {
    ParameterBuilder::new()
        .name("X-Edgeflags-Comment")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The author's comment on the change (\"why\"), stored with its audit rows and, for \
             flags, its history versions. Percent-encoded UTF-8 or plain text (a `%` not followed \
             by two hex digits stays as it is); at most 500 characters once decoded, no control \
             characters; a bad one is a 400 `INVALID_PARAMETER` naming it.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(1500)),
        ))
        .build()
}

/// An `ErrorBody` answer described by `description`.
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Names of the partial-update bodies derived from full schemas (`PUT` merges members).
pub const PATCHES: [(&str, &str); 2] = [("Flag", "FlagPatch"), ("Segment", "SegmentPatch")];

/// The last touches: path parameters in the API's camelCase, the partial-update schemas, and
/// closed admin request bodies ([`closed`]).
pub(super) fn finish(mut document: OpenApi) -> OpenApi {
    // The router's templates keep snake_case (`{flag_key}`): they are the `route` label of the
    // HTTP metrics. The document names parameters like the JSON members (`{flagKey}`).
    let paths = std::mem::take(&mut document.paths.paths);
    document.paths.paths = paths
        .into_iter()
        .map(|(path, mut item)| {
            for operation in operations_mut(&mut item) {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.parameter_in == ParameterIn::Path {
                        parameter.name = camel_case(&parameter.name);
                    }
                }
            }
            (camel_case_parameters(&path), item)
        })
        .collect();
    if let Some(components) = &mut document.components {
        for (full, patch) in PATCHES {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get(full) {
                let patch_schema = patch_of(object.clone(), full);
                components
                    .schemas
                    .insert(patch.to_owned(), RefOr::T(Schema::Object(patch_schema)));
            }
        }
    }
    closed::close_admin_request_bodies(&mut document);
    document
}

/// A `PUT` body of `full`'s members: none required, each may be `null` (which removes it).
fn patch_of(mut object: Object, full: &str) -> Object {
    object.required.clear();
    object.title = None;
    object.description = Some(format!(
        "Members of {full} to change: each replaces the stored member of the same name (nested \
         objects are replaced whole), `null` removes it; the result is validated as a whole."
    ));
    for property in object.properties.values_mut() {
        let nullable = AnyOfBuilder::new()
            .item(property.clone())
            .item(Object::with_type(Type::Null))
            .build();
        *property = RefOr::T(Schema::AnyOf(nullable));
    }
    object
}

/// `/flags/{flag_key}` → `/flags/{flagKey}`: only the parameters change.
fn camel_case_parameters(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push_str(&rest[..=open]);
        out.push_str(&camel_case(&rest[open + 1..open + close]));
        rest = &rest[open + close..];
    }
    out.push_str(rest);
    out
}

/// `flag_key` → `flagKey`.
fn camel_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut upper = false;
    for c in text.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// The operations of a path item.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_become_camel_case_and_the_rest_stays() {
        assert_eq!(
            camel_case_parameters("/admin/flags/{flag_key}/overrides/{user_id}"),
            "/admin/flags/{flagKey}/overrides/{userId}"
        );
        assert_eq!(
            camel_case_parameters("/a_b/{environment}/client-keys"),
            "/a_b/{environment}/client-keys"
        );
        assert_eq!(camel_case_parameters("/healthz"), "/healthz");
    }
}
