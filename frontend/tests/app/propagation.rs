//! The routing, request id and trace headers of the incoming request reach the backend, and the
//! result page shows the trace and request ids.

use axum::http::StatusCode;

use crate::harness::{BackendDouble, read, spawn_app};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn canary_request_id_and_trace_headers_reach_the_backend() {
    let backend = BackendDouble::answering("water bottle").await;
    let app = spawn_app(&backend.url, &[]).await;
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let (status, _, html) = read(
        app.post_photo(&[
            ("x-canary", "true"),
            ("x-request-id", "req-frontend-test-42"),
            ("traceparent", &traceparent),
        ])
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");

    let received = backend.only_request();
    assert_eq!(received.header("x-canary"), Some("true"));
    assert_eq!(
        received.header("x-request-id"),
        Some("req-frontend-test-42")
    );
    let forwarded = received
        .header("traceparent")
        .expect("traceparent forwarded");
    assert!(forwarded.contains(TRACE_ID), "{forwarded}");

    assert!(html.contains("req-frontend-test-42"), "{html}");
    assert!(html.contains(TRACE_ID), "{html}");
}

#[tokio::test]
async fn the_trace_id_links_to_the_tracing_ui_when_configured() {
    let backend = BackendDouble::answering("water bottle").await;
    let app = spawn_app(
        &backend.url,
        &[("TRACING_UI_URL", "http://jaeger.test:16686/")],
    )
    .await;
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let (_, _, html) = read(app.post_photo(&[("traceparent", &traceparent)]).await).await;
    let link = format!(r#"<a href="http://jaeger.test:16686/trace/{TRACE_ID}">{TRACE_ID}</a>"#);
    assert!(html.contains(&link), "{html}");
}

#[tokio::test]
async fn a_request_id_is_made_at_the_edge_and_shown() {
    let backend = BackendDouble::answering("water bottle").await;
    let app = spawn_app(&backend.url, &[]).await;
    let (_, _, html) = read(app.post_photo(&[]).await).await;

    let received = backend.only_request();
    let request_id = received.header("x-request-id").expect("x-request-id made");
    assert!(!request_id.is_empty());
    assert!(html.contains(request_id), "{html}");
    assert!(received.header("x-canary").is_none());
}
