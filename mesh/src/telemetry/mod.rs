//! Tracing: `tracing` spans bridged to OpenTelemetry by `tracing-opentelemetry`, JSON logs that carry
//! the trace and span ids, and OTLP/HTTP export only when the standard OTEL variables ask for it.
//!
//! A service binary installs its telemetry once, globally ([`init`]); the local lab gives each
//! in-process replica its own ([`scoped`]): a dispatcher and tracer provider of its own, so that its
//! spans carry its own `service.name` and `service.version`, as a separate process's would. Tests
//! pass their own sink and, with [`install`], a provider with an in-memory exporter.
//!
//! How export runs is in [`export`]: the SDK's batch processor on its own thread with a blocking
//! HTTP client, behind a bounded queue whose drops are counted and logged once per interval.

mod export;

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{self as sdktrace, SdkTracerProvider};
use tracing::Dispatch;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{ConfigError, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG};
use crate::identity::ServiceIdentity;

pub use export::ExportStats;

#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    pub service_name: String,
    /// Full OTLP/HTTP traces URL; `None` keeps export off.
    pub otlp_traces_endpoint: Option<String>,
    pub sampler: Sampler,
    pub export: ExportSettings,
    pub log_filter: String,
}

/// How spans leave the process (the OTel SDK's batch settings and the exporter's timeout).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExportSettings {
    /// Bound on one export request, retries included (`OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub timeout: Duration,
    /// How long spans wait to be batched (`OTEL_BSP_SCHEDULE_DELAY`).
    pub schedule_delay: Duration,
    /// Spans held for export at most; more are dropped and counted (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub max_queue_size: usize,
    /// Spans sent in one request at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    pub max_export_batch_size: usize,
}

/// The OpenTelemetry specification's defaults.
impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            schedule_delay: Duration::from_secs(5),
            max_queue_size: 2048,
            max_export_batch_size: 512,
        }
    }
}

/// The OpenTelemetry sampler names of `OTEL_TRACES_SAMPLER`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

impl Sampler {
    pub(crate) fn from_env(name: Option<&str>, arg: Option<&str>) -> Result<Self, ConfigError> {
        let ratio = || -> Result<f64, ConfigError> {
            let Some(arg) = arg else { return Ok(1.0) };
            match arg.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(ConfigError::invalid(
                    OTEL_TRACES_SAMPLER_ARG,
                    arg,
                    "expected a ratio between 0 and 1",
                )),
            }
        };
        Ok(match name.map(str::trim) {
            None | Some("parentbased_always_on") => Sampler::ParentBasedAlwaysOn,
            Some("always_on") => Sampler::AlwaysOn,
            Some("always_off") => Sampler::AlwaysOff,
            Some("traceidratio") => Sampler::TraceIdRatio(ratio()?),
            Some("parentbased_always_off") => Sampler::ParentBasedAlwaysOff,
            Some("parentbased_traceidratio") => Sampler::ParentBasedTraceIdRatio(ratio()?),
            Some(other) => {
                return Err(ConfigError::invalid(
                    OTEL_TRACES_SAMPLER,
                    other,
                    "expected one of always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off, parentbased_traceidratio",
                ));
            }
        })
    }

    /// The name `OTEL_TRACES_SAMPLER` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Sampler::AlwaysOn => "always_on",
            Sampler::AlwaysOff => "always_off",
            Sampler::TraceIdRatio(_) => "traceidratio",
            Sampler::ParentBasedAlwaysOn => "parentbased_always_on",
            Sampler::ParentBasedAlwaysOff => "parentbased_always_off",
            Sampler::ParentBasedTraceIdRatio(_) => "parentbased_traceidratio",
        }
    }

    fn to_sdk(self) -> sdktrace::Sampler {
        use sdktrace::Sampler as S;
        match self {
            Sampler::AlwaysOn => S::AlwaysOn,
            Sampler::AlwaysOff => S::AlwaysOff,
            Sampler::TraceIdRatio(r) => S::TraceIdRatioBased(r),
            Sampler::ParentBasedAlwaysOn => S::ParentBased(Box::new(S::AlwaysOn)),
            Sampler::ParentBasedAlwaysOff => S::ParentBased(Box::new(S::AlwaysOff)),
            Sampler::ParentBasedTraceIdRatio(r) => {
                S::ParentBased(Box::new(S::TraceIdRatioBased(r)))
            }
        }
    }
}

impl std::fmt::Display for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sampler::TraceIdRatio(r) | Sampler::ParentBasedTraceIdRatio(r) => {
                write!(f, "{} ({r})", self.name())
            }
            _ => f.write_str(self.name()),
        }
    }
}

/// Keeps the tracer provider alive; [`TelemetryGuard::shutdown`] flushes pending spans.
#[must_use = "dropping the guard without shutdown() may lose the last spans"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    stats: Option<ExportStats>,
}

impl TelemetryGuard {
    /// Export counters to publish on the service's `/metrics`, when export is on.
    pub fn stats(&self) -> Option<ExportStats> {
        self.stats.clone()
    }

