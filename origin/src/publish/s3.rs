//! The S3 archive sink: every version at `snapshots/{environment}/{version}.json`, then the same
//! bytes at `snapshots/{environment}/latest.json`. Works with any S3-compatible store (custom
//! endpoint, path-style addressing, static credentials), like unleash-edge's injected s3 config.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use super::sink::{Delivery, DeliveryMode, Outgoing, SinkError, SnapshotSink};

/// Where and how to reach the bucket.
#[derive(Clone)]
pub struct S3SinkConfig {
    /// Endpoint URL of an S3-compatible store; `None` = AWS's endpoint for `region`.
    pub endpoint: Option<String>,
    /// Bucket the archive is written to (must exist).
    pub bucket: String,
    /// Signing region.
    pub region: String,
    /// Static access key id.
    pub access_key_id: String,
    /// Static secret access key.
    pub secret_access_key: String,
    /// Bound on each S3 operation, retries included.
    pub timeout: Duration,
}

impl std::fmt::Debug for S3SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3SinkConfig")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Archives every snapshot version in a bucket.
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: Client,
    bucket: String,
}

impl S3Sink {
    /// Sink name in `publish_cursor`.
    pub const NAME: &'static str = "s3";

    /// A sink writing to `config.bucket`. Builds no network connection yet.
    pub fn new(config: &S3SinkConfig) -> Self {
        // ring rather than the SDK's default aws-lc: no C/cmake build, and reqwest uses ring too.
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(Credentials::new(
                config.access_key_id.clone(),
                config.secret_access_key.clone(),
                None,
                None,
                "edgeflags-config",
            ))
            // Most S3-compatible stores (MinIO, R2, moto, Ceph) expect path-style addressing.
            .force_path_style(true)
            // The flexible-checksum trailers newer SDKs send by default are not understood by every
            // S3-compatible store; checksums are sent only where the API requires them.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.timeout)
                    .operation_timeout(config.timeout)
                    .build(),
            )
            .http_client(http_client);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
        }
    }

    /// The S3 client (tests read the archive back with it).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Object key of one archived version.
    pub fn version_key(environment: &str, version: u64) -> String {
        format!("snapshots/{environment}/{version}.json")
    }

    /// Object key of the newest archived version.
    pub fn latest_key(environment: &str) -> String {
        format!("snapshots/{environment}/latest.json")
    }

    async fn put(&self, key: String, body: &str) -> Result<(), SinkError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

/// Maps an SDK failure onto the publisher's retry classes.
fn classify(error: SdkError<PutObjectError, HttpResponse>) -> SinkError {
    let message = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::ServiceError(service) => {
            SinkError::from_status(service.raw().status().as_u16(), &message)
        }
        // The request could not even be built: retrying soon will build the same bad request.
        SdkError::ConstructionFailure(_) => SinkError::Setup(message.into()),
        _ => SinkError::Unreachable(message.into()),
    }
}

#[async_trait]
impl SnapshotSink for S3Sink {
    fn name(&self) -> &str {
        Self::NAME
    }

    /// An archive: every version, in order.
    fn mode(&self) -> DeliveryMode {
        DeliveryMode::EveryVersion
    }

    async fn deliver(&self, snapshot: Outgoing<'_>) -> Result<Delivery, SinkError> {
        let Outgoing {
            environment,
            version,
            body,
        } = snapshot;
        // The versioned object first: if the process dies in between, `latest.json` still points
        // at an archived version, and the redelivery writes both again (same bytes, same keys).
        self.put(Self::version_key(environment, version), body)
            .await?;
        self.put(Self::latest_key(environment), body).await?;
        Ok(Delivery::Stored)
    }
}
