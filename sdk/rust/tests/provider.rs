//! The client as an OpenFeature provider, through the `open-feature` crate's API (its own
//! `OpenFeature` instance, not the process-wide singleton, so tests stay independent): typed
//! resolution, reasons, variants, flag metadata, error codes and status.

mod support;

use std::time::Duration;

use edgeflags_client::{Client, EdgeflagsProvider};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    EvaluationContext, EvaluationErrorCode, EvaluationReason, FlagMetadataValue, OpenFeature,
    StructValue, Value,
};
use support::{snapshot, FakeServer, KEY, WAIT};

async fn api_with_provider(server: &FakeServer) -> (OpenFeature, Client) {
    let client = Client::builder(server.url(), KEY)
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut api = OpenFeature::default();
    // set_provider runs initialize, which waits for the first snapshot.
    api.set_provider(EdgeflagsProvider::new(client.clone()).with_init_timeout(WAIT))
        .await;
    (api, client)
}

fn user(key: &str) -> EvaluationContext {
    EvaluationContext::default().with_targeting_key(key)
}

#[tokio::test]
async fn values_of_every_type_resolve_with_reason_variant_and_metadata() {
    let server = FakeServer::start(&snapshot(7, true)).await;
    let (api, client) = api_with_provider(&server).await;
    let flags = api.create_client();
    let vip = user("vip");

    let checkout = flags
        .get_bool_details("checkout", Some(&vip), None)
        .await
        .unwrap();
    assert!(checkout.value);
    assert_eq!(checkout.reason, Some(EvaluationReason::Static));
    assert_eq!(checkout.variant.as_deref(), Some("on"));
    let metadata = &checkout.flag_metadata.values;
    assert_eq!(
        metadata.get("flagVersion"),
        Some(&FlagMetadataValue::Int(7))
    );
    assert_eq!(
        metadata.get("snapshotVersion"),
        Some(&FlagMetadataValue::Int(7))
    );
    assert_eq!(
        metadata.get("environment"),
        Some(&FlagMetadataValue::String("production".into()))
    );
    assert_eq!(
        metadata.get("reasonDetail"),
        Some(&FlagMetadataValue::String("static".into()))
    );

    let banner = flags
        .get_string_details("banner", Some(&vip), None)
        .await
        .unwrap();
    assert_eq!(banner.value, "red");
    assert_eq!(banner.reason, Some(EvaluationReason::TargetingMatch));
    assert_eq!(
        banner.flag_metadata.values.get("reasonDetail"),
        Some(&FlagMetadataValue::String("user-targeted".into()))
    );
    let other = flags
        .get_string_details("banner", Some(&user("u1")), None)
        .await
        .unwrap();
    assert_eq!(
        (other.value.as_str(), other.reason),
        ("blue", Some(EvaluationReason::Default))
    );

    assert_eq!(
        flags
            .get_int_value("limit", Some(&vip), None)
            .await
            .unwrap(),
        1000
    );
    assert_eq!(
        flags
            .get_float_value("ratio", Some(&vip), None)
            .await
            .unwrap(),
        0.5
    );
    assert_eq!(
        flags
            .get_float_value("limit", Some(&vip), None)
            .await
            .unwrap(),
        1000.0
    );
    let theme = flags
        .get_struct_details::<StructValue>("theme", Some(&vip), None)
        .await
        .unwrap();
    assert_eq!(
        theme.value,
        StructValue::default()
            .with_field("background", "black")
            .with_field("sizes", Value::Array(vec![1.into(), 2.into()]))
    );
    assert_eq!(theme.variant.as_deref(), Some("dark"));

    let disabled = flags
        .get_bool_details("off", Some(&vip), None)
        .await
        .unwrap();
    assert_eq!(
        (disabled.value, disabled.reason),
        (false, Some(EvaluationReason::Disabled))
    );

    // A 50 % rollout: some user is in it (SPLIT), some user gets the default.
    let mut reasons = Vec::new();
    for i in 0..40 {
        let details = flags
            .get_bool_details("rollout", Some(&user(&format!("user-{i}"))), None)
            .await
            .unwrap();
        reasons.push(details.reason);
    }
    assert!(reasons.contains(&Some(EvaluationReason::Split)));
    assert!(reasons.contains(&Some(EvaluationReason::Default)));
    client.shutdown().await;
}

