//! The client against a fake server implementing docs/sdk.md (tests/support): it becomes ready,
//! follows the event stream, re-fetches conditionally, survives bad snapshots and outages,
//! falls back to polling, renews an expired stream token, and stops when shut down. Every wait
//! is bounded.

mod support;

use std::time::Duration;

use edgeflags_client::{Client, Context, Error, Reason, Status};
use serde_json::json;
use support::{eventually, snapshot, FakeServer, KEY, WAIT};

/// A client with quick retries and no polling to speak of: changes must come from the stream.
fn client(server: &FakeServer) -> Client {
    Client::builder(server.url(), KEY)
        .poll_interval(Duration::from_secs(3600))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build()
        .unwrap()
}

fn checkout(client: &Client) -> serde_json::Value {
    client
        .evaluate("checkout", &Context::with_targeting_key("u1"))
        .unwrap()
        .value
}

async fn streaming(client: &Client) {
    eventually("the event stream is connected", || {
        client.health().streaming
    })
    .await;
}

#[tokio::test]
async fn a_client_becomes_ready_with_the_gzipped_snapshot_and_evaluates_locally() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let client = client(&server);
    client.wait_ready(WAIT).await.unwrap();

    let health = client.health();
    assert_eq!(health.status, Status::Ready);
    assert_eq!(health.version, Some(1));
    assert!(health.last_error.is_none());
    let banner = client
        .evaluate("banner", &Context::with_targeting_key("vip"))
        .unwrap();
    assert_eq!(banner.value, json!("red"));
    assert_eq!(banner.variant.as_deref(), Some("red"));
    assert_eq!(banner.reason, Reason::TargetingMatch);
    assert_eq!(banner.detail, "user-targeted");
    assert_eq!(banner.flag_version, Some(3));
    assert_eq!(banner.snapshot_version, 1);
    let all = client
        .evaluate_all(&Context::with_targeting_key("u1"))
        .unwrap();
    let keys: Vec<&str> = all.iter().map(|r| r.flag_key.as_str()).collect();
    assert_eq!(
        keys,
        ["checkout", "banner", "limit", "ratio", "theme", "rollout", "off"]
    );
    assert!(client.is_enabled("checkout", &Context::with_targeting_key("u1")));
    assert!(!client.is_enabled("missing", &Context::with_targeting_key("u1")));
    let missing = client
        .evaluate("missing", &Context::with_targeting_key("u1"))
        .unwrap();
    assert_eq!(
        missing.error_code,
        Some(edgeflags_client::ErrorCode::FlagNotFound)
    );
    assert_eq!(
        client.snapshot().unwrap().etag(),
        "\"1-000000000000000a\"",
        "the ETag is kept as sent"
    );
    assert_eq!(server.recorded(|r| (r.full, r.gzipped)), (1, 1));
    assert_eq!(server.recorded(|r| r.if_none_match.clone()), [None]);
    client.shutdown().await;
}

#[tokio::test]
async fn a_change_announced_on_the_stream_is_fetched_conditionally_and_served() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let client = client(&server);
    client.wait_ready(WAIT).await.unwrap();
    streaming(&client).await;
    assert_eq!(
        server.recorded(|r| r.last_event_ids.clone()),
        [Some("1".to_owned())],
        "the stream is opened naming the version held, so a change in between is not missed"
    );

    server.publish(&snapshot(2, false));
    eventually("version 2 is served", || client.health().version == Some(2)).await;
    assert_eq!(checkout(&client), json!(false));
    assert_eq!(
        server.recorded(|r| r.if_none_match.clone()),
        [None, Some("\"1-000000000000000a\"".to_owned())],
        "one download at start, one conditional re-fetch for the event, no polling"
    );
    assert_eq!(client.status(), Status::Ready);
    client.shutdown().await;
}

#[tokio::test]
async fn an_event_about_the_version_held_costs_a_304_and_the_stream_stays_followed() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let client = client(&server);
    client.wait_ready(WAIT).await.unwrap();
    streaming(&client).await;

    server.announce_again();
    eventually("the re-fetch is answered 304", || {
        server.recorded(|r| r.not_modified) == 1
    })
    .await;
    assert_eq!(client.health().version, Some(1));
    assert_eq!(client.status(), Status::Ready);

    // The 304 carried no stream location; the one from the 200 is still followed.
    server.publish(&snapshot(2, false));
    eventually("version 2 is served", || client.health().version == Some(2)).await;
    assert_eq!(server.recorded(|r| r.full), 2);
    assert_eq!(
        server.recorded(|r| r.last_event_ids.len()),
        1,
        "no reconnection"
    );
    client.shutdown().await;
}

