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
        ("GET", "/admin/environments/{environment}/delivery"),
        ("GET", "/api/v1/flags/{flagKey}"),
        ("POST", "/api/v1/flags/batch"),
        ("POST", "/ofrep/v1/evaluate/flags/{key}"),
        ("POST", "/ofrep/v1/evaluate/flags"),
        ("GET", "/ofrep/v1/event-stream"),
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
    // 32 admin operations, 4 evaluation and OFREP's event stream, the SDK snapshot, 4 operations
    assert_eq!(documented.len(), 42, "{documented:?}");
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
        } else if path == "/ofrep/v1/event-stream" {
            // its credential is the token in its URL, not a client key
            assert!(security.is_null(), "{method} {path}: {security}");
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
        "key": "dev", "name": "dev", "snapshotVersion": 1, "protected": false,
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

/// One request and the status its answer must have: `(method, uri, JSON body, status)`.
type Step<'a> = (Method, &'a str, Option<Value>, StatusCode);

impl Spec {
    /// The documented path template that routes `uri`: the one whose literal segments all
    /// match, literal segments winning over parameters (`/api/v1/flags/batch` over
    /// `/api/v1/flags/{flagKey}`), as in the router.
    #[track_caller]
    fn template(&self, method: &Method, uri: &str) -> String {
        let path: Vec<&str> = uri.split('?').next().unwrap_or(uri).split('/').collect();
        operations(&self.doc)
            .into_iter()
            .filter(|(m, _)| m.eq_ignore_ascii_case(method.as_str()))
            .filter_map(|(_, template)| {
                let parts: Vec<&str> = template.split('/').collect();
                let routes = parts.len() == path.len()
                    && parts
                        .iter()
                        .zip(&path)
                        .all(|(p, s)| p.starts_with('{') || p == s);
                let literal = parts.iter().filter(|p| !p.starts_with('{')).count();
                routes.then(|| (literal, template.clone()))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, template)| template)
            .unwrap_or_else(|| panic!("{method} {uri} is not documented"))
    }

    /// Asserts the answer's status, then checks it against the operation routing `uri`.
    #[track_caller]
    fn expect(&mut self, method: &Method, uri: &str, status: StatusCode, r: &TestResponse) {
        r.assert_status(status);
        let template = self.template(method, uri);
        self.check(method.as_str(), &template, r);
    }

    /// Sends `step` (as `token`, or without one) and checks its answer.
    async fn step(&mut self, app: &TestApp, token: Option<&str>, step: Step<'_>) -> TestResponse {
        let (method, uri, body, status) = step;
        let body = body.map(|b| Body::from(b.to_string()));
        let r = app.send(method.clone(), uri, token, body, &[]).await;
        self.expect(&method, uri, status, &r);
        r
    }

