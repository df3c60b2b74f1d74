//! Publisher metrics: delivery lag, outbox depth and delivery errors, per sink.

use prometheus::{
    exponential_buckets, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Handles to the publisher's Prometheus metrics (cheap to clone).
#[derive(Debug, Clone)]
pub struct PublishMetrics {
    /// Seconds from a snapshot row's `created_at` to its acknowledgement by the sink.
    pub lag_seconds: HistogramVec,
    /// Versions committed but not yet delivered, per sink (refreshed every poll).
    pub outbox_depth: IntGaugeVec,
    /// Successful deliveries, per sink and outcome (`stored`, `already_stored`, `superseded`).
    pub deliveries: IntCounterVec,
    /// Failed deliveries, per sink and kind (`unreachable`, `unavailable`, `rejected`, ...).
    pub delivery_errors: IntCounterVec,
}

impl PublishMetrics {
    /// Creates the metrics and registers them in `registry` (the origin's registry adds the
    /// `edgeflags_` prefix: `edgeflags_publish_lag_seconds`, ...).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self::unregistered()?;
        registry.register(Box::new(metrics.lag_seconds.clone()))?;
        registry.register(Box::new(metrics.outbox_depth.clone()))?;
        registry.register(Box::new(metrics.deliveries.clone()))?;
        registry.register(Box::new(metrics.delivery_errors.clone()))?;
        Ok(metrics)
    }

    /// Creates the metrics without registering them (tests, or a caller that registers later).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        Ok(Self {
            lag_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "publish_lag_seconds",
                    "Seconds from a snapshot's commit to its delivery to a sink.",
                )
                // 5 ms .. ~82 s
                .buckets(exponential_buckets(0.005, 2.0, 15)?),
                &["sink"],
            )?,
            outbox_depth: IntGaugeVec::new(
                Opts::new(
                    "publish_outbox_depth",
                    "Snapshot versions committed but not yet delivered to a sink.",
                ),
                &["sink"],
            )?,
            deliveries: IntCounterVec::new(
                Opts::new(
                    "publish_deliveries_total",
                    "Snapshot deliveries acknowledged by a sink.",
                ),
                &["sink", "outcome"],
            )?,
            delivery_errors: IntCounterVec::new(
                Opts::new(
                    "publish_delivery_errors_total",
                    "Failed snapshot deliveries (each is retried).",
                ),
                &["sink", "kind"],
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_register_once_per_registry() {
        let registry = Registry::new_custom(Some("edgeflags".into()), None).unwrap();
        let metrics = PublishMetrics::register(&registry).unwrap();
        metrics
            .deliveries
            .with_label_values(&["s3", "stored"])
            .inc();
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert!(names.contains(&"edgeflags_publish_deliveries_total".to_owned()));
        assert!(PublishMetrics::register(&registry).is_err());
    }
}
