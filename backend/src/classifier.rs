//! The ml service, seen from the backend: one `POST {ML_URL}/v1/classify?top_k=5` per upload, made
//! through the mesh client so routing and trace headers travel with it.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use mesh::{MeshClient, RequestContext, Unavailability};
use serde::Deserialize;

use crate::assessment::Prediction;

/// How many predictions the backend asks for; the canary's category aggregation sums over these.
pub const TOP_K: usize = 5;

/// ml's answer, as far as the backend reads it. `model` and `timings_ms` are passed on untouched.
#[derive(Debug, Clone)]
pub struct Classification {
    pub model: serde_json::Value,
    pub predictions: Vec<Prediction>,
    pub timings_ms: serde_json::Value,
    pub served_by: Vec<String>,
    /// Round trip as the backend measured it.
    pub elapsed: Duration,
}

#[derive(Debug, Deserialize)]
struct ClassifyBody {
    #[serde(default)]
    model: serde_json::Value,
    predictions: Vec<PredictionBody>,
    #[serde(default, alias = "timings")]
    timings_ms: serde_json::Value,
    #[serde(default)]
    served_by: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct PredictionBody {
    label: String,
    #[serde(alias = "index")]
    class_index: u32,
    probability: f64,
}

/// Why a classification did not come back.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error("ml did not answer within {0:?}")]
    Timeout(Duration),
    #[error("ml is unreachable: {0}")]
    Unreachable(String),
    /// A 503 that says ml (or the proxy before it) is busy.
    #[error("ml is overloaded ({code})")]
    Overloaded {
        code: String,
        retry_after: Option<u64>,
    },
    /// A 503 that says ml is not there to serve: down, not ready, no healthy replica.
    #[error("ml is unavailable ({code})")]
    Unavailable { code: String },
    #[error("ml refused the image with {status}: {code}: {message}")]
    Rejected {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("ml failed: {0}")]
    Failed(String),
}

impl ClassifyError {
    /// A bounded label for metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            ClassifyError::Timeout(_) => "timeout",
            ClassifyError::Unreachable(_) => "unreachable",
            ClassifyError::Overloaded { .. } => "overloaded",
            ClassifyError::Unavailable { .. } => "unavailable",
            ClassifyError::Rejected { .. } => "rejected",
            ClassifyError::Failed(_) => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RemoteClassifier {
    client: MeshClient,
    classify_url: String,
}

impl RemoteClassifier {
    /// `ml_url` is the service's base URL without a trailing slash.
    pub fn new(client: MeshClient, ml_url: &str) -> Self {
        Self {
            classify_url: format!("{ml_url}/v1/classify?top_k={TOP_K}"),
            client,
        }
    }

    pub async fn classify(
        &self,
        ctx: &RequestContext,
        content_type: &str,
        image: axum::body::Bytes,
    ) -> Result<Classification, ClassifyError> {
        let started = Instant::now();
        let response = self
            .client
            .post(ctx, &self.classify_url)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "application/json")
            .body(image)
            .send()
            .await
            .map_err(|e| self.transport_error(e, Stage::Sending))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e, Stage::ReadingAnswer))?;
        let elapsed = started.elapsed();
        if status.is_success() {
            let parsed: ClassifyBody = serde_json::from_slice(&body)
                .map_err(|e| ClassifyError::Failed(format!("unreadable answer: {e}")))?;
            return Ok(Classification {
                model: parsed.model,
                predictions: parsed
                    .predictions
                    .into_iter()
                    .map(|p| Prediction {
                        label: p.label,
                        class_index: p.class_index,
                        probability: p.probability,
                    })
                    .collect(),
                timings_ms: parsed.timings_ms,
                served_by: parsed.served_by,
                elapsed,
            });
        }
        let detail = mesh::ErrorBody::parse(&body)
            .map(|b| b.error)
            .unwrap_or_default();
        match status {
            StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY => Err(ClassifyError::Rejected {
                status,
                code: detail.code,
                message: detail.message,
            }),
            StatusCode::SERVICE_UNAVAILABLE => Err(match Unavailability::of_503(&headers, &body) {
                Unavailability::Overloaded => ClassifyError::Overloaded {
                    code: detail.code,
                    retry_after: retry_after(&headers),
                },
                Unavailability::Unavailable => ClassifyError::Unavailable { code: detail.code },
            }),
            // The proxy in front of ml (Envoy's route timeout, the lab's hop) gave up waiting.
            StatusCode::GATEWAY_TIMEOUT => Err(ClassifyError::Timeout(self.client.timeout())),
            other => Err(ClassifyError::Failed(format!(
                "answered {other} ({})",
                detail.code
            ))),
        }
    }

    /// A timeout is a timeout wherever it struck. Otherwise a connection that failed or was reset
    /// before ml answered means ml is not there (503, as Envoy says for a reset before headers); an
    /// answer cut short is a broken answer (502).
    fn transport_error(&self, error: reqwest::Error, stage: Stage) -> ClassifyError {
        if error.is_timeout() {
            ClassifyError::Timeout(self.client.timeout())
        } else if stage == Stage::Sending {
            ClassifyError::Unreachable(error.to_string())
        } else {
            ClassifyError::Failed(format!("the answer broke off: {error}"))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Until ml's answer head arrived.
    Sending,
    ReadingAnswer,
}

fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
