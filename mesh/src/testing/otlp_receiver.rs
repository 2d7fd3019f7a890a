//! A real OTLP/HTTP trace receiver for tests: `POST /v1/traces` with an
//! `ExportTraceServiceRequest` in protobuf, decoded with `opentelemetry-proto`'s generated types
//! (prost), answered with an `ExportTraceServiceResponse` as a collector does. It records every span
//! with its resource's `service.name` and `service.version`.
//!
//! It can be made slow ([`OtlpReceiver::set_delay`]) to test what a slow tracing backend does to
//! serving; a receiver that is down is just a port nobody listens on.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;

/// One span as the receiver got it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The resource's `service.name`.
    pub service_name: String,
    /// The resource's `service.version`.
    pub service_version: Option<String>,
    pub name: String,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// 16 lowercase hex digits; empty for a root span.
    pub parent_span_id: String,
    /// String forms of the span's attributes.
    pub attributes: Vec<(String, String)>,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inbox {
    spans: Mutex<Vec<ReceivedSpan>>,
    delay: Mutex<Duration>,
    requests: Mutex<u64>,
}

pub struct OtlpReceiver {
    addr: SocketAddr,
    inbox: Arc<Inbox>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    /// Listens on a port the OS picks.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Listens on `addr` (a receiver coming back on the port it had).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let inbox = Arc::new(Inbox::default());
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(inbox.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, inbox, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        lock(&self.inbox.spans).clone()
    }

    /// Export requests received so far (answered or not yet).
    pub fn requests(&self) -> u64 {
        *lock(&self.inbox.requests)
    }

    /// Makes every later export request wait `delay` before it is answered.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.inbox.delay) = delay;
    }

    /// Stops listening; the port is free again.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn receive(State(inbox): State<Arc<Inbox>>, body: Bytes) -> Response {
    *lock(&inbox.requests) += 1;
    let delay = *lock(&inbox.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an OTLP trace export: {error}"),
            )
                .into_response();
        }
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        let service_name = find(&resource, "service.name").unwrap_or_default();
        let service_version = find(&resource, "service.version");
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    service_name: service_name.clone(),
                    service_version: service_version.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                        .collect(),
                });
            }
        }
    }
    lock(&inbox.spans).extend(received);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn find(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| text(kv.value.as_ref()))
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