#[tokio::test]
async fn failures_are_openfeature_error_codes_and_the_caller_s_default_applies() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let (api, client) = api_with_provider(&server).await;
    let flags = api.create_client();
    let vip = user("vip");

    let missing = flags.get_bool_value("no-such-flag", Some(&vip), None).await;
    assert_eq!(missing.unwrap_err().code, EvaluationErrorCode::FlagNotFound);
    let wrong_type = flags.get_bool_value("banner", Some(&vip), None).await;
    assert_eq!(
        wrong_type.unwrap_err().code,
        EvaluationErrorCode::TypeMismatch
    );
    let fraction = flags.get_int_value("ratio", Some(&vip), None).await;
    assert_eq!(
        fraction.unwrap_err().code,
        EvaluationErrorCode::TypeMismatch
    );
    let not_an_object = flags
        .get_struct_value::<StructValue>("limit", Some(&vip), None)
        .await;
    assert_eq!(
        not_an_object.unwrap_err().code,
        EvaluationErrorCode::TypeMismatch
    );
    let no_key = flags
        .get_bool_value("rollout", Some(&EvaluationContext::default()), None)
        .await;
    assert_eq!(
        no_key.unwrap_err().code,
        EvaluationErrorCode::TargetingKeyMissing
    );
    assert!(flags
        .get_bool_value("no-such-flag", Some(&vip), None)
        .await
        .unwrap_or(true));
    client.shutdown().await;
}

#[tokio::test]
async fn a_broken_flag_is_a_parse_error_while_the_others_serve() {
    let mut broken = snapshot(1, true);
    broken["flags"][0]["onVariation"] = serde_json::json!("no-such-variation");
    let server = FakeServer::start(&broken).await;
    let (api, client) = api_with_provider(&server).await;
    let flags = api.create_client();
    let error = flags
        .get_bool_value("checkout", Some(&user("u1")), None)
        .await
        .unwrap_err();
    assert_eq!(error.code, EvaluationErrorCode::ParseError);
    assert!(error.message.is_some_and(|m| !m.is_empty()));
    assert_eq!(client.snapshot().unwrap().warnings(), 1);
    assert_eq!(
        flags
            .get_int_value("limit", Some(&user("u1")), None)
            .await
            .unwrap(),
        1000
    );
    client.shutdown().await;
}

#[tokio::test]
async fn the_provider_status_follows_the_client() {
    let mut server = FakeServer::start(&snapshot(1, true)).await;
    server.stop().await;
    let client = Client::builder(server.url(), KEY)
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .build()
        .unwrap();
    let mut provider =
        EdgeflagsProvider::new(client.clone()).with_init_timeout(Duration::from_millis(200));
    provider.initialize(&EvaluationContext::default()).await;
    assert_eq!(
        provider.status(),
        ProviderStatus::Error,
        "no server, no snapshot"
    );
    let not_ready = provider
        .resolve_bool_value("checkout", &user("u1"))
        .await
        .unwrap_err();
    assert_eq!(not_ready.code, EvaluationErrorCode::ProviderNotReady);

    server.restart().await;
    client.wait_ready(WAIT).await.unwrap();
    assert_eq!(provider.status(), ProviderStatus::Ready);
    assert_eq!(provider.metadata().name, "edgeflags");

    server.stop().await;
    support::eventually("the provider is stale", || {
        provider.status() == ProviderStatus::STALE
    })
    .await;
    let served = provider
        .resolve_bool_value("checkout", &user("u1"))
        .await
        .unwrap();
    assert!(
        served.value,
        "stale, it still serves the last good snapshot"
    );
    client.shutdown().await;
}
