//! tract against onnxruntime on the same committed tensors (ml/tests/fixtures/golden).

use std::path::Path;

use ml::classifier::{Classifier, ConvLayout, ModelSelection};
use ml::photo::{DecodeLimits, decode};
use tract_onnx::prelude::Tensor;

use crate::helpers::{fixture, shared_process};

const MAX_ABS_DIFF: f32 = 1e-4;

fn f32s(relative: &str) -> Vec<f32> {
    fixture(relative)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn load(name: &str, layout: ConvLayout) -> Classifier {
    Classifier::load(&ModelSelection {
        manifest: Path::new(env!("CARGO_MANIFEST_DIR")).join("model/manifest.json"),
        name: Some(name.to_owned()),
        role: "stable".into(),
        path: None,
        layout,
    })
    .unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Every case of golden/index.json: the tract logits match onnxruntime's within 1e-4.
fn check_model(short: &str, name: &str, size: usize, layout: ConvLayout) {
    let classifier = load(name, layout);
    let index: serde_json::Value =
        serde_json::from_slice(&fixture("golden/index.json")).expect("index.json parses");
    let cases: Vec<_> = index["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["model"] == name)
        .collect();
    assert!(cases.len() >= 2, "golden cases for {name}");
    for case in cases {
        let input_file = case["input"]["file"].as_str().expect("input file");
        assert!(input_file.starts_with(short), "{input_file}");
        let input = f32s(&format!("golden/{input_file}"));
        let expected = f32s(&format!(
            "golden/{}",
            case["logits"]["file"].as_str().expect("logits file")
        ));
        let tensor = Tensor::from_shape(&[1, 3, size, size], &input).expect("input shape");
        let logits = classifier.logits(tensor).expect("inference");
        let diff = max_abs_diff(&logits, &expected);
        eprintln!("{name} {layout:?} {input_file}: max |tract - onnxruntime| = {diff:e}");
        assert!(
            diff <= MAX_ABS_DIFF,
            "{name} {layout:?} {input_file}: max abs diff {diff} > {MAX_ABS_DIFF}"
        );
        let top1 = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        assert_eq!(
            top1,
            Some(case["top5"][0]["index"].as_u64().expect("top1") as usize)
        );
    }
}

#[tokio::test]
async fn lite0_matches_onnxruntime_nhwc() {
    let _guard = shared_process().await;
    check_model("lite0", "efficientnet-lite0", 224, ConvLayout::Nhwc);
}

#[tokio::test]
async fn lite0_matches_onnxruntime_nhwc_fused() {
    let _guard = shared_process().await;
    check_model("lite0", "efficientnet-lite0", 224, ConvLayout::NhwcFused);
}

#[tokio::test]
async fn lite1_matches_onnxruntime_nhwc_fused() {
    let _guard = shared_process().await;
    check_model("lite1", "efficientnet-lite1", 240, ConvLayout::NhwcFused);
}

#[tokio::test]
async fn lite0_matches_onnxruntime_nchw() {
    let _guard = shared_process().await;
    check_model("lite0", "efficientnet-lite0", 224, ConvLayout::Nchw);
}

#[tokio::test]
async fn lite1_matches_onnxruntime_nhwc() {
    let _guard = shared_process().await;
    check_model("lite1", "efficientnet-lite1", 240, ConvLayout::Nhwc);
}

/// Our decoder + resizer against the reference preprocessing (Pillow) on the same photo. Different
/// JPEG decoders round the IDCT and chroma upsampling differently, so this is a closeness bound,
/// not equality; the classification must not change.
#[tokio::test]
async fn preprocessing_is_close_to_the_reference() {
    let _guard = shared_process().await;
    let classifier = load("efficientnet-lite0", ConvLayout::Nhwc);
    let pre = classifier.card().preprocessing;
    let photo = decode(
        &fixture("photos/coffee.jpg"),
        pre.min_short_side(),
        &DecodeLimits::default(),
    )
    .expect("decodes");
    let ours = pre.planes(&photo.pixels).expect("preprocesses");
    let reference = f32s("golden/lite0-coffee.input.f32");
    let max = max_abs_diff(&ours, &reference);
    let mean = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / ours.len() as f32;
    eprintln!(
        "preprocessing vs reference: max {max:.4}, mean {mean:.5} (1 level = {:.4})",
        1.0 / 128.0
    );
    assert!(
        mean < 0.5 / 128.0,
        "mean abs diff {mean} is more than half a level"
    );
    assert!(
        max < 16.0 / 128.0,
        "max abs diff {max} is more than 16 levels"
    );

    let tensor = pre.tensor(&photo.pixels).expect("tensor");
    let logits = classifier.logits(tensor).expect("inference");
    let reference_logits = f32s("golden/lite0-coffee.logits.f32");
    let top1 = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i);
    assert_eq!(top1, Some(967), "espresso");
    let drift = max_abs_diff(&logits, &reference_logits);
    eprintln!("logits from our preprocessing vs reference logits: max {drift:.3}");
    assert!(
        drift < 0.5,
        "logits drift {drift} from the reference preprocessing"
    );
}
