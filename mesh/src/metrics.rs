//! Prometheus metrics for every request a service answers, labelled only with bounded values: the
//! route template (never the raw URI), the method, the status class, the service and its version.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::identity::ServiceIdentity;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: &'static str,
    version: &'static str,
    method: String,
    route: String,
    status: &'static str,
}

/// Request latency buckets in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone)]
pub(crate) struct HttpMetrics {
    identity: ServiceIdentity,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    registry: Arc<Mutex<Registry>>,
}

impl HttpMetrics {
    pub(crate) fn new(identity: ServiceIdentity) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "http_server_requests",
            "HTTP requests answered",
            requests.clone(),
        );
        registry.register(
            "http_server_request_duration_seconds",
            "Time from request head to response head",
            latency.clone(),
        );
        Self {
            identity,
            requests,
            latency,
            registry: Arc::new(Mutex::new(registry)),
        }
    }

    pub(crate) fn register(&self, f: impl FnOnce(&mut Registry)) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut registry);
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)?;
        Ok(out)
    }

    fn observe(&self, method: &Method, route: &str, status: StatusCode, started: Instant) {
        let labels = RequestLabels {
            service: self.identity.service(),
            version: self.identity.version().as_str(),
            method: bounded_method(method).to_owned(),
            route: route.to_owned(),
            status: status_class(status),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
}

fn bounded_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The route template of a request, or `unmatched` for anything the router does not know.
pub(crate) fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned())
}

pub(crate) async fn record(
    State(metrics): State<HttpMetrics>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = route_of(&req);
    let response = next.run(req).await;
    metrics.observe(&method, &route, response.status(), started);
    response
}

pub(crate) async fn serve(State(metrics): State<HttpMetrics>) -> Response {
    match metrics.encode() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_are_bounded() {
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
        assert_eq!(
            bounded_method(&Method::from_bytes(b"BREW").expect("method")),
            "OTHER"
        );
    }
}
