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

    let response = app
        .admin(Method::POST, "/admin/flags", Some(checkout_flag()))
        .await;

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
    let response = app.admin(Method::GET, FLAG, None).await;
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
    let missing_flag = app
        .admin(
            Method::GET,
            "/admin/flags/nope?environment=production",
            None,
        )
        .await;
    missing_flag.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(missing_flag.code(), "FLAG_NOT_FOUND");
    assert_eq!(
        missing_flag.body["error"]["message"],
        "flag \"production/nope\" not found"
    );
    let missing_env = app
        .admin(Method::GET, "/admin/flags/nope?environment=qa", None)
        .await;
    missing_env.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(missing_env.code(), "ENVIRONMENT_NOT_FOUND");
}

#[sqlx::test(migrations = "../migrations")]
async fn creating_an_existing_flag_is_409_flag_exists(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let response = app
        .admin(Method::POST, "/admin/flags", Some(checkout_flag()))
        .await;
    response.assert_status(StatusCode::CONFLICT);
    assert_eq!(response.code(), "FLAG_EXISTS");
}

#[sqlx::test(migrations = "../migrations")]
async fn missing_environment_is_400_naming_the_parameter(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let mut flag = checkout_flag();
    flag.as_object_mut().unwrap().remove("environment");
    let response = app.admin(Method::POST, "/admin/flags", Some(flag)).await;
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
    let response = app.admin(Method::PUT, FLAG, Some(update)).await;
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

    let stored = app.admin(Method::GET, FLAG, None).await;
    assert_eq!(stored.body, response.body);
}

#[sqlx::test(migrations = "../migrations")]
async fn null_in_a_partial_update_removes_the_field(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let response = app
        .admin(Method::PUT, FLAG, Some(json!({"description": null})))
        .await;
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
        .admin(
            Method::PUT,
            "/admin/flags/new-checkout-flow",
            Some(json!({"environment": "production", "enabled": false})),
        )
        .await;
    by_body.assert_status(StatusCode::OK);
    let disagreeing = app
        .admin(
            Method::PUT,
            FLAG,
            Some(json!({"environment": "staging", "enabled": true})),
        )
        .await;
    disagreeing.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        disagreeing.body["error"]["details"][0]["field"],
        "environment"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn renaming_through_put_is_refused(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let response = app
        .admin(Method::PUT, FLAG, Some(json!({"flagKey": "other"})))
        .await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.body["error"]["details"][0]["field"], "flagKey");
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

    let response = app
        .admin(Method::PUT, FLAG, Some(json!({"targetingRules": rules})))
        .await;

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
    assert_eq!(app.admin(Method::GET, FLAG, None).await.body["version"], 1);
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
    let response = app.admin(Method::POST, "/admin/flags", Some(flag)).await;
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
    let wrong_type = app
        .admin(Method::PUT, FLAG, Some(json!({"enabled": "yes"})))
        .await;
    wrong_type.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_type.body["error"]["details"][0]["field"], "enabled");

    let typo = app
        .admin(Method::PUT, FLAG, Some(json!({"targetingRule": {}})))
        .await;
    typo.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(typo.body["error"]["details"][0]["field"], "targetingRule");
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
    let array = app.admin(Method::PUT, FLAG, Some(json!([1, 2]))).await;
    array.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrations = "../migrations")]
