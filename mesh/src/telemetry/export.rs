//! How spans leave the process.
//!
//! The OpenTelemetry SDK's [`BatchSpanProcessor`] batches on a thread of its own and runs the
//! exporter there with a plain executor, so the OTLP exporter uses a *blocking* HTTP client
//! (`reqwest-blocking-client`): an async client would need a Tokio runtime on that thread, which is
//! what broke export before. The request path only hands a finished span to a channel.
//!
//! Around the SDK's processor sits [`BoundedQueue`]: it admits at most `max_queue_size` spans that
//! are waiting or being exported, and drops the rest, so memory stays bounded when the receiver is
//! slow or gone. [`CountingExporter`] counts what was exported and what was lost (queue full, or the
//! export failed), and logs the losses at most once per [`LOG_INTERVAL`] — never per span, never a
//! panic. The counters are published on the service's `/metrics` ([`ExportStats::register`]).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use opentelemetry::Context;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::ExportSettings;

/// Losses are logged at most this often (with the count since the last line).
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The processor for OTLP/HTTP export to `endpoint` (a full `…/v1/traces` URL).
pub(super) fn processor(
    endpoint: &str,
    settings: &ExportSettings,
    stats: ExportStats,
) -> anyhow::Result<BoundedQueue> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(settings.timeout)
        .build()
        .context("building the OTLP span exporter")?;
    // Set every field: the SDK's builder would otherwise read OTEL_BSP_* from the process
    // environment behind the typed configuration's back.
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(settings.max_queue_size)
        .with_max_export_batch_size(settings.max_export_batch_size)
        .with_scheduled_delay(settings.schedule_delay)
        .build();
    let inner = BatchSpanProcessor::builder(CountingExporter {
        inner: exporter,
        stats: stats.clone(),
    })
    .with_batch_config(config)
    .build();
    Ok(BoundedQueue {
        inner,
        capacity: settings.max_queue_size,
        stats,
    })
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    /// `queue_full` or `export_failed`.
    reason: &'static str,
}

const QUEUE_FULL: DropLabels = DropLabels {
    reason: "queue_full",
};
const EXPORT_FAILED: DropLabels = DropLabels {
    reason: "export_failed",
};

/// What happened to the spans this process tried to export. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ExportStats {
    inner: Arc<StatsInner>,
}

#[derive(Debug)]
struct StatsInner {
    /// Whose spans these are (`ml/canary`), for the log lines.
    service: String,
    endpoint: String,
    exported: Counter,
    dropped: Family<DropLabels, Counter>,
    /// Spans admitted and not yet exported or lost (waiting or in an export request).
    pending: AtomicUsize,
    pending_gauge: Gauge,
    unlogged_queue_full: AtomicU64,
    unlogged_failed: AtomicU64,
    failing: AtomicBool,
    last_error: Mutex<String>,
    last_log: Mutex<Option<Instant>>,
}

impl ExportStats {
    pub(super) fn new(service: String, endpoint: &str) -> Self {
        Self {
            inner: Arc::new(StatsInner {
                service,
                endpoint: endpoint.to_owned(),
                exported: Counter::default(),
                dropped: Family::default(),
                pending: AtomicUsize::new(0),
                pending_gauge: Gauge::default(),
                unlogged_queue_full: AtomicU64::new(0),
                unlogged_failed: AtomicU64::new(0),
                failing: AtomicBool::new(false),
                last_error: Mutex::new(String::new()),
                last_log: Mutex::new(None),
            }),
        }
    }

