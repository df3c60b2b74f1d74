//! The OpenAPI document generated from the handlers (`origin::http::document`, served at
//! `/openapi.json`): it is valid OpenAPI 3.1, every operation it documents is routed, and real
//! answers of every route validate against the schemas it documents for their status.
//!
//! The OpenAPI validation runs openapi-spec-validator through scripts/lib/openapi-check.sh, which
//! installs it into `.tools/` (python3 and PyPI on first use).
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p origin --test openapi`

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{settings, with_checkout_flag, TestApp, TestResponse};
use origin::Settings;
use serde_json::{json, Value};
use sqlx::PgPool;

fn document() -> Value {
    serde_json::to_value(origin::http::document()).unwrap()
}

#[test]
fn document_is_valid_openapi_3_1() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let file = std::env::temp_dir().join(format!("edgeflags-openapi-{}.json", std::process::id()));
    std::fs::write(&file, origin::http::document().to_pretty_json().unwrap()).unwrap();
    let output = Command::new("bash")
        .arg(root.join("scripts/lib/openapi-check.sh"))
        .arg(&file)
        .output()
        .expect("running scripts/lib/openapi-check.sh");
    std::fs::remove_file(&file).ok();
    // the validator echoes the whole document in its errors: the start says what is wrong
    let report: String = String::from_utf8_lossy(&output.stdout)
        .chars()
        .chain(String::from_utf8_lossy(&output.stderr).chars())
        .take(4000)
        .collect();
    assert!(output.status.success(), "not valid OpenAPI 3.1: {report}");
    assert!(report.contains(": OK"), "{report}");
}

#[test]
fn document_covers_the_admin_evaluation_and_operations_routes() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path)| (method.to_uppercase(), path))
        .collect();
    for (method, path) in [
        ("GET", "/admin/flags/{flagKey}"),
        ("PUT", "/admin/flags/{flagKey}/overrides/{userId}"),
        (
            "DELETE",
            "/admin/environments/{environment}/client-keys/{name}",
        ),
        ("GET", "/api/v1/flags/{flagKey}"),
        ("POST", "/api/v1/flags/batch"),
        ("POST", "/ofrep/v1/evaluate/flags/{key}"),
        ("POST", "/ofrep/v1/evaluate/flags"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
    ] {
        assert!(
            documented.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is not documented: {documented:?}"
        );
    }
    // 25 admin operations, 4 evaluation, 4 operations
    assert_eq!(documented.len(), 33, "{documented:?}");
    for (method, path) in operations(&doc) {
        let operation = &doc["paths"][&path][&method];
        let security = &operation["security"];
        if path.starts_with("/admin") {
            assert_eq!(security, &json!([{"bearer": []}]), "{method} {path}");
            for status in ["401", "429", "500"] {
                assert!(
                    operation["responses"][status].is_object(),
                    "{method} {path} lacks {status}"
                );
            }
        } else if path.starts_with("/api") || path.starts_with("/ofrep") {
            assert_eq!(
                security,
                &json!([{"clientKey": []}, {"clientKeyHeader": []}, {"apiKeyHeader": []}, {}]),
                "{method} {path}"
            );
        }
    }
}

#[test]
fn error_body_schema_names_the_shape_of_every_origin_error() {
    let doc = document();
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["required"], json!(["code", "message"]));
    assert_eq!(
        detail["properties"]["details"]["items"]["$ref"],
        "#/components/schemas/FieldError"
    );
    assert_eq!(
        doc["components"]["schemas"]["FieldError"]["required"],
        json!(["field", "message"])
    );
}

/// `(method, path)` of every documented operation, in document order.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                out.push((method.clone(), path.clone()));
            }
        }
    }
    out
}

/// `/admin/flags/{flagKey}` and `/admin/flags/{flag_key}` have the same shape.
fn shape(template: &str) -> String {
    let mut out = String::new();
    let mut in_parameter = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_parameter = true;
                out.push_str("{}");
            }
            '}' => in_parameter = false,
            _ if in_parameter => {}
            c => out.push(c),
        }
    }
    out
}

/// `(METHOD, route shape)` of every request the metrics counted: the router's matched template.
fn routed(metrics: &str) -> BTreeSet<(String, String)> {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("edgeflags_http_request_duration_seconds_count{"))
        .filter_map(|labels| {
            let label = |name: &str| {
                let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
                let end = labels[start..].find('"')? + start;
                Some(labels[start..end].to_owned())
            };
            Some((label("method")?, shape(&label("route")?)))
        })
        .collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn every_documented_operation_is_routed(pool: PgPool) {
    let app = TestApp::new(pool);
    let doc = document();
    for (method, path) in operations(&doc) {
        let uri = format!(
            "{}?environment=placeholder",
            path.split('/')
                .map(|s| if s.starts_with('{') { "placeholder" } else { s })
                .collect::<Vec<_>>()
                .join("/")
        );
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = [Method::POST, Method::PUT]
            .contains(&method)
            .then(|| Body::from("{}"));
        let token = path
            .starts_with("/admin")
            .then(|| app.admin_token().to_owned());
        let response = app
            .send(method.clone(), &uri, token.as_deref(), body, &[])
            .await;
        // the handlers may refuse the placeholders, but not the router: neither the origin's
        // fallbacks nor the evaluation API's own "no such route"
        assert_ne!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        let code = response.code();
        assert!(
            !["ROUTE_NOT_FOUND", "METHOD_NOT_ALLOWED", "NOT_FOUND"].contains(&code),
            "{method} {uri}: {}",
            response.text
        );
    }
    // and each request was matched by the route of that template, not by a catch-all
    let metrics = app.state.metrics.render().unwrap();
    let routed = routed(&metrics);
    for (method, path) in operations(&doc) {
        let key = (method.to_uppercase(), shape(&path));
        assert!(
            routed.contains(&key),
            "{key:?} not routed; routed: {routed:?}"
        );
    }
}

/// The document's schemas, compiled to validators of real answers.
///
/// Validation is strict where the document is open: an object schema that lists `properties`
/// gets `unevaluatedProperties: false`, so a member the handlers send but the document does
/// not name fails too. Components that other schemas extend with `allOf` stay open there (the
/// extending schema is strict instead).
struct Spec {
    doc: Value,
    strict_components: Value,
    checked: BTreeMap<(String, String), BTreeSet<u16>>,
}

impl Spec {
    fn new() -> Self {
        let doc = document();
        let mut components = doc["components"].clone();
        let mut open = BTreeSet::new();
        collect_all_of_refs(&components, &mut open);
        for (name, schema) in components["schemas"].as_object_mut().unwrap() {
            strict(schema, open.contains(name));
        }
        Self {
            doc,
            strict_components: components,
            checked: BTreeMap::new(),
        }
    }

    /// Checks `response` to `method path_template` against the document: its status is
    /// documented, its documented headers are present, its body has the documented media type
    /// and validates against the documented schema (or is empty where none is documented).
    #[track_caller]
    fn check(&mut self, method: &str, template: &str, response: &TestResponse) {
        let operation = &self.doc["paths"][template][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let status = response.status.as_u16();
        let mut documented = &operation["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {template} answered {status}, which is not documented: {}",
            response.text
        );
        if let Some(reference) = documented["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/responses/");
            documented = &self.doc["components"]["responses"][name];
        }
        for name in documented["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|h| h.0)
        {
            assert!(
                response.header(name).is_some(),
                "{method} {template} {status} lacks the documented header {name}"
            );
        }
        match documented["content"].as_object() {
            None => assert!(
                response.text.is_empty(),
                "{method} {template} {status}: undocumented body {}",
                response.text
            ),
            Some(content) => {
                let media_type = response.header("content-type").unwrap_or("");
                let (documented_type, media) = content
                    .iter()
                    .find(|(name, _)| {
                        name.split(';').next() == media_type.split(';').next()
                    })
                    .unwrap_or_else(|| {
                        panic!("{method} {template} {status}: undocumented content type {media_type:?}")
                    });
                if documented_type == "application/json" {
                    self.validate(&media["schema"], &response.body, method, template, status);
                }
            }
        }
        self.checked
            .entry((method.to_uppercase(), template.to_owned()))
            .or_default()
            .insert(status);
    }

    #[track_caller]
    fn validate(&self, schema: &Value, body: &Value, method: &str, template: &str, status: u16) {
        let mut root = schema.clone();
        strict(&mut root, false);
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["components"] = self.strict_components.clone();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{method} {template} {status}: bad schema: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: the answer does not match the document:\n{}\nanswer: {body}",
            errors.join("\n")
        );
    }
}

/// Names of the schema components an `allOf` extends.
fn collect_all_of_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(parts)) = map.get("allOf") {
                for part in parts {
                    if let Some(reference) = part["$ref"].as_str() {
                        out.insert(reference.trim_start_matches("#/components/schemas/").into());
                    }
                }
            }
            map.values().for_each(|v| collect_all_of_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_all_of_refs(v, out)),
        _ => {}
    }
}

/// Closes every object schema under `value` that lists its members, except `value` itself
/// when `open` and the direct parts of an `allOf` (their extension is closed instead).
fn strict(value: &mut Value, open: bool) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("allOf", Value::Array(parts)) => {
                        parts.iter_mut().for_each(|p| strict(p, true))
                    }
                    (_, child) => strict(child, false),
                }
            }
            let lists_members = map.contains_key("properties") || map.contains_key("allOf");
            let already = map.contains_key("additionalProperties")
                || map.contains_key("unevaluatedProperties");
            if lists_members && !already && !open {
                map.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strict(v, false)),
        _ => {}
    }
}

#[test]
fn strict_validation_rejects_an_undocumented_member() {
    let spec = Spec::new();
    let schema = json!({"$ref": "#/components/schemas/Environment"});
    let environment = json!({
        "key": "dev", "name": "dev", "snapshotVersion": 1,
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"
    });
    spec.validate(&schema, &environment, "GET", "test", 200);
    let mut extra = environment.clone();
    extra["colour"] = json!("blue");
    let result = std::panic::catch_unwind(|| spec.validate(&schema, &extra, "GET", "test", 200));
    assert!(result.is_err(), "an undocumented member passed");
    // and extensions through allOf stay checked: a segment with an unknown member fails
    let segment = json!({
        "segmentKey": "beta", "environment": "dev", "version": 1,
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"
    });
    let stored = json!({"$ref": "#/components/schemas/StoredSegment"});
    spec.validate(&stored, &segment, "GET", "test", 200);
    let mut extra = segment;
    extra["colour"] = json!("blue");
    let result = std::panic::catch_unwind(|| spec.validate(&stored, &extra, "GET", "test", 200));
    assert!(
        result.is_err(),
        "an undocumented member passed through allOf"
    );
}

/// A flag using every part of the model, so its schema is exercised as a whole.
fn rich_flag() -> Value {
    json!({
        "flagKey": "checkout-theme",
        "description": "Theme of the checkout page",
        "enabled": true,
        "variations": [
            {"key": "light", "value": {"colour": "white"}, "description": "default"},
            {"key": "dark", "value": {"colour": "black"}}
        ],
        "onVariation": "dark",
        "defaultVariation": "light",
        "offVariation": "light",
        "targetingRules": {
            "percentage": 12.5,
            "segments": ["beta-users"],
            "userIds": ["u1"],
            "countries": ["US"],
            "excludedUserIds": ["u9"],
            "bucketBy": "accountId",
            "rules": [
                {
                    "id": "r1",
                    "description": "staff",
                    "clauses": [{"attribute": "email", "operator": "endsWith", "values": ["@example.com"], "negate": false}],
                    "variation": "dark"
                },
                {
                    "clauses": [{"attribute": "plan", "operator": "in", "values": ["pro"]}],
                    "rollout": {"bucketBy": "accountId", "weights": [
                        {"variation": "light", "weight": 50},
                        {"variation": "dark", "weight": 50}
                    ]}
                }
            ]
        },
        "prerequisites": [{"flagKey": "new-checkout-flow", "variation": "on"}],
        "overrides": [{"userId": "u2", "variation": "light", "expiresAt": "2099-01-01T00:00:00Z"}],
        "salt": "theme"
    })
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_answers_match_the_document(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let mut spec = Spec::new();
    let token = app.admin_token().to_owned();
    let call = |method: Method, uri: String, body: Option<Value>| {
        let app = app.clone();
        let token = token.clone();
        async move { app.call(method, &uri, &token, body).await }
    };
    let env = "environment=production";

    // flags
    let r = call(
        Method::POST,
        format!("/admin/flags?{env}"),
        Some(rich_flag()),
    )
    .await;
    r.assert_status(StatusCode::CREATED);
    spec.check("POST", "/admin/flags", &r);
    let r = call(Method::GET, format!("/admin/flags?{env}&limit=1"), None).await;
    assert!(r.body["nextCursor"].is_string());
    spec.check("GET", "/admin/flags", &r);
    let r = call(
        Method::GET,
        format!("/admin/flags/checkout-theme?{env}"),
        None,
    )
    .await;
    spec.check("GET", "/admin/flags/{flagKey}", &r);
    let r = call(
        Method::PUT,
        format!("/admin/flags/checkout-theme?{env}"),
        Some(json!({"description": "changed", "salt": null})),
    )
    .await;
    r.assert_status(StatusCode::OK);
    spec.check("PUT", "/admin/flags/{flagKey}", &r);
    let r = call(
        Method::POST,
        format!("/admin/flags/checkout-theme/rollback?{env}"),
        Some(json!({"version": 1})),
    )
    .await;
    r.assert_status(StatusCode::OK);
    spec.check("POST", "/admin/flags/{flagKey}/rollback", &r);

    // overrides
    let r = call(
        Method::PUT,
        format!("/admin/flags/new-checkout-flow/overrides/u7?{env}"),
        Some(json!({"enabled": false, "expiresAt": "2000-01-01T00:00:00Z"})),
    )
    .await;
    r.assert_status(StatusCode::CREATED);
    spec.check("PUT", "/admin/flags/{flagKey}/overrides/{userId}", &r);
    let r = call(
        Method::PUT,
        format!("/admin/flags/new-checkout-flow/overrides/u7?{env}"),
        Some(json!({"enabled": true})),
    )
    .await;
    r.assert_status(StatusCode::OK);
    spec.check("PUT", "/admin/flags/{flagKey}/overrides/{userId}", &r);
    let r = call(
        Method::GET,
        format!("/admin/flags/checkout-theme/overrides?{env}"),
        None,
    )
    .await;
    assert_eq!(r.body["overrides"][0]["expired"], false);
    spec.check("GET", "/admin/flags/{flagKey}/overrides", &r);
    let r = call(
        Method::DELETE,
        format!("/admin/flags/new-checkout-flow/overrides/u7?{env}"),
        None,
    )
    .await;
    r.assert_status(StatusCode::NO_CONTENT);
    spec.check("DELETE", "/admin/flags/{flagKey}/overrides/{userId}", &r);

    // environments, copy, client keys
    let r = call(
        Method::POST,
        "/admin/environments".into(),
        Some(json!({"key": "staging", "name": "Staging"})),
    )
    .await;
    r.assert_status(StatusCode::CREATED);
    spec.check("POST", "/admin/environments", &r);
    let r = call(
        Method::POST,
        "/admin/flags/new-checkout-flow/copy".into(),
        Some(json!({"from": "production", "to": "staging"})),
    )
    .await;
    r.assert_status(StatusCode::UNPROCESSABLE_ENTITY); // staging lacks the segments
    spec.check("POST", "/admin/flags/{flagKey}/copy", &r);
    assert!(r.body["error"]["details"].is_array());
    for segment in ["beta-users", "premium-users"] {
        let r = call(
            Method::POST,
            "/admin/segments?environment=staging".into(),
            Some(json!({"segmentKey": segment})),
        )
        .await;
        spec.check("POST", "/admin/segments", &r);
    }
    let copy = || {
        call(
            Method::POST,
            "/admin/flags/new-checkout-flow/copy".into(),
            Some(json!({"from": "production", "to": "staging"})),
        )
    };
    let r = copy().await;
    r.assert_status(StatusCode::CREATED);
    spec.check("POST", "/admin/flags/{flagKey}/copy", &r);
    let r = copy().await;
    r.assert_status(StatusCode::OK);
    spec.check("POST", "/admin/flags/{flagKey}/copy", &r);
    let r = call(Method::GET, "/admin/environments".into(), None).await;
    spec.check("GET", "/admin/environments", &r);
    let r = call(Method::GET, "/admin/environments/staging".into(), None).await;
    spec.check("GET", "/admin/environments/{environment}", &r);
    let r = call(
        Method::PUT,
        "/admin/environments/staging".into(),
        Some(json!({"name": "Pre-production"})),
    )
    .await;
    spec.check("PUT", "/admin/environments/{environment}", &r);
    let r = call(
        Method::POST,
        "/admin/environments/production/client-keys".into(),
        Some(json!({"name": "web"})),
    )
    .await;
    r.assert_status(StatusCode::CREATED);
    spec.check("POST", "/admin/environments/{environment}/client-keys", &r);
    let r = call(
        Method::GET,
        "/admin/environments/production/client-keys".into(),
        None,
    )
    .await;
    spec.check("GET", "/admin/environments/{environment}/client-keys", &r);
    let r = call(
        Method::DELETE,
        "/admin/environments/production/client-keys/web".into(),
        None,
    )
    .await;
    r.assert_status(StatusCode::NO_CONTENT);
    spec.check(
        "DELETE",
        "/admin/environments/{environment}/client-keys/{name}",
        &r,
    );
    let r = call(Method::DELETE, "/admin/environments/staging".into(), None).await;
    r.assert_status(StatusCode::CONFLICT);
    spec.check("DELETE", "/admin/environments/{environment}", &r);
    let r = call(
        Method::POST,
        "/admin/environments".into(),
        Some(json!({"key": "empty"})),
    )
    .await;
    spec.check("POST", "/admin/environments", &r);
    let r = call(Method::DELETE, "/admin/environments/empty".into(), None).await;
    r.assert_status(StatusCode::NO_CONTENT);
    spec.check("DELETE", "/admin/environments/{environment}", &r);

    // segments
    let r = call(Method::GET, format!("/admin/segments?{env}"), None).await;
    spec.check("GET", "/admin/segments", &r);
    let r = call(
        Method::GET,
        format!("/admin/segments/beta-users?{env}"),
        None,
    )
    .await;
    spec.check("GET", "/admin/segments/{segmentKey}", &r);
    let r = call(
        Method::POST,
        format!("/admin/segments?{env}"),
        Some(json!({
            "segmentKey": "staff",
            "description": "employees",
            "included": ["u1"],
            "excluded": ["u2"],
            "rules": [{"clauses": [{"attribute": "email", "operator": "endsWith", "values": ["@example.com"]}]}]
        })),
    )
    .await;
    r.assert_status(StatusCode::CREATED);
    spec.check("POST", "/admin/segments", &r);
    let r = call(
        Method::PUT,
        format!("/admin/segments/staff?{env}"),
        Some(json!({"description": null})),
    )
    .await;
    r.assert_status(StatusCode::OK);
    spec.check("PUT", "/admin/segments/{segmentKey}", &r);
    let r = call(
        Method::DELETE,
        format!("/admin/segments/beta-users?{env}"),
        None,
    )
    .await;
    r.assert_status(StatusCode::UNPROCESSABLE_ENTITY); // still referenced
    spec.check("DELETE", "/admin/segments/{segmentKey}", &r);
    let r = call(Method::DELETE, format!("/admin/segments/staff?{env}"), None).await;
    r.assert_status(StatusCode::NO_CONTENT);
    spec.check("DELETE", "/admin/segments/{segmentKey}", &r);

    // deletion, history (with the deletion's `definition: null`), audit
    let r = call(
        Method::DELETE,
        format!("/admin/flags/checkout-theme?{env}"),
        None,
    )
    .await;
    r.assert_status(StatusCode::NO_CONTENT);
    spec.check("DELETE", "/admin/flags/{flagKey}", &r);
    let r = call(
        Method::GET,
        format!("/admin/flags/checkout-theme/history?{env}"),
        None,
    )
    .await;
    assert!(r.body["versions"][0]["definition"].is_null());
    assert!(r.body["versions"][1]["rollbackOf"].is_number());
    spec.check("GET", "/admin/flags/{flagKey}/history", &r);
    let r = call(Method::GET, "/admin/audit?limit=5".into(), None).await;
    spec.check("GET", "/admin/audit", &r);
    let r = call(
        Method::GET,
        "/admin/audit?flagKey=checkout-theme".into(),
        None,
    )
    .await;
    spec.check("GET", "/admin/audit", &r);

    // errors: 400 (with `field`), 401, 403, 404, 409 (with `currentVersion`), 413, 422
    let r = call(
        Method::GET,
        "/admin/flags?environment=production&limit=0".into(),
        None,
    )
    .await;
    r.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["field"], "limit");
    spec.check("GET", "/admin/flags", &r);
    let r = app
        .public(
            Method::GET,
            "/admin/flags?environment=production",
            None,
            &[],
        )
        .await;
    r.assert_status(StatusCode::UNAUTHORIZED);
    spec.check("GET", "/admin/flags", &r);
    let viewer = app.token("vera", origin::auth::Role::Viewer, None);
    let r = app
        .call(
            Method::DELETE,
            "/admin/flags/new-checkout-flow?environment=production",
            &viewer,
            None,
        )
        .await;
    r.assert_status(StatusCode::FORBIDDEN);
    spec.check("DELETE", "/admin/flags/{flagKey}", &r);
    let r = call(Method::GET, format!("/admin/flags/nope?{env}"), None).await;
    r.assert_status(StatusCode::NOT_FOUND);
    spec.check("GET", "/admin/flags/{flagKey}", &r);
    let r = app
        .send(
            Method::PUT,
            "/admin/flags/new-checkout-flow?environment=production",
            Some(&token),
            Some(Body::from(r#"{"description":"x"}"#)),
            &[("if-match", "\"1\"")],
        )
        .await;
    r.assert_status(StatusCode::CONFLICT);
    assert!(r.body["error"]["currentVersion"].is_number());
    spec.check("PUT", "/admin/flags/{flagKey}", &r);
    let big = json!({"flagKey": "big", "description": "x".repeat(70 * 1024)});
    let r = call(Method::POST, format!("/admin/flags?{env}"), Some(big)).await;
    r.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    spec.check("POST", "/admin/flags", &r);
    let r = call(
        Method::POST,
        format!("/admin/flags?{env}"),
        Some(json!({"flagKey": "bad key!"})),
    )
    .await;
    r.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    spec.check("POST", "/admin/flags", &r);
    let r = app
        .send(
            Method::POST,
            "/admin/flags?environment=production",
            Some(&token),
            Some(Body::from("{not json")),
            &[],
        )
        .await;
    r.assert_status(StatusCode::BAD_REQUEST);
    spec.check("POST", "/admin/flags", &r);

    // every admin operation was checked at least once
    let admin: BTreeSet<(String, String)> = operations(&spec.doc)
        .into_iter()
        .filter(|(_, path)| path.starts_with("/admin"))
        .map(|(m, p)| (m.to_uppercase(), p))
        .collect();
    let checked: BTreeSet<(String, String)> = spec.checked.keys().cloned().collect();
    assert_eq!(
        admin.difference(&checked).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new()
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rate_limited_answer_matches_the_document(pool: PgPool) {
    let app = TestApp::with_settings(
        pool,
        Settings {
            admin_rate_per_second: 0.001,
            admin_rate_burst: 1,
            ..settings()
        },
    );
    let mut spec = Spec::new();
    app.admin(Method::GET, "/admin/environments", None).await;
    let r = app.admin(Method::GET, "/admin/environments", None).await;
    r.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body["error"]["retryAfterSeconds"].is_number());
    spec.check("GET", "/admin/environments", &r);
}

#[sqlx::test(migrations = "../migrations")]
async fn operations_answers_match_the_document(pool: PgPool) {
    let app = TestApp::new(pool.clone());
    let mut spec = Spec::new();
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let r = app.public(Method::GET, path, None, &[]).await;
        r.assert_status(StatusCode::OK);
        spec.check("GET", path, &r);
    }
    pool.close().await;
    let r = app.public(Method::GET, "/readyz", None, &[]).await;
    r.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    spec.check("GET", "/readyz", &r);
}

#[sqlx::test(migrations = "../migrations")]
async fn openapi_document_is_served(pool: PgPool) {
    let app = TestApp::new(pool);
    let response = app.public(Method::GET, "/openapi.json", None, &[]).await;
    response.assert_status(StatusCode::OK);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.body["info"]["title"], "edgeflags origin API");
    // the router's own document, as `origin openapi` prints it
    assert_eq!(response.body, document());
}

#[sqlx::test(migrations = "../migrations")]
async fn evaluation_answers_match_the_document(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let mut spec = Spec::new();
    app.create_flag(
        "production",
        json!({"flagKey": "theme", "enabled": true,
               "variations": [{"key": "light", "value": "light"}, {"key": "dark", "value": "dark"}],
               "onVariation": "dark", "defaultVariation": "light",
               "targetingRules": {"userIds": ["u1"]}}),
    )
    .await;
    let flag = "/api/v1/flags/{flagKey}";
    let batch = "/api/v1/flags/batch";
    let ofrep_flag = "/ofrep/v1/evaluate/flags/{key}";
    let ofrep_bulk = "/ofrep/v1/evaluate/flags";

    // REST: one flag
    for uri in [
        "/api/v1/flags/new-checkout-flow?environment=production&userId=user123&country=US",
        "/api/v1/flags/theme?environment=production&userId=u1",
        "/api/v1/flags/theme?environment=production",
    ] {
        let r = app.public(Method::GET, uri, None, &[]).await;
        r.assert_status(StatusCode::OK);
        spec.check("GET", flag, &r);
    }
    let r = app
        .public(
            Method::GET,
            "/api/v1/flags/nope?environment=production",
            None,
            &[],
        )
        .await;
    r.assert_status(StatusCode::NOT_FOUND);
    spec.check("GET", flag, &r);
    let r = app
        .public(Method::GET, "/api/v1/flags/theme", None, &[])
        .await;
    r.assert_status(StatusCode::BAD_REQUEST);
    spec.check("GET", flag, &r);
    let r = app
        .public(
            Method::GET,
            "/api/v1/flags/theme?environment=ghost",
            None,
            &[],
        )
        .await;
    r.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    spec.check("GET", flag, &r);

    // REST: batch
    let body = json!({"userId": "u1", "environment": "production", "flagKeys": ["theme", "nope"],
                      "context": {"country": "US"}});
    let r = app
        .public(Method::POST, "/api/v1/flags/batch", Some(body.clone()), &[])
        .await;
    r.assert_status(StatusCode::OK);
    spec.check("POST", batch, &r);
    let etag = r.header("etag").unwrap().to_owned();
    let r = app
        .public(
            Method::POST,
            "/api/v1/flags/batch",
            Some(body),
            &[("if-none-match", &etag)],
        )
        .await;
    r.assert_status(StatusCode::NOT_MODIFIED);
    spec.check("POST", batch, &r);
    let r = app
        .public(
            Method::POST,
            "/api/v1/flags/batch",
            Some(json!({"environment": "production"})),
            &[],
        )
        .await;
    r.assert_status(StatusCode::OK);
    spec.check("POST", batch, &r);
    let r = app
        .public(
            Method::POST,
            "/api/v1/flags/batch",
            Some(json!({"environment": "ghost", "flagKeys": ["theme"]})),
            &[],
        )
        .await;
    r.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    spec.check("POST", batch, &r);
    let r = app
        .public(
            Method::POST,
            "/api/v1/flags/batch",
            Some(json!({"environment": "production", "flagKeys": [1]})),
            &[],
        )
        .await;
    r.assert_status(StatusCode::BAD_REQUEST);
    spec.check("POST", batch, &r);
    let big = json!({"environment": "production", "context": {"x": "y".repeat(70 * 1024)}});
    let r = app
        .public(Method::POST, "/api/v1/flags/batch", Some(big.clone()), &[])
        .await;
    r.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    spec.check("POST", batch, &r);

    // OFREP
    let context =
        json!({"context": {"targetingKey": "u1", "environment": "production", "plan": "pro"}});
    for key in ["theme", "new-checkout-flow"] {
        let uri = format!("/ofrep/v1/evaluate/flags/{key}");
        let r = app
            .public(Method::POST, &uri, Some(context.clone()), &[])
            .await;
        r.assert_status(StatusCode::OK);
        spec.check("POST", ofrep_flag, &r);
    }
    let r = app
        .public(
            Method::POST,
            "/ofrep/v1/evaluate/flags/nope",
            Some(context.clone()),
            &[],
        )
        .await;
    r.assert_status(StatusCode::NOT_FOUND);
    spec.check("POST", ofrep_flag, &r);
    let r = app
        .public(
            Method::POST,
            "/ofrep/v1/evaluate/flags/theme",
            Some(json!({})),
            &[],
        )
        .await;
    r.assert_status(StatusCode::BAD_REQUEST);
    spec.check("POST", ofrep_flag, &r);
    let ghost = json!({"context": {"environment": "ghost"}});
    let r = app
        .public(
            Method::POST,
            "/ofrep/v1/evaluate/flags/theme",
            Some(ghost.clone()),
            &[],
        )
        .await;
    r.assert_status(StatusCode::INTERNAL_SERVER_ERROR);
    spec.check("POST", ofrep_flag, &r);
    let r = app
        .public(
            Method::POST,
            "/ofrep/v1/evaluate/flags/theme",
            Some(big.clone()),
            &[],
        )
        .await;
    r.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    spec.check("POST", ofrep_flag, &r);
    let r = app
        .public(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Some(context.clone()),
            &[],
        )
        .await;
    r.assert_status(StatusCode::OK);
    spec.check("POST", ofrep_bulk, &r);
    let etag = r.header("etag").unwrap().to_owned();
    let r = app
        .public(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Some(context.clone()),
            &[("if-none-match", &etag)],
        )
        .await;
    r.assert_status(StatusCode::NOT_MODIFIED);
    spec.check("POST", ofrep_bulk, &r);
    let r = app
        .public(
            Method::POST,
            "/ofrep/v1/evaluate/flags",
            Some(json!({"context": 1})),
            &[],
        )
        .await;
    r.assert_status(StatusCode::BAD_REQUEST);
    spec.check("POST", ofrep_bulk, &r);
    let r = app
        .public(Method::POST, "/ofrep/v1/evaluate/flags", Some(ghost), &[])
        .await;
    r.assert_status(StatusCode::INTERNAL_SERVER_ERROR);
    spec.check("POST", ofrep_bulk, &r);
    let r = app
        .public(Method::POST, "/ofrep/v1/evaluate/flags", Some(big), &[])
        .await;
    r.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    spec.check("POST", ofrep_bulk, &r);
}

#[sqlx::test(migrations = "../migrations")]
async fn evaluation_answers_with_client_keys_match_the_document(pool: PgPool) {
    let app = TestApp::requiring_client_keys(pool);
    app.create_environment("production").await;
    app.create_environment("staging").await;
    app.create_flag("production", json!({"flagKey": "theme", "enabled": true}))
        .await;
    let key = app.create_client_key("production", "web").await;
    let bearer = format!("Bearer {key}");
    let mut spec = Spec::new();
    let context = json!({"context": {"targetingKey": "u1"}});

    // 200 with the key in each documented place
    for header in [
        ("authorization", bearer.as_str()),
        ("x-client-key", key.as_str()),
        ("x-api-key", key.as_str()),
    ] {
        let r = app
            .public(Method::GET, "/api/v1/flags/theme", None, &[header])
            .await;
        r.assert_status(StatusCode::OK);
        spec.check("GET", "/api/v1/flags/{flagKey}", &r);
        let r = app
            .public(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Some(context.clone()),
                &[header],
            )
            .await;
        r.assert_status(StatusCode::OK);
        spec.check("POST", "/ofrep/v1/evaluate/flags", &r);
    }
    // 401 without one (REST: a body; OFREP: none)
    let r = app
        .public(Method::GET, "/api/v1/flags/theme", None, &[])
        .await;
    r.assert_status(StatusCode::UNAUTHORIZED);
    spec.check("GET", "/api/v1/flags/{flagKey}", &r);
    let r = app
        .public(Method::POST, "/api/v1/flags/batch", Some(json!({})), &[])
        .await;
    r.assert_status(StatusCode::UNAUTHORIZED);
    spec.check("POST", "/api/v1/flags/batch", &r);
    for path in ["/ofrep/v1/evaluate/flags/theme", "/ofrep/v1/evaluate/flags"] {
        let r = app
            .public(Method::POST, path, Some(context.clone()), &[])
            .await;
        r.assert_status(StatusCode::UNAUTHORIZED);
        let template = if path.ends_with("theme") {
            "/ofrep/v1/evaluate/flags/{key}"
        } else {
            path
        };
        spec.check("POST", template, &r);
    }
    // 403: the key's environment is not the one asked for
    let auth = [("authorization", bearer.as_str())];
    let r = app
        .public(
            Method::GET,
            "/api/v1/flags/theme?environment=staging",
            None,
            &auth,
        )
        .await;
    r.assert_status(StatusCode::FORBIDDEN);
    spec.check("GET", "/api/v1/flags/{flagKey}", &r);
    let r = app
        .public(
            Method::POST,
            "/api/v1/flags/batch",
            Some(json!({"environment": "staging"})),
            &auth,
        )
        .await;
    r.assert_status(StatusCode::FORBIDDEN);
    spec.check("POST", "/api/v1/flags/batch", &r);
}
