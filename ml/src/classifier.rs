//! The image classifier: an EfficientNet-Lite ONNX graph loaded once, optimised by tract for a
//! fixed 1×3×S×S input, and run by per-thread sessions that share one immutable plan.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::transform::get_transform;

pub use ml_kernels::Isa;

use crate::fused;
use crate::manifest::{Manifest, ManifestError};
use crate::preprocess::Preprocessing;

/// Memory layout tract runs convolutions in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvLayout {
    /// The graph as exported (channels first).
    Nchw,
    /// tract's `conv_nhwc` rewrite: convolutions run channels-last, which is markedly faster for
    /// the depthwise convolutions of EfficientNet-Lite. Outputs match NCHW within float rounding.
    Nhwc,
    /// `Nhwc`, with every depthwise and every 1×1 convolution, with the bias, ReLU6 and residual
    /// addition after it, run by the project's own fused operators ([`crate::fused`]) instead of
    /// tract's.
    NhwcFused,
}

impl FromStr for ConvLayout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "nchw" => Ok(Self::Nchw),
            "nhwc" => Ok(Self::Nhwc),
            "nhwc-fused" => Ok(Self::NhwcFused),
            other => Err(format!("expected nchw, nhwc or nhwc-fused, got {other:?}")),
        }
    }
}

impl ConvLayout {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nchw => "nchw",
            Self::Nhwc => "nhwc",
            Self::NhwcFused => "nhwc-fused",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} has sha256 {actual}, but the manifest says {expected}")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path} has {actual} labels, but the manifest says {expected}")]
    LabelCount {
        path: PathBuf,
        expected: usize,
        actual: usize,
    },
    #[error("cannot load the model {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("inference failed: {0}")]
    Run(String),
    #[error("the model answered shape {actual:?}, expected [1, {classes}]")]
    OutputShape { actual: Vec<usize>, classes: usize },
}

/// Everything known about the loaded model, for answers and metrics.
#[derive(Debug, Clone)]
pub struct ModelCard {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub file: PathBuf,
    pub input_size: u32,
    pub labels: Vec<String>,
    pub preprocessing: Preprocessing,
    /// The manifest's preprocessing description, verbatim.
    pub preprocessing_doc: serde_json::Value,
    pub layout: ConvLayout,
}

/// Which model to load and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSelection {
    pub manifest: PathBuf,
    /// Model name in the manifest, or `None` for the one whose role matches `role`.
    pub name: Option<String>,
    pub role: String,
    /// Overrides the ONNX file named by the manifest (its checksum must still match).
    pub path: Option<PathBuf>,
    pub layout: ConvLayout,
}

/// A loaded, optimised classifier. Cheap to share (`Arc` inside); each thread that runs it
/// opens its own [`Session`].
#[derive(Clone)]
pub struct Classifier {
    plan: Arc<TypedSimplePlan>,
    card: Arc<ModelCard>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("card", &self.card.name)
            .finish_non_exhaustive()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Classifier {
    /// Reads the manifest, checks the model and labels against it, loads and optimises the graph.
    pub fn load(selection: &ModelSelection) -> Result<Self, ClassifierError> {
        let manifest = Manifest::load(&selection.manifest)?;
        let entry = match &selection.name {
            Some(name) => manifest.by_name(name)?,
            None => manifest.by_role(&selection.role)?,
        };
        let preprocessing = entry.preprocessing()?;
        let file = selection
            .path
            .clone()
            .unwrap_or_else(|| manifest.resolve(&entry.file));

        let bytes = std::fs::read(&file).map_err(|source| ClassifierError::Read {
            path: file.clone(),
            source,
        })?;
        let sha256 = sha256_hex(&bytes);
        if !sha256.eq_ignore_ascii_case(&entry.sha256) {
            return Err(ClassifierError::Checksum {
                path: file,
                expected: entry.sha256.clone(),
                actual: sha256,
            });
        }

        let labels_path = manifest.resolve(&entry.labels.file);
        let labels_text =
            std::fs::read_to_string(&labels_path).map_err(|source| ClassifierError::Read {
                path: labels_path.clone(),
                source,
            })?;
        let labels: Vec<String> = labels_text.lines().map(|l| l.trim().to_owned()).collect();
        if labels.len() != entry.labels.count || entry.output.shape.last() != Some(&labels.len()) {
            return Err(ClassifierError::LabelCount {
                path: labels_path,
                expected: entry.labels.count,
                actual: labels.len(),
            });
        }

        let plan = optimise(&bytes, entry.input_size, selection.layout).map_err(|e| {
            ClassifierError::Load {
                path: file.clone(),
                reason: format!("{e:#}"),
            }
        })?;
        let card = ModelCard {
            name: entry.name.clone(),
            version: entry.version.clone(),
            sha256,
            file,
            input_size: entry.input_size,
            labels,
            preprocessing,
            preprocessing_doc: entry.preprocessing.clone(),
            layout: selection.layout,
        };
        let classifier = Self {
            plan,
            card: Arc::new(card),
        };
        // One run on a blank input proves the plan runs and answers one score per label before
        // the service calls itself ready (and warms the allocator for the first real request).
        let s = entry.input_size as usize;
        let blank = Tensor::zero::<f32>(&[1, 3, s, s])
            .map_err(|e| ClassifierError::Run(format!("{e:#}")))?;
        classifier.logits(blank)?;
        Ok(classifier)
    }

    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// Opens a session for the current thread (sessions keep scratch buffers between runs).
    pub fn session(&self) -> Result<Session, ClassifierError> {
        let state = self
            .plan
            .spawn()
            .map_err(|e| ClassifierError::Run(format!("{e:#}")))?;
        Ok(Session {
            state,
            classes: self.card.labels.len(),
        })
    }

    /// One-off run (opens a session for it).
    pub fn logits(&self, input: Tensor) -> Result<Vec<f32>, ClassifierError> {
        self.session()?.logits(input)
    }
}

fn optimise(onnx: &[u8], input_size: u32, layout: ConvLayout) -> TractResult<Arc<TypedSimplePlan>> {
    lower(decluttered(onnx, input_size)?, layout, Isa::detect())?.into_runnable()
}

/// The ONNX graph typed for a `1 × 3 × S × S` input and decluttered (channels-first, as exported).
pub fn decluttered(onnx: &[u8], input_size: u32) -> TractResult<TypedModel> {
    let s = input_size as usize;
    tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(onnx))?
        .with_input_fact(0, f32::fact([1, 3, s, s]).into())?
        .into_typed()?
        .into_decluttered()
}

