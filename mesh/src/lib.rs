//! What makes a 3RVision service mesh-aware, in one place, used the same way by every tier:
//!
//! - [`Mesh::wrap`] puts a service's routes behind the mesh layers — `x-request-id` (made here when
//!   missing), trace context extraction and a request span named by route template, request metrics,
//!   and the `x-served-by: <service>/<version>` header — and adds `/healthz`, `/readyz`, `/metrics`;
//! - [`RequestContext`] (an extractor) and [`MeshClient`] carry the propagated headers onto every
//!   outgoing request;
//! - [`Server`] serves with a graceful stop; [`telemetry`] installs logs and spans; [`config`] reads the
//!   environment once; [`run`] is a service binary's whole `main`, for any [`MeshService`].
//!
//! Kubernetes and Istio configuration code lives in the separate `mesh-istio` crate, so services do
//! not compile it.
#![forbid(unsafe_code)]

mod client;
pub mod config;
mod health;
mod identity;
mod metrics;
mod propagation;
mod server;
mod service;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod testing;

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use http::HeaderValue;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub use client::MeshClient;
pub use health::Readiness;
pub use identity::{ServiceIdentity, UnknownVersion, Version};
pub use propagation::{RequestContext, X_CANARY, X_REQUEST_ID, X_SERVED_BY};
pub use server::{Server, StopPolicy, shutdown_signal};
pub use service::{MeshService, Spawned, run, spawn, spawn_traced};

use metrics::HttpMetrics;

/// A service's handle on the mesh: identity, readiness and metrics registry. Cheap to clone.
#[derive(Clone)]
pub struct Mesh {
    identity: ServiceIdentity,
    served_by: HeaderValue,
    readiness: Readiness,
    metrics: HttpMetrics,
}

impl Mesh {
    pub fn new(identity: ServiceIdentity) -> Self {
        let served_by = HeaderValue::from_str(&identity.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self {
            metrics: HttpMetrics::new(identity.clone()),
            served_by,
            readiness: Readiness::default(),
            identity,
        }
    }

    pub fn identity(&self) -> &ServiceIdentity {
        &self.identity
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Registers the service's own metrics next to the HTTP ones on `/metrics`.
    pub fn register_metrics(&self, f: impl FnOnce(&mut prometheus_client::registry::Registry)) {
        self.metrics.register(f);
    }

    pub fn client(&self, timeout: Duration) -> MeshClient {
        MeshClient::new(timeout)
    }

    /// The service's routes plus health and metrics, behind the mesh layers (outermost first:
    /// request id and trace span, served-by, metrics).
    pub fn wrap(&self, routes: Router) -> Router {
        let probes = Router::new()
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .with_state(self.readiness.clone())
            .route(
                "/metrics",
                get(metrics::serve).with_state(self.metrics.clone()),
            );
        routes
            .merge(probes)
            .layer(middleware::from_fn_with_state(
                self.metrics.clone(),
                metrics::record,
            ))
            .layer(middleware::from_fn_with_state(self.clone(), enter))
    }
}

/// Opens the request: fills in `x-request-id`, reads the trace context, starts the request span as
/// its child, and stamps `x-served-by` on the answer.
async fn enter(State(mesh): State<Mesh>, mut req: Request, next: Next) -> Response {
    if !req
        .headers()
        .get(X_REQUEST_ID)
        .is_some_and(|v| !v.is_empty() && v.to_str().is_ok())
    {
        let id = uuid::Uuid::new_v4().to_string();
        if let Ok(value) = HeaderValue::from_str(&id) {
            req.headers_mut().insert(X_REQUEST_ID, value);
        }
    }
    let ctx = RequestContext::from_headers(req.headers());
    let route = metrics::route_of(&req);
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{} {}", req.method(), route),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        service = %mesh.identity,
        request_id = %ctx.request_id(),
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    let _ = span.set_parent(ctx.remote_context().clone());
    let local = span.context();
    {
        use opentelemetry::trace::TraceContextExt as _;
        let sc = local.span().span_context().clone();
        if sc.is_valid() {
            span.record("trace_id", tracing::field::display(sc.trace_id()));
            span.record("span_id", tracing::field::display(sc.span_id()));
        }
    }
    req.extensions_mut().insert(ctx.with_local(local));
    let mut response = next.run(req).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
        .headers_mut()
        .insert(X_SERVED_BY, mesh.served_by.clone());
    response
}