async fn stale_if_match_is_409_with_the_current_version_and_changes_nothing(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    app.admin(Method::PUT, FLAG, Some(json!({"enabled": false})))
        .await
        .assert_status(StatusCode::OK);
    let before = side_effects(&pool, "production").await;
    let body = Some(json!({"enabled": true}));

    let stale = app
        .admin_with(Method::PUT, FLAG, body, &[("if-match", "\"1\"")])
        .await;

    stale.assert_status(StatusCode::CONFLICT);
    assert_eq!(stale.code(), "VERSION_CONFLICT");
    assert_eq!(stale.body["error"]["currentVersion"], 2);
    assert_eq!(side_effects(&pool, "production").await, before);
    assert_eq!(
        app.admin(Method::GET, FLAG, None).await.body["enabled"],
        false
    );

    let body = Some(json!({"enabled": true}));
    let fresh = app
        .admin_with(Method::PUT, FLAG, body, &[("if-match", "\"2\"")])
        .await;
    fresh.assert_status(StatusCode::OK);
    assert_eq!(fresh.header("etag"), Some("\"3\""));

    let stale_delete = app
        .admin_with(Method::DELETE, FLAG, None, &[("if-match", "2")])
        .await;
    stale_delete.assert_status(StatusCode::CONFLICT);
    assert_eq!(stale_delete.body["error"]["currentVersion"], 3);
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
    let deleted = app.admin(Method::DELETE, FLAG, None).await;
    deleted.assert_status(StatusCode::NO_CONTENT);
    assert_eq!(deleted.header("etag"), Some("\"2\""));
    app.admin(Method::GET, FLAG, None)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    app.admin(Method::DELETE, FLAG, None)
        .await
        .assert_status(StatusCode::NOT_FOUND);

    let history = app
        .admin(
            Method::GET,
            "/admin/flags/new-checkout-flow/history?environment=production",
            None,
        )
        .await;
    history.assert_status(StatusCode::OK);
    let versions = history.body["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[0]["action"], "delete");
    assert_eq!(versions[0]["definition"], Value::Null);
    assert_eq!(versions[1]["action"], "create");

    // re-created, it continues the numbering so history stays unambiguous
    let recreated = app
        .admin(Method::POST, "/admin/flags", Some(checkout_flag()))
        .await;
    recreated.assert_status(StatusCode::CREATED);
    assert_eq!(recreated.body["version"], 3);
}

#[sqlx::test(migrations = "../migrations")]
async fn deleting_a_prerequisite_of_another_flag_is_refused(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let dependent = json!({"flagKey": "dependent", "enabled": true,
        "prerequisites": [{"flagKey": "new-checkout-flow", "variation": "on"}]});
    app.create_flag("production", dependent).await;
    let response = app.admin(Method::DELETE, FLAG, None).await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.body["error"]["details"][0]["field"],
        "flags[dependent].prerequisites[0].flagKey"
    );
    app.admin(Method::GET, FLAG, None)
        .await
        .assert_status(StatusCode::OK);
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
        let page = app.admin(Method::GET, &uri, None).await;
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

    let bad = app
        .admin(Method::GET, "/admin/flags?environment=dev&limit=0", None)
        .await;
    bad.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["field"], "limit");
}

#[sqlx::test(migrations = "../migrations")]
async fn history_lists_every_version_newest_first_with_its_definition(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    app.admin(Method::PUT, FLAG, Some(json!({"enabled": false})))
        .await;
    app.admin(Method::PUT, FLAG, Some(json!({"description": "v3"})))
        .await;
    let uri = "/admin/flags/new-checkout-flow/history?environment=production";
    let history = app.admin(Method::GET, uri, None).await;
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

    let page = app
        .admin(Method::GET, &format!("{uri}&limit=1&cursor=3"), None)
        .await;
    assert_eq!(page.body["versions"][0]["version"], 2);
    assert_eq!(page.body["nextCursor"], "2");
    let none = app
        .admin(
            Method::GET,
            "/admin/flags/nope/history?environment=production",
            None,
        )
        .await;
    none.assert_status(StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = "../migrations")]
async fn rollback_creates_a_new_audited_version_equal_to_the_old_definition(pool: PgPool) {
    let app = with_checkout_flag(pool.clone()).await;
    let v1 = app.admin(Method::GET, FLAG, None).await.body;
    app.admin(
        Method::PUT,
        FLAG,
        Some(json!({"enabled": false, "targetingRules": {"percentage": 5}})),
    )
    .await
    .assert_status(StatusCode::OK);

    let uri = "/admin/flags/new-checkout-flow/rollback";
    let response = app
        .admin(
            Method::POST,
            uri,
            Some(json!({"environment": "production", "version": 1})),
        )
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
        .admin(
            Method::GET,
            "/admin/flags/new-checkout-flow/history?environment=production",
            None,
        )
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
    let missing = app
        .admin(Method::POST, uri, Some(json!({"version": 9})))
        .await;
    missing.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "FLAG_VERSION_NOT_FOUND");

    app.admin(Method::DELETE, FLAG, None)
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let to_deletion = app
        .admin(Method::POST, uri, Some(json!({"version": 2})))
        .await;
    to_deletion.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(to_deletion.body["error"]["details"][0]["field"], "version");

    // rolling a deleted flag back to a real version restores it
    let restored = app
        .admin(Method::POST, uri, Some(json!({"version": 1})))
        .await;
    restored.assert_status(StatusCode::OK);
    assert_eq!(restored.body["version"], 3);
    app.admin(Method::GET, FLAG, None)
        .await
        .assert_status(StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn rollback_honours_if_match(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    app.admin(Method::PUT, FLAG, Some(json!({"enabled": false})))
        .await;
    let body = Some(json!({"environment": "production", "version": 1}));
    let uri = "/admin/flags/new-checkout-flow/rollback";
    let stale = app
        .admin_with(Method::POST, uri, body, &[("if-match", "1")])
        .await;
    stale.assert_status(StatusCode::CONFLICT);
    assert_eq!(stale.body["error"]["currentVersion"], 2);
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
    app.admin(
        Method::PUT,
        "/admin/flags/search-v2?environment=dev",
        Some(json!({"targetingRules": {"segments": ["beta-users"], "percentage": 30}})),
    )
    .await
    .assert_status(StatusCode::OK);

    let uri = "/admin/flags/search-v2/copy";
    let to_staging = app
        .admin(
            Method::POST,
            uri,
            Some(json!({"from": "dev", "to": "staging"})),
        )
        .await;
    to_staging.assert_status(StatusCode::CREATED);
    assert_eq!(to_staging.body["environment"], "staging");
    assert_eq!(to_staging.body["version"], 1);
    assert_eq!(
        to_staging.body["targetingRules"]["percentage"].as_f64(),
        Some(30.0)
    );

    let to_production = app
        .admin(
            Method::POST,
            uri,
            Some(json!({"from": "staging", "to": "production"})),
        )
        .await;
    to_production.assert_status(StatusCode::CREATED);

    // copying again updates the target as its next version
    app.admin(
        Method::PUT,
        "/admin/flags/search-v2?environment=staging",
        Some(json!({"enabled": false})),
    )
    .await
    .assert_status(StatusCode::OK);
    let again = app
        .admin(
            Method::POST,
            uri,
            Some(json!({"from": "staging", "to": "production"})),
        )
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
        .admin(
            Method::POST,
            "/admin/flags/f/copy",
            Some(json!({"from": "dev", "to": "production"})),
        )
        .await;
    response.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.body["error"]["details"][0]["field"],
        "targetingRules.segments[0]"
    );
    let same = app
        .admin(
            Method::POST,
            "/admin/flags/f/copy",
            Some(json!({"from": "dev", "to": "dev"})),
        )
        .await;
    same.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
}

