//! Tracing: `tracing` spans bridged to OpenTelemetry by `tracing-opentelemetry`, JSON logs that carry
//! the trace and span ids, and OTLP/HTTP export only when the standard OTEL variables ask for it.
//!
//! The subscriber is installed once, by `main` (or once per test binary); the sink is a parameter so
//! tests can capture logs, and [`install`] takes a ready tracer provider so tests can capture spans with
//! an in-memory exporter.

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{self as sdktrace, SdkTracerProvider};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{ConfigError, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG};
use crate::identity::ServiceIdentity;

#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    pub service_name: String,
    /// Full OTLP/HTTP traces URL; `None` keeps export off.
    pub otlp_traces_endpoint: Option<String>,
    pub sampler: Sampler,
    pub log_filter: String,
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

/// Keeps the tracer provider alive; [`TelemetryGuard::shutdown`] flushes pending spans.
#[must_use = "dropping the guard without shutdown() may lose the last spans"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("telemetry: flushing spans failed: {e}");
        }
    }
}

/// The tracer provider the configuration asks for: always present, so spans get real ids and trace
/// context propagates even when nothing is exported.
pub fn tracer_provider(
    cfg: &TelemetryConfig,
    identity: &ServiceIdentity,
) -> anyhow::Result<SdkTracerProvider> {
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(cfg.sampler.to_sdk())
        .with_resource(resource(cfg, identity));
    if let Some(endpoint) = &cfg.otlp_traces_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.clone())
            .build()
            .context("building the OTLP span exporter")?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
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

/// Installs the global subscriber: JSON logs to `sink` and spans to the configured provider.
pub fn init<W>(
    cfg: &TelemetryConfig,
    identity: &ServiceIdentity,
    sink: W,
) -> anyhow::Result<TelemetryGuard>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    install(cfg, sink, tracer_provider(cfg, identity)?)
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
    tracing_subscriber::registry()
        .with(logs)
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init()
        .context("a global tracing subscriber is already installed")?;
    Ok(TelemetryGuard { provider })
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
