//! The edge sink: `PUT {edge_url}/internal/snapshots/{environment}`, signed and read as the
//! publish protocol says (`publish_protocol`; `docs/architecture.md`, "Publish protocol").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use publish_protocol::{Outcome, Secret, PUBLISH_PATH_PREFIX, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use reqwest::{header, Url};

use super::sink::{Delivery, DeliveryMode, Outgoing, SinkError, SnapshotSink};

/// Delivers snapshots to the edge worker's publish endpoint.
#[derive(Debug)]
pub struct EdgeSink {
    client: reqwest::Client,
    base: Url,
    secret: Secret,
}

impl EdgeSink {
    /// Sink name in `publish_cursor`.
    pub const NAME: &'static str = "edge";

    /// A sink for the worker at `base` (e.g. `https://flags.example.com`), signing with `secret`
    /// (the worker's `PUBLISH_SECRET`). `timeout` bounds each request, connection included.
    pub fn new(base: Url, secret: Secret, timeout: Duration) -> Result<Self, SinkError> {
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(SinkError::Setup(
                format!("edge URL must be an http(s) URL, got {base}").into(),
            ));
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
            secret,
        })
    }

    /// `{base}/internal/snapshots/{environment}`, with the environment as one escaped segment.
    pub fn url_for(&self, environment: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(PUBLISH_PATH_PREFIX.split('/').filter(|s| !s.is_empty()))
                .push(environment);
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

    async fn deliver(&self, snapshot: Outgoing<'_>) -> Result<Delivery, SinkError> {
        let Outgoing {
            environment, body, ..
        } = snapshot;
        let timestamp = unix_now();
        let response = self
            .client
            .put(self.url_for(environment))
            .header(header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                SIGNATURE_HEADER,
                publish_protocol::sign(&self.secret, timestamp, body.as_bytes()),
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
        match publish_protocol::outcome(status.as_u16(), text.as_bytes()) {
            Outcome::Stored => Ok(Delivery::Stored),
            // 200 `stored: false`: an idempotent retry of the version the edge holds.
            Outcome::AlreadyStored => Ok(Delivery::AlreadyStored),
            Outcome::Superseded { stored_version } => Ok(Delivery::Superseded { stored_version }),
            // `Outcome` is non-exhaustive: anything it may learn to say later is a failure here.
            _ => Err(SinkError::from_status(status.as_u16(), &text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"edgeflags-test-secret-of-32-byte").unwrap()
    }

    #[test]
    fn url_escapes_the_environment_and_keeps_the_base_path() {
        let secs = Duration::from_secs(1);
        let base = "http://127.0.0.1:8787/".parse().unwrap();
        let sink = EdgeSink::new(base, secret(), secs).unwrap();
        assert_eq!(
            sink.url_for("production").as_str(),
            "http://127.0.0.1:8787/internal/snapshots/production"
        );
        let sink = EdgeSink::new("https://x.test/edge".parse().unwrap(), secret(), secs).unwrap();
        assert_eq!(
            sink.url_for("a/b").as_str(),
            "https://x.test/edge/internal/snapshots/a%2Fb"
        );
    }

    #[test]
    fn non_http_urls_are_refused() {
        let secs = Duration::from_secs(1);
        assert!(EdgeSink::new("ftp://x.test".parse().unwrap(), secret(), secs).is_err());
    }
}
