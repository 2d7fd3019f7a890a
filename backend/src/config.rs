//! The backend's configuration, read once from the environment at start.

use std::time::Duration;

use mesh::config::{ConfigError, Env, MeshConfig};

use crate::assessment::MinConfidence;

/// The service name in `x-served-by` and `served_by`.
pub const SERVICE: &str = "backend";
pub const DEFAULT_PORT: u16 = 8080;

/// Base URL of the ml service, e.g. `http://ml:5001` (required).
pub const ML_URL: &str = "ML_URL";
/// How long one classify call may take, in milliseconds.
pub const ML_TIMEOUT_MS: &str = "ML_TIMEOUT_MS";
/// The largest image accepted, in bytes.
pub use mesh::config::MAX_UPLOAD_BYTES;
/// Below this probability the answer is "not sure what this is".
pub const MIN_CONFIDENCE: &str = "MIN_CONFIDENCE";
/// How many analyses may run at once; more are refused with 503 rather than queued.
pub const MAX_CONCURRENT_ANALYSES: &str = "MAX_CONCURRENT_ANALYSES";

pub const DEFAULT_ML_TIMEOUT: Duration = Duration::from_millis(5_000);
pub use mesh::config::DEFAULT_MAX_UPLOAD_BYTES;
pub const DEFAULT_MAX_CONCURRENT_ANALYSES: usize = 32;

#[derive(Debug, Clone)]
pub struct Config {
    pub mesh: MeshConfig,
    /// Without a trailing slash.
    pub ml_url: String,
    pub ml_timeout: Duration,
    pub max_upload_bytes: usize,
    pub min_confidence: MinConfidence,
    /// Bounds the memory held by uploads in flight (at most this many × `max_upload_bytes`).
    pub max_concurrent_analyses: usize,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mesh = MeshConfig::from_env(SERVICE, DEFAULT_PORT, env)?;
        Ok(Self {
            mesh,
            max_concurrent_analyses: env
                .positive_or(MAX_CONCURRENT_ANALYSES, DEFAULT_MAX_CONCURRENT_ANALYSES)?,
            ml_url: env.base_url(ML_URL)?,
            ml_timeout: env.positive_millis_or(ML_TIMEOUT_MS, DEFAULT_ML_TIMEOUT)?,
            max_upload_bytes: env.max_upload_bytes()?,
            min_confidence: env.get_or(MIN_CONFIDENCE, MinConfidence::DEFAULT)?,
        })
    }
}

mesh::mesh_service!(Config, name = "backend", build = crate::build);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_env(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_apply_when_only_ml_url_is_set() {
        let cfg = config(&[(ML_URL, "http://ml:5001/")]).expect("valid");
        assert_eq!(cfg.ml_url, "http://ml:5001");
        assert_eq!(cfg.ml_timeout, DEFAULT_ML_TIMEOUT);
        assert_eq!(cfg.max_upload_bytes, DEFAULT_MAX_UPLOAD_BYTES);
        assert_eq!(cfg.min_confidence, MinConfidence::DEFAULT);
        assert_eq!(cfg.mesh.port, DEFAULT_PORT);
        assert_eq!(cfg.mesh.identity.to_string(), "backend/stable");
    }

    #[test]
    fn ml_url_is_required() {
        assert_eq!(
            config(&[]).err(),
            Some(ConfigError::Missing { name: ML_URL })
        );
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let cases: &[(&str, &str)] = &[
            (ML_URL, "ml:5001"),
            (ML_URL, "ftp://ml"),
            (ML_URL, "http://ml:5001/?x=1"),
            (ML_TIMEOUT_MS, "soon"),
            (ML_TIMEOUT_MS, "0"),
            (MAX_UPLOAD_BYTES, "-1"),
            (MAX_UPLOAD_BYTES, "0"),
            (MIN_CONFIDENCE, "2"),
            (MIN_CONFIDENCE, "high"),
            (MAX_CONCURRENT_ANALYSES, "0"),
            (MAX_CONCURRENT_ANALYSES, "many"),
            ("SERVICE_VERSION", "beta"),
        ];
        for &(name, value) in cases {
            let mut pairs = vec![(ML_URL, "http://ml:5001")];
            pairs.push((name, value));
            let err = config(&pairs).expect_err(&format!("{name}={value} accepted"));
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn canary_and_overrides_are_read() {
        let cfg = config(&[
            (ML_URL, "https://ml.ml.svc.cluster.local:5001/base"),
            (ML_TIMEOUT_MS, "250"),
            (MAX_UPLOAD_BYTES, "1024"),
            (MIN_CONFIDENCE, "0.6"),
            ("SERVICE_VERSION", "canary"),
            ("PORT", "18080"),
        ])
        .expect("valid");
        assert_eq!(cfg.ml_url, "https://ml.ml.svc.cluster.local:5001/base");
        assert_eq!(cfg.ml_timeout, Duration::from_millis(250));
        assert_eq!(cfg.max_upload_bytes, 1024);
        assert_eq!(cfg.min_confidence.get(), 0.6);
        assert_eq!(cfg.mesh.identity.to_string(), "backend/canary");
        assert_eq!(cfg.mesh.port, 18080);
    }
}