    /// Flushes what is queued, waiting at most `bound`, then stops the exporter. Runs on a blocking
    /// thread: the flush waits on the exporter's thread.
    pub async fn shutdown(self, bound: Duration) {
        let provider = self.provider;
        let outcome = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(bound))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(error) = outcome {
            tracing::warn!(%error, bound_ms = bound.as_millis() as u64, "flushing spans failed");
        }
    }
}

/// The tracer provider the configuration asks for: always present, so spans get real ids and trace
/// context propagates even when nothing is exported.
pub fn tracer_provider(
    cfg: &TelemetryConfig,
    identity: &ServiceIdentity,
) -> anyhow::Result<(SdkTracerProvider, Option<ExportStats>)> {
    let builder = SdkTracerProvider::builder()
        .with_sampler(cfg.sampler.to_sdk())
        .with_resource(resource(cfg, identity));
    let Some(endpoint) = &cfg.otlp_traces_endpoint else {
        return Ok((builder.build(), None));
    };
    let stats = ExportStats::new(identity.to_string(), endpoint);
    let processor = export::processor(endpoint, &cfg.export, stats.clone())?;
    Ok((builder.with_span_processor(processor).build(), Some(stats)))
}

pub fn resource(cfg: &TelemetryConfig, identity: &ServiceIdentity) -> Resource {
    Resource::builder()
        .with_service_name(cfg.service_name.clone())
        .with_attribute(KeyValue::new(
            "service.version",
            identity.version().as_str(),
        ))
        .build()
}

/// One line saying where this service's traces go.
fn announce(cfg: &TelemetryConfig) {
    match &cfg.otlp_traces_endpoint {
        Some(endpoint) => tracing::info!(
            endpoint = %endpoint,
            protocol = "http/protobuf",
            sampler = %cfg.sampler,
            service_name = %cfg.service_name,
            max_queue_size = cfg.export.max_queue_size,
            "trace export on"
        ),
        None => tracing::info!(
            "trace export off (set OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://127.0.0.1:4318, to turn it on)"
        ),
    }
}

/// Installs the global subscriber: JSON logs to `sink` and spans to the configured provider.
pub fn init<W>(
    cfg: &TelemetryConfig,
    identity: &ServiceIdentity,
    sink: W,
) -> anyhow::Result<TelemetryGuard>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let (provider, stats) = tracer_provider(cfg, identity)?;
    let guard = install(cfg, sink, provider)?;
    announce(cfg);
    Ok(TelemetryGuard { stats, ..guard })
}

/// Installs the global subscriber with a provider made by the caller (tests pass one with an
/// in-memory exporter).
pub fn install<W>(
    cfg: &TelemetryConfig,
    sink: W,
    provider: SdkTracerProvider,
) -> anyhow::Result<TelemetryGuard>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    subscriber(cfg, sink, &provider)?
        .try_init()
        .context("a global tracing subscriber is already installed")?;
    Ok(TelemetryGuard {
        provider,
        stats: None,
    })
}

/// Telemetry of one service that is not installed globally: spans and logs made while `dispatch`
/// is the current dispatcher belong to this service.
pub struct ScopedTelemetry {
    pub dispatch: Dispatch,
    pub guard: TelemetryGuard,
}

pub fn scoped<W>(
    cfg: &TelemetryConfig,
    identity: &ServiceIdentity,
    sink: W,
) -> anyhow::Result<ScopedTelemetry>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let (provider, stats) = tracer_provider(cfg, identity)?;
    let dispatch = Dispatch::new(subscriber(cfg, sink, &provider)?);
    tracing::dispatcher::with_default(&dispatch, || announce(cfg));
    Ok(ScopedTelemetry {
        dispatch,
        guard: TelemetryGuard { provider, stats },
    })
}

fn subscriber<W>(
    cfg: &TelemetryConfig,
    sink: W,
    provider: &SdkTracerProvider,
) -> anyhow::Result<impl tracing::Subscriber + Send + Sync + 'static>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&cfg.log_filter)
        .with_context(|| format!("RUST_LOG={:?} is not a valid filter", cfg.log_filter))?;
    let tracer = provider.tracer("3rvision-mesh");
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(sink)
        .with_filter(filter);
    Ok(tracing_subscriber::registry()
        .with(logs)
        .with(tracing_opentelemetry::layer().with_tracer(tracer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_names_follow_the_otel_spec() {
        assert_eq!(
            Sampler::from_env(None, None).ok(),
            Some(Sampler::ParentBasedAlwaysOn)
        );
        assert_eq!(
            Sampler::from_env(Some("traceidratio"), Some("0.25")).ok(),
            Some(Sampler::TraceIdRatio(0.25))
        );
        let err = Sampler::from_env(Some("parentbased_traceidratio"), Some("2")).unwrap_err();
        assert!(err.to_string().contains(OTEL_TRACES_SAMPLER_ARG), "{err}");
    }
}
