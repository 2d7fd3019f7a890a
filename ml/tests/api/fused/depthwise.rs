//! The project's fused depthwise operator against tract's own, layer by layer, on every depthwise
//! convolution of both committed models (shapes and weights read from the models themselves).

use std::collections::BTreeSet;

use ml::classifier::Isa;
use ml::fused::depthwise::{self, DepthwiseLayer, FusedDepthwise};
use tract_onnx::prelude::*;

use super::{MODELS, fused_op_names, input, isas, max_diff, model, run_fused, run_stock};
use crate::helpers::shared_process;

/// Per element, between the fused op and tract's stock one, relative to the layer's output range
/// `max(1, max |y|)` (at most 6 after ReLU6). Not a bare absolute 1e-5: the FMA kernels round once
/// per tap where tract's loop rounds twice, and with sums of 9–25 products of both signs the two
/// differ by up to ~2e-5 on outputs near 1 (an f32 ulp at 2 is 2.4e-7); the absolute figure is
/// printed for every layer.
const MAX_DIFF: f32 = 1e-5;

/// Tract's stock pipeline (`conv_nhwc`, declutter, optimise) on the layer alone.
fn stock(layer: &DepthwiseLayer, x: &Tensor) -> Vec<f32> {
    run_stock(layer.standalone().expect("standalone"), &[x])
}

fn fused(layer: &DepthwiseLayer, isa: Isa, x: &Tensor) -> Vec<f32> {
    run_fused::<FusedDepthwise>(
        layer.standalone().expect("standalone"),
        isa,
        &layer.name,
        &[x],
    )
}

#[tokio::test]
async fn fused_depthwise_matches_tract_on_every_layer_of_both_models() {
    let _guard = shared_process().await;
    let mut kinds = BTreeSet::new();
    for (file, size) in MODELS {
        let model = model(file, size);
        let layers = depthwise::layers(&model).expect("layers");
        assert!(
            layers.len() >= 16,
            "{file}: {} depthwise layers",
            layers.len()
        );
        for (i, layer) in layers.iter().enumerate() {
            let g = layer.geometry;
            assert_eq!(
                (layer.min, layer.max),
                (0.0, 6.0),
                "{}: ReLU6 folded",
                layer.name
            );
            kinds.insert((g.kernel_h, g.stride_h));
            let x = input(&layer.input_shape(), i as u64 + 1);
            let expected = stock(layer, &x);
            for isa in isas() {
                let (diff, abs) = max_diff(&fused(layer, isa, &x), &expected);
                eprintln!(
                    "{file} {} {}x{} s{} {}x{}x{} {isa}: max |fused - tract| / max(1, |tract|) = \
                     {diff:e} (absolute {abs:e})",
                    layer.name, g.kernel_h, g.kernel_w, g.stride_h, g.height, g.width, g.channels
                );
                assert!(
                    diff <= MAX_DIFF,
                    "{file} {} on {isa}: {diff} > {MAX_DIFF}",
                    layer.name
                );
            }
        }
    }
    // Both models together cover 3×3 and 5×5, stride 1 and 2.
    assert_eq!(
        kinds,
        BTreeSet::from([(3, 1), (3, 2), (5, 1), (5, 2)]),
        "kernel sizes and strides covered"
    );
}

/// The comparison above can fail: one weight changed by 1e-3 in one layer is caught.
#[tokio::test]
async fn a_perturbed_weight_is_detected_against_tract() {
    let _guard = shared_process().await;
    let model = model(MODELS[0].0, MODELS[0].1);
    let layers = depthwise::layers(&model).expect("layers");
    let layer = &layers[layers.len() / 2];
    let g = layer.geometry;
    let x = input(&layer.input_shape(), 99);
    let expected = stock(layer, &x);

    let mut kernel = (*layer.kernel).clone();
    {
        let mut view = kernel.try_as_plain_ram_mut().expect("plain");
        let w = view.as_slice_mut::<f32>().expect("f32");
        // The centre tap of channel 3: every output of that channel uses it.
        w[3 * g.kernel_h * g.kernel_w + g.kernel_h / 2 * g.kernel_w + g.kernel_w / 2] += 1e-3;
    }
    let perturbed = layer.with_kernel(kernel).expect("same shape");
    for isa in isas() {
        let (diff, _) = max_diff(&fused(&perturbed, isa, &x), &expected);
        assert!(
            diff > MAX_DIFF,
            "{isa}: a changed weight went unnoticed ({diff})"
        );
    }
}

/// In the whole optimised model every depthwise layer runs fused, and none of tract's remains.
#[tokio::test]
async fn the_optimised_models_run_every_depthwise_layer_fused() {
    let _guard = shared_process().await;
    for (file, size) in MODELS {
        let model = model(file, size);
        let count = depthwise::layers(&model).expect("layers").len();
        let names = fused_op_names(model);
        let fused = names.iter().filter(|n| *n == "FusedDepthwise").count();
        assert_eq!(fused, count, "{file}: fused layers");
        assert!(
            !names.iter().any(|n| n.contains("DepthWise")),
            "{file}: tract's own depthwise op remains: {names:?}"
        );
    }
}
