//! The admin API the dashboard needs (issue 12): tags on flags, change comments, protected
//! environments, the cross-environment flag index, "evaluate as" and bulk actions, through the
//! real router and PostgreSQL.

mod common;

use axum::http::{Method, StatusCode};
use common::{dump, side_effects, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

/// An app with an empty environment `dev`.
async fn with_dev(pool: PgPool) -> TestApp {
    let app = TestApp::new(pool);
    app.create_environment("dev").await;
    app
}

fn keys(page: &Value, member: &str) -> Vec<String> {
    page[member]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flagKey"].as_str().unwrap().to_owned())
        .collect()
}

// ---- tags ----

#[sqlx::test(migrations = "../migrations")]
async fn tags_are_stored_with_the_flag_and_returned(pool: PgPool) {
    let app = with_dev(pool).await;
    let created = app
        .create_flag(
            "dev",
            json!({"flagKey": "a", "tags": ["team:checkout", "v2.1", "beta_1-x"]}),
        )
        .await;
    assert_eq!(
        created.body["tags"],
        json!(["team:checkout", "v2.1", "beta_1-x"])
    );
    let shown = app.get("/admin/flags/a?environment=dev").await;
    assert_eq!(
        shown.body["tags"],
        json!(["team:checkout", "v2.1", "beta_1-x"])
    );
    // a flag without tags has none on the wire either
    let plain = app.create_flag("dev", json!({"flagKey": "b"})).await;
    assert!(plain.body.get("tags").is_none(), "{}", plain.text);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_bad_tag_is_a_422_naming_its_index_and_nothing_is_stored(pool: PgPool) {
    let app = with_dev(pool).await;
    let before = side_effects(&app.pool, "dev").await;
    for (tags, field) in [
        (json!(["ok", "fine", "good", "bad tag"]), "tags[3]"),
        (json!(["x", ""]), "tags[1]"),
        (json!(["a".repeat(65)]), "tags[0]"),
        (json!(["dup", "other", "dup"]), "tags[2]"),
        (json!(["<img src=x>"]), "tags[0]"),
    ] {
        let r = app
            .post(
                "/admin/flags?environment=dev",
                json!({"flagKey": "a", "tags": tags}),
            )
            .await;
        r.assert_invalid(field);
    }
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    let r = app
        .post(
            "/admin/flags?environment=dev",
            json!({"flagKey": "a", "tags": many}),
        )
        .await;
    r.assert_invalid("tags");
    assert_eq!(side_effects(&app.pool, "dev").await, before);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_flag_list_filters_by_tag(pool: PgPool) {
    let app = with_dev(pool).await;
    app.create_flag("dev", json!({"flagKey": "a", "tags": ["x", "y"]}))
        .await;
    app.create_flag("dev", json!({"flagKey": "b", "tags": ["y"]}))
        .await;
    app.create_flag("dev", json!({"flagKey": "c"})).await;
    let r = app.get("/admin/flags?environment=dev&tag=y").await;
    r.assert_status(StatusCode::OK);
    assert_eq!(keys(&r.body, "flags"), ["a", "b"]);
    let r = app.get("/admin/flags?environment=dev&tag=y&limit=1").await;
    assert_eq!(keys(&r.body, "flags"), ["a"]);
    assert_eq!(r.body["nextCursor"], "a");
    let r = app
        .get("/admin/flags?environment=dev&tag=y&limit=1&cursor=a")
        .await;
    assert_eq!(keys(&r.body, "flags"), ["b"]);
    let r = app.get("/admin/flags?environment=dev&tag=Y").await;
    assert_eq!(keys(&r.body, "flags"), Vec::<String>::new());
    let r = app.get("/admin/flags?environment=dev&tag=bad%20tag").await;
    r.assert_field_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER", "tag");
}

#[sqlx::test(migrations = "../migrations")]
async fn tags_change_through_a_partial_update_and_do_not_affect_evaluation(pool: PgPool) {
    let app = with_dev(pool).await;
    app.create_flag("dev", json!({"flagKey": "a", "enabled": true}))
        .await;
    let evaluate = || {
        app.public(
            Method::GET,
            "/api/v1/flags/a?environment=dev&userId=u1",
            None,
            &[],
        )
    };
    let before = evaluate().await;
    let r = app
        .put("/admin/flags/a?environment=dev", json!({"tags": ["z"]}))
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["tags"], json!(["z"]));
    let after = evaluate().await;
    after.assert_status(StatusCode::OK);
    assert_eq!(before.body["value"], after.body["value"]);
    assert_eq!(before.body["reason"], after.body["reason"]);
}

// ---- change comments ----

#[sqlx::test(migrations = "../migrations")]
async fn a_comment_is_stored_with_the_audit_row_and_the_history_version(pool: PgPool) {
    let app = with_dev(pool).await;
    let r = app
        .admin_with(
            Method::POST,
            "/admin/flags?environment=dev",
            Some(json!({"flagKey": "a"})),
            &[("x-edgeflags-comment", "caf%C3%A9: first cut")],
        )
        .await;
    r.assert_status(StatusCode::CREATED);
    app.put("/admin/flags/a?environment=dev", json!({"enabled": true}))
        .await
        .assert_status(StatusCode::OK);

    let audit = app.get("/admin/audit?flagKey=a").await;
    audit.assert_status(StatusCode::OK);
    let entries = audit.body["entries"].as_array().unwrap();
    assert_eq!(entries[0]["comment"], Value::Null);
    assert_eq!(entries[1]["comment"], "café: first cut");
    let history = app.get("/admin/flags/a/history?environment=dev").await;
    assert_eq!(history.body["versions"][0]["comment"], Value::Null);
    assert_eq!(history.body["versions"][1]["comment"], "café: first cut");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_comment_too_long_or_with_control_characters_is_refused_and_nothing_changes(
    pool: PgPool,
) {
    let app = with_dev(pool).await;
    let before = side_effects(&app.pool, "dev").await;
    let long = "x".repeat(501);
    for comment in [long.as_str(), "line%0Abreak", "%FF%FE"] {
        let r = app
            .admin_with(
                Method::POST,
                "/admin/flags?environment=dev",
                Some(json!({"flagKey": "a"})),
                &[("x-edgeflags-comment", comment)],
            )
            .await;
        r.assert_field_error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER",
            "X-Edgeflags-Comment",
        );
    }
    assert_eq!(side_effects(&app.pool, "dev").await, before);
    // a read ignores the header
    let r = app
        .admin_with(
            Method::GET,
            "/admin/flags?environment=dev",
            None,
            &[("x-edgeflags-comment", "%FF")],
        )
        .await;
    r.assert_status(StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_comment_on_an_environment_change_reaches_the_audit_log(pool: PgPool) {
    let app = with_dev(pool).await;
    app.admin_with(
        Method::PUT,
        "/admin/environments/dev",
        Some(json!({"name": "Development"})),
        &[("x-edgeflags-comment", "rename for the dashboard")],
    )
    .await
    .assert_status(StatusCode::OK);
    let audit = app.get("/admin/audit?entityType=environment").await;
    assert_eq!(
        audit.body["entries"][0]["comment"],
        "rename for the dashboard"
    );
}

// ---- protected environments ----

/// `production` (protected by default) and `dev` each holding flag `a`, off.
async fn with_production(pool: PgPool) -> TestApp {
    let app = with_dev(pool).await;
    app.create_default_environment("production").await;
    for environment in ["dev", "production"] {
        app.create_flag(environment, json!({"flagKey": "a", "enabled": false}))
            .await;
    }
    app
}

const PROD_A: &str = "/admin/flags/a?environment=production";

#[sqlx::test(migrations = "../migrations")]
async fn production_is_protected_by_default_and_other_environments_are_not(pool: PgPool) {
    let app = with_production(pool).await;
    assert_eq!(
        app.get("/admin/environments/production").await.body["protected"],
        true
    );
    assert_eq!(
        app.get("/admin/environments/dev").await.body["protected"],
        false
    );
    let created = app
        .post(
            "/admin/environments",
            json!({"key": "staging", "protected": true}),
        )
        .await;
    created.assert_status(StatusCode::CREATED);
    assert_eq!(created.body["protected"], true);
}

#[sqlx::test(migrations = "../migrations")]
async fn toggling_a_flag_in_a_protected_environment_needs_the_confirmation(pool: PgPool) {
    let app = with_production(pool).await;
    let before = dump(&app.pool).await;
    let on = json!({"enabled": true});
    let r = app.put(PROD_A, on.clone()).await;
    r.assert_error(StatusCode::PRECONDITION_REQUIRED, "CONFIRMATION_REQUIRED");
    assert_eq!(r.body["error"]["environment"], "production");
    let wrong = [("x-edgeflags-confirm", "dev")];
    let r = app
        .admin_with(Method::PUT, PROD_A, Some(on.clone()), &wrong)
        .await;
    r.assert_error(StatusCode::PRECONDITION_REQUIRED, "CONFIRMATION_REQUIRED");
    assert_eq!(dump(&app.pool).await, before, "nothing changed");

    // other changes of the flag need no confirmation; nor does an unprotected environment
    app.put(PROD_A, json!({"description": "x"}))
        .await
        .assert_status(StatusCode::OK);
    app.put("/admin/flags/a?environment=dev", on.clone())
        .await
        .assert_status(StatusCode::OK);
    let confirmed = [("x-edgeflags-confirm", "production")];
    let r = app
        .admin_with(Method::PUT, PROD_A, Some(on), &confirmed)
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["enabled"], true);
}

#[sqlx::test(migrations = "../migrations")]
async fn rollback_and_copy_that_flip_enabled_need_the_confirmation(pool: PgPool) {
    let app = with_production(pool).await;
    let confirmed = [("x-edgeflags-confirm", "production")];
    app.admin_with(
        Method::PUT,
        PROD_A,
        Some(json!({"enabled": true})),
        &confirmed,
    )
    .await
    .assert_status(StatusCode::OK);
    let rollback = "/admin/flags/a/rollback?environment=production";
    let r = app.post(rollback, json!({"version": 1})).await;
    r.assert_error(StatusCode::PRECONDITION_REQUIRED, "CONFIRMATION_REQUIRED");
    // dev's `a` is off, production's on: copying flips it
    let copy = "/admin/flags/a/copy";
    let body = json!({"from": "dev", "to": "production"});
    let r = app.post(copy, body.clone()).await;
    r.assert_error(StatusCode::PRECONDITION_REQUIRED, "CONFIRMATION_REQUIRED");
    let r = app
        .admin_with(Method::POST, copy, Some(body), &confirmed)
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["enabled"], false);
}

#[sqlx::test(migrations = "../migrations")]
async fn an_admin_can_unprotect_and_protect_an_environment(pool: PgPool) {
    let app = with_production(pool).await;
    let r = app
        .put(
            "/admin/environments/production",
            json!({"protected": false}),
        )
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["protected"], false);
    assert_eq!(r.body["name"], "production");
    app.put(PROD_A, json!({"enabled": true}))
        .await
        .assert_status(StatusCode::OK);
    app.put("/admin/environments/dev", json!({"protected": true}))
        .await
        .assert_status(StatusCode::OK);
    app.put("/admin/flags/a?environment=dev", json!({"enabled": true}))
        .await
        .assert_error(StatusCode::PRECONDITION_REQUIRED, "CONFIRMATION_REQUIRED");
    let editor = app.token("ed", origin::auth::Role::Editor, None);
    let r = app
        .call(
            Method::PUT,
            "/admin/environments/dev",
            &editor,
            Some(json!({"protected": false})),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    app.put("/admin/environments/dev", json!({}))
        .await
        .assert_invalid("name");
}

// ---- the cross-environment flag index ----

/// `dev` and `production` (unprotected, so the tests can toggle) with a few flags.
async fn with_index(pool: PgPool) -> TestApp {
    let app = with_dev(pool).await;
    app.post(
        "/admin/environments",
        json!({"key": "production", "protected": false}),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.create_flag(
        "dev",
        json!({"flagKey": "checkout", "description": "New Checkout flow", "tags": ["team:pay"], "enabled": true}),
    )
    .await;
    app.create_flag(
        "dev",
        json!({"flagKey": "search", "description": "Café search", "targetingRules": {"percentage": 10}}),
    )
    .await;
    app.create_flag("dev", json!({"flagKey": "zeta"})).await;
    app.create_flag(
        "production",
        json!({"flagKey": "checkout", "description": "checkout, as in production", "tags": ["team:pay", "prod"]}),
    )
    .await;
    app
}

fn index_keys(page: &Value) -> Vec<String> {
    keys(page, "flags")
}

#[sqlx::test(migrations = "../migrations")]
async fn the_index_has_a_row_per_key_and_a_cell_per_environment_that_has_it(pool: PgPool) {
    let app = with_index(pool).await;
    let r = app.get("/admin/flag-index").await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["environments"], json!(["dev", "production"]));
    assert_eq!(index_keys(&r.body), ["checkout", "search", "zeta"]);
    let checkout = &r.body["flags"][0];
    // production's copy changed last: it describes the flag
    assert_eq!(checkout["describedIn"], "production");
    assert_eq!(checkout["description"], "checkout, as in production");
    assert_eq!(checkout["tags"], json!(["team:pay", "prod"]));
    assert_eq!(checkout["environments"]["dev"]["enabled"], true);
    assert_eq!(checkout["environments"]["dev"]["version"], 1);
    assert_eq!(checkout["environments"]["production"]["enabled"], false);
    assert_eq!(checkout["environments"]["dev"]["hasRules"], false);
    let search = &r.body["flags"][1];
    assert_eq!(search["environments"]["dev"]["hasRules"], true);
    assert!(search["environments"].get("production").is_none());
    assert_eq!(r.body["nextCursor"], Value::Null);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_index_searches_key_description_and_tags_without_case(pool: PgPool) {
    let app = with_index(pool).await;
    for (q, expected) in [
        ("CHECK", vec!["checkout"]),
        ("caf%C3%A9", vec!["search"]),
        ("CAF%C3%89", vec!["search"]),
        ("team%3Ap", vec!["checkout"]),
        ("prod", vec!["checkout"]),
        ("e", vec!["checkout", "search", "zeta"]),
        ("%25", vec![]),
        ("_", vec![]),
    ] {
        let r = app.get(&format!("/admin/flag-index?q={q}")).await;
        r.assert_status(StatusCode::OK);
        assert_eq!(index_keys(&r.body), expected, "q={q}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_index_filters_by_tag_state_rules_time_and_environment(pool: PgPool) {
    let app = &with_index(pool).await;
    let get = |query: &'static str| async move {
        let r = app.get(&format!("/admin/flag-index?{query}")).await;
        r.assert_status(StatusCode::OK);
        index_keys(&r.body)
    };
    assert_eq!(get("tag=prod").await, ["checkout"]);
    assert_eq!(get("enabled=true").await, ["checkout"]);
    assert_eq!(get("enabled=false").await, ["checkout", "search", "zeta"]);
    assert_eq!(
        get("enabled=false&environment=dev").await,
        ["search", "zeta"]
    );
    assert_eq!(get("hasRules=true").await, ["search"]);
    assert_eq!(get("environment=production").await, ["checkout"]);
    assert_eq!(get("changedSince=2000-01-01T00:00:00Z").await.len(), 3);
    assert!(get("changedSince=2999-01-01T00:00:00Z").await.is_empty());
}

#[sqlx::test(migrations = "../migrations")]
async fn the_index_pages_by_key_with_an_opaque_cursor(pool: PgPool) {
    let app = with_index(pool).await;
    let first = app.get("/admin/flag-index?limit=2").await;
    assert_eq!(index_keys(&first.body), ["checkout", "search"]);
    let cursor = first.body["nextCursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!("/admin/flag-index?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(index_keys(&second.body), ["zeta"]);
    assert_eq!(second.body["nextCursor"], Value::Null);
    for (query, field) in [
        ("cursor=zeta", "cursor"),
        ("cursor=2e", "cursor"),
        ("limit=0", "limit"),
        ("changedSince=yesterday", "changedSince"),
        ("tag=a%20b", "tag"),
        ("enabled=maybe", "query"),
    ] {
        let r = app.get(&format!("/admin/flag-index?{query}")).await;
        r.assert_field_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER", field);
    }
    let r = app.get("/admin/flag-index?environment=nope").await;
    r.assert_error(StatusCode::NOT_FOUND, "ENVIRONMENT_NOT_FOUND");
}

#[sqlx::test(migrations = "../migrations")]
async fn the_index_lists_only_the_environments_a_token_may_read(pool: PgPool) {
    let app = with_index(pool).await;
    let token = app.token("dora", origin::auth::Role::Viewer, Some(&["dev"]));
    let r = app
        .call(Method::GET, "/admin/flag-index", &token, None)
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["environments"], json!(["dev"]));
    let checkout = &r.body["flags"][0];
    assert_eq!(checkout["describedIn"], "dev");
    assert!(checkout["environments"].get("production").is_none());
    let r = app
        .call(
            Method::GET,
            "/admin/flag-index?environment=production",
            &token,
            None,
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
}

/// Measurement, not a timed test (run with `--ignored --nocapture`): 5,000 flags in each of
/// three environments, seeded by SQL; the median of 20 index requests per query shape.
#[sqlx::test(migrations = "../migrations")]
#[ignore = "measurement: run explicitly"]
async fn measure_the_index_over_5000_flags_in_3_environments(pool: PgPool) {
    let app = TestApp::new(pool);
    for environment in ["dev", "staging", "production"] {
        app.create_environment(environment).await;
        sqlx::query(
            "insert into feature_flag (environment_id, flag_key, enabled, version, definition,
                                       created_by, updated_by)
             select e.environment_id, 'flag-' || lpad(i::text, 5, '0'), i % 3 = 0, 1,
                    jsonb_build_object('flagKey', 'flag-' || lpad(i::text, 5, '0'),
                        'description', 'Generated flag number ' || i || ' for the checkout team',
                        'tags', jsonb_build_array('team:t' || (i % 20), 'area-' || (i % 7)),
                        'targetingRules', case when i % 4 = 0
                            then jsonb_build_object('percentage', 10) else null end),
                    'seed', 'seed'
             from environment e, generate_series(1, 5000) i
             where e.environment_key = $1",
        )
        .bind(environment)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    sqlx::query("analyze feature_flag")
        .execute(&app.pool)
        .await
        .unwrap();
    for query in [
        "limit=100",
        "limit=100&cursor=666c61672d3032353030",
        "q=number%204321",
        "q=CHECKOUT&limit=100",
        "q=zzz-no-match",
        "tag=team:t7",
        "enabled=true&hasRules=true&environment=production",
    ] {
        let uri = format!("/admin/flag-index?{query}");
        let mut times = Vec::new();
        for _ in 0..20 {
            let started = std::time::Instant::now();
            app.get(&uri).await.assert_status(StatusCode::OK);
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "flag-index {query}: median {:?}, max {:?}",
            times[10], times[19]
        );
    }
}

// ---- evaluate as ----

#[sqlx::test(migrations = "../migrations")]
async fn evaluate_as_answers_what_each_environment_serves_the_context(pool: PgPool) {
    let app = with_index(pool).await;
    app.create_flag(
        "production",
        json!({"flagKey": "beta", "enabled": true, "targetingRules": {"userIds": ["u1"]}}),
    )
    .await;
    let r = app
        .post(
            "/admin/evaluate",
            json!({"context": {"targetingKey": "u1", "plan": "pro"}, "flagKeys": ["beta", "checkout"]}),
        )
        .await;
    r.assert_status(StatusCode::OK);
    let environments = r.body["environments"].as_array().unwrap();
    assert_eq!(environments.len(), 2);
    let dev = &environments[0];
    assert_eq!(dev["environment"], "dev");
    assert_eq!(dev["results"][0]["flagKey"], "beta");
    assert_eq!(dev["results"][0]["reason"], "ERROR");
    assert_eq!(dev["results"][0]["errorCode"], "FLAG_NOT_FOUND");
    assert_eq!(dev["results"][1]["value"], true);
    let production = &environments[1];
    assert_eq!(production["environment"], "production");
    assert!(production["snapshotVersion"].as_u64().unwrap() >= 2);
    let beta = &production["results"][0];
    assert_eq!(beta["value"], true);
    assert_eq!(beta["variant"], "on");
    assert_eq!(beta["reason"], "TARGETING_MATCH");
    assert_eq!(beta["reasonDetail"], "user-targeted");
    assert_eq!(beta["errorCode"], Value::Null);
    assert_eq!(production["results"][1]["reason"], "DISABLED");

    // the same answer as the evaluation API gives
    let api = app
        .public(
            Method::GET,
            "/api/v1/flags/beta?environment=production&userId=u1",
            None,
            &[],
        )
        .await;
    assert_eq!(api.body["value"], beta["value"]);
    assert_eq!(api.body["reason"], beta["reasonDetail"]);
}

#[sqlx::test(migrations = "../migrations")]
async fn evaluate_as_covers_every_flag_and_readable_environment_by_default(pool: PgPool) {
    let app = with_index(pool).await;
    let token = app.token("vic", origin::auth::Role::Viewer, Some(&["dev"]));
    let r = app
        .call(
            Method::POST,
            "/admin/evaluate",
            &token,
            Some(json!({"context": {"userId": "u2"}})),
        )
        .await;
    r.assert_status(StatusCode::OK);
    let environments = r.body["environments"].as_array().unwrap();
    assert_eq!(environments.len(), 1);
    let keys: Vec<&str> = environments[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["flagKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["checkout", "search", "zeta"]);
    let r = app
        .call(
            Method::POST,
            "/admin/evaluate",
            &token,
            Some(json!({"context": {}, "environments": ["production"]})),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[sqlx::test(migrations = "../migrations")]
async fn evaluate_as_refuses_a_bad_context_key_or_environment(pool: PgPool) {
    let app = with_index(pool).await;
    for (body, field) in [
        (
            json!({"context": {"targetingKey": 7}}),
            "context.targetingKey",
        ),
        (json!({"context": []}), "context"),
        (json!({}), "context"),
        (
            json!({"context": {}, "flagKeys": ["ok", "not a key"]}),
            "flagKeys[1]",
        ),
        (
            json!({"context": {}, "environments": ["dev", "dev"]}),
            "environments[1]",
        ),
        (json!({"context": {}, "extra": 1}), "extra"),
    ] {
        let r = app.post("/admin/evaluate", body).await;
        r.assert_invalid(field);
    }
    let too_many: Vec<String> = (0..1001).map(|i| format!("f{i}")).collect();
    app.post(
        "/admin/evaluate",
        json!({"context": {}, "flagKeys": too_many}),
    )
    .await
    .assert_invalid("flagKeys");
    app.post(
        "/admin/evaluate",
        json!({"context": {}, "environments": ["nope"]}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "ENVIRONMENT_NOT_FOUND");
}

// ---- bulk actions ----

const BULK: &str = "/admin/flag-bulk";

#[sqlx::test(migrations = "../migrations")]
async fn a_bulk_toggle_is_one_snapshot_version_and_one_audit_row_per_changed_flag(pool: PgPool) {
    let app = with_index(pool).await;
    let (audit, _, snapshots, version) = side_effects(&app.pool, "dev").await;
    let r = app
        .admin_with(
            Method::POST,
            BULK,
            Some(json!({"environment": "dev", "flagKeys": ["checkout", "search", "zeta"], "action": "enable"})),
            &[("x-edgeflags-comment", "launch")],
        )
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["changed"], json!(["search", "zeta"]));
    assert_eq!(r.body["unchanged"], json!(["checkout"]));
    assert_eq!(r.body["snapshotVersion"], version + 1);
    assert_eq!(
        r.header("x-edgeflags-snapshot-version"),
        Some((version + 1).to_string().as_str())
    );
    let (audit_after, _, snapshots_after, version_after) = side_effects(&app.pool, "dev").await;
    assert_eq!(
        (audit_after, snapshots_after, version_after),
        (audit + 2, snapshots + 1, version + 1)
    );
    let log = app.get("/admin/audit?environment=dev&limit=2").await;
    for entry in log.body["entries"].as_array().unwrap() {
        assert_eq!(entry["action"], "bulk.enable");
        assert_eq!(entry["comment"], "launch");
        assert_eq!(entry["snapshotVersion"], version + 1);
    }
    let zeta = app.get("/admin/flags/zeta?environment=dev").await;
    assert_eq!(zeta.body["enabled"], true);
    // nothing left to do: no version at all
    let r = app
        .post(
            BULK,
            json!({"environment": "dev", "flagKeys": ["zeta"], "action": "enable"}),
        )
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["snapshotVersion"], Value::Null);
    assert_eq!(side_effects(&app.pool, "dev").await.3, version + 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn bulk_tags_are_added_once_and_removed(pool: PgPool) {
    let app = with_index(pool).await;
    let r = app
        .post(
            BULK,
            json!({"environment": "dev", "flagKeys": ["checkout", "zeta"], "action": "addTags", "tags": ["team:pay", "q4"]}),
        )
        .await;
    r.assert_status(StatusCode::OK);
    let checkout = app.get("/admin/flags/checkout?environment=dev").await;
    assert_eq!(checkout.body["tags"], json!(["team:pay", "q4"]));
    let zeta = app.get("/admin/flags/zeta?environment=dev").await;
    assert_eq!(zeta.body["tags"], json!(["team:pay", "q4"]));
    app.post(
        BULK,
        json!({"environment": "dev", "flagKeys": ["checkout"], "action": "removeTags", "tags": ["team:pay"]}),
    )
    .await
    .assert_status(StatusCode::OK);
    let checkout = app.get("/admin/flags/checkout?environment=dev").await;
    assert_eq!(checkout.body["tags"], json!(["q4"]));
    let history = app
        .get("/admin/flags/checkout/history?environment=dev")
        .await;
    assert_eq!(history.body["versions"][0]["action"], "bulk.removeTags");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_bulk_action_with_an_unknown_flag_or_a_bad_member_changes_nothing(pool: PgPool) {
    let app = with_index(pool).await;
    let before = dump(&app.pool).await;
    for (body, field) in [
        (
            json!({"environment": "dev", "flagKeys": ["checkout", "nope"], "action": "disable"}),
            "flagKeys[1]",
        ),
        (
            json!({"environment": "dev", "flagKeys": ["zeta", "zeta"], "action": "enable"}),
            "flagKeys[1]",
        ),
        (
            json!({"environment": "dev", "flagKeys": [], "action": "enable"}),
            "flagKeys",
        ),
        (
            json!({"environment": "dev", "flagKeys": ["zeta"], "action": "addTags"}),
            "tags",
        ),
        (
            json!({"environment": "dev", "flagKeys": ["zeta"], "action": "addTags", "tags": ["ok", "b a d"]}),
            "tags[1]",
        ),
        (
            json!({"environment": "dev", "flagKeys": ["zeta"], "action": "enable", "to": "production"}),
            "to",
        ),
        (
            json!({"environment": "dev", "flagKeys": ["zeta"], "action": "explode"}),
            "action",
        ),
        (
            json!({"environment": "dev", "flagKeys": ["zeta"], "action": "copyTo", "to": "dev"}),
            "to",
        ),
    ] {
        let r = app.post(BULK, body).await;
        r.assert_invalid(field);
    }
    // a flag that would end with too many tags names the flag
    let many: Vec<String> = (0..19).map(|i| format!("t{i}")).collect();
    app.post(
        BULK,
        json!({"environment": "dev", "flagKeys": ["zeta"], "action": "addTags", "tags": many}),
    )
    .await
    .assert_status(StatusCode::OK);
    let before_tags = dump(&app.pool).await;
    let r = app
        .post(
            BULK,
            json!({"environment": "dev", "flagKeys": ["checkout", "zeta"], "action": "addTags", "tags": ["x1", "x2"]}),
        )
        .await;
    r.assert_invalid("flags[zeta].tags");
    assert_eq!(dump(&app.pool).await, before_tags);
    assert_ne!(before, before_tags);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_bulk_toggle_in_a_protected_environment_needs_the_confirmation(pool: PgPool) {
    let app = with_production(pool).await;
    app.create_flag("production", json!({"flagKey": "b", "enabled": false}))
        .await;
    let before = dump(&app.pool).await;
    let body = json!({"environment": "production", "flagKeys": ["a", "b"], "action": "enable"});
    let r = app.post(BULK, body.clone()).await;
    r.assert_error(StatusCode::PRECONDITION_REQUIRED, "CONFIRMATION_REQUIRED");
    assert_eq!(r.body["error"]["environment"], "production");
    assert_eq!(dump(&app.pool).await, before);
    let r = app
        .admin_with(
            Method::POST,
            BULK,
            Some(body),
            &[("x-edgeflags-confirm", "production")],
        )
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["changed"], json!(["a", "b"]));
    // tagging needs no confirmation
    app.post(
        BULK,
        json!({"environment": "production", "flagKeys": ["a"], "action": "addTags", "tags": ["t"]}),
    )
    .await
    .assert_status(StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn bulk_copy_promotes_flags_prerequisites_first_in_one_version(pool: PgPool) {
    let app = with_dev(pool).await;
    app.create_environment("staging").await;
    app.create_flag("dev", json!({"flagKey": "base", "enabled": true}))
        .await;
    app.create_flag(
        "dev",
        json!({"flagKey": "child", "prerequisites": [{"flagKey": "base", "variation": "on"}]}),
    )
    .await;
    let version = side_effects(&app.pool, "staging").await.3;
    let r = app
        .post(
            BULK,
            json!({"environment": "dev", "flagKeys": ["child", "base"], "action": "copyTo", "to": "staging"}),
        )
        .await;
    r.assert_status(StatusCode::OK);
    assert_eq!(r.body["environment"], "staging");
    assert_eq!(r.body["changed"], json!(["base", "child"]));
    assert_eq!(r.body["snapshotVersion"], version + 1);
    let child = app.get("/admin/flags/child?environment=staging").await;
    child.assert_status(StatusCode::OK);
    assert_eq!(child.body["prerequisites"][0]["flagKey"], "base");
}

#[sqlx::test(migrations = "../migrations")]
async fn bulk_actions_honour_roles(pool: PgPool) {
    let app = with_index(pool).await;
    let viewer = app.token("vi", origin::auth::Role::Viewer, None);
    let r = app
        .call(
            Method::POST,
            BULK,
            &viewer,
            Some(json!({"environment": "dev", "flagKeys": ["zeta"], "action": "enable"})),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let dev_editor = app.token("de", origin::auth::Role::Editor, Some(&["dev"]));
    let r = app
        .call(
            Method::POST,
            BULK,
            &dev_editor,
            Some(json!({"environment": "dev", "flagKeys": ["zeta"], "action": "copyTo", "to": "production"})),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_large_evaluate_as_runs_to_the_end_off_the_async_workers(pool: PgPool) {
    let app = with_index(pool).await;
    app.create_environment("staging").await;
    // 1,000 keys in 3 environments: 3,000 evaluations, over the blocking threshold
    let mut keys: Vec<String> = (0..999).map(|i| format!("missing-{i}")).collect();
    keys.push("checkout".to_owned());
    let r = app
        .post(
            "/admin/evaluate",
            json!({"context": {"targetingKey": "u"}, "flagKeys": keys}),
        )
        .await;
    r.assert_status(StatusCode::OK);
    let environments = r.body["environments"].as_array().unwrap();
    assert_eq!(environments.len(), 3);
    for environment in environments {
        let results = environment["results"].as_array().unwrap();
        assert_eq!(results.len(), 1000);
        assert_eq!(results[0]["errorCode"], "FLAG_NOT_FOUND");
    }
    assert_eq!(environments[0]["results"][999]["value"], true);
}
