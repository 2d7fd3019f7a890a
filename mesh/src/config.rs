//! Configuration is read once at start from the environment into typed values. A bad value stops the
//! service with a message that names the variable. Tests build an [`Env`] from pairs instead of touching
//! the process environment.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use crate::identity::{ServiceIdentity, Version};
use crate::limits::ServingLimits;
use crate::telemetry::{ExportSettings, Sampler, TelemetryConfig};

pub const PORT: &str = "PORT";
pub const SERVICE_VERSION: &str = "SERVICE_VERSION";
pub const SHUTDOWN_DELAY_MS: &str = "SHUTDOWN_DELAY_MS";
pub const SHUTDOWN_DRAIN_MS: &str = "SHUTDOWN_DRAIN_MS";
pub const RUST_LOG: &str = "RUST_LOG";
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
pub const OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
pub const OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
pub const OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
pub const OTEL_BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
pub const OTEL_BSP_MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
pub const OTEL_BSP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
/// The largest upload a tier accepts, in bytes; beyond it the answer is 413 `payload_too_large`.
pub const MAX_UPLOAD_BYTES: &str = "MAX_UPLOAD_BYTES";
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
// The serving bounds every tier shares (see `crate::limits` for defaults and why).
pub const HTTP_HEADER_READ_TIMEOUT_MS: &str = "HTTP_HEADER_READ_TIMEOUT_MS";
pub const HTTP_BODY_READ_TIMEOUT_MS: &str = "HTTP_BODY_READ_TIMEOUT_MS";
pub const HTTP_MAX_HEADER_BYTES: &str = "HTTP_MAX_HEADER_BYTES";
pub const HTTP_MAX_CONNECTIONS: &str = "HTTP_MAX_CONNECTIONS";
pub const HTTP_MAX_IN_FLIGHT: &str = "HTTP_MAX_IN_FLIGHT";

/// A snapshot of environment variables.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name} is required but not set")]
    Missing { name: &'static str },
    #[error("{name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    pub fn invalid(name: &'static str, value: impl Into<String>, reason: impl Display) -> Self {
        ConfigError::Invalid {
            name,
            value: value.into(),
            reason: reason.to_string(),
        }
    }
}

impl Env {
    /// Reads the process environment (only `main` should call this). Variables whose value is not
    /// UTF-8 are kept as lossy strings so that parsing names them instead of ignoring them.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        }))
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The raw value; an empty value counts as unset, as most tools treat it.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    pub fn get<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.raw(name)
            .map(|value| {
                value
                    .trim()
                    .parse()
                    .map_err(|e| ConfigError::invalid(name, value, e))
            })
            .transpose()
    }

    pub fn get_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.get(name)?.unwrap_or(default))
    }

    pub fn require<T>(&self, name: &'static str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.get(name)?.ok_or(ConfigError::Missing { name })
    }

    /// A number that must be greater than zero (counts, sizes, limits).
    pub fn positive_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Default + Display,
        T::Err: Display,
    {
        let value = self.get_or(name, default)?;
        if value > T::default() {
            Ok(value)
        } else {
            Err(ConfigError::invalid(
                name,
                value.to_string(),
                "must be greater than zero",
            ))
        }
    }

    /// `MAX_UPLOAD_BYTES`: a byte size greater than zero, 10 MiB when unset.
    pub fn max_upload_bytes(&self) -> Result<usize, ConfigError> {
        self.positive_or(MAX_UPLOAD_BYTES, DEFAULT_MAX_UPLOAD_BYTES)
    }

    /// A required http(s) base URL (see [`parse_base_url`]).
    pub fn base_url(&self, name: &'static str) -> Result<String, ConfigError> {
        let raw = self.require::<String>(name)?;
        parse_base_url(&raw).map_err(|e| ConfigError::invalid(name, raw.as_str(), e))
    }

    /// A duration in whole milliseconds that must be at least 1 ms.
    pub fn positive_millis_or(
        &self,
        name: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let value = self.millis_or(name, default)?;
        if value.is_zero() {
            Err(ConfigError::invalid(name, "0", "must be at least 1 ms"))
        } else {
            Ok(value)
        }
    }

    /// A duration given in whole milliseconds.
    pub fn millis_or(
        &self,
        name: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        Ok(self
            .get::<u64>(name)?
            .map(Duration::from_millis)
            .unwrap_or(default))
    }
}