#[tokio::test]
async fn a_bad_snapshot_keeps_the_last_good_one_in_service_until_a_good_one_comes() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let client = client(&server);
    client.wait_ready(WAIT).await.unwrap();
    streaming(&client).await;

    server.publish_raw(b"{\"flags\": [truncated".to_vec(), 2);
    eventually("the bad snapshot is reported", || {
        client.status() == Status::Stale
    })
    .await;
    let health = client.health();
    assert!(
        matches!(health.last_error.as_deref(), Some(Error::BadSnapshot(_))),
        "{:?}",
        health.last_error
    );
    assert_eq!(health.version, Some(1));
    assert_eq!(checkout(&client), json!(true), "version 1 keeps serving");

    // A snapshot of another environment is refused the same way.
    let mut other = snapshot(3, false);
    other["environment"] = json!("staging");
    server.publish(&other);
    eventually("the foreign snapshot is reported", || {
        matches!(
            client.health().last_error.as_deref(),
            Some(Error::WrongEnvironment { .. })
        )
    })
    .await;
    assert_eq!(checkout(&client), json!(true));

    server.publish(&snapshot(4, false));
    eventually("version 4 is served", || client.health().version == Some(4)).await;
    assert_eq!(client.status(), Status::Ready);
    assert!(client.health().last_error.is_none());
    assert_eq!(checkout(&client), json!(false));
    client.shutdown().await;
}

#[tokio::test]
async fn while_the_server_is_down_the_client_is_stale_and_serves_then_it_recovers() {
    let mut server = FakeServer::start(&snapshot(1, true)).await;
    let client = client(&server);
    client.wait_ready(WAIT).await.unwrap();
    streaming(&client).await;

    server.stop().await;
    eventually("the client notices the outage", || {
        client.status() == Status::Stale
    })
    .await;
    let health = client.health();
    assert!(!health.streaming);
    assert!(
        matches!(health.last_error.as_deref(), Some(Error::Http { .. })),
        "{:?}",
        health.last_error
    );
    assert_eq!(
        checkout(&client),
        json!(true),
        "the last good snapshot keeps serving"
    );
    // A missed change: published while the client could not hear of it.
    server.publish(&snapshot(2, false));

    server.restart().await;
    eventually("the client recovers with the missed change", || {
        let health = client.health();
        health.status == Status::Ready && health.version == Some(2) && health.streaming
    })
    .await;
    assert_eq!(checkout(&client), json!(false));
    let reconnection = server.recorded(|r| r.last_event_ids.last().cloned().flatten());
    assert!(
        matches!(reconnection.as_deref(), Some("1" | "2")),
        "the reconnection names the version held: {reconnection:?}"
    );
    client.shutdown().await;
}

#[tokio::test]
async fn without_an_event_stream_the_client_polls_with_the_etag() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    server.set_streams(false);
    let client = Client::builder(server.url(), KEY)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.unwrap();
    eventually("polls are answered 304", || {
        server.recorded(|r| r.not_modified) >= 3
    })
    .await;
    assert_eq!(server.recorded(|r| r.full), 1);
    assert!(server.recorded(|r| r
        .if_none_match
        .iter()
        .skip(1)
        .all(|e| e.as_deref() == Some("\"1-000000000000000a\""))));

    server.publish(&snapshot(2, false));
    eventually("version 2 is served", || client.health().version == Some(2)).await;
    assert!(!client.health().streaming);
    assert!(
        server.recorded(|r| r.last_event_ids.is_empty()),
        "no stream was opened"
    );
    client.shutdown().await;
}

#[tokio::test]
async fn a_client_told_not_to_stream_polls_even_when_a_stream_is_advertised() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let client = Client::builder(server.url(), KEY)
        .poll_interval(Duration::from_millis(50))
        .streaming(false)
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.unwrap();
    server.publish(&snapshot(2, false));
    eventually("version 2 is served", || client.health().version == Some(2)).await;
    assert!(server.recorded(|r| r.last_event_ids.is_empty()));
    client.shutdown().await;
}

