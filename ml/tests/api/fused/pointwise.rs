//! The project's fused 1×1 operator against tract's own, on every 1×1 convolution of both models.

use ml::classifier::Isa;
use ml::fused::pointwise::{self, FusedPointwise, PointwiseLayer};
use tract_onnx::prelude::*;

use super::{MODELS, fused_op_names, input, isas, max_diff, model, run_fused, run_stock};
use crate::helpers::shared_process;

/// Per element, between the fused op and tract's stock one, relative to the layer's output range
/// `max(1, max |y|)`. Both accumulate in f32 with FMA, in different orders, over up to 1,152
/// input channels; the largest difference measured on these layers is printed for each.
const MAX_DIFF: f32 = 1e-5;

/// Tract's stock pipeline on the layer alone: its `EinSum` becomes `OptMatMul`.
fn stock(layer: &PointwiseLayer, inputs: &[&Tensor]) -> Vec<f32> {
    run_stock(layer.standalone().expect("standalone"), inputs)
}

fn fused(layer: &PointwiseLayer, isa: Isa, inputs: &[&Tensor]) -> Vec<f32> {
    run_fused::<FusedPointwise>(
        layer.standalone().expect("standalone"),
        isa,
        &layer.name,
        inputs,
    )
}

/// The layer's inputs: activations in `[0, 6)` and, for a projection, a residual in `[-3, 3)`.
fn inputs(layer: &PointwiseLayer, seed: u64) -> Vec<Tensor> {
    let mut tensors = vec![input(&layer.input_shape(), seed)];
    if layer.has_residual() {
        let r = input(&layer.output_shape(), seed + 1000);
        let shifted: Vec<f32> = r
            .try_as_plain_ram()
            .and_then(|v| {
                v.as_slice::<f32>()
                    .map(|s| s.iter().map(|v| v - 3.0).collect())
            })
            .expect("f32");
        tensors.push(Tensor::from_shape(&layer.output_shape(), &shifted).expect("residual"));
    }
    tensors
}

#[tokio::test]
async fn fused_pointwise_matches_tract_on_every_layer_of_both_models() {
    let _guard = shared_process().await;
    for (file, size) in MODELS {
        let model = model(file, size);
        let layers = pointwise::layers(&model).expect("layers");
        let (expand, residual) = (
            layers
                .iter()
                .filter(|l| l.min == 0.0 && l.max == 6.0)
                .count(),
            layers.iter().filter(|l| l.has_residual()).count(),
        );
        // Lite0: 15 expansions and the head with ReLU6, 16 projections of which 9 add a
        // residual; Lite1 has more blocks of each kind.
        assert!(
            layers.len() >= 32 && expand >= 16 && residual >= 9,
            "{file}: {} 1×1 layers, {expand} with ReLU6, {residual} with a residual",
            layers.len()
        );
        for (i, layer) in layers.iter().enumerate() {
            let x = inputs(layer, i as u64 + 1);
            let x: Vec<&Tensor> = x.iter().collect();
            let expected = stock(layer, &x);
            for isa in isas() {
                let (diff, abs) = max_diff(&fused(layer, isa, &x), &expected);
                eprintln!(
                    "{file} {} {} → {} on {}×{} clamp [{}, {}] residual {} {isa}: \
                     max |fused - tract| / max(1, |tract|) = {diff:e} (absolute {abs:e})",
                    layer.name,
                    layer.inputs,
                    layer.outputs,
                    layer.height,
                    layer.width,
                    layer.min,
                    layer.max,
                    layer.has_residual()
                );
                assert!(
                    diff <= MAX_DIFF,
                    "{file} {} on {isa}: {diff} > {MAX_DIFF}",
                    layer.name
                );
            }
        }
    }
}

/// The comparison above can fail: one weight changed by 1e-3 in one layer is caught.
#[tokio::test]
async fn a_perturbed_pointwise_weight_is_detected_against_tract() {
    let _guard = shared_process().await;
    let model = model(MODELS[0].0, MODELS[0].1);
    let layers = pointwise::layers(&model).expect("layers");
    let layer = layers
        .iter()
        .find(|l| l.has_residual())
        .expect("a projection with a residual");
    let x = inputs(layer, 99);
    let x: Vec<&Tensor> = x.iter().collect();
    let expected = stock(layer, &x);
    let mut weights = (*layer.weights).clone();
    {
        let mut view = weights.try_as_plain_ram_mut().expect("plain");
        let w = view.as_slice_mut::<f32>().expect("f32");
        // Output channel 3, input channel 1: every pixel of that channel uses it.
        w[3 * layer.inputs + 1] += 1e-3;
    }
    let perturbed = layer.with_weights(weights).expect("same shape");
    for isa in isas() {
        let (diff, _) = max_diff(&fused(&perturbed, isa, &x), &expected);
        assert!(
            diff > MAX_DIFF,
            "{isa}: a changed weight went unnoticed ({diff})"
        );
    }
}

/// In the whole optimised model every 1×1 layer runs fused: what is left of tract's matrix
/// products is the stem (a 3×3 convolution through im2col) and the classifier.
#[tokio::test]
async fn the_optimised_models_run_every_pointwise_layer_fused() {
    let _guard = shared_process().await;
    for (file, size) in MODELS {
        let model = model(file, size);
        let count = pointwise::layers(&model).expect("layers").len();
        let names = fused_op_names(model);
        let fused = names.iter().filter(|n| *n == "FusedPointwise").count();
        assert_eq!(fused, count, "{file}: fused layers");
        let matmuls = names.iter().filter(|n| *n == "OptMatMul").count();
        assert_eq!(
            matmuls, 2,
            "{file}: tract's matrix products other than the stem's and the classifier's: {names:?}"
        );
    }
}
