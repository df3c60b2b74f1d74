//! Publisher configuration: which sinks are enabled and how the outbox is drained.

use std::sync::Arc;
use std::time::Duration;

use publish_protocol::{Secret, MIN_SECRET_BYTES};
use reqwest::Url;

use super::edge::EdgeSink;
use super::s3::{S3Sink, S3SinkConfig};
use super::sink::{SinkError, SnapshotSink};

/// Snapshot publishing (flattened into the origin's command line).
#[derive(Clone, clap::Args)]
pub struct PublishConfig {
    /// Base URL of the edge worker; enables the edge sink, which PUTs every environment's newest
    /// snapshot to `{edge-url}/internal/snapshots/{environment}`.
    #[arg(long, env = "EDGEFLAGS_EDGE_URL", requires = "edge_publish_secret")]
    pub edge_url: Option<Url>,

    /// Shared secret that signs edge publish requests (the worker's `PUBLISH_SECRET`); at least
    /// 32 bytes, e.g. `openssl rand -hex 32`.
    #[arg(long, env = "EDGEFLAGS_EDGE_PUBLISH_SECRET", hide_env_values = true)]
    pub edge_publish_secret: Option<String>,

    /// Endpoint URL of an S3-compatible store for the snapshot archive (e.g. http://127.0.0.1:9000);
    /// leave unset for AWS S3 itself.
    #[arg(long, env = "EDGEFLAGS_S3_ENDPOINT", requires = "s3_bucket")]
    pub s3_endpoint: Option<String>,

    /// Bucket for the snapshot archive; enables the S3 sink, which writes every version to
    /// `snapshots/{environment}/{version}.json` and `snapshots/{environment}/latest.json`.
    #[arg(
        long,
        env = "EDGEFLAGS_S3_BUCKET",
        requires_all = ["s3_access_key_id", "s3_secret_access_key"]
    )]
    pub s3_bucket: Option<String>,

    /// Signing region of the S3 store.
    #[arg(long, env = "EDGEFLAGS_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Access key id for the S3 store.
    #[arg(long, env = "EDGEFLAGS_S3_ACCESS_KEY_ID", requires = "s3_bucket")]
    pub s3_access_key_id: Option<String>,

    /// Secret access key for the S3 store.
    #[arg(
        long,
        env = "EDGEFLAGS_S3_SECRET_ACCESS_KEY",
        hide_env_values = true,
        requires = "s3_bucket"
    )]
    pub s3_secret_access_key: Option<String>,

    /// Seconds between polls of the outbox; NOTIFY `edgeflags_snapshot` wakes the publisher sooner,
    /// the poll is what guarantees delivery when a notification is lost.
    #[arg(long, env = "EDGEFLAGS_PUBLISH_POLL_SECONDS", default_value_t = 5)]
    pub publish_poll_seconds: u64,

    /// Upper bound, in seconds, of the exponential backoff after a failed delivery.
    #[arg(
        long,
        env = "EDGEFLAGS_PUBLISH_MAX_BACKOFF_SECONDS",
        default_value_t = 30
    )]
    pub publish_max_backoff_seconds: u64,

    /// Seconds before retrying a snapshot a sink rejected (4xx other than 409): such failures need
    /// an operator, so they are retried slowly, never dropped.
    #[arg(
        long,
        env = "EDGEFLAGS_PUBLISH_REJECTED_BACKOFF_SECONDS",
        default_value_t = 300
    )]
    pub publish_rejected_backoff_seconds: u64,

    /// Seconds one delivery (one HTTP request, or both S3 writes) may take.
    #[arg(long, env = "EDGEFLAGS_PUBLISH_TIMEOUT_SECONDS", default_value_t = 10)]
    pub publish_timeout_seconds: u64,

    /// Environments delivered at once per sink and replica (each holds a database connection
    /// while it delivers).
    #[arg(long, env = "EDGEFLAGS_PUBLISH_CONCURRENCY", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub publish_concurrency: u16,
}

impl std::fmt::Debug for PublishConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("PublishConfig")
            .field("edge_url", &self.edge_url)
            .field("edge_publish_secret", &redacted(&self.edge_publish_secret))
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field(
                "s3_secret_access_key",
                &redacted(&self.s3_secret_access_key),
            )
            .field("publish_poll_seconds", &self.publish_poll_seconds)
            .field(
                "publish_max_backoff_seconds",
                &self.publish_max_backoff_seconds,
            )
            .field(
                "publish_rejected_backoff_seconds",
                &self.publish_rejected_backoff_seconds,
            )
            .field("publish_timeout_seconds", &self.publish_timeout_seconds)
            .field("publish_concurrency", &self.publish_concurrency)
            .finish()
    }
}

impl Default for PublishConfig {
    /// No sink enabled, default timings (the values of the command-line defaults).
    fn default() -> Self {
        Self {
            edge_url: None,
            edge_publish_secret: None,
            s3_endpoint: None,
            s3_bucket: None,
            s3_region: "us-east-1".to_owned(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            publish_poll_seconds: 5,
            publish_max_backoff_seconds: 30,
            publish_rejected_backoff_seconds: 300,
            publish_timeout_seconds: 10,
            publish_concurrency: 2,
        }
    }
}

impl PublishConfig {
    /// The drain timings.
    pub fn settings(&self) -> PublisherSettings {
        PublisherSettings {
            poll_interval: Duration::from_secs(self.publish_poll_seconds.max(1)),
            max_backoff: Duration::from_secs(self.publish_max_backoff_seconds.max(1)),
            rejected_backoff: Duration::from_secs(self.publish_rejected_backoff_seconds.max(1)),
            delivery_timeout: self.delivery_timeout(),
            concurrency: usize::from(self.publish_concurrency.max(1)),
            ..PublisherSettings::default()
        }
    }