/// From a decluttered model to the optimised one the service runs: for `NhwcFused` the project's
/// depthwise and 1×1 operators (kernels for `isa`) go in first, then (for both channels-last layouts)
/// tract's `conv_nhwc` rewrite and a declutter, then tract's optimisation.
pub fn lower(mut typed: TypedModel, layout: ConvLayout, isa: Isa) -> TractResult<TypedModel> {
    if layout == ConvLayout::NhwcFused {
        fused::fuse(&mut typed, isa)?;
    }
    if layout != ConvLayout::Nchw {
        let transform = get_transform("conv_nhwc")?
            .ok_or_else(|| anyhow::anyhow!("this tract has no conv_nhwc transform"))?;
        typed.transform(&*transform)?;
        typed.declutter()?;
    }
    typed.into_optimized()
}

/// A thread's handle for running the classifier.
pub struct Session {
    state: TypedSimpleState,
    classes: usize,
}

impl Session {
    /// Runs the model on a `1 × 3 × S × S` tensor and returns the raw logits.
    pub fn logits(&mut self, input: Tensor) -> Result<Vec<f32>, ClassifierError> {
        let outputs = self
            .state
            .run(tvec!(input.into()))
            .map_err(|e| ClassifierError::Run(format!("{e:#}")))?;
        let out = outputs
            .first()
            .ok_or_else(|| ClassifierError::Run("no output".into()))?;
        if out.shape() != [1, self.classes] {
            return Err(ClassifierError::OutputShape {
                actual: out.shape().to_vec(),
                classes: self.classes,
            });
        }
        let logits = out
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<f32>().map(<[f32]>::to_vec))
            .map_err(|e| ClassifierError::Run(format!("{e:#}")))?;
        Ok(logits)
    }
}

/// One class of the answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    pub label: String,
    pub index: usize,
    pub probability: f32,
}

/// Softmax over `logits`, then the `k` most probable classes, most probable first.
pub fn top_k(logits: &[f32], labels: &[String], k: usize) -> Vec<Prediction> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| exps[b].total_cmp(&exps[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|index| Prediction {
            label: labels.get(index).cloned().unwrap_or_default(),
            index,
            probability: (exps[index] / sum) as f32,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_softmax_sorted_descending() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let p = top_k(&[1.0, 3.0, 2.0], &labels, 2);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].index, p[0].label.as_str()), (1, "b"));
        assert_eq!(p[1].index, 2);
        let e = [1f64.exp(), 3f64.exp(), 2f64.exp()];
        let total: f64 = e.iter().sum();
        assert!((f64::from(p[0].probability) - e[1] / total).abs() < 1e-6);
        // Large logits do not overflow.
        let p = top_k(&[1000.0, 999.0, -1000.0], &labels, 3);
        assert!(p.iter().all(|x| x.probability.is_finite()));
        assert!((p.iter().map(|x| x.probability).sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn layout_parses_case_insensitively() {
        assert_eq!("NHWC".parse::<ConvLayout>(), Ok(ConvLayout::Nhwc));
        assert_eq!("nchw".parse::<ConvLayout>(), Ok(ConvLayout::Nchw));
        assert_eq!(
            "NHWC-fused".parse::<ConvLayout>(),
            Ok(ConvLayout::NhwcFused)
        );
        assert!("nhcw".parse::<ConvLayout>().is_err());
    }
}
