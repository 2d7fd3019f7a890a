//! The ml service's configuration, read once from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORT` | 5001 | listen port (and the other `mesh` variables: `SERVICE_VERSION`, `OTEL_*`, …) |
//! | `MODEL_DIR` | `<crate>/model` | folder holding `manifest.json`, the ONNX files and labels |
//! | `MODEL_MANIFEST` | `$MODEL_DIR/manifest.json` | the model manifest |
//! | `MODEL` | by role | model name in the manifest; unset: the model whose role is `SERVICE_VERSION` (stable → Lite0, canary → Lite1) |
//! | `MODEL_PATH` | from the manifest | ONNX file to load instead (its sha256 must match the manifest) |
//! | `ML_CONV_LAYOUT` | `nhwc-fused` | `nhwc-fused` (channels-last, depthwise and 1×1 convolutions with their bias, ReLU6 and residual by the project's own fused operators, fastest), `nhwc` (tract's channels-last rewrite alone) or `nchw` (graph as exported) |
//! | `ML_WORKERS` | number of cores | classifications running at once (one thread each) |
//! | `ML_QUEUE_CAPACITY` | 16 | classifications allowed to wait; beyond that 503 `overloaded` |
//! | `MAX_UPLOAD_BYTES` | 10 MiB | largest request body; beyond that 413 `payload_too_large` |
//! | `MAX_IMAGE_PIXELS` | 50 000 000 | largest width × height (from the header); beyond that 413 `image_too_large` |
//! | `MAX_DECODE_BYTES` | 256 MiB | largest allocation a decoder may make for one image |

use std::path::PathBuf;

use mesh::config::{ConfigError, Env, MeshConfig};

use crate::classifier::{ConvLayout, ModelSelection};
use crate::photo::DecodeLimits;
use crate::pool::PoolSize;

pub const SERVICE: &str = "ml";
pub const DEFAULT_PORT: u16 = 5001;

pub const MODEL_DIR: &str = "MODEL_DIR";
pub const MODEL_MANIFEST: &str = "MODEL_MANIFEST";
pub const MODEL: &str = "MODEL";
pub const MODEL_PATH: &str = "MODEL_PATH";
pub const ML_CONV_LAYOUT: &str = "ML_CONV_LAYOUT";
pub const ML_WORKERS: &str = "ML_WORKERS";
pub const ML_QUEUE_CAPACITY: &str = "ML_QUEUE_CAPACITY";
pub use mesh::config::MAX_UPLOAD_BYTES;
pub const MAX_IMAGE_PIXELS: &str = "MAX_IMAGE_PIXELS";
pub const MAX_DECODE_BYTES: &str = "MAX_DECODE_BYTES";

/// The model bundled with the crate.
pub const BUNDLED_MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/model");

#[derive(Debug, Clone)]
pub struct Config {
    pub mesh: MeshConfig,
    pub model: ModelSelection,
    pub pool: PoolSize,
    pub max_upload_bytes: usize,
    pub decode: DecodeLimits,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mesh = MeshConfig::from_env(SERVICE, DEFAULT_PORT, env)?;
        let dir: PathBuf = env.get_or(MODEL_DIR, PathBuf::from(BUNDLED_MODEL_DIR))?;
        let manifest = env.get_or(MODEL_MANIFEST, dir.join("manifest.json"))?;
        let model = ModelSelection {
            manifest,
            name: env.get(MODEL)?,
            role: mesh.identity.version().as_str().to_owned(),
            path: env.get(MODEL_PATH)?,
            layout: env.get_or(ML_CONV_LAYOUT, ConvLayout::NhwcFused)?,
        };
        let cores = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1);
        let pool = PoolSize {
            workers: env.positive_or(ML_WORKERS, cores)?,
            queue_capacity: env.positive_or(ML_QUEUE_CAPACITY, 16)?,
        };
        let defaults = DecodeLimits::default();
        Ok(Self {
            mesh,
            model,
            pool,
            max_upload_bytes: env.max_upload_bytes()?,
            decode: DecodeLimits {
                max_pixels: env.positive_or(MAX_IMAGE_PIXELS, defaults.max_pixels)?,
                max_alloc_bytes: env.positive_or(MAX_DECODE_BYTES, defaults.max_alloc_bytes)?,
            },
        })
    }
}

mesh::mesh_service!(Config, name = SERVICE, build = crate::build);

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn defaults_pick_the_model_by_service_version() {
        let cfg = Config::from_env(&env(&[])).expect("defaults");
        assert_eq!(cfg.mesh.port, 5001);
        assert_eq!(cfg.model.role, "stable");
        assert_eq!(cfg.model.name, None);
        assert!(cfg.model.manifest.ends_with("model/manifest.json"));
        assert_eq!(cfg.model.layout, ConvLayout::NhwcFused);
        assert_eq!(cfg.pool.queue_capacity, 16);
        assert!(cfg.pool.workers >= 1);
        assert_eq!(cfg.max_upload_bytes, 10 * 1024 * 1024);
        let cfg = Config::from_env(&env(&[("SERVICE_VERSION", "canary")])).expect("canary");
        assert_eq!(cfg.model.role, "canary");
    }

    #[test]
    fn overrides_apply() {
        let cfg = Config::from_env(&env(&[
            ("MODEL_DIR", "/models"),
            ("MODEL", "efficientnet-lite1"),
            ("ML_WORKERS", "3"),
            ("ML_QUEUE_CAPACITY", "2"),
            ("MAX_IMAGE_PIXELS", "1000"),
            ("ML_CONV_LAYOUT", "nchw"),
        ]))
        .expect("valid");
        assert_eq!(cfg.model.manifest, PathBuf::from("/models/manifest.json"));
        assert_eq!(cfg.model.name.as_deref(), Some("efficientnet-lite1"));
        assert_eq!(
            cfg.pool,
            PoolSize {
                workers: 3,
                queue_capacity: 2
            }
        );
        assert_eq!(cfg.decode.max_pixels, 1000);
        assert_eq!(cfg.model.layout, ConvLayout::Nchw);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            (ML_WORKERS, "0"),
            (ML_WORKERS, "many"),
            (ML_QUEUE_CAPACITY, "-1"),
            (MAX_UPLOAD_BYTES, "10MB"),
            (MAX_IMAGE_PIXELS, "0"),
            (MAX_DECODE_BYTES, "x"),
            (ML_CONV_LAYOUT, "hwcn"),
        ] {
            let err = Config::from_env(&env(&[(name, value)])).expect_err(name);
            assert!(err.to_string().contains(name), "{name}={value}: {err}");
        }
    }
}
