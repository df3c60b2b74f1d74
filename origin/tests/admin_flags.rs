//! Admin API, flags: CRUD and history, partial updates, validation, optimistic
//! concurrency, rollback, copy and overrides, through the real router and PostgreSQL.

mod common;

use axum::http::{Method, StatusCode};
use common::{checkout_flag, side_effects, with_checkout_flag, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

const FLAG: &str = "/admin/flags/new-checkout-flow?environment=production";

#[sqlx::test(migrations = "../migrations")]
async fn create_returns_201_with_etag_location_and_server_managed_fields(pool: PgPool) {
    let app = TestApp::new(pool);
    app.create_environment("production").await;
    app.create_segment("production", json!({"segmentKey": "beta-users"}))
        .await;
    app.create_segment("production", json!({"segmentKey": "premium-users"}))
        .await;

    let response = app.post("/admin/flags", checkout_flag()).await;

    response.assert_status(StatusCode::CREATED);
    assert_eq!(response.header("etag"), Some("\"1\""));
    assert_eq!(response.header("location"), Some(FLAG));
    assert_eq!(response.header("x-edgeflags-snapshot-version"), Some("4"));
    let flag = &response.body;
    assert_eq!(flag["flagKey"], "new-checkout-flow");
    assert_eq!(flag["version"], 1);
    assert_eq!(flag["environment"], "production");
    // the model keeps percentages as f64 (3 decimals): 25 comes back as 25.0
    assert_eq!(flag["targetingRules"]["percentage"].as_f64(), Some(25.0));
    assert_eq!(
        flag["targetingRules"]["segments"],
        json!(["beta-users", "premium-users"])
    );
    assert_eq!(flag["defaultValue"], false);
    assert_eq!(flag["createdAt"], flag["updatedAt"]);
    assert!(flag["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[sqlx::test(migrations = "../migrations")]
async fn get_returns_the_stored_flag_with_its_etag(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let response = app.get(FLAG).await;
    response.assert_status(StatusCode::OK);
    assert_eq!(response.header("etag"), Some("\"1\""));
    assert_eq!(
        response.body["description"],
        "Enable new checkout experience"
    );
    assert_eq!(
        response.body["targetingRules"]["userIds"],
        json!(["user123", "user456"])
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_flag_and_unknown_environment_are_distinct_404s(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let missing_flag = app.get("/admin/flags/nope?environment=production").await;
    missing_flag.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(missing_flag.code(), "FLAG_NOT_FOUND");
    assert_eq!(
        missing_flag.body["error"]["message"],
        "flag \"production/nope\" not found"
    );
    let missing_env = app.get("/admin/flags/nope?environment=qa").await;
    missing_env.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(missing_env.code(), "ENVIRONMENT_NOT_FOUND");
}

#[sqlx::test(migrations = "../migrations")]
async fn creating_an_existing_flag_is_409_flag_exists(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let response = app.post("/admin/flags", checkout_flag()).await;
    response.assert_status(StatusCode::CONFLICT);
    assert_eq!(response.code(), "FLAG_EXISTS");
}

#[sqlx::test(migrations = "../migrations")]
async fn missing_environment_is_400_naming_the_parameter(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let mut flag = checkout_flag();
    flag.as_object_mut().unwrap().remove("environment");
    let response = app.post("/admin/flags", flag).await;
    response.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(response.code(), "INVALID_PARAMETER");
    assert_eq!(response.body["error"]["field"], "environment");
}

#[sqlx::test(migrations = "../migrations")]
async fn partial_update_merges_into_the_stored_definition(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let update = json!({
        "enabled": false,
        "targetingRules": {"percentage": 50, "segments": ["beta-users"]}
    });
    let response = app.put(FLAG, update).await;
    response.assert_status(StatusCode::OK);
    assert_eq!(response.header("etag"), Some("\"2\""));
    let flag = &response.body;
    assert_eq!(flag["version"], 2);
    assert_eq!(flag["enabled"], false);
    // fields the update did not name are kept...
    assert_eq!(flag["description"], "Enable new checkout experience");
    assert_eq!(flag["defaultValue"], false);
    // ...and a top-level field it names is replaced whole, as the REST API's PUT example implies
    assert_eq!(
        flag["targetingRules"],
        json!({"percentage": 50.0, "segments": ["beta-users"]})
    );

    let stored = app.get(FLAG).await;
    assert_eq!(stored.body, response.body);
}

#[sqlx::test(migrations = "../migrations")]
async fn null_in_a_partial_update_removes_the_field(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let response = app.put(FLAG, json!({"description": null})).await;
    response.assert_status(StatusCode::OK);
    assert!(
        response.body.get("description").is_none(),
        "{}",
        response.body
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn environment_may_come_from_the_body_but_must_agree_with_the_query(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let by_body = app
        .put(
            "/admin/flags/new-checkout-flow",
            json!({"environment": "production", "enabled": false}),
        )
        .await;
    by_body.assert_status(StatusCode::OK);
    let disagreeing = app
        .put(FLAG, json!({"environment": "staging", "enabled": true}))
        .await;
    disagreeing.assert_invalid("environment");
}

#[sqlx::test(migrations = "../migrations")]
async fn renaming_through_put_is_refused(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let response = app.put(FLAG, json!({"flagKey": "other"})).await;
    response.assert_invalid("flagKey");
}

#[sqlx::test(migrations = "../migrations")]
async fn invalid_rule_is_422_naming_the_field_and_nothing_is_stored(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    let before = side_effects(&pool, "production").await;
    let rules = json!({"rules": [
        {"clauses": [{"attribute": "country", "operator": "in", "values": ["US"]}], "variation": "on"},
        {"clauses": [{"attribute": "plan", "operator": "in", "values": ["pro"]}], "variation": "on"},
        {"clauses": [{"attribute": "email", "operator": "regexx", "values": ["@x"]}], "variation": "on"}
    ]});

    let response = app.put(FLAG, json!({"targetingRules": rules})).await;

    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.code(), "VALIDATION_FAILED");
    let details = response.body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{details:?}");
    assert_eq!(
        details[0]["field"],
        "targetingRules.rules[2].clauses[0].operator"
    );
    let message = response.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("targetingRules.rules[2].clauses[0].operator"),
        "{message}"
    );
    assert!(message.contains("regexx"), "{message}");
    assert_eq!(side_effects(&pool, "production").await, before);
    assert_eq!(app.get(FLAG).await.body["version"], 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn every_validation_problem_is_reported(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let flag = json!({
        "flagKey": "multi",
        "environment": "production",
        "variations": [{"key": "a", "value": "x"}, {"key": "a", "value": 1}],
        "targetingRules": {"segments": ["no-such-segment"], "percentage": 120}
    });
    let response = app.post("/admin/flags", flag).await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = response.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for expected in ["targetingRules.segments[0]", "targetingRules.percentage"] {
        assert!(
            fields.contains(&expected),
            "{expected} missing from {fields:?}"
        );
    }
    assert!(
        fields.iter().any(|f| f.starts_with("variations[1]")),
        "{fields:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn wrong_json_types_and_unknown_fields_are_422_with_paths(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let wrong_type = app.put(FLAG, json!({"enabled": "yes"})).await;
    wrong_type.assert_invalid("enabled");

    let typo = app.put(FLAG, json!({"targetingRule": {}})).await;
    typo.assert_invalid("targetingRule");
    assert_eq!(typo.body["error"]["details"][0]["message"], "unknown field");
}

#[sqlx::test(migrations = "../migrations")]
async fn malformed_json_is_400_and_non_object_is_422(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let token = app.admin_token().to_owned();
    let malformed = app
        .send(
            Method::PUT,
            FLAG,
            Some(&token),
            Some("{\"enabled\": tru".into()),
            &[],
        )
        .await;
    malformed.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(malformed.code(), "MALFORMED_JSON");
    let array = app.put(FLAG, json!([1, 2])).await;
    array.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrations = "../migrations")]
async fn stale_if_match_is_409_with_the_current_version_and_changes_nothing(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    app.put(FLAG, json!({"enabled": false}))
        .await
        .assert_status(StatusCode::OK);
    let before = side_effects(&pool, "production").await;
    let body = Some(json!({"enabled": true}));

    let stale = app
        .admin_with(Method::PUT, FLAG, body, &[("if-match", "\"1\"")])
        .await;

    stale.assert_version_conflict(2);
    assert_eq!(side_effects(&pool, "production").await, before);
    assert_eq!(app.get(FLAG).await.body["enabled"], false);

    let body = Some(json!({"enabled": true}));
    let fresh = app
        .admin_with(Method::PUT, FLAG, body, &[("if-match", "\"2\"")])
        .await;
    fresh.assert_status(StatusCode::OK);
    assert_eq!(fresh.header("etag"), Some("\"3\""));

    let stale_delete = app
        .admin_with(Method::DELETE, FLAG, None, &[("if-match", "2")])
        .await;
    stale_delete.assert_version_conflict(3);
}

#[sqlx::test(migrations = "../migrations")]
async fn malformed_if_match_is_400(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let body = Some(json!({"enabled": true}));
    let response = app
        .admin_with(Method::PUT, FLAG, body, &[("if-match", "latest")])
        .await;
    response.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(response.body["error"]["field"], "If-Match");
}

#[sqlx::test(migrations = "../migrations")]
async fn delete_removes_the_flag_and_history_records_the_deletion(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let deleted = app.delete(FLAG).await;
    deleted.assert_status(StatusCode::NO_CONTENT);
    assert_eq!(deleted.header("etag"), Some("\"2\""));
    app.get(FLAG).await.assert_status(StatusCode::NOT_FOUND);
    app.delete(FLAG).await.assert_status(StatusCode::NOT_FOUND);

    let history = app
        .get("/admin/flags/new-checkout-flow/history?environment=production")
        .await;
    history.assert_status(StatusCode::OK);
    let versions = history.body["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[0]["action"], "delete");
    assert_eq!(versions[0]["definition"], Value::Null);
    assert_eq!(versions[1]["action"], "create");

    // re-created, it continues the numbering so history stays unambiguous
    let recreated = app.post("/admin/flags", checkout_flag()).await;
    recreated.assert_status(StatusCode::CREATED);
    assert_eq!(recreated.body["version"], 3);
}

#[sqlx::test(migrations = "../migrations")]
async fn deleting_a_prerequisite_of_another_flag_is_refused(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let dependent = json!({"flagKey": "dependent", "enabled": true,
        "prerequisites": [{"flagKey": "new-checkout-flow", "variation": "on"}]});
    app.create_flag("production", dependent).await;
    let response = app.delete(FLAG).await;
    response.assert_invalid("flags[dependent].prerequisites[0].flagKey");
    app.get(FLAG).await.assert_status(StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn list_paginates_by_key_with_a_cursor(pool: PgPool) {
    let app = TestApp::new(pool);
    app.create_environment("dev").await;
    for key in ["e", "a", "c", "b", "d"] {
        app.create_flag("dev", json!({"flagKey": key})).await;
    }
    let mut keys = Vec::new();
    let mut uri = "/admin/flags?environment=dev&limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = app.get(&uri).await;
        page.assert_status(StatusCode::OK);
        pages += 1;
        for flag in page.body["flags"].as_array().unwrap() {
            keys.push(flag["flagKey"].as_str().unwrap().to_owned());
        }
        match page.body["nextCursor"].as_str() {
            Some(cursor) => uri = format!("/admin/flags?environment=dev&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(keys, ["a", "b", "c", "d", "e"]);
    assert_eq!(pages, 3);

    let bad = app.get("/admin/flags?environment=dev&limit=0").await;
    bad.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["field"], "limit");
}

#[sqlx::test(migrations = "../migrations")]
async fn history_lists_every_version_newest_first_with_its_definition(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    app.put(FLAG, json!({"enabled": false})).await;
    app.put(FLAG, json!({"description": "v3"})).await;
    let uri = "/admin/flags/new-checkout-flow/history?environment=production";
    let history = app.get(uri).await;
    let versions = history.body["versions"].as_array().unwrap();
    let numbers: Vec<u64> = versions
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    assert_eq!(versions[0]["definition"]["description"], "v3");
    assert_eq!(versions[1]["definition"]["enabled"], false);
    assert_eq!(versions[2]["definition"]["enabled"], true);
    assert!(versions.iter().all(|v| v["actor"] == "root"));

    let page = app.get(&format!("{uri}&limit=1&cursor=3")).await;
    assert_eq!(page.body["versions"][0]["version"], 2);
    assert_eq!(page.body["nextCursor"], "2");
    let none = app
        .get("/admin/flags/nope/history?environment=production")
        .await;
    none.assert_status(StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn rollback_creates_a_new_audited_version_equal_to_the_old_definition(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    let v1 = app.get(FLAG).await.body;
    app.put(
        FLAG,
        json!({"enabled": false, "targetingRules": {"percentage": 5}}),
    )
    .await
    .assert_status(StatusCode::OK);

    let uri = "/admin/flags/new-checkout-flow/rollback";
    let response = app
        .post(uri, json!({"environment": "production", "version": 1}))
        .await;

    response.assert_status(StatusCode::OK);
    assert_eq!(response.header("etag"), Some("\"3\""));
    let restored = &response.body;
    assert_eq!(restored["version"], 3);
    let strip = |v: &Value| {
        let mut v = v.clone();
        for field in ["version", "updatedAt"] {
            v.as_object_mut().unwrap().remove(field);
        }
        v
    };
    assert_eq!(strip(restored), strip(&v1));
    let history = app
        .get("/admin/flags/new-checkout-flow/history?environment=production")
        .await;
    assert_eq!(history.body["versions"][0]["action"], "rollback");
    assert_eq!(history.body["versions"][0]["rollbackOf"], 1);
    let audit: (String, i64) = sqlx::query_as(
        "select action, entity_version from audit_log order by audit_log_id desc limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audit, ("rollback".to_owned(), 3));
}

#[sqlx::test(migrations = "../migrations")]
async fn rollback_to_a_missing_version_or_a_deletion_is_refused(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let uri = "/admin/flags/new-checkout-flow/rollback?environment=production";
    let missing = app.post(uri, json!({"version": 9})).await;
    missing.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "FLAG_VERSION_NOT_FOUND");

    app.delete(FLAG).await.assert_status(StatusCode::NO_CONTENT);
    let to_deletion = app.post(uri, json!({"version": 2})).await;
    to_deletion.assert_invalid("version");

    // rolling a deleted flag back to a real version restores it
    let restored = app.post(uri, json!({"version": 1})).await;
    restored.assert_status(StatusCode::OK);
    assert_eq!(restored.body["version"], 3);
    app.get(FLAG).await.assert_status(StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn rollback_honours_if_match(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    app.put(FLAG, json!({"enabled": false})).await;
    let body = Some(json!({"environment": "production", "version": 1}));
    let uri = "/admin/flags/new-checkout-flow/rollback";
    let stale = app
        .admin_with(Method::POST, uri, body, &[("if-match", "1")])
        .await;
    stale.assert_version_conflict(2);
}

#[sqlx::test(migrations = "../migrations")]
async fn copy_promotes_a_flag_from_dev_to_staging_to_production(pool: PgPool) {
    let app = TestApp::new(pool);
    for env in ["dev", "staging", "production"] {
        app.create_environment(env).await;
        app.create_segment(env, json!({"segmentKey": "beta-users"}))
            .await;
    }
    let flag = json!({"flagKey": "search-v2", "enabled": true,
        "targetingRules": {"segments": ["beta-users"], "percentage": 10}});
    app.create_flag("dev", flag).await;
    app.put(
        "/admin/flags/search-v2?environment=dev",
        json!({"targetingRules": {"segments": ["beta-users"], "percentage": 30}}),
    )
    .await
    .assert_status(StatusCode::OK);

    let uri = "/admin/flags/search-v2/copy";
    let to_staging = app.post(uri, json!({"from": "dev", "to": "staging"})).await;
    to_staging.assert_status(StatusCode::CREATED);
    assert_eq!(to_staging.body["environment"], "staging");
    assert_eq!(to_staging.body["version"], 1);
    assert_eq!(
        to_staging.body["targetingRules"]["percentage"].as_f64(),
        Some(30.0)
    );

    let to_production = app
        .post(uri, json!({"from": "staging", "to": "production"}))
        .await;
    to_production.assert_status(StatusCode::CREATED);

    // copying again updates the target as its next version
    app.put(
        "/admin/flags/search-v2?environment=staging",
        json!({"enabled": false}),
    )
    .await
    .assert_status(StatusCode::OK);
    let again = app
        .post(uri, json!({"from": "staging", "to": "production"}))
        .await;
    again.assert_status(StatusCode::OK);
    assert_eq!(again.body["version"], 2);
    assert_eq!(again.body["enabled"], false);
    assert_eq!(again.body["environment"], "production");
}

#[sqlx::test(migrations = "../migrations")]
async fn copy_into_an_environment_missing_a_referenced_segment_is_refused(pool: PgPool) {
    let app = TestApp::new(pool);
    app.create_environment("dev").await;
    app.create_environment("production").await;
    app.create_segment("dev", json!({"segmentKey": "beta-users"}))
        .await;
    app.create_flag(
        "dev",
        json!({"flagKey": "f", "targetingRules": {"segments": ["beta-users"]}}),
    )
    .await;
    let response = app
        .post(
            "/admin/flags/f/copy",
            json!({"from": "dev", "to": "production"}),
        )
        .await;
    response.assert_invalid("targetingRules.segments[0]");
    let same = app
        .post("/admin/flags/f/copy", json!({"from": "dev", "to": "dev"}))
        .await;
    same.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrations = "../migrations")]
async fn overrides_are_set_listed_expired_and_removed_as_flag_versions(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let base = "/admin/flags/new-checkout-flow/overrides";
    let set = app
        .put(
            &format!("{base}/alice?environment=production"),
            json!({"enabled": true, "expiresAt": "2999-01-01T00:00:00Z"}),
        )
        .await;
    set.assert_status(StatusCode::CREATED);
    assert_eq!(set.header("etag"), Some("\"2\""));
    assert_eq!(
        set.body["override"],
        json!({"userId": "alice", "enabled": true,
        "expiresAt": "2999-01-01T00:00:00Z", "expired": false})
    );
    app.put(
        &format!("{base}/bob?environment=production"),
        json!({"variation": "off", "expiresAt": "2001-01-01T00:00:00+02:00"}),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let changed = app
        .put(
            &format!("{base}/alice?environment=production"),
            json!({"enabled": false}),
        )
        .await;
    changed.assert_status(StatusCode::OK);

    let list = app.get(&format!("{base}?environment=production")).await;
    list.assert_status(StatusCode::OK);
    assert_eq!(list.body["version"], 4);
    assert_eq!(
        list.body["overrides"],
        json!([
            {"userId": "alice", "enabled": false, "expired": false},
            {"userId": "bob", "variation": "off", "expiresAt": "2000-12-31T22:00:00Z", "expired": true}
        ])
    );
    // the flag itself carries them, as the snapshot will
    let flag = app.get(FLAG).await;
    assert_eq!(flag.body["overrides"].as_array().unwrap().len(), 2);

    app.delete(&format!("{base}/bob?environment=production"))
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let gone = app
        .delete(&format!("{base}/bob?environment=production"))
        .await;
    gone.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "OVERRIDE_NOT_FOUND");
    let history = app
        .get("/admin/flags/new-checkout-flow/history?environment=production")
        .await;
    let actions: Vec<&str> = history.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "override.delete",
            "override.set",
            "override.set",
            "override.set",
            "create"
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn invalid_overrides_are_422_naming_the_body_field(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let uri = "/admin/flags/new-checkout-flow/overrides/alice?environment=production";
    for (body, field) in [
        (json!({"variation": "purple"}), Some("variation")),
        (
            json!({"enabled": true, "expiresAt": "tomorrow"}),
            Some("expiresAt"),
        ),
        (json!({"enabled": true, "variation": "on"}), None),
    ] {
        let response = app.put(uri, body).await;
        match field {
            Some(field) => response.assert_invalid(field),
            None => response.assert_status(StatusCode::UNPROCESSABLE_ENTITY),
        };
    }
    let missing_flag = "/admin/flags/nope/overrides/alice?environment=production";
    app.put(missing_flag, json!({"enabled": true}))
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

/// The snapshot-wide regular-expression budget (1,000 distinct patterns) holds across flags: a
/// flag within its own budget that would take the environment over it is refused, and nothing is
/// stored (before, every edge refused the environment's snapshots from then on).
#[sqlx::test(migrations = "../migrations")]
async fn a_flag_that_takes_the_environment_over_its_regex_budget_is_refused(pool: PgPool) {
    let app = TestApp::new(pool);
    app.create_environment("production").await;
    let limit = evaluator_core::validate::limits::REGEXES;
    let per_flag = evaluator_core::validate::limits::REGEXES_PER_FLAG;
    let regex_flag = |key: String, first: usize, count: usize| {
        let values: Vec<String> = (first..first + count)
            .map(|i| format!("^user-{i}$"))
            .collect();
        json!({"flagKey": key, "enabled": true, "targetingRules": {"rules": [
            {"clauses": [{"attribute": "userId", "operator": "matches", "values": values}], "variation": "on"}
        ]}})
    };
    for f in 0..limit / per_flag {
        app.create_flag(
            "production",
            regex_flag(format!("re-{f}"), f * per_flag, per_flag),
        )
        .await;
    }
    let before = app.get("/admin/environments/production").await.body["snapshotVersion"].clone();
    let over = app
        .post(
            "/admin/flags?environment=production",
            regex_flag("one-more".to_owned(), limit, 1),
        )
        .await;
    over.assert_invalid("targetingRules");
    assert!(
        over.text.contains("exceed the limit of 1000"),
        "{}",
        over.text
    );
    let after = app.get("/admin/environments/production").await.body["snapshotVersion"].clone();
    assert_eq!(before, after, "nothing was committed");
    // A pattern the environment already has costs nothing more.
    let reused = app
        .post(
            "/admin/flags?environment=production",
            regex_flag("reuse".to_owned(), 0, 1),
        )
        .await;
    reused.assert_status(StatusCode::CREATED);
}