/// Why a base URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidBaseUrl {
    #[error("not a URL: {0}")]
    NotAUrl(String),
    #[error("expected an http(s) URL with a host, e.g. http://ml:5001")]
    NotHttp,
    #[error("expected a base URL without query or fragment")]
    HasQuery,
}

/// An http(s) base URL with a host and without query or fragment, kept without its trailing slash.
pub fn parse_base_url(value: &str) -> Result<String, InvalidBaseUrl> {
    let url =
        reqwest::Url::parse(value.trim()).map_err(|e| InvalidBaseUrl::NotAUrl(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(InvalidBaseUrl::NotHttp);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(InvalidBaseUrl::HasQuery);
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// What every service needs to take part in the mesh.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    pub port: u16,
    pub identity: ServiceIdentity,
    /// How long to keep serving after SIGTERM with readiness already failing, so that load balancers
    /// stop sending new requests before the listener closes.
    pub shutdown_delay: Duration,
    /// The bound on waiting for in-flight requests once the listener has closed.
    pub drain: Duration,
    /// Slow and abusive clients: time, size and concurrency bounds on what the server holds.
    pub limits: ServingLimits,
    pub telemetry: TelemetryConfig,
}

impl MeshConfig {
    pub fn from_env(
        service: &'static str,
        default_port: u16,
        env: &Env,
    ) -> Result<Self, ConfigError> {
        let version = env.get_or(SERVICE_VERSION, Version::Stable)?;
        let identity = ServiceIdentity::new(service, version);
        Ok(Self {
            port: env.get_or(PORT, default_port)?,
            shutdown_delay: env.millis_or(SHUTDOWN_DELAY_MS, Duration::ZERO)?,
            drain: env.millis_or(SHUTDOWN_DRAIN_MS, Duration::from_secs(10))?,
            limits: ServingLimits::from_env(env)?,
            telemetry: TelemetryConfig::from_env(&identity, env)?,
            identity,
        })
    }
}

impl ServingLimits {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let max_header_bytes =
            env.positive_or(HTTP_MAX_HEADER_BYTES, Self::DEFAULT_MAX_HEADER_BYTES)?;
        if max_header_bytes < Self::MIN_MAX_HEADER_BYTES {
            return Err(ConfigError::invalid(
                HTTP_MAX_HEADER_BYTES,
                max_header_bytes.to_string(),
                format!("must be at least {}", Self::MIN_MAX_HEADER_BYTES),
            ));
        }
        Ok(Self {
            header_read_timeout: env.positive_millis_or(
                HTTP_HEADER_READ_TIMEOUT_MS,
                Self::DEFAULT_HEADER_READ_TIMEOUT,
            )?,
            body_read_timeout: env
                .positive_millis_or(HTTP_BODY_READ_TIMEOUT_MS, Self::DEFAULT_BODY_READ_TIMEOUT)?,
            max_header_bytes,
            max_connections: env
                .positive_or(HTTP_MAX_CONNECTIONS, Self::DEFAULT_MAX_CONNECTIONS)?,
            max_in_flight: env.positive_or(HTTP_MAX_IN_FLIGHT, Self::DEFAULT_MAX_IN_FLIGHT)?,
        })
    }
}

impl TelemetryConfig {
    fn from_env(identity: &ServiceIdentity, env: &Env) -> Result<Self, ConfigError> {
        let disabled = env.get_or(OTEL_SDK_DISABLED, false)?;
        let traces_endpoint = match env.raw(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
            Some(url) => Some(parse_url(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, url)?),
            None => env
                .raw(OTEL_EXPORTER_OTLP_ENDPOINT)
                .map(|base| {
                    parse_url(OTEL_EXPORTER_OTLP_ENDPOINT, base)
                        .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
                })
                .transpose()?,
        };
        Ok(Self {
            service_name: env
                .raw(OTEL_SERVICE_NAME)
                .map(str::to_owned)
                .unwrap_or_else(|| identity.service().to_owned()),
            otlp_traces_endpoint: traces_endpoint.filter(|_| !disabled),
            sampler: Sampler::from_env(
                env.raw(OTEL_TRACES_SAMPLER),
                env.raw(OTEL_TRACES_SAMPLER_ARG),
            )?,
            export: ExportSettings::from_env(env)?,
            log_filter: env.raw(RUST_LOG).unwrap_or("info").to_owned(),
        })
    }
}

impl ExportSettings {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        // The signal-specific variable wins over the general one, as the OTLP spec says.
        for name in [
            OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
            OTEL_EXPORTER_OTLP_PROTOCOL,
        ] {
            if let Some(protocol) = env.raw(name) {
                if protocol.trim() != "http/protobuf" {
                    return Err(ConfigError::invalid(
                        name,
                        protocol,
                        "only http/protobuf is supported (OTLP over HTTP, port 4318)",
                    ));
                }
                break;
            }
        }
        let timeout_name = if env.raw(OTEL_EXPORTER_OTLP_TRACES_TIMEOUT).is_some() {
            OTEL_EXPORTER_OTLP_TRACES_TIMEOUT
        } else {
            OTEL_EXPORTER_OTLP_TIMEOUT
        };
        let settings = Self {
            timeout: positive_millis(env, timeout_name, defaults.timeout)?,
            schedule_delay: positive_millis(env, OTEL_BSP_SCHEDULE_DELAY, defaults.schedule_delay)?,
            max_queue_size: positive_count(env, OTEL_BSP_MAX_QUEUE_SIZE, defaults.max_queue_size)?,
            max_export_batch_size: positive_count(
                env,
                OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
                defaults.max_export_batch_size,
            )?,
        };
        // The SDK's rule: a batch never holds more than the queue.
        Ok(Self {
            max_export_batch_size: settings.max_export_batch_size.min(settings.max_queue_size),
            ..settings
        })
    }
}

