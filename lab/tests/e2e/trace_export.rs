//! Trace export as a user sees it: the lab, each replica with its own telemetry (as `cargo run`
//! starts it), pointed at a real OTLP/HTTP receiver. One request yields the request spans of
//! frontend, backend and ml under the request's trace id, chained parent to child, each with its
//! service's name and build as resource attributes. With the receiver down the lab serves as before,
//! the dropped-spans counter rises, and export resumes when the receiver returns.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lab::topology::Tier;
use lab::{Lab, LabOptions, ReplicaTelemetry};
use mesh::testing::{OtlpReceiver, ReceivedSpan};

use crate::support::{Analysis, TestLab};

async fn spawn_exporting_lab(endpoint: &str) -> TestLab {
    let base_env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ("RUST_LOG", "warn"),
    ];
    let options = LabOptions {
        edge: "127.0.0.1:0".parse().expect("address"),
        base_env: base_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        telemetry: ReplicaTelemetry::Own,
        ..LabOptions::default()
    };
    let lab = Lab::start(options).await.expect("the lab starts");
    lab.wait_ready(Duration::from_secs(60))
        .await
        .expect("every replica gets ready");
    TestLab {
        lab,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
    }
}

/// The request (server) span of each tier in `trace_id`, once all three arrived.
async fn request_spans(receiver: &OtlpReceiver, trace_id: &str) -> [ReceivedSpan; 3] {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let spans: Vec<_> = receiver
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id && s.attribute("http.route").is_some())
            .collect();
        let find = |service: &str| spans.iter().find(|s| s.service_name == service).cloned();
        if let (Some(f), Some(b), Some(m)) = (find("frontend"), find("backend"), find("ml")) {
            return [f, b, m];
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id}: expected request spans of frontend, backend and ml, got {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_exports_a_chained_trace_from_every_tier() {
    let receiver = OtlpReceiver::start().await.expect("receiver");
    let app = spawn_exporting_lab(&receiver.endpoint()).await;
    let trace_id = "7a3e0c5d9b1f4e6a8c2d4f6b8a0c2e41";
    let parent = "1f2e3d4c5b6a7980";
    let response = app
        .analyze()
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(response.status(), 200);
    let analysis: Analysis = response.json().await.expect("JSON analysis");

    let [frontend, backend, ml] = request_spans(&receiver, trace_id).await;
    assert_eq!(
        frontend.parent_span_id, parent,
        "frontend continues the caller"
    );
    assert_eq!(
        backend.parent_span_id, frontend.span_id,
        "backend is frontend's child"
    );
    assert_eq!(ml.parent_span_id, backend.span_id, "ml is backend's child");
    // Each span says which build made it, and that is the build the trail names.
    let trail: Vec<String> = [&frontend, &backend, &ml]
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s.service_name,
                s.service_version.as_deref().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(trail, analysis.served_by);
    // ml's own work is in the same trace, under its request span.
    let inference = receiver
        .spans()
        .into_iter()
        .find(|s| s.trace_id == trace_id && s.name == "inference")
        .expect("ml's inference span arrived");
    assert_eq!(inference.service_name, "ml");
    app.lab.shutdown().await;
    receiver.stop().await;
}

/// Sum of `telemetry_spans_dropped_total` over a replica's reasons.
async fn dropped_spans(app: &TestLab, addr: SocketAddr) -> f64 {
    let text = app
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with("telemetry_spans_dropped_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_receiver_down_the_lab_serves_and_counts_dropped_spans() {
    let addr = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("addr")
    };
    let app = spawn_exporting_lab(&format!("http://{addr}")).await;
    for _ in 0..5 {
        let analysis = app.analyze_json(false).await;
        assert_eq!(analysis.served_by.len(), 3);
    }
    let ml = app
        .lab
        .replicas()
        .iter()
        .filter(|r| r.tier == Tier::Ml)
        .map(|r| r.addr)
        .collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut dropped = 0.0;
        for addr in &ml {
            dropped += dropped_spans(&app, *addr).await;
        }
        if dropped > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no ml replica counted a dropped span with the receiver down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The receiver comes back where it was: new requests' spans arrive.
    let receiver = OtlpReceiver::start_on(addr).await.expect("receiver back");
    let trace_id = "0c1d2e3f405162738495a6b7c8d9eaf1";
    let response = app
        .analyze()
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(response.status(), 200);
    request_spans(&receiver, trace_id).await;
    app.lab.shutdown().await;
    receiver.stop().await;
}
