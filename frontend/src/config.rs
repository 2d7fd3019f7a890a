//! The frontend's configuration, read once from the environment at start.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use mesh::config::{ConfigError, Env, MeshConfig};

/// Port the frontend listens on unless `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 3000;
/// Base URL of the backend tier, e.g. `http://backend:8080` (required).
pub const BACKEND_URL: &str = "BACKEND_URL";
/// How long one analysis may take at the backend, in milliseconds.
pub const BACKEND_TIMEOUT_MS: &str = "BACKEND_TIMEOUT_MS";
/// Largest photo the upload form accepts, in bytes.
pub use mesh::config::MAX_UPLOAD_BYTES;
/// Base URL of the tracing UI (Jaeger); when set, result pages link the request's trace.
pub const TRACING_UI_URL: &str = "TRACING_UI_URL";

const DEFAULT_BACKEND_TIMEOUT: Duration = Duration::from_secs(10);
use mesh::config::DEFAULT_MAX_UPLOAD_BYTES;
/// Upper bound for `MAX_UPLOAD_BYTES`: the whole upload is held in memory while it is forwarded.
const MAX_UPLOAD_CEILING: usize = 256 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    pub mesh: MeshConfig,
    pub backend_url: BackendUrl,
    pub backend_timeout: BackendTimeout,
    pub max_upload: UploadLimit,
    pub tracing_ui: Option<TracingUiUrl>,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            mesh: MeshConfig::from_env("frontend", DEFAULT_PORT, env)?,
            backend_url: env.require(BACKEND_URL)?,
            backend_timeout: env
                .get_or(BACKEND_TIMEOUT_MS, BackendTimeout(DEFAULT_BACKEND_TIMEOUT))?,
            max_upload: env.get_or(MAX_UPLOAD_BYTES, UploadLimit(DEFAULT_MAX_UPLOAD_BYTES))?,
            tracing_ui: env.get(TRACING_UI_URL)?,
        })
    }
}

/// Why a configured value was refused; becomes the `reason` of a [`ConfigError`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    #[error(transparent)]
    BaseUrl(#[from] mesh::config::InvalidBaseUrl),
    #[error("expected a whole number")]
    NotANumber,
    #[error("must be greater than zero")]
    Zero,
    #[error("must be at most {0}")]
    TooLarge(usize),
}

/// Where the backend tier answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendUrl(String);

impl BackendUrl {
    /// The backend's analysis endpoint.
    pub fn analyze_endpoint(&self) -> String {
        format!("{}/api/v1/analyze", self.0)
    }
}

impl FromStr for BackendUrl {
    type Err = ValueError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(mesh::config::parse_base_url(value)?))
    }
}

impl fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tracing UI (Jaeger) that result pages link to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracingUiUrl(String);

impl TracingUiUrl {
    /// The page showing one trace, Jaeger style: `{base}/trace/{trace_id}`.
    pub fn trace_link(&self, trace_id: &str) -> String {
        format!("{}/trace/{trace_id}", self.0)
    }
}

impl FromStr for TracingUiUrl {
    type Err = ValueError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(mesh::config::parse_base_url(value)?))
    }
}

/// How long the frontend waits for the backend's answer (milliseconds in the environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendTimeout(pub Duration);

impl FromStr for BackendTimeout {
    type Err = ValueError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let millis: u64 = value.trim().parse().map_err(|_| ValueError::NotANumber)?;
        if millis == 0 {
            return Err(ValueError::Zero);
        }
        Ok(Self(Duration::from_millis(millis)))
    }
}

/// The largest photo accepted, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimit(pub usize);

impl UploadLimit {
    pub fn bytes(self) -> usize {
        self.0
    }
}

impl FromStr for UploadLimit {
    type Err = ValueError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let bytes: usize = value.trim().parse().map_err(|_| ValueError::NotANumber)?;
        match bytes {
            0 => Err(ValueError::Zero),
            b if b > MAX_UPLOAD_CEILING => Err(ValueError::TooLarge(MAX_UPLOAD_CEILING)),
            b => Ok(Self(b)),
        }
    }
}

/// "10 MiB", "512 KiB", "900 bytes": a size as people read it.
pub fn human_size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else if bytes >= KIB {
        format!("{:.1} KiB", bytes as f64 / KIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

mesh::mesh_service!(Config, name = "frontend", build = crate::build);

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_apply_when_only_the_backend_is_given() {
        let config = Config::from_env(&env(&[(BACKEND_URL, "http://backend:8080/")]))
            .expect("a valid configuration");
        assert_eq!(
            config.backend_url.analyze_endpoint(),
            "http://backend:8080/api/v1/analyze"
        );
        assert_eq!(config.backend_timeout.0, Duration::from_secs(10));
        assert_eq!(config.max_upload.bytes(), 10 * 1024 * 1024);
        assert_eq!(config.mesh.port, 3000);
        assert!(config.tracing_ui.is_none());
    }

    #[test]
    fn every_value_can_be_set() {
        let config = Config::from_env(&env(&[
            (BACKEND_URL, "https://backend.backend.svc:8443/base"),
            (BACKEND_TIMEOUT_MS, "250"),
            (MAX_UPLOAD_BYTES, "2048"),
            (TRACING_UI_URL, "http://localhost:16686/"),
            ("PORT", "3100"),
            ("SERVICE_VERSION", "canary"),
        ]))
        .expect("a valid configuration");
        assert_eq!(
            config.backend_url.analyze_endpoint(),
            "https://backend.backend.svc:8443/base/api/v1/analyze"
        );
        assert_eq!(config.backend_timeout.0, Duration::from_millis(250));
        assert_eq!(config.max_upload.bytes(), 2048);
        assert_eq!(
            config
                .tracing_ui
                .expect("TRACING_UI_URL was set")
                .trace_link("abc"),
            "http://localhost:16686/trace/abc"
        );
        assert_eq!(config.mesh.port, 3100);
        assert_eq!(config.mesh.identity.to_string(), "frontend/canary");
    }

    #[test]
    fn a_missing_backend_url_names_the_variable() {
        let err = Config::from_env(&env(&[])).expect_err("BACKEND_URL is required");
        assert!(err.to_string().contains(BACKEND_URL), "{err}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            (BACKEND_URL, "backend:8080"),
            (BACKEND_URL, "ftp://backend"),
            (BACKEND_URL, "http://backend:8080/?x=1"),
            (BACKEND_TIMEOUT_MS, "ten"),
            (BACKEND_TIMEOUT_MS, "0"),
            (MAX_UPLOAD_BYTES, "-5"),
            (MAX_UPLOAD_BYTES, "0"),
            (MAX_UPLOAD_BYTES, "999999999999"),
            (TRACING_UI_URL, "jaeger"),
        ];
        for (name, value) in cases {
            let mut pairs = vec![(BACKEND_URL, "http://backend:8080")];
            pairs.retain(|(k, _)| *k != name);
            pairs.push((name, value));
            let err = Config::from_env(&env(&pairs))
                .expect_err(&format!("{name}={value} must be refused"));
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(10 * 1024 * 1024), "10 MiB");
        assert_eq!(human_size(1536 * 1024), "1.5 MiB");
        assert_eq!(human_size(2048), "2 KiB");
        assert_eq!(human_size(1500), "1.5 KiB");
        assert_eq!(human_size(900), "900 bytes");
    }
}
