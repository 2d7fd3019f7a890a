//! The model manifest (`ml/model/manifest.json`): which ONNX files exist, their checksums, roles
//! (stable / canary), labels and preprocessing constants.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::preprocess::Preprocessing;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read the model manifest {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the model manifest {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the model manifest {path} has no model {wanted}; it has: {available}")]
    NoSuchModel {
        path: PathBuf,
        wanted: String,
        available: String,
    },
    #[error("model {model} in the manifest is not usable: {reason}")]
    Unsupported { model: String, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub models: Vec<ModelEntry>,
    /// Folder the manifest was read from; file names inside are relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub version: String,
    /// `stable` or `canary`: which build serves this model by default.
    pub role: Option<String>,
    pub file: String,
    pub sha256: String,
    pub input_size: u32,
    pub output: OutputSpec,
    pub labels: LabelsSpec,
    /// Kept verbatim as well, so `GET /v1/model` shows exactly what the manifest says.
    pub preprocessing: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutputSpec {
    pub kind: String,
    pub shape: Vec<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LabelsSpec {
    pub file: String,
    pub count: usize,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct PreprocessingSpec {
    crop_fraction: String,
    resize_size: [u32; 2],
    mean: f32,
    std: f32,
    layout: String,
    channel_order: String,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ManifestError> {
        let mut manifest: Manifest =
            serde_json::from_str(text).map_err(|source| ManifestError::Parse {
                path: path.to_owned(),
                source,
            })?;
        manifest.path = path.to_owned();
        manifest.dir = path.parent().map(Path::to_owned).unwrap_or_default();
        Ok(manifest)
    }

    fn available(&self) -> String {
        self.models
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn by_name(&self, name: &str) -> Result<&ModelEntry, ManifestError> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| ManifestError::NoSuchModel {
                path: self.path.clone(),
                wanted: name.to_owned(),
                available: self.available(),
            })
    }

    pub fn by_role(&self, role: &str) -> Result<&ModelEntry, ManifestError> {
        self.models
            .iter()
            .find(|m| m.role.as_deref() == Some(role))
            .ok_or_else(|| ManifestError::NoSuchModel {
                path: self.path.clone(),
                wanted: format!("with role {role}"),
                available: self.available(),
            })
    }

    pub fn resolve(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

impl ModelEntry {
    fn unsupported(&self, reason: impl Into<String>) -> ManifestError {
        ManifestError::Unsupported {
            model: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The preprocessing constants, checked against what this service implements.
    pub fn preprocessing(&self) -> Result<Preprocessing, ManifestError> {
        let spec: PreprocessingSpec = serde_json::from_value(self.preprocessing.clone())
            .map_err(|e| self.unsupported(format!("preprocessing: {e}")))?;
        if spec.layout != "NCHW" || spec.channel_order != "RGB" {
            return Err(self.unsupported(format!(
                "layout {} / channels {} (only NCHW RGB is implemented)",
                spec.layout, spec.channel_order
            )));
        }
        if spec.resize_size != [self.input_size, self.input_size] {
            return Err(self.unsupported("resize_size differs from input_size"));
        }
        let (kept, of) = spec
            .crop_fraction
            .split_once('/')
            .and_then(|(a, b)| Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?)))
            .ok_or_else(|| self.unsupported(format!("crop_fraction {:?}", spec.crop_fraction)))?;
        if kept != self.input_size || of < kept {
            return Err(self.unsupported(format!("crop_fraction {:?}", spec.crop_fraction)));
        }
        if !(spec.std.is_finite() && spec.std > 0.0 && spec.mean.is_finite()) {
            return Err(self.unsupported("mean/std"));
        }
        if self.output.kind != "logits" {
            return Err(self.unsupported(format!(
                "output kind {} (expected logits)",
                self.output.kind
            )));
        }
        Ok(Preprocessing {
            input_size: self.input_size,
            crop_padding: of - kept,
            mean: spec.mean,
            std: spec.std,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> Manifest {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("model/manifest.json");
        Manifest::load(&path).expect("committed manifest parses")
    }

    #[test]
    fn committed_manifest_describes_both_models() {
        let m = committed();
        let stable = m.by_role("stable").expect("stable model");
        assert_eq!(stable.name, "efficientnet-lite0");
        let pre = stable.preprocessing().expect("supported");
        assert_eq!(
            pre,
            Preprocessing {
                input_size: 224,
                crop_padding: 32,
                mean: 127.0,
                std: 128.0
            }
        );
        let canary = m.by_role("canary").expect("canary model");
        assert_eq!(canary.preprocessing().expect("supported").input_size, 240);
        assert!(
            m.resolve(&canary.file)
                .ends_with("model/efficientnet-lite1.onnx")
        );
    }

    #[test]
    fn unknown_model_names_the_ones_available() {
        let err = committed().by_name("resnet50").expect_err("not there");
        let msg = err.to_string();
        assert!(
            msg.contains("resnet50") && msg.contains("efficientnet-lite0"),
            "{msg}"
        );
    }

    #[test]
    fn unsupported_layout_is_refused() {
        let mut m = committed();
        m.models[0].preprocessing["layout"] = serde_json::json!("NHWC");
        assert!(matches!(
            m.models[0].preprocessing(),
            Err(ManifestError::Unsupported { .. })
        ));
    }
}
