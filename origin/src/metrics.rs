//! Prometheus metrics of the origin, served at `/metrics`.
//!
//! One [`prometheus::Registry`] lives in the application state; other parts of the origin (the
//! publisher's lag and outbox gauges) register their collectors into [`Metrics::registry`].

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The origin's registry and the collectors the HTTP layer updates.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Registry every collector of this process is registered in.
    pub registry: Registry,
    /// Request latency by route template, method and status.
    pub http_request_duration: HistogramVec,
    /// Responses with a 4xx/5xx status by route template and error class.
    pub http_errors: IntCounterVec,
    /// Snapshot version held in the evaluation cache, per environment.
    pub cached_snapshot_version: IntGaugeVec,
}

impl Metrics {
    /// A fresh registry with the HTTP collectors registered.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("edgeflags".into()), None)?;
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["route", "method", "status"],
        )?;
        let http_errors = IntCounterVec::new(
            Opts::new(
                "http_errors_total",
                "HTTP responses with a 4xx or 5xx status",
            ),
            &["route", "class"],
        )?;
        let cached_snapshot_version = IntGaugeVec::new(
            Opts::new(
                "origin_cached_snapshot_version",
                "Snapshot version the origin's evaluation API serves",
            ),
            &["environment"],
        )?;
        registry.register(Box::new(http_request_duration.clone()))?;
        registry.register(Box::new(http_errors.clone()))?;
        registry.register(Box::new(cached_snapshot_version.clone()))?;
        Ok(Self {
            registry,
            http_request_duration,
            http_errors,
            cached_snapshot_version,
        })
    }

    /// Records one finished request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status_text = status.to_string();
        self.http_request_duration
            .with_label_values(&[route, method, status_text.as_str()])
            .observe(seconds);
        if status >= 400 {
            let class = if status >= 500 { "5xx" } else { "4xx" };
            self.http_errors.with_label_values(&[route, class]).inc();
        }
    }

    /// The registry in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        // the text encoder only ever writes UTF-8
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_requests_and_errors_are_rendered() {
        let metrics = Metrics::new().unwrap();
        metrics.observe("/admin/flags/{flag_key}", "PUT", 409, 0.002);
        metrics.observe("/admin/flags", "GET", 200, 0.001);
        let text = metrics.render().unwrap();
        assert!(text.contains(
            r#"edgeflags_http_errors_total{class="4xx",route="/admin/flags/{flag_key}"} 1"#
        ));
        assert!(text.contains(
            r#"edgeflags_http_request_duration_seconds_count{method="GET",route="/admin/flags",status="200"} 1"#
        ));
    }
}
