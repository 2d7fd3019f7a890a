//! Trace export against a real OTLP/HTTP receiver (protobuf decoded with `opentelemetry-proto`):
//! spans made on a Tokio runtime arrive; a receiver that is down or slow costs spans, counted, but
//! never blocks the code that makes them, never panics the exporter, and export recovers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mesh::telemetry::{self, ExportSettings, Sampler, ScopedTelemetry, TelemetryConfig};
use mesh::testing::{OtlpReceiver, ReceivedSpan};
use mesh::{ServiceIdentity, Version};

fn config(endpoint: String, export: ExportSettings) -> TelemetryConfig {
    TelemetryConfig {
        service_name: "backend".into(),
        otlp_traces_endpoint: Some(format!("{endpoint}/v1/traces")),
        sampler: Sampler::ParentBasedAlwaysOn,
        export,
        log_filter: "warn".into(),
    }
}

fn fast_export() -> ExportSettings {
    ExportSettings {
        timeout: Duration::from_millis(300),
        schedule_delay: Duration::from_millis(20),
        max_queue_size: 64,
        max_export_batch_size: 64,
    }
}

fn scoped(cfg: &TelemetryConfig) -> ScopedTelemetry {
    telemetry::scoped(
        cfg,
        &ServiceIdentity::new("backend", Version::Canary),
        std::io::sink,
    )
    .expect("telemetry builds")
}

/// Ends `n` spans named `name` under `dispatch`; returns how long that took.
fn make_spans(telemetry: &ScopedTelemetry, name: &'static str, n: usize) -> Duration {
    let started = Instant::now();
    tracing::dispatcher::with_default(&telemetry.dispatch, || {
        for _ in 0..n {
            tracing::info_span!("work", otel.name = name).in_scope(|| {});
        }
    });
    started.elapsed()
}

async fn wait_for(receiver: &OtlpReceiver, name: &str, n: usize) -> Vec<ReceivedSpan> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spans: Vec<_> = receiver
            .spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect();
        if spans.len() >= n || Instant::now() > deadline {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port with nothing listening on it.
async fn dead_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_made_on_a_tokio_runtime_reach_a_real_receiver() {
    let receiver = OtlpReceiver::start().await.expect("receiver");
    let telemetry = scoped(&config(receiver.endpoint(), fast_export()));
    let stats = telemetry.guard.stats().expect("export is on");
    tracing::dispatcher::with_default(&telemetry.dispatch, || {
        tracing::info_span!("outer", otel.name = "outer").in_scope(|| {
            tracing::info_span!("inner", otel.name = "inner").in_scope(|| {});
        });
    });
    telemetry.guard.shutdown(Duration::from_secs(5)).await;

    let spans = receiver.spans();
    let outer = spans
        .iter()
        .find(|s| s.name == "outer")
        .unwrap_or_else(|| panic!("no outer span arrived: {spans:#?}"));
    let inner = spans
        .iter()
        .find(|s| s.name == "inner")
        .expect("the inner span arrived");
    assert_eq!(outer.service_name, "backend");
    assert_eq!(outer.service_version.as_deref(), Some("canary"));
    assert_eq!(inner.trace_id, outer.trace_id);
    assert_eq!(inner.parent_span_id, outer.span_id);
    assert_eq!(outer.trace_id.len(), 32);
    assert_eq!(stats.exported(), 2);
    assert_eq!(stats.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_costs_counted_spans_and_export_recovers() {
    let addr = dead_port().await;
    let telemetry = scoped(&config(format!("http://{addr}"), fast_export()));
    let stats = telemetry.guard.stats().expect("export is on");

    let took = make_spans(&telemetry, "lost", 200);
    // Ending a span only hands it to a queue: 200 of them take microseconds each, not the 300 ms
    // an export attempt to a dead port could take.
    assert!(
        took < Duration::from_secs(1),
        "ending spans blocked: {took:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.dropped() < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        stats.dropped(),
        200,
        "every span to a dead receiver is counted as dropped"
    );
    assert_eq!(stats.exported(), 0);

    // The receiver comes back on its port: the same exporter delivers again (it did not die).
    let receiver = OtlpReceiver::start_on(addr).await.expect("receiver back");
    make_spans(&telemetry, "delivered", 3);
    let arrived = wait_for(&receiver, "delivered", 3).await;
    assert_eq!(
        arrived.len(),
        3,
        "export recovered once the receiver was back"
    );
    assert!(arrived.iter().all(|s| s.service_name == "backend"));
    telemetry.guard.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_fills_the_bounded_queue_and_the_rest_is_dropped() {
    let receiver = OtlpReceiver::start().await.expect("receiver");
    receiver.set_delay(Duration::from_millis(1500));
    let export = ExportSettings {
        timeout: Duration::from_secs(5),
        schedule_delay: Duration::from_millis(10),
        max_queue_size: 4,
        max_export_batch_size: 4,
    };
    let telemetry = scoped(&config(receiver.endpoint(), export));
    let stats = telemetry.guard.stats().expect("export is on");

    // Fill the queue and wait until its export is sitting on the slow receiver.
    make_spans(&telemetry, "first", 4);
    let deadline = Instant::now() + Duration::from_secs(5);
    while receiver.requests() == 0 {
        assert!(Instant::now() < deadline, "the first export never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = make_spans(&telemetry, "burst", 40);
    assert!(
        took < Duration::from_secs(1),
        "ending spans blocked: {took:?}"
    );
    // At most 4 spans may be pending, queued or in the export the receiver is sitting on.
    assert!(
        stats.dropped() >= 36,
        "only {} of 40 spans dropped with room for 4",
        stats.dropped()
    );
    receiver.set_delay(Duration::ZERO);
    telemetry.guard.shutdown(Duration::from_secs(5)).await;
    let arrived = receiver.spans().len() as u64;
    assert!(
        arrived >= 4,
        "the spans of the slow export were delivered: {arrived}"
    );
    assert_eq!(
        arrived + stats.dropped(),
        44,
        "every span is delivered or counted"
    );
}