fn positive_millis(
    env: &Env,
    name: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let value = env.millis_or(name, default)?;
    if value.is_zero() {
        return Err(ConfigError::invalid(name, "0", "must be at least 1 ms"));
    }
    Ok(value)
}

fn positive_count(env: &Env, name: &'static str, default: usize) -> Result<usize, ConfigError> {
    let value = env.get_or(name, default)?;
    if value == 0 {
        return Err(ConfigError::invalid(name, "0", "must be at least 1"));
    }
    Ok(value)
}

fn parse_url(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    match value.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(value.to_owned()),
        _ => Err(ConfigError::invalid(
            name,
            value,
            "expected an http:// or https:// URL",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn shared_parsers_name_the_variable_and_the_problem() {
        let e = env(&[
            ("N", "0"),
            ("URL", "ftp://x"),
            ("T", "0"),
            (MAX_UPLOAD_BYTES, "-1"),
        ]);
        let zero = e.positive_or::<usize>("N", 1).expect_err("0 refused");
        assert!(zero.to_string().contains("N=\"0\""), "{zero}");
        assert!(zero.to_string().contains("greater than zero"), "{zero}");
        let url = e.base_url("URL").expect_err("ftp refused");
        assert!(
            url.to_string().contains("URL") && url.to_string().contains("http(s)"),
            "{url}"
        );
        assert!(e.positive_millis_or("T", Duration::from_secs(1)).is_err());
        assert!(e.max_upload_bytes().is_err());
        let ok = env(&[("URL", " http://ml:5001/ ")]);
        assert_eq!(ok.base_url("URL").expect("base url"), "http://ml:5001");
        assert_eq!(
            ok.max_upload_bytes().expect("default"),
            DEFAULT_MAX_UPLOAD_BYTES
        );
        assert_eq!(ok.positive_or::<u32>("N", 7).expect("default"), 7);
        assert_eq!(
            parse_base_url("http://ml:5001/?q=1"),
            Err(InvalidBaseUrl::HasQuery)
        );
    }

    #[test]
    fn defaults_apply_when_unset() {
        let cfg = MeshConfig::from_env("ml", 5001, &env(&[])).expect("defaults are valid");
        assert_eq!(cfg.port, 5001);
        assert_eq!(cfg.identity.to_string(), "ml/stable");
        assert_eq!(cfg.telemetry.otlp_traces_endpoint, None);
        assert_eq!(cfg.telemetry.service_name, "ml");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = MeshConfig::from_env("ml", 5001, &env(&[("PORT", "80a")])).unwrap_err();
        assert!(
            err.to_string().starts_with("PORT=\"80a\" is invalid"),
            "{err}"
        );
        let err =
            MeshConfig::from_env("ml", 5001, &env(&[("SERVICE_VERSION", "beta")])).unwrap_err();
        assert!(err.to_string().contains("SERVICE_VERSION"), "{err}");
        let err = MeshConfig::from_env(
            "ml",
            5001,
            &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
            "{err}"
        );
        let err = MeshConfig::from_env("ml", 5001, &env(&[("OTEL_TRACES_SAMPLER", "sometimes")]))
            .unwrap_err();
        assert!(err.to_string().contains("OTEL_TRACES_SAMPLER"), "{err}");
    }

    #[test]
    fn otlp_endpoint_gets_the_traces_path() {
        let cfg = MeshConfig::from_env(
            "backend",
            8080,
            &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318/")]),
        )
        .expect("valid");
        assert_eq!(
            cfg.telemetry.otlp_traces_endpoint.as_deref(),
            Some("http://jaeger:4318/v1/traces")
        );
    }

    #[test]
    fn export_settings_follow_the_otel_variables() {
        let cfg = MeshConfig::from_env(
            "ml",
            5001,
            &env(&[
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                ("OTEL_BSP_SCHEDULE_DELAY", "100"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ]),
        )
        .expect("valid");
        let export = cfg.telemetry.export;
        assert_eq!(export.timeout, Duration::from_millis(2500));
        assert_eq!(export.schedule_delay, Duration::from_millis(100));
        assert_eq!(export.max_queue_size, 64);
        assert_eq!(
            export.max_export_batch_size, 64,
            "a batch never exceeds the queue"
        );
        for (name, value) in [
            (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
            (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "http/json"),
            (OTEL_EXPORTER_OTLP_TIMEOUT, "0"),
            (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, "soon"),
            (OTEL_BSP_MAX_QUEUE_SIZE, "0"),
            (OTEL_BSP_SCHEDULE_DELAY, "-5"),
        ] {
            let err = MeshConfig::from_env("ml", 5001, &env(&[(name, value)])).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn serving_limits_default_and_refuse_nonsense() {
        let cfg = MeshConfig::from_env("ml", 5001, &env(&[])).expect("defaults");
        assert_eq!(cfg.limits, ServingLimits::default());
        let cfg = MeshConfig::from_env(
            "ml",
            5001,
            &env(&[
                (HTTP_HEADER_READ_TIMEOUT_MS, "250"),
                (HTTP_BODY_READ_TIMEOUT_MS, "1500"),
                (HTTP_MAX_HEADER_BYTES, "8192"),
                (HTTP_MAX_CONNECTIONS, "10"),
                (HTTP_MAX_IN_FLIGHT, "2"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            cfg.limits,
            ServingLimits {
                header_read_timeout: Duration::from_millis(250),
                body_read_timeout: Duration::from_millis(1500),
                max_header_bytes: 8192,
                max_connections: 10,
                max_in_flight: 2,
            }
        );
        for (name, value) in [
            (HTTP_HEADER_READ_TIMEOUT_MS, "0"),
            (HTTP_BODY_READ_TIMEOUT_MS, "soon"),
            (HTTP_MAX_HEADER_BYTES, "100"),
            (HTTP_MAX_CONNECTIONS, "0"),
            (HTTP_MAX_IN_FLIGHT, "-1"),
        ] {
            let err = MeshConfig::from_env("ml", 5001, &env(&[(name, value)])).unwrap_err();
            assert!(err.to_string().starts_with(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn required_values_report_missing() {
        let err = env(&[("ML_URL", " ")])
            .require::<String>("ML_URL")
            .unwrap_err();
        assert_eq!(err, ConfigError::Missing { name: "ML_URL" });
    }
}
