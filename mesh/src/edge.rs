//! The HTTP edge every service sits behind: one [`ServiceBuilder`], read top to bottom (outermost
//! first), plus the probes and `/metrics`.

use std::any::Any;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::load_shed::error::Overloaded;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::error::{ErrorBody, code};
use crate::health::{self, Readiness};
use crate::identity::ServiceIdentity;
use crate::limits::{self, ServingLimits};
use crate::metrics::{self, HttpMetrics};
use crate::{MeshClient, RequestContext, X_REQUEST_ID, X_SERVED_BY};

/// The Content-Security-Policy of an answer whose service set none (JSON, probes, metrics).
pub const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// A service's handle on the mesh: identity, readiness and metrics registry. Cheap to clone.
#[derive(Clone)]
pub struct Mesh {
    identity: ServiceIdentity,
    served_by: HeaderValue,
    readiness: Readiness,
    metrics: HttpMetrics,
    limits: ServingLimits,
}

impl Mesh {
    pub fn new(identity: ServiceIdentity) -> Self {
        let served_by = HeaderValue::from_str(&identity.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self {
            metrics: HttpMetrics::new(identity.clone()),
            served_by,
            readiness: Readiness::default(),
            limits: ServingLimits::default(),
            identity,
        }
    }

    /// The request-level bounds [`wrap`](Self::wrap) applies (the default ones otherwise).
    pub fn with_limits(mut self, limits: ServingLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &ServingLimits {
        &self.limits
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

    /// The service's routes plus `/healthz`, `/readyz` and `/metrics`, behind the edge.
    ///
    /// The service's own routes (not the probes, not `/metrics`: an overloaded replica must still
    /// say so) share one in-flight bound; past it the answer is 503 `overloaded` at once.
    pub fn wrap(&self, routes: Router) -> Router {
        let routes = routes.layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(shed_answer))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::new(self.limits.max_in_flight)),
        );
        let probes = Router::new()
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .with_state(self.readiness.clone())
            .route(
                "/metrics",
                get(metrics::serve).with_state(self.metrics.clone()),
            );
        let identity = self.identity.clone();
        routes.merge(probes).layer(
            ServiceBuilder::new()
                // `x-request-id`: made (a UUID) when missing or blank, then echoed on the answer.
                .layer(middleware::map_request(drop_blank_request_id))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(SetResponseHeaderLayer::overriding(
                    X_SERVED_BY,
                    self.served_by.clone(),
                ))
                // Security headers on every answer; a service may set a CSP of its own (the
                // frontend's pages do), else nothing may be loaded or framed.
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(DEFAULT_CSP),
                ))
                // The propagated headers, read once.
                .layer(middleware::from_fn(read_context))
                // The request span: named by route template, child of the incoming trace context.
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(move |req: &Request| request_span(&identity, req))
                        .on_response(|res: &Response, _: Duration, span: &Span| {
                            span.record("http.response.status_code", res.status().as_u16());
                        }),
                )
                .layer(middleware::from_fn(attach_span))
                .layer(middleware::from_fn_with_state(
                    self.metrics.clone(),
                    metrics::record,
                ))
                // A body that dribbles in is cut off: 408.
                .layer(middleware::from_fn_with_state(
                    self.limits.body_read_timeout,
                    limits::bound_body_read,
                ))
                // Innermost, so the span and the metrics see the 500 a panic becomes.
                .layer(CatchPanicLayer::custom(panic_answer)),
        )
    }
}

/// An empty or non-text `x-request-id` counts as missing, so a usable one is made for it.
async fn drop_blank_request_id(mut req: Request) -> Request {
    if req
        .headers()
        .get(X_REQUEST_ID)
        .is_some_and(|v| v.is_empty() || v.to_str().is_err())
    {
        req.headers_mut().remove(X_REQUEST_ID);
    }
    req
}

async fn read_context(mut req: Request, next: Next) -> Response {
    let ctx = RequestContext::from_headers(req.headers());
    req.extensions_mut().insert(ctx);
    next.run(req).await
}

fn request_span(identity: &ServiceIdentity, req: &Request) -> Span {
    let route = metrics::route_of(req);
    let ctx = req.extensions().get::<RequestContext>();
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{} {}", req.method(), route),
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        service = %identity,
        request_id = %ctx.map(RequestContext::request_id).unwrap_or_default(),
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    if let Some(ctx) = ctx {
        let _ = span.set_parent(ctx.remote_context().clone());
    }
    span
}

/// Inside the request span: records its ids and gives handlers the context their outgoing
/// requests are children of.
async fn attach_span(mut req: Request, next: Next) -> Response {
    use opentelemetry::trace::TraceContextExt as _;
    let span = Span::current();
    let local = span.context();
    let sc = local.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
        span.record("span_id", tracing::field::display(sc.span_id()));
    }
    let ctx = req
        .extensions_mut()
        .remove::<RequestContext>()
        .unwrap_or_default()
        .with_local(local);
    req.extensions_mut().insert(ctx);
    next.run(req).await
}

/// The in-flight bound's refusal; the load-shed layer has no other error to give.
async fn shed_answer(error: tower::BoxError) -> Response {
    if !error.is::<Overloaded>() {
        tracing::error!(error = %error, "edge layer failed");
        return ErrorBody::new(code::INTERNAL, "internal error")
            .into_response_with(StatusCode::INTERNAL_SERVER_ERROR);
    }
    limits::overloaded()
}

/// A handler that panics answers the shared 500 body; what it panicked with goes to the log only.
fn panic_answer(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    tracing::error!(panic = %what, "handler panicked");
    ErrorBody::new(code::INTERNAL, "internal error")
        .into_response_with(StatusCode::INTERNAL_SERVER_ERROR)
}
