//! The S3 archive sink against a real S3-compatible server on loopback (moto, started by the test
//! through scripts/lib/s3-server.sh unless `EDGEFLAGS_TEST_S3_ENDPOINT` names a running one). The
//! archive is read back with aws-sdk-s3 and compared byte for byte with the `snapshot` rows.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p origin --test publish_s3`

mod publish_support;

use std::sync::Arc;
use std::time::Duration;

use origin::publish::{PublishConfig, S3Sink, S3SinkConfig, SnapshotSink};
use publish_support::*;
use sqlx::PgPool;

fn sink_config(endpoint: &str, bucket: &str) -> S3SinkConfig {
    S3SinkConfig {
        endpoint: Some(endpoint.to_owned()),
        bucket: bucket.to_owned(),
        region: "us-east-1".to_owned(),
        access_key_id: "test-key".to_owned(),
        secret_access_key: "test-secret".to_owned(),
        timeout: Duration::from_secs(10),
    }
}

async fn create_bucket(sink: &S3Sink) {
    sink.client()
        .create_bucket()
        .bucket(sink.bucket())
        .send()
        .await
        .unwrap();
}

/// The object's bytes and content type.
async fn read(sink: &S3Sink, key: &str) -> (Vec<u8>, Option<String>) {
    let object = sink
        .client()
        .get_object()
        .bucket(sink.bucket())
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("reading {key}: {e:?}"));
    let content_type = object.content_type().map(str::to_owned);
    let bytes = object.body.collect().await.unwrap().into_bytes().to_vec();
    (bytes, content_type)
}

#[sqlx::test(migrations = "../migrations")]
async fn every_version_is_archived_and_latest_matches_the_newest_row_byte_for_byte(pool: PgPool) {
    let server = S3Server::start().await;
    let reader = S3Sink::new(&sink_config(&server.endpoint, "edgeflags-archive"));
    create_bucket(&reader).await;
    for env in ["production", "staging"] {
        create_environment(&pool, env).await;
    }
    commit_snapshots(&pool, "production", 6, 20).await;
    commit_snapshot(&pool, "staging", 3).await;

    // Through the command-line configuration, as `origin serve` starts it.
    let config = PublishConfig {
        s3_endpoint: Some(server.endpoint.clone()),
        s3_bucket: Some("edgeflags-archive".to_owned()),
        s3_access_key_id: Some("test-key".to_owned()),
        s3_secret_access_key: Some("test-secret".to_owned()),
        publish_poll_seconds: 1,
        ..PublishConfig::default()
    };
    let publisher = Publisher::from_config(&pool, &config, metrics());
    wait_delivered(&pool, "s3", "production", 6).await;
    wait_delivered(&pool, "s3", "staging", 1).await;
    commit_snapshots(&pool, "production", 2, 20).await;
    wait_delivered(&pool, "s3", "production", 8).await;
    publisher.abort();

    for env in ["production", "staging"] {
        let rows = snapshot_rows(&pool, env).await;
        for (version, body) in &rows {
            let (bytes, content_type) = read(&reader, &S3Sink::version_key(env, *version)).await;
            assert_eq!(bytes, body.as_bytes(), "{env} v{version}");
            assert_eq!(content_type.as_deref(), Some("application/json"));
        }
        let (latest, _) = read(&reader, &S3Sink::latest_key(env)).await;
        assert_eq!(latest, rows.last().unwrap().1.as_bytes(), "{env} latest");
    }
    let listed = reader
        .client()
        .list_objects_v2()
        .bucket("edgeflags-archive")
        .prefix("snapshots/production/")
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    let mut expected: Vec<String> = (1..=8)
        .map(|v| S3Sink::version_key("production", v))
        .chain([S3Sink::latest_key("production")])
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
}

#[sqlx::test(migrations = "../migrations")]
async fn versions_committed_while_the_bucket_is_missing_are_archived_once_it_exists(pool: PgPool) {
    let server = S3Server::start().await;
    let sink = Arc::new(S3Sink::new(&sink_config(&server.endpoint, "created-later")));
    create_environment(&pool, "production").await;
    commit_snapshots(&pool, "production", 4, 2).await;
    let publisher = Publisher::start(
        &pool,
        vec![Arc::clone(&sink) as Arc<dyn SnapshotSink>],
        fast_settings(),
        metrics(),
    );
    // NoSuchBucket is a 404: a permanent failure, recorded and retried slowly, never dropped.
    let refused = wait_failed(&pool, "s3", "production", 1).await;
    refused.assert_stuck(0, &["404"]);

    create_bucket(&sink).await;
    wait_delivered(&pool, "s3", "production", 4).await;
    publisher.abort();
    for (version, body) in snapshot_rows(&pool, "production").await {
        let (bytes, _) = read(&sink, &S3Sink::version_key("production", version)).await;
        assert_eq!(bytes, body.as_bytes());
    }
    let (latest, _) = read(&sink, &S3Sink::latest_key("production")).await;
    assert_eq!(
        latest,
        snapshot_rows(&pool, "production").await[3].1.as_bytes()
    );
}
