//! The project's own operators inside tract's graph: [`depthwise`] convolutions and [`pointwise`]
//! (1×1) convolutions of EfficientNet-Lite, each with the bias and ReLU6 after it (and, for a
//! 1×1 projection, the residual addition) run as one node by the `ml-kernels` kernels, chosen at
//! run time for the CPU.
//!
//! [`fuse`] rewrites a decluttered (channels-first) model before tract's `conv_nhwc` and
//! optimisation. Each fused node is wrapped in the axis moves `conv_nhwc` puts around a
//! convolution (channels last in, channels first out), so the declutter that follows cancels
//! them against their neighbours' and the whole chain of blocks runs channels-last.

pub mod depthwise;
pub mod pointwise;

use ml_kernels::Isa;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::math::{Max, Min};

/// How many nodes [`fuse`] put in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fused {
    pub depthwise: usize,
    pub pointwise: usize,
}

/// The rewrite's context: the kernel the fused ops run (`Option` only because tract's
/// `Rewriter` wants a `Default` context; [`fuse`] always sets it).
type FuseContext = Option<Isa>;

/// Replaces every depthwise and every 1×1 convolution of a decluttered model, with what follows
/// it that the kernels fuse, by the project's operators running `isa`; answers how many of each
/// it put in. Run it before `conv_nhwc` and optimisation.
pub fn fuse(model: &mut TypedModel, isa: Isa) -> TractResult<Fused> {
    ensure!(isa.is_available(), "this CPU cannot run the {isa} kernel");
    Rewriter::<FuseContext>::default()
        .with_rule_for("fused-depthwise", depthwise::rule)
        .with_rule_for("fused-pointwise", pointwise::rule)
        .rewrite(&Some(isa), model)?;
    let count = |pred: fn(&TypedNode) -> bool| model.nodes().iter().filter(|n| pred(n)).count();
    Ok(Fused {
        depthwise: count(|n| n.op_is::<depthwise::FusedDepthwise>()),
        pointwise: count(|n| n.op_is::<pointwise::FusedPointwise>()),
    })
}

/// The single value of a scalar or one-element constant.
fn uniform_f32(model: &TypedModel, outlet: OutletId) -> Option<f32> {
    let fact = model.outlet_fact(outlet).ok()?;
    let t = fact.konst.as_ref().or(fact.uniform.as_ref())?;
    if t.len() != 1 || t.datum_type() != f32::datum_type() {
        return None;
    }
    t.try_as_plain_ram()
        .ok()?
        .as_slice::<f32>()
        .ok()?
        .first()
        .copied()
}

/// `Some(bound)` when `node` is a `Max` (`is_max`) or `Min` of `from` and a uniform constant that
/// leaves the shape unchanged.
fn clamp_step(model: &TypedModel, node: &TypedNode, from: OutletId, is_max: bool) -> Option<f32> {
    let op = node.op_as::<TypedBinOp>()?;
    if (is_max && !op.0.is::<Max>()) || (!is_max && !op.0.is::<Min>()) || node.inputs.len() != 2 {
        return None;
    }
    let other = *node.inputs.iter().find(|&&i| i != from)?;
    let in_shape = &model.outlet_fact(from).ok()?.shape;
    let out_shape = &model.outlet_fact(node.id.into()).ok()?.shape;
    if in_shape != out_shape {
        return None;
    }
    uniform_f32(model, other)
}

/// The clamp after node `from`: `Max` then `Min` with uniform constants, each optional and each
/// the only consumer of what it reads. Answers the bounds (infinite where absent) and the last
/// node taken, or `None` when the bounds are empty.
fn trailing_clamp(model: &TypedModel, from: usize) -> Option<(f32, f32, usize)> {
    let (mut min, mut max) = (f32::NEG_INFINITY, f32::INFINITY);
    let mut last = from;
    for is_max in [true, false] {
        let Some(next) = only_successor(model, last) else {
            break;
        };
        let Some(bound) = clamp_step(model, next, last.into(), is_max) else {
            continue;
        };
        if is_max {
            min = bound;
        } else {
            max = bound;
        }
        last = next.id;
    }
    (!(min.is_nan() || max.is_nan() || min > max)).then_some((min, max, last))
}

/// `(channel axis, last axis)` of a channels-first tensor with (`N × C × H × W`) or without
/// (`C × H × W`) a batch axis: the moves `conv_nhwc` puts around a convolution go between them.
fn channel_axes(batch: bool) -> (usize, usize) {
    if batch { (1, 3) } else { (0, 2) }
}

/// Every node of `model` with op `O` that `read` makes a layer of, in evaluation order.
fn layers_with<O: Op, L>(
    model: &TypedModel,
    read: impl Fn(&TypedModel, &TypedNode, &O) -> Option<L>,
) -> TractResult<Vec<L>> {
    Ok(model
        .eval_order()?
        .into_iter()
        .filter_map(|id| {
            let node = model.node(id);
            read(model, node, node.op_as::<O>()?)
        })
        .collect())
}

/// Wires the clamp `[min, max]` after `y` in a model of one layer, as tract's declutter leaves a
/// `Clip`: `Max` with the lower bound, then `Min` with the upper one, each only when finite.
fn wire_clamp(
    model: &mut TypedModel,
    mut y: OutletId,
    rank: usize,
    (min, max): (f32, f32),
) -> TractResult<OutletId> {
    let bound = |v: f32| Tensor::from_shape(&vec![1; rank], &[v]);
    if min > f32::NEG_INFINITY {
        let min = model.add_const("min", bound(min)?)?;
        y = model.wire_node(
            "clamp.max",
            tract_onnx::tract_core::ops::math::max(),
            &[y, min],
        )?[0];
    }
    if max < f32::INFINITY {
        let max = model.add_const("max", bound(max)?)?;
        y = model.wire_node(
            "clamp.min",
            tract_onnx::tract_core::ops::math::min(),
            &[y, max],
        )?[0];
    }
    Ok(y)
}

/// The one node reading node `id`'s output, unless that output is also a model output.
fn only_successor(model: &TypedModel, id: usize) -> Option<&TypedNode> {
    if model.outputs.contains(&OutletId::new(id, 0)) {
        return None;
    }
    model.single_succ(id).ok().flatten()
}