    /// Publishes `telemetry_spans_exported_total`, `telemetry_spans_dropped_total{reason}` and
    /// `telemetry_spans_pending`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "telemetry_spans_exported",
            "Spans the trace receiver accepted",
            self.inner.exported.clone(),
        );
        registry.register(
            "telemetry_spans_dropped",
            "Spans lost before reaching the trace receiver, by reason (queue_full, export_failed)",
            self.inner.dropped.clone(),
        );
        registry.register(
            "telemetry_spans_pending",
            "Spans waiting for export or in an export request",
            self.inner.pending_gauge.clone(),
        );
    }

    pub fn exported(&self) -> u64 {
        self.inner.exported.get()
    }

    pub fn dropped(&self) -> u64 {
        // One family lookup at a time: each holds the family's lock until its guard is dropped.
        let queue_full = self.inner.dropped.get_or_create(&QUEUE_FULL).get();
        let failed = self.inner.dropped.get_or_create(&EXPORT_FAILED).get();
        queue_full + failed
    }

    /// Admits one span unless `capacity` spans are already pending.
    fn admit(&self, capacity: usize) -> bool {
        let admitted = self
            .inner
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            self.inner.pending_gauge.inc();
        } else {
            self.inner.dropped.get_or_create(&QUEUE_FULL).inc();
            self.inner
                .unlogged_queue_full
                .fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// A batch of `n` admitted spans has been sent, or lost with `error`.
    fn settle(&self, n: usize, error: Option<String>) {
        self.inner.pending.fetch_sub(n, Ordering::AcqRel);
        self.inner.pending_gauge.dec_by(n as i64);
        match error {
            None => {
                self.inner.exported.inc_by(n as u64);
                if self.inner.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        service = %self.inner.service,
                        endpoint = %self.inner.endpoint,
                        "trace export recovered"
                    );
                }
            }
            Some(error) => {
                self.inner
                    .dropped
                    .get_or_create(&EXPORT_FAILED)
                    .inc_by(n as u64);
                self.inner
                    .unlogged_failed
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.inner.failing.store(true, Ordering::Relaxed);
                *self
                    .inner
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = error;
            }
        }
        self.log_losses();
    }

    /// Logs the spans lost since the last line, at most once per [`LOG_INTERVAL`]. Runs on the
    /// exporter's thread only (never inside a span's end, where the subscriber is busy).
    fn log_losses(&self) {
        let mut last = self
            .inner
            .last_log
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < LOG_INTERVAL) {
            return;
        }
        let queue_full = self.inner.unlogged_queue_full.swap(0, Ordering::Relaxed);
        let failed = self.inner.unlogged_failed.swap(0, Ordering::Relaxed);
        if queue_full + failed == 0 {
            return;
        }
        let error = self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tracing::warn!(
            service = %self.inner.service,
            endpoint = %self.inner.endpoint,
            dropped_queue_full = queue_full,
            dropped_export_failed = failed,
            last_error = %error,
            interval_s = LOG_INTERVAL.as_secs(),
            "spans were dropped; serving is not affected"
        );
        *last = Some(Instant::now());
    }
}

/// The SDK's batch processor behind an admission bound that counts what it turns away.
#[derive(Debug)]
pub(super) struct BoundedQueue {
    inner: BatchSpanProcessor,
    capacity: usize,
    stats: ExportStats,
}

impl SpanProcessor for BoundedQueue {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        // The inner queue holds at most what was admitted, so it never drops on its own.
        if self.stats.admit(self.capacity) {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, counting each batch's outcome.
#[derive(Debug)]
struct CountingExporter<E> {
    inner: E,
    stats: ExportStats,
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let outcome = self.inner.export(batch).await;
        self.stats
            .settle(n, outcome.as_ref().err().map(ToString::to_string));
        outcome
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_stops_at_capacity_and_counts_the_rest() {
        let stats = ExportStats::new("ml/stable".into(), "http://127.0.0.1:1/v1/traces");
        assert!(stats.admit(2));
        assert!(stats.admit(2));
        assert!(!stats.admit(2), "a third pending span is over the bound");
        assert_eq!(stats.dropped(), 1);
        stats.settle(2, None);
        assert_eq!(stats.exported(), 2);
        assert!(stats.admit(2), "room again once the batch is settled");
        stats.settle(1, Some("connection refused".into()));
        assert_eq!(stats.dropped(), 2);
        assert_eq!(stats.inner.pending.load(Ordering::Relaxed), 0);
    }
}
