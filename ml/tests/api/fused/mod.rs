//! The project's fused operators against tract's own, layer by layer, on every layer of both
//! committed models they replace (shapes and weights read from the models themselves).

mod depthwise;
mod pointwise;

use std::path::Path;

use ml::classifier::{ConvLayout, Isa, decluttered, lower};
use tract_onnx::prelude::*;

pub const MODELS: [(&str, u32); 2] = [
    ("efficientnet-lite0.onnx", 224),
    ("efficientnet-lite1.onnx", 240),
];

pub fn model(file: &str, size: u32) -> TypedModel {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("model")
        .join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decluttered(&bytes, size).expect("the model declutters")
}

pub fn isas() -> Vec<Isa> {
    [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
        .into_iter()
        .filter(|isa| isa.is_available())
        .collect()
}

/// Deterministic input in `[0, 6)`: what every depthwise layer of these models sees (each follows a
/// ReLU6); the weights have both signs, so both ends of the clamp are exercised.
pub fn input(shape: &[usize], seed: u64) -> Tensor {
    let mut state = seed | 1;
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            6.0 * ((state >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect();
    Tensor::from_shape(shape, &values).expect("input tensor")
}

/// A layer's standalone model through tract's stock pipeline (`conv_nhwc`, declutter, optimise),
/// run on `inputs`.
pub fn run_stock(standalone: TypedModel, inputs: &[&Tensor]) -> Vec<f32> {
    let model = lower(standalone, ConvLayout::Nhwc, Isa::Portable).expect("stock lowering");
    run(model, inputs)
}

/// The same through the service's pipeline with `isa`'s kernels, which must leave exactly one
/// `O` (the project's operator for the layer `name`) in the optimised graph.
pub fn run_fused<O: Op>(
    standalone: TypedModel,
    isa: Isa,
    name: &str,
    inputs: &[&Tensor],
) -> Vec<f32> {
    let model = lower(standalone, ConvLayout::NhwcFused, isa).expect("fused lowering");
    let ops = model.nodes().iter().filter(|n| n.op_is::<O>()).count();
    assert_eq!(ops, 1, "{name}: the fused op is in the optimised graph");
    run(model, inputs)
}

/// The operator names of `model` lowered the way the service runs it (`nhwc-fused`, this CPU's
/// kernels).
pub fn fused_op_names(model: TypedModel) -> Vec<String> {
    lower(model, ConvLayout::NhwcFused, Isa::detect())
        .expect("fused lowering")
        .nodes()
        .iter()
        .map(|n| n.op.name().to_string())
        .collect()
}

pub fn run(model: TypedModel, inputs: &[&Tensor]) -> Vec<f32> {
    let plan = model.into_runnable().expect("plan");
    let inputs = inputs.iter().map(|&x| x.clone().into()).collect();
    let out = plan.run(inputs).expect("runs");
    out[0]
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
        .expect("f32 output")
}

/// Largest `|a - b|` over `max(1, max |b|)`, and the largest `|a - b|` for the record.
pub fn max_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let range = b.iter().fold(1.0f32, |m, y| m.max(y.abs()));
    let abs = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    (abs / range, abs)
}
