//! What trace export costs the request path: the time to start and end a request-shaped span tree
//! (a server span with two children, as ml makes per request) with export off, with export on to
//! a live OTLP/HTTP receiver, and with export on to a receiver that is down.
//!
//! `cargo run -p mesh --features test-util --example span_export_cost [-- --trees 20000]`

use std::time::{Duration, Instant};

use mesh::telemetry::{self, ExportSettings, Sampler, TelemetryConfig};
use mesh::testing::OtlpReceiver;
use mesh::{ServiceIdentity, Version};

fn config(endpoint: Option<String>) -> TelemetryConfig {
    TelemetryConfig {
        service_name: "ml".into(),
        otlp_traces_endpoint: endpoint.map(|e| format!("{e}/v1/traces")),
        sampler: Sampler::ParentBasedAlwaysOn,
        export: ExportSettings::default(),
        log_filter: "off".into(),
    }
}

/// Median and 99th percentile of one span tree, in microseconds.
fn measure(cfg: &TelemetryConfig, trees: usize) -> (f64, f64, u64) {
    let telemetry = telemetry::scoped(
        cfg,
        &ServiceIdentity::new("ml", Version::Stable),
        std::io::sink,
    )
    .expect("telemetry");
    let mut samples = Vec::with_capacity(trees);
    tracing::dispatcher::with_default(&telemetry.dispatch, || {
        for _ in 0..trees {
            let started = Instant::now();
            tracing::info_span!(
                "request",
                otel.name = "POST /v1/classify",
                http.route = "/v1/classify"
            )
            .in_scope(|| {
                tracing::info_span!("decode").in_scope(|| {});
                tracing::info_span!("inference").in_scope(|| {});
            });
            samples.push(started.elapsed());
        }
    });
    let dropped = telemetry.guard.stats().map_or(0, |s| s.dropped());
    drop(telemetry);
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99), dropped)
}

#[tokio::main]
async fn main() {
    let trees = std::env::args()
        .skip_while(|a| a != "--trees")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let receiver = OtlpReceiver::start().await.expect("receiver");
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr")
    };
    println!("{trees} span trees (3 spans each) per case");
    println!("| export | p50 µs/tree | p99 µs/tree | dropped |");
    println!("|---|---|---|---|");
    for (name, endpoint) in [
        ("off", None),
        ("on, receiver up", Some(receiver.endpoint())),
        ("on, receiver down", Some(format!("http://{dead}"))),
    ] {
        let cfg = config(endpoint);
        let (p50, p99, dropped) = tokio::task::spawn_blocking(move || measure(&cfg, trees))
            .await
            .expect("measure");
        println!("| {name} | {p50:.2} | {p99:.2} | {dropped} |");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("receiver got {} spans", receiver.spans().len());
}
