//! The ml tier's own Prometheus metrics (the HTTP ones come from `mesh`). Labels are bounded:
//! the model name and version from the manifest, nothing from requests.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone)]
pub struct MlMetrics {
    pub decode_seconds: Histogram,
    pub preprocess_seconds: Histogram,
    pub inference_seconds: Histogram,
    pub queue_depth: Gauge,
    pub rejected: Counter,
    pub model_info: Family<Vec<(String, String)>, Gauge>,
}

impl Default for MlMetrics {
    fn default() -> Self {
        // 0.5 ms … ~4 s
        let buckets = || exponential_buckets(0.0005, 2.0, 14);
        Self {
            decode_seconds: Histogram::new(buckets()),
            preprocess_seconds: Histogram::new(buckets()),
            inference_seconds: Histogram::new(buckets()),
            queue_depth: Gauge::default(),
            rejected: Counter::default(),
            model_info: Family::default(),
        }
    }
}

impl MlMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "ml_decode_duration",
            "Time to decode an uploaded image",
            Unit::Seconds,
            self.decode_seconds.clone(),
        );
        registry.register_with_unit(
            "ml_preprocess_duration",
            "Time to crop, resize and normalise a decoded image",
            Unit::Seconds,
            self.preprocess_seconds.clone(),
        );
        registry.register_with_unit(
            "ml_inference_duration",
            "Time the model takes for one image",
            Unit::Seconds,
            self.inference_seconds.clone(),
        );
        registry.register(
            "ml_queue_depth",
            "Classifications waiting for a worker",
            self.queue_depth.clone(),
        );
        registry.register(
            "ml_rejected",
            "Classifications refused because the queue was full",
            self.rejected.clone(),
        );
        registry.register(
            "ml_model_info",
            "The loaded model (value is always 1)",
            self.model_info.clone(),
        );
    }

    pub fn set_model(&self, name: &str, version: &str) {
        self.model_info
            .get_or_create(&vec![
                ("model".to_owned(), name.to_owned()),
                ("version".to_owned(), version.to_owned()),
            ])
            .set(1);
    }
}