#[sqlx::test(migrations = "../migrations")]
async fn overrides_are_set_listed_expired_and_removed_as_flag_versions(pool: PgPool) {
    let app = with_checkout_flag(pool).await;
    let base = "/admin/flags/new-checkout-flow/overrides";
    let set = app
        .admin(
            Method::PUT,
            &format!("{base}/alice?environment=production"),
            Some(json!({"enabled": true, "expiresAt": "2999-01-01T00:00:00Z"})),
        )
        .await;
    set.assert_status(StatusCode::CREATED);
    assert_eq!(set.header("etag"), Some("\"2\""));
    assert_eq!(
        set.body["override"],
        json!({"userId": "alice", "enabled": true,
        "expiresAt": "2999-01-01T00:00:00Z", "expired": false})
    );
    app.admin(
        Method::PUT,
        &format!("{base}/bob?environment=production"),
        Some(json!({"variation": "off", "expiresAt": "2001-01-01T00:00:00+02:00"})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let changed = app
        .admin(
            Method::PUT,
            &format!("{base}/alice?environment=production"),
            Some(json!({"enabled": false})),
        )
        .await;
    changed.assert_status(StatusCode::OK);

    let list = app
        .admin(Method::GET, &format!("{base}?environment=production"), None)
        .await;
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
    let flag = app.admin(Method::GET, FLAG, None).await;
    assert_eq!(flag.body["overrides"].as_array().unwrap().len(), 2);

    app.admin(
        Method::DELETE,
        &format!("{base}/bob?environment=production"),
        None,
    )
    .await
    .assert_status(StatusCode::NO_CONTENT);
    let gone = app
        .admin(
            Method::DELETE,
            &format!("{base}/bob?environment=production"),
            None,
        )
        .await;
    gone.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "OVERRIDE_NOT_FOUND");
    let history = app
        .admin(
            Method::GET,
            "/admin/flags/new-checkout-flow/history?environment=production",
            None,
        )
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
    let bad_variation = app
        .admin(Method::PUT, uri, Some(json!({"variation": "purple"})))
        .await;
    bad_variation.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad_variation.body["error"]["details"][0]["field"],
        "variation"
    );
    let bad_expiry = app
        .admin(
            Method::PUT,
            uri,
            Some(json!({"enabled": true, "expiresAt": "tomorrow"})),
        )
        .await;
    bad_expiry.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_expiry.body["error"]["details"][0]["field"], "expiresAt");
    let both = app
        .admin(
            Method::PUT,
            uri,
            Some(json!({"enabled": true, "variation": "on"})),
        )
        .await;
    both.assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    let missing_flag = app
        .admin(
            Method::PUT,
            "/admin/flags/nope/overrides/alice?environment=production",
            Some(json!({"enabled": true})),
        )
        .await;
    missing_flag.assert_status(StatusCode::NOT_FOUND);
}
