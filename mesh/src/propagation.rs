//! Which headers travel from each incoming request to every outgoing request made while serving it.
//!
//! Trace context is read with the OpenTelemetry propagators — B3 (single and multi header, what Istio's
//! Envoy sidecars emit), then W3C trace context, so W3C wins when both are valid — and W3C baggage. The
//! service's request span becomes a child of that context, and outgoing requests carry the request
//! span's context in both W3C and B3 form. A malformed trace header is ignored; a request without one
//! starts a new trace. `x-canary`, `x-request-id`, `x-b3-flags` and `x-ot-span-context` travel exactly as
//! they came.

use std::sync::LazyLock;

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
// opentelemetry-zipkin is deprecated as an exporter (OTLP replaces it); its B3 propagator is still
// OpenTelemetry Rust's implementation of the B3 headers that Istio's Envoy sidecars emit.
#[allow(deprecated)]
use opentelemetry_zipkin::{B3Encoding, Propagator as B3Propagator};

pub const X_CANARY: HeaderName = HeaderName::from_static("x-canary");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");
const X_B3_SPAN_ID: &str = "x-b3-spanid";
const X_B3_PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");

/// Headers copied verbatim from the incoming request to outgoing ones.
const PASSED_THROUGH: [HeaderName; 4] = [
    X_CANARY,
    X_REQUEST_ID,
    HeaderName::from_static("x-b3-flags"),
    HeaderName::from_static("x-ot-span-context"),
];

#[allow(deprecated)]
static PROPAGATOR: LazyLock<TextMapCompositePropagator> = LazyLock::new(|| {
    TextMapCompositePropagator::new(vec![
        Box::new(B3Propagator::with_encoding(
            B3Encoding::SingleAndMultiHeader,
        )),
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
});

/// What a request carries that must reach every request made while serving it.
///
/// Extracted in handlers (`ctx: RequestContext`); filled by the mesh layer, so it is always present
/// behind [`crate::Mesh::wrap`]. Outside it (a bare router in a unit test) it is empty.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    passed_through: HeaderMap,
    /// The context from the incoming headers (the remote parent).
    remote: Context,
    /// The request span's context, once the span exists.
    local: Option<Context>,
    incoming_b3_span_id: Option<HeaderValue>,
}

impl RequestContext {
    /// Reads the incoming headers. Invalid trace headers leave the context empty.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let passed_through = PASSED_THROUGH
            .iter()
            .filter_map(|name| headers.get(name).map(|v| (name.clone(), v.clone())))
            .collect();
        Self {
            passed_through,
            remote: PROPAGATOR.extract(&HeaderExtractor(headers)),
            local: None,
            incoming_b3_span_id: headers.get(X_B3_SPAN_ID).cloned(),
        }
    }

    pub(crate) fn with_local(mut self, local: Context) -> Self {
        self.local = Some(local);
        self
    }

    pub fn remote_context(&self) -> &Context {
        &self.remote
    }

    /// The context outgoing requests are children of: the request span when it has a valid span
    /// context (a tracer is installed), else the remote parent passed through unchanged.
    fn outgoing_context(&self) -> &Context {
        match &self.local {
            Some(cx) if cx.span().span_context().is_valid() => cx,
            _ => &self.remote,
        }
    }

    pub fn request_id(&self) -> &str {
        self.passed_through
            .get(X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn is_canary(&self) -> bool {
        self.passed_through
            .get(X_CANARY)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    }

    /// The trace this request belongs to, as 32 lowercase hex digits.
    pub fn trace_id(&self) -> Option<String> {
        let cx = self.outgoing_context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }

    /// Writes the propagated headers into an outgoing request's headers.
    pub fn inject(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.passed_through {
            headers.insert(name.clone(), value.clone());
        }
        let cx = self.outgoing_context();
        PROPAGATOR.inject_context(cx, &mut HeaderInjector(headers));
        // B3's parent is the span that called us, when it told us its id in B3 form.
        if cx.span().span_context().is_valid()
            && self.local.is_some()
            && let Some(parent) = &self.incoming_b3_span_id
        {
            headers.insert(X_B3_PARENT_SPAN_ID, parent.clone());
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_else(|| RequestContext::from_headers(&parts.headers)))
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_static(k),
                    HeaderValue::from_str(v).expect("test header"),
                )
            })
            .collect()
    }

    #[test]
    fn w3c_context_passes_through_without_a_tracer() {
        let incoming = headers(&[
            ("traceparent", &format!("00-{TRACE}-00f067aa0ba902b7-01")),
            ("x-canary", "true"),
            ("x-request-id", "req-1"),
            ("x-ot-span-context", "opaque"),
        ]);
        let ctx = RequestContext::from_headers(&incoming);
        let mut out = HeaderMap::new();
        ctx.inject(&mut out);
        assert_eq!(ctx.trace_id().as_deref(), Some(TRACE));
        assert!(ctx.is_canary());
        assert_eq!(out["x-canary"], "true");
        assert_eq!(out["x-request-id"], "req-1");
        assert_eq!(out["x-ot-span-context"], "opaque");
        assert_eq!(
            out["traceparent"],
            format!("00-{TRACE}-00f067aa0ba902b7-01")
        );
        assert_eq!(out["x-b3-traceid"], TRACE);
        assert_eq!(out["b3"], format!("{TRACE}-00f067aa0ba902b7-1"));
    }

    #[test]
    fn b3_only_context_is_read() {
        let incoming = headers(&[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", "00f067aa0ba902b7"),
            ("x-b3-sampled", "1"),
        ]);
        let ctx = RequestContext::from_headers(&incoming);
        let mut out = HeaderMap::new();
        ctx.inject(&mut out);
        assert_eq!(ctx.trace_id().as_deref(), Some(TRACE));
        assert!(
            out["traceparent"]
                .to_str()
                .is_ok_and(|tp| tp.contains(TRACE))
        );
    }

    #[test]
    fn malformed_trace_headers_are_ignored() {
        let incoming = headers(&[
            ("traceparent", "00-not-a-trace-01"),
            ("b3", "garbage"),
            ("x-canary", "false"),
        ]);
        let ctx = RequestContext::from_headers(&incoming);
        assert_eq!(ctx.trace_id(), None);
        assert!(!ctx.is_canary());
        let mut out = HeaderMap::new();
        ctx.inject(&mut out);
        assert!(out.get("traceparent").is_none());
    }
}