    /// Sends every step in order and checks each answer.
    async fn walk(&mut self, app: &TestApp, token: Option<&str>, steps: Vec<Step<'_>>) {
        for step in steps {
            self.step(app, token, step).await;
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn admin_answers_match_the_document(pool: PgPool) {
    use Method as M;
    use StatusCode as S;
    let app = with_checkout_flag(pool).await;
    let mut spec = Spec::new();
    let token = app.admin_token().to_owned();
    let admin = Some(token.as_str());
    let env = "environment=production";
    let flags = format!("/admin/flags?{env}");
    let flag = format!("/admin/flags/checkout-theme?{env}");
    let checkout = format!("/admin/flags/new-checkout-flow?{env}");

    // flags
    spec.step(
        &app,
        admin,
        (M::POST, &flags, Some(rich_flag()), S::CREATED),
    )
    .await;
    let page = format!("{flags}&limit=1");
    let r = spec.step(&app, admin, (M::GET, &page, None, S::OK)).await;
    assert!(r.body["nextCursor"].is_string());
    let update = json!({"description": "changed", "salt": null});
    let rollback = format!("/admin/flags/checkout-theme/rollback?{env}");
    let version = json!({"version": 1});
    // and overrides
    let u7 = format!("/admin/flags/new-checkout-flow/overrides/u7?{env}");
    let expiring = json!({"enabled": false, "expiresAt": "2000-01-01T00:00:00Z"});
    let on = json!({"enabled": true});
    let steps: Vec<Step> = vec![
        (M::GET, &flag, None, S::OK),
        (M::PUT, &flag, Some(update), S::OK),
        (M::POST, &rollback, Some(version), S::OK),
        (M::PUT, &u7, Some(expiring), S::CREATED),
        (M::PUT, &u7, Some(on), S::OK),
    ];
    spec.walk(&app, admin, steps).await;
    let list = format!("/admin/flags/checkout-theme/overrides?{env}");
    let r = spec.step(&app, admin, (M::GET, &list, None, S::OK)).await;
    assert_eq!(r.body["overrides"][0]["expired"], false);
    spec.step(&app, admin, (M::DELETE, &u7, None, S::NO_CONTENT))
        .await;

    // environments, copy, client keys
    let environments = "/admin/environments";
    let staging = json!({"key": "staging", "name": "Staging"});
    spec.step(
        &app,
        admin,
        (M::POST, environments, Some(staging), S::CREATED),
    )
    .await;
    let copy = "/admin/flags/new-checkout-flow/copy";
    let promotion = || Some(json!({"from": "production", "to": "staging"}));
    // staging lacks the segments
    let refused = (M::POST, copy, promotion(), S::UNPROCESSABLE_ENTITY);
    let r = spec.step(&app, admin, refused).await;
    assert!(r.body["error"]["details"].is_array());
    let segments = "/admin/segments?environment=staging";
    let beta = json!({"segmentKey": "beta-users"});
    let premium = json!({"segmentKey": "premium-users"});
    let keys = "/admin/environments/production/client-keys";
    let web = json!({"name": "web"});
    let web_key = format!("{keys}/web");
    let server_keys = "/admin/environments/production/server-keys";
    let backend = json!({"name": "backend"});
    let backend_key = format!("{server_keys}/backend");
    let renamed = json!({"name": "Pre-production"});
    let empty = json!({"key": "empty"});
    let steps: Vec<Step> = vec![
        (M::POST, segments, Some(beta), S::CREATED),
        (M::POST, segments, Some(premium), S::CREATED),
        (M::POST, copy, promotion(), S::CREATED),
        (M::POST, copy, promotion(), S::OK),
        (M::GET, environments, None, S::OK),
        (M::GET, "/admin/environments/staging", None, S::OK),
        (M::PUT, "/admin/environments/staging", Some(renamed), S::OK),
        (M::POST, keys, Some(web), S::CREATED),
        (M::GET, keys, None, S::OK),
        (M::DELETE, &web_key, None, S::NO_CONTENT),
        (M::POST, server_keys, Some(backend), S::CREATED),
        (M::GET, server_keys, None, S::OK),
        (M::DELETE, &backend_key, None, S::NO_CONTENT),
        (M::DELETE, "/admin/environments/staging", None, S::CONFLICT),
        (M::POST, environments, Some(empty), S::CREATED),
        (M::DELETE, "/admin/environments/empty", None, S::NO_CONTENT),
    ];
    spec.walk(&app, admin, steps).await;

    // segments (beta-users is still referenced), then the flag's deletion
    let segments = format!("/admin/segments?{env}");
    let beta = format!("/admin/segments/beta-users?{env}");
    let staff = format!("/admin/segments/staff?{env}");
    let new_staff = json!({
        "segmentKey": "staff",
        "description": "employees",
        "included": ["u1"],
        "excluded": ["u2"],
        "rules": [{"clauses": [{"attribute": "email", "operator": "endsWith", "values": ["@example.com"]}]}]
    });
    let no_description = json!({"description": null});
    let steps: Vec<Step> = vec![
        (M::GET, &segments, None, S::OK),
        (M::GET, &beta, None, S::OK),
        (M::POST, &segments, Some(new_staff), S::CREATED),
        (M::PUT, &staff, Some(no_description), S::OK),
        (M::DELETE, &beta, None, S::UNPROCESSABLE_ENTITY),
        (M::DELETE, &staff, None, S::NO_CONTENT),
        (M::DELETE, &flag, None, S::NO_CONTENT),
    ];
    spec.walk(&app, admin, steps).await;

    // history (with the deletion's `definition: null`), audit
    let history = format!("/admin/flags/checkout-theme/history?{env}");
    let r = spec
        .step(&app, admin, (M::GET, &history, None, S::OK))
        .await;
    assert!(r.body["versions"][0]["definition"].is_null());
    assert!(r.body["versions"][1]["rollbackOf"].is_number());
    let steps: Vec<Step> = vec![
        (
            M::GET,
            "/admin/environments/production/delivery",
            None,
            S::OK,
        ),
        (
            M::GET,
            "/admin/environments/nope/delivery",
            None,
            S::NOT_FOUND,
        ),
        (M::GET, "/admin/audit?limit=5", None, S::OK),
        (M::GET, "/admin/audit?flagKey=checkout-theme", None, S::OK),
    ];
    spec.walk(&app, admin, steps).await;

    // errors: 400 (with `field`), 401, 403, 404, 409 (with `currentVersion`), 413, 422
    let zero = format!("{flags}&limit=0");
    let r = spec
        .step(&app, admin, (M::GET, &zero, None, S::BAD_REQUEST))
        .await;
    assert_eq!(r.body["error"]["field"], "limit");
    spec.step(&app, None, (M::GET, &flags, None, S::UNAUTHORIZED))
        .await;
    let viewer = app.token("vera", origin::auth::Role::Viewer, None);
    spec.step(
        &app,
        Some(&viewer),
        (M::DELETE, &checkout, None, S::FORBIDDEN),
    )
    .await;
    let stale = Some(Body::from(r#"{"description":"x"}"#));
    let if_match = [("if-match", "\"1\"")];
    let r = app.send(M::PUT, &checkout, admin, stale, &if_match).await;
    spec.expect(&M::PUT, &checkout, S::CONFLICT, &r);
    assert!(r.body["error"]["currentVersion"].is_number());
    let nope = format!("/admin/flags/nope?{env}");
    let big = json!({"flagKey": "big", "description": "x".repeat(70 * 1024)});
    let bad_key = json!({"flagKey": "bad key!"});
    let steps: Vec<Step> = vec![
        (M::GET, &nope, None, S::NOT_FOUND),
        (M::POST, &flags, Some(big), S::PAYLOAD_TOO_LARGE),
        (M::POST, &flags, Some(bad_key), S::UNPROCESSABLE_ENTITY),
    ];
    spec.walk(&app, admin, steps).await;
    let malformed = Some(Body::from("{not json"));
    let r = app.send(M::POST, &flags, admin, malformed, &[]).await;
    spec.expect(&M::POST, &flags, S::BAD_REQUEST, &r);

    // the dashboard's routes, and a protected environment's 428
    let tag = json!({"environment": "production", "flagKeys": ["new-checkout-flow"],
        "action": "addTags", "tags": ["t"]});
    let disable = json!({"environment": "production", "flagKeys": ["new-checkout-flow"],
        "action": "disable"});
    let steps: Vec<Step> = vec![
        (M::GET, "/admin/flag-index", None, S::OK),
        (M::GET, "/admin/flag-index?q=checkout&limit=1", None, S::OK),
        (M::GET, "/admin/flag-index?cursor=zz", None, S::BAD_REQUEST),
        (
            M::POST,
            "/admin/evaluate",
            Some(json!({"context": {"targetingKey": "u1"}})),
            S::OK,
        ),
        (M::POST, "/admin/flag-bulk", Some(tag), S::OK),
        (
            M::PUT,
            "/admin/environments/production",
            Some(json!({"protected": true})),
            S::OK,
        ),
        (
            M::POST,
            "/admin/flag-bulk",
            Some(disable),
            S::PRECONDITION_REQUIRED,
        ),
        (
            M::PUT,
            &checkout,
            Some(json!({"enabled": false})),
            S::PRECONDITION_REQUIRED,
        ),
    ];
    spec.walk(&app, admin, steps).await;

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
    app.get("/admin/environments").await;
    let r = app.get("/admin/environments").await;
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
    use Method as M;
    use StatusCode as S;
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

    // REST: one flag
    for (uri, status) in [
        (
            "/api/v1/flags/new-checkout-flow?environment=production&userId=user123&country=US",
            S::OK,
        ),
        (
            "/api/v1/flags/theme?environment=production&userId=u1",
            S::OK,
        ),
        ("/api/v1/flags/theme?environment=production", S::OK),
        ("/api/v1/flags/nope?environment=production", S::NOT_FOUND),
        ("/api/v1/flags/theme", S::BAD_REQUEST),
        (
            "/api/v1/flags/theme?environment=ghost",
            S::SERVICE_UNAVAILABLE,
        ),
    ] {
        spec.step(&app, None, (M::GET, uri, None, status)).await;
    }

    // REST: batch, and OFREP for one flag and in bulk; a 304 for a known ETag
    let batch = "/api/v1/flags/batch";
    let ofrep = "/ofrep/v1/evaluate/flags";
    let theme = "/ofrep/v1/evaluate/flags/theme";
    let body = json!({"userId": "u1", "environment": "production", "flagKeys": ["theme", "nope"],
                      "context": {"country": "US"}});
    let context =
        json!({"context": {"targetingKey": "u1", "environment": "production", "plan": "pro"}});
    for (uri, body) in [(batch, body), (ofrep, context.clone())] {
        let r = spec
            .step(&app, None, (M::POST, uri, Some(body.clone()), S::OK))
            .await;
        let etag = [("if-none-match", r.header("etag").unwrap())];
        let r = app.public(M::POST, uri, Some(body), &etag).await;
        spec.expect(&M::POST, uri, S::NOT_MODIFIED, &r);
    }
    let big = json!({"environment": "production", "context": {"x": "y".repeat(70 * 1024)}});
    let production = json!({"environment": "production"});
    let rest_ghost = json!({"environment": "ghost", "flagKeys": ["theme"]});
    let not_a_key = json!({"environment": "production", "flagKeys": [1]});
    let ghost = json!({"context": {"environment": "ghost"}});
    let checkout = "/ofrep/v1/evaluate/flags/new-checkout-flow";
    for (uri, body, status) in [
        (batch, production, S::OK),
        (batch, rest_ghost, S::SERVICE_UNAVAILABLE),
        (batch, not_a_key, S::BAD_REQUEST),
        (batch, big.clone(), S::PAYLOAD_TOO_LARGE),
        (theme, context.clone(), S::OK),
        (checkout, context.clone(), S::OK),
        ("/ofrep/v1/evaluate/flags/nope", context, S::NOT_FOUND),
        (theme, json!({}), S::BAD_REQUEST),
        (theme, ghost.clone(), S::INTERNAL_SERVER_ERROR),
        (theme, big.clone(), S::PAYLOAD_TOO_LARGE),
        (ofrep, json!({"context": 1}), S::BAD_REQUEST),
        (ofrep, ghost, S::INTERNAL_SERVER_ERROR),
        (ofrep, big, S::PAYLOAD_TOO_LARGE),
    ] {
        spec.step(&app, None, (M::POST, uri, Some(body), status))
            .await;
    }
    // the event stream's refusal (its answers are in tests/event_stream.rs)
    let stream = "/ofrep/v1/event-stream?token=v1.production.-.1.0";
    spec.step(&app, None, (M::GET, stream, None, S::UNAUTHORIZED))
        .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn evaluation_answers_with_client_keys_match_the_document(pool: PgPool) {
    use Method as M;
    use StatusCode as S;
    let app = TestApp::requiring_client_keys(pool);
    app.create_environment("production").await;
    app.create_environment("staging").await;
    app.create_flag("production", json!({"flagKey": "theme", "enabled": true}))
        .await;
    let key = app.create_client_key("production", "web").await;
    let bearer = format!("Bearer {key}");
    let mut spec = Spec::new();
    let context = json!({"context": {"targetingKey": "u1"}});
    let theme = "/api/v1/flags/theme";
    let batch = "/api/v1/flags/batch";
    let ofrep = "/ofrep/v1/evaluate/flags";

    // 200 with the key in each documented place
    for header in [
        ("authorization", bearer.as_str()),
        ("x-client-key", key.as_str()),
        ("x-api-key", key.as_str()),
    ] {
        let r = app.public(M::GET, theme, None, &[header]).await;
        spec.expect(&M::GET, theme, S::OK, &r);
        let r = app
            .public(M::POST, ofrep, Some(context.clone()), &[header])
            .await;
        spec.expect(&M::POST, ofrep, S::OK, &r);
    }
    // 401 without one (REST: a body; OFREP: none)
    let unauthorized = S::UNAUTHORIZED;
    let steps: Vec<Step> = vec![
        (M::GET, theme, None, unauthorized),
        (M::POST, batch, Some(json!({})), unauthorized),
        (
            M::POST,
            "/ofrep/v1/evaluate/flags/theme",
            Some(context.clone()),
            unauthorized,
        ),
        (M::POST, ofrep, Some(context), unauthorized),
    ];
    spec.walk(&app, None, steps).await;
    // 403: the key's environment is not the one asked for
    let auth = [("authorization", bearer.as_str())];
    let staging = "/api/v1/flags/theme?environment=staging";
    let r = app.public(M::GET, staging, None, &auth).await;
    spec.expect(&M::GET, staging, S::FORBIDDEN, &r);
    let body = json!({"environment": "staging"});
    let r = app.public(M::POST, batch, Some(body), &auth).await;
    spec.expect(&M::POST, batch, S::FORBIDDEN, &r);
}
