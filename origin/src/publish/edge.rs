//! The edge sink: `PUT {edge_url}/internal/snapshots/{environment}`, signed as the team contract says
//! (`X-Edgeflags-Timestamp`, `X-Edgeflags-Signature: v1=hex(HMAC-SHA256(secret, "<ts>.<body>"))`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::{header, StatusCode, Url};
use serde::Deserialize;
use sha2::Sha256;

use super::sink::{Delivery, DeliveryMode, SinkError, SnapshotSink};

/// Header carrying the unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Edgeflags-Timestamp";
/// Header carrying `v1=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-Edgeflags-Signature";

/// Signs publish requests with the shared secret (the worker's `PUBLISH_SECRET`).
#[derive(Clone)]
pub struct Signer {
    key: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer for `secret` (any length; HMAC hashes long keys).
    pub fn new(secret: &[u8]) -> Result<Self, SinkError> {
        let key = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| SinkError::Setup(e.into()))?;
        Ok(Self { key })
    }

    /// The `X-Edgeflags-Signature` value for `body` sent at `timestamp` (unix seconds).
    pub fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        let mut mac = self.key.clone();
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Checks a signature in constant time (what the worker does; used by test receivers).
    pub fn verify(&self, timestamp: u64, body: &[u8], signature: &str) -> bool {
        let Some(hex_mac) = signature.strip_prefix("v1=") else {
            return false;
        };
        let Ok(expected) = hex::decode(hex_mac) else {
            return false;
        };
        let mut mac = self.key.clone();
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    }
}

/// Delivers snapshots to the edge worker's publish endpoint.
#[derive(Debug)]
pub struct EdgeSink {
    client: reqwest::Client,
    base: Url,
    signer: Signer,
}

/// The parts of the worker's answer the publisher looks at.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublishAnswer {
    #[serde(default)]
    stored: Option<bool>,
    #[serde(default)]
    stored_version: Option<u64>,
}

impl EdgeSink {
    /// Sink name in `publish_cursor`.
    pub const NAME: &'static str = "edge";

    /// A sink for the worker at `base` (e.g. `https://flags.example.com`), signing with `secret`.
    /// `timeout` bounds each request, connection included.
    pub fn new(base: Url, secret: &str, timeout: Duration) -> Result<Self, SinkError> {
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(SinkError::Setup(
                format!("edge URL must be an http(s) URL, got {base}").into(),
            ));
        }
        if secret.is_empty() {
            return Err(SinkError::Setup("the edge publish secret is empty".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect means a wrong URL; following it would re-send the signed body elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SinkError::Setup(e.into()))?;
        Ok(Self {
            client,
            base,
            signer: Signer::new(secret.as_bytes())?,
        })
    }

    /// `{base}/internal/snapshots/{environment}`, with the environment as one escaped segment.
    pub fn url_for(&self, environment: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["internal", "snapshots", environment]);
        }
        url
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[async_trait]
impl SnapshotSink for EdgeSink {
    fn name(&self) -> &str {
        Self::NAME
    }

    /// The edge keeps only the newest snapshot per environment and answers 409 to anything older
    /// than what it holds, so delivering the intermediate versions of a backlog would only delay
    /// the newest one (and each older one would be overwritten a moment later): skip to the newest.
    fn mode(&self) -> DeliveryMode {
        DeliveryMode::LatestOnly
    }

    async fn deliver(
        &self,
        environment: &str,
        _version: u64,
        body: &str,
    ) -> Result<Delivery, SinkError> {
        let timestamp = unix_now();
        let response = self
            .client
            .put(self.url_for(environment))
            .header(header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                SIGNATURE_HEADER,
                self.signer.sign(timestamp, body.as_bytes()),
            )
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| SinkError::Unreachable(e.into()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| SinkError::Unreachable(e.into()))?;
        let answer = serde_json::from_str::<PublishAnswer>(&text).ok();
        match status {
            // The contract: 200 with `stored: false` is an idempotent retry of the same version.
            StatusCode::OK => Ok(match answer.and_then(|a| a.stored) {
                Some(false) => Delivery::AlreadyStored,
                _ => Delivery::Stored,
            }),
            StatusCode::CONFLICT => Ok(Delivery::Superseded {
                stored_version: answer.and_then(|a| a.stored_version),
            }),
            _ => Err(SinkError::from_status(status.as_u16(), &text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Contract: `v1=` + lowercase hex HMAC-SHA256(secret, "<timestamp>.<body bytes>"). The
    /// expected value was computed independently with Python's `hmac` module.
    #[test]
    fn signature_matches_the_contract_test_vector() {
        let signer = Signer::new(b"edgeflags-test-secret").unwrap();
        let body = br#"{"environment":"production","version":1}"#;
        assert_eq!(
            signer.sign(1_700_000_000, body),
            "v1=c780752e0a71fa11fe32c0d484ba37b08daaf15f2108d6332a056f8f357d838e"
        );
    }

    #[test]
    fn verify_accepts_its_own_signature_and_rejects_tampering() {
        let signer = Signer::new(b"s").unwrap();
        let sig = signer.sign(10, b"body");
        assert!(signer.verify(10, b"body", &sig));
        assert!(!signer.verify(11, b"body", &sig));
        assert!(!signer.verify(10, b"bodY", &sig));
        assert!(!signer.verify(10, b"body", sig.trim_start_matches("v1=")));
        assert!(!Signer::new(b"other").unwrap().verify(10, b"body", &sig));
    }

    #[test]
    fn url_escapes_the_environment_and_keeps_the_base_path() {
        let secs = Duration::from_secs(1);
        let sink = EdgeSink::new("http://127.0.0.1:8787/".parse().unwrap(), "s", secs).unwrap();
        assert_eq!(
            sink.url_for("production").as_str(),
            "http://127.0.0.1:8787/internal/snapshots/production"
        );
        let sink = EdgeSink::new("https://x.test/edge".parse().unwrap(), "s", secs).unwrap();
        assert_eq!(
            sink.url_for("a/b").as_str(),
            "https://x.test/edge/internal/snapshots/a%2Fb"
        );
    }

    #[test]
    fn non_http_urls_and_empty_secrets_are_refused() {
        let secs = Duration::from_secs(1);
        assert!(EdgeSink::new("ftp://x.test".parse().unwrap(), "s", secs).is_err());
        assert!(EdgeSink::new("http://x.test".parse().unwrap(), "", secs).is_err());
    }
}
