//! `/healthz` says the process is alive; `/readyz` says it can take traffic now (model loaded, not
//! draining). Kubernetes restarts on the first and routes on the second, so they stay separate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::error::{ErrorBody, code};

/// Whether this replica should receive traffic. Starts not ready.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "alive"})).into_response()
}

pub(crate) async fn readyz(State(readiness): State<Readiness>) -> Response {
    if readiness.is_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        ErrorBody::new(code::NOT_READY, "not ready to serve yet")
            .into_response_with(StatusCode::SERVICE_UNAVAILABLE)
    }
}
