//! The backend's own Prometheus metrics (HTTP ones come from `mesh`). Every label is bounded: the
//! strategy, the outcome and the knowledge-base category id, never anything from the request.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::assessment::Assessment;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AssessmentLabels {
    strategy: &'static str,
    /// `known`, or why not.
    outcome: &'static str,
    /// Knowledge-base category id, or empty when not known (ids come from the embedded data only).
    category: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MlCallLabels {
    outcome: &'static str,
}

/// ml round-trip buckets in seconds: 5 ms … ~10 s.
const ML_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

#[derive(Debug, Clone)]
pub struct BackendMetrics {
    assessments: Family<AssessmentLabels, Counter>,
    ml_calls: Family<MlCallLabels, Counter>,
    ml_duration: Histogram,
}

impl Default for BackendMetrics {
    fn default() -> Self {
        Self {
            assessments: Family::default(),
            ml_calls: Family::default(),
            ml_duration: Histogram::new(ML_BUCKETS),
        }
    }
}

impl BackendMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "backend_assessments",
            "3R assessments made, by strategy, outcome and category",
            self.assessments.clone(),
        );
        registry.register(
            "backend_ml_calls",
            "Classify calls to ml, by outcome",
            self.ml_calls.clone(),
        );
        registry.register_with_unit(
            "backend_ml_call_duration",
            "Round trip of a classify call to ml",
            Unit::Seconds,
            self.ml_duration.clone(),
        );
    }

    pub fn record_ml_call(&self, outcome: &'static str, seconds: Option<f64>) {
        self.ml_calls.get_or_create(&MlCallLabels { outcome }).inc();
        if let Some(seconds) = seconds {
            self.ml_duration.observe(seconds);
        }
    }

    pub fn record_assessment(&self, assessment: &Assessment) {
        let labels = AssessmentLabels {
            strategy: assessment.strategy.as_str(),
            outcome: assessment.uncertainty.map_or("known", |u| u.as_str()),
            category: assessment
                .category
                .as_ref()
                .map(|c| c.id.clone())
                .unwrap_or_default(),
        };
        self.assessments.get_or_create(&labels).inc();
    }
}
