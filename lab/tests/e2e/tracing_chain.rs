//! One trace across the three services: the trace id and request id that entered at the edge are
//! what ml received, and the services' spans form one parent/child chain.

use std::time::Duration;

use opentelemetry_sdk::trace::SpanData;

use crate::support::{attribute, spawn_lab, trace_spans};

/// The server span each service opened for the request, by service name.
async fn request_spans(trace_id: &str) -> [SpanData; 3] {
    for _ in 0..100 {
        let spans = trace_spans(trace_id);
        let find = |service: &str| {
            spans
                .iter()
                .find(|s| {
                    attribute(s, "service").is_some_and(|v| v.starts_with(&format!("{service}/")))
                        && attribute(s, "http.route").is_some()
                })
                .cloned()
        };
        if let (Some(f), Some(b), Some(m)) = (find("frontend"), find("backend"), find("ml")) {
            return [f, b, m];
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "trace {trace_id}: expected a request span from each service, got {:#?}",
        trace_spans(trace_id)
    );
}

fn assert_chain(spans: &[SpanData; 3], edge_parent: &str) {
    let [frontend, backend, ml] = spans;
    assert_eq!(
        frontend.parent_span_id.to_string(),
        edge_parent,
        "frontend continues the caller's span"
    );
    assert_eq!(
        backend.parent_span_id,
        frontend.span_context.span_id(),
        "backend is the frontend's child"
    );
    assert_eq!(
        ml.parent_span_id,
        backend.span_context.span_id(),
        "ml is the backend's child"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn w3c_trace_and_request_id_reach_ml() {
    let app = spawn_lab().await;
    let trace_id = "5d3c8a1b9e7f40218c6b2a4d0f1e3a57";
    let parent = "a1b2c3d4e5f60718";
    let response = app
        .analyze()
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .header("x-request-id", "e2e-request-1")
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(response.status(), 200);
    let spans = request_spans(trace_id).await;
    assert_chain(&spans, parent);
    let [_, _, ml] = &spans;
    assert_eq!(
        attribute(ml, "request_id").as_deref(),
        Some("e2e-request-1")
    );
    assert_eq!(attribute(ml, "http.route").as_deref(), Some("/v1/classify"));
    app.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn b3_trace_reaches_ml() {
    let app = spawn_lab().await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let parent = "b7ad6b7169203331";
    let response = app
        .analyze()
        .header("x-b3-traceid", trace_id)
        .header("x-b3-spanid", parent)
        .header("x-b3-sampled", "1")
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(response.status(), 200);
    let spans = request_spans(trace_id).await;
    assert_chain(&spans, parent);
    // A request id was made at the edge and reached ml unchanged.
    let [frontend, _, ml] = &spans;
    let edge_id = attribute(frontend, "request_id").expect("frontend recorded a request id");
    assert!(!edge_id.is_empty());
    assert_eq!(attribute(ml, "request_id"), Some(edge_id));
    app.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_without_trace_headers_starts_one_trace() {
    let app = spawn_lab().await;
    let response = app.analyze().send().await.expect("the edge answers");
    assert_eq!(response.status(), 200);
    let page: serde_json::Value = response.json().await.expect("json");
    let trace_id = page["trace_id"]
        .as_str()
        .expect("the frontend reports the trace id")
        .to_owned();
    let spans = request_spans(&trace_id).await;
    let [frontend, backend, ml] = &spans;
    assert_eq!(backend.parent_span_id, frontend.span_context.span_id());
    assert_eq!(ml.parent_span_id, backend.span_context.span_id());
    app.lab.shutdown().await;
}