    fn delivery_timeout(&self) -> Duration {
        Duration::from_secs(self.publish_timeout_seconds.max(1))
    }

    /// The edge publish secret, refused at start-up (naming the variable) when shorter than the
    /// publish protocol's minimum: the worker refuses every publish signed with it anyway.
    fn edge_secret(&self) -> Result<Secret, SinkError> {
        let secret = self.edge_publish_secret.as_deref().unwrap_or_default();
        Secret::new(secret.as_bytes()).map_err(|short| {
            SinkError::Setup(
                format!(
                    "EDGEFLAGS_EDGE_PUBLISH_SECRET (--edge-publish-secret) is {} bytes; it must be \
                     at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)",
                    short.length
                )
                .into(),
            )
        })
    }

    /// The enabled sinks (none when nothing is configured).
    pub fn sinks(&self) -> Result<Vec<Arc<dyn SnapshotSink>>, SinkError> {
        let mut sinks: Vec<Arc<dyn SnapshotSink>> = Vec::new();
        if let Some(url) = &self.edge_url {
            sinks.push(Arc::new(EdgeSink::new(
                url.clone(),
                self.edge_secret()?,
                self.delivery_timeout(),
            )?));
        }
        if let Some(bucket) = &self.s3_bucket {
            let (Some(access_key_id), Some(secret_access_key)) =
                (&self.s3_access_key_id, &self.s3_secret_access_key)
            else {
                return Err(SinkError::Setup(
                    "--s3-bucket needs --s3-access-key-id and --s3-secret-access-key".into(),
                ));
            };
            sinks.push(Arc::new(S3Sink::new(&S3SinkConfig {
                endpoint: self.s3_endpoint.clone(),
                bucket: bucket.clone(),
                region: self.s3_region.clone(),
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.clone(),
                timeout: self.delivery_timeout(),
            })));
        }
        Ok(sinks)
    }
}

/// How the outbox is drained; [`PublishConfig::settings`] builds it from the command line, tests
/// build it directly with short intervals.
#[derive(Debug, Clone)]
pub struct PublisherSettings {
    /// Fallback poll of the outbox when no NOTIFY arrives.
    pub poll_interval: Duration,
    /// First retry delay; doubles per consecutive failure.
    pub base_backoff: Duration,
    /// Cap of the exponential backoff.
    pub max_backoff: Duration,
    /// Delay before retrying a rejected (permanent) failure.
    pub rejected_backoff: Duration,
    /// Bound on one `deliver` call, whatever the sink does.
    pub delivery_timeout: Duration,
    /// Concurrent claimers per sink in this replica.
    pub concurrency: usize,
}

impl Default for PublisherSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            rejected_backoff: Duration::from_secs(300),
            delivery_timeout: Duration::from_secs(10),
            concurrency: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        publish: PublishConfig,
    }

    #[test]
    fn no_sink_is_enabled_by_default() {
        let cli = Cli::try_parse_from(["origin"]).unwrap();
        assert!(cli.publish.sinks().unwrap().is_empty());
        assert_eq!(cli.publish.settings().poll_interval, Duration::from_secs(5));
    }

    #[test]
    fn edge_url_without_secret_is_refused() {
        let err = Cli::try_parse_from(["origin", "--edge-url", "http://127.0.0.1:8787"])
            .err()
            .unwrap();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn an_edge_publish_secret_shorter_than_32_bytes_is_refused_naming_the_variable() {
        let cli = Cli::try_parse_from([
            "origin",
            "--edge-url",
            "http://127.0.0.1:8787",
            "--edge-publish-secret",
            "0123456789abcdef0123456789abcde",
        ])
        .unwrap();
        let err = cli.publish.sinks().err().unwrap();
        assert_eq!(
            err.to_string(),
            "sink setup failed: EDGEFLAGS_EDGE_PUBLISH_SECRET (--edge-publish-secret) is 31 bytes; \
             it must be at least 32 bytes (e.g. `openssl rand -hex 32`)"
        );
        assert!(err.is_permanent());
        let empty = PublishConfig {
            edge_url: Some("http://127.0.0.1:8787".parse().unwrap()),
            edge_publish_secret: Some(String::new()),
            ..PublishConfig::default()
        };
        assert!(empty
            .sinks()
            .err()
            .unwrap()
            .to_string()
            .contains("is 0 bytes"));
    }

    #[test]
    fn s3_bucket_without_credentials_is_refused() {
        let err = Cli::try_parse_from(["origin", "--s3-bucket", "b"])
            .err()
            .unwrap();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn both_sinks_are_built_from_flags() {
        let cli = Cli::try_parse_from([
            "origin",
            "--edge-url",
            "http://127.0.0.1:8787",
            "--edge-publish-secret",
            SECRET,
            "--s3-endpoint",
            "http://127.0.0.1:9000",
            "--s3-bucket",
            "b",
            "--s3-access-key-id",
            "k",
            "--s3-secret-access-key",
            "sk",
        ])
        .unwrap();
        let names: Vec<String> = cli
            .publish
            .sinks()
            .unwrap()
            .iter()
            .map(|s| s.name().to_owned())
            .collect();
        assert_eq!(names, ["edge", "s3"]);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = PublishConfig {
            edge_publish_secret: Some("hunter2".into()),
            s3_secret_access_key: Some("hunter3".into()),
            ..PublishConfig::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("hunter"), "{text}");
    }
}