#[tokio::test]
async fn an_expired_stream_token_is_renewed_by_the_next_download() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let client = client(&server);
    client.wait_ready(WAIT).await.unwrap();
    streaming(&client).await;

    server.rotate_token("t2");
    eventually("the client streams again with the new token", || {
        client.health().streaming
            && server.open_streams() == 1
            && server.recorded(|r| r.stream_refusals) >= 1
    })
    .await;
    assert_eq!(
        server.recorded(|r| r.if_none_match.last().cloned()),
        Some(None),
        "the renewal is unconditional: a 304 need not carry the location"
    );
    server.publish(&snapshot(2, false));
    eventually("version 2 is served", || client.health().version == Some(2)).await;
    client.shutdown().await;
}

#[tokio::test]
async fn a_stream_closed_by_the_server_is_reopened_after_its_retry_delay() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let client = client(&server);
    client.wait_ready(WAIT).await.unwrap();
    streaming(&client).await;

    server.end_streams();
    eventually("the stream is reopened", || {
        server.recorded(|r| r.last_event_ids.len()) == 2 && client.health().streaming
    })
    .await;
    assert_eq!(server.open_streams(), 1);
    assert_eq!(client.status(), Status::Ready);
    server.publish(&snapshot(2, false));
    eventually("version 2 is served", || client.health().version == Some(2)).await;
    client.shutdown().await;
}

#[tokio::test]
async fn a_refused_key_is_an_error_and_waiting_for_ready_times_out() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let client = Client::builder(
        server.url(),
        "efs.production.ffffffffffffffffffffffffffffffff",
    )
    .build()
    .unwrap();
    let waited = client.wait_ready(Duration::from_millis(300)).await;
    assert!(matches!(waited, Err(Error::Timeout(_))), "{waited:?}");
    let health = client.health();
    assert_eq!(health.status, Status::Error);
    match health.last_error.as_deref() {
        Some(Error::Status {
            status: 401,
            code: Some(code),
            ..
        }) => {
            assert_eq!(code, "INVALID_CLIENT_KEY");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.evaluate("checkout", &Context::default()),
        Err(Error::NotReady)
    ));
    client.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_background_task_and_closes_the_stream() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let client = client(&server);
    client.wait_ready(WAIT).await.unwrap();
    streaming(&client).await;
    assert_eq!(server.open_streams(), 1);

    tokio::time::timeout(WAIT, client.shutdown()).await.unwrap();
    let health = client.health();
    assert!(health.shut_down);
    assert!(!health.streaming);
    eventually("the stream is closed", || server.open_streams() == 0).await;

    let requests = server.recorded(|r| r.if_none_match.len());
    server.publish(&snapshot(2, false));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.recorded(|r| r.if_none_match.len()),
        requests,
        "nothing is asked any more"
    );
    assert_eq!(client.health().version, Some(1));
    assert_eq!(
        checkout(&client),
        json!(true),
        "the last snapshot still evaluates"
    );
    assert!(
        matches!(client.wait_ready(WAIT).await, Ok(())),
        "it is still in service"
    );
    client.shutdown().await; // idempotent
}

#[tokio::test]
async fn dropping_the_last_clone_stops_the_background_task() {
    let server = FakeServer::start(&snapshot(1, true)).await;
    let client = client(&server);
    client.wait_ready(WAIT).await.unwrap();
    streaming(&client).await;
    let clone = client.clone();
    drop(client);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.open_streams(), 1, "a clone keeps it running");
    drop(clone);
    eventually("the stream is closed", || server.open_streams() == 0).await;
}

#[tokio::test]
async fn waiting_for_a_server_that_is_not_there_times_out_with_an_error_status() {
    let mut server = FakeServer::start(&snapshot(1, true)).await;
    server.stop().await;
    let client = client(&server);
    let waited = client.wait_ready(Duration::from_millis(300)).await;
    assert!(matches!(waited, Err(Error::Timeout(_))), "{waited:?}");
    assert_eq!(client.status(), Status::Error);

    // It keeps trying, and becomes ready once the server is.
    server.restart().await;
    client.wait_ready(WAIT).await.unwrap();
    assert_eq!(client.status(), Status::Ready);
    client.shutdown().await;
}
