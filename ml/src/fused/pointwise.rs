//! The project's 1×1 convolution inside tract's graph.
//!
//! tract's declutter turns a 1×1 convolution into an `EinSum` (`IHW,OI->OHW`) plus an `Add` of
//! the bias; once optimised it runs as `OptMatMul`, which on x86 first repacks the channels-last
//! activations through a scalar transpose (`OptMatMulPack`, a tenth of the model's time) and
//! reaches about half of the cores' multiply-add peak. [`super::fuse`] replaces each such
//! einsum, its bias, the clamp after it (ReLU6 after an expansion) and the residual `Add` after
//! it (an inverted-residual block's projection) with one [`FusedPointwise`] node running the
//! `ml-kernels` pointwise kernels, which read the activations where they lie.

use std::sync::Arc;

use ml_kernels::{Isa, Pointwise};
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::math::Add;

use super::{FuseContext, channel_axes, layers_with, only_successor, trailing_clamp, wire_clamp};

/// 1×1 convolution + bias + clamp (+ residual) on channels-last tensors (`[1 ×] H × W × C`),
/// the residual, when there is one, the node's second input.
#[derive(Debug, Clone)]
pub struct FusedPointwise {
    layer: Arc<Pointwise>,
    isa: Isa,
    input_shape: TVec<usize>,
    output_shape: TVec<usize>,
    residual: bool,
}

impl FusedPointwise {
    pub fn layer(&self) -> &Pointwise {
        &self.layer
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    pub fn has_residual(&self) -> bool {
        self.residual
    }
}

impl PartialEq for FusedPointwise {
    fn eq(&self, other: &Self) -> bool {
        self.isa == other.isa
            && self.input_shape == other.input_shape
            && self.output_shape == other.output_shape
            && self.residual == other.residual
            && (Arc::ptr_eq(&self.layer, &other.layer) || self.layer == other.layer)
    }
}

// As for `FusedDepthwise`: equal when they hold the same layer (the pointer test keeps this
// reflexive even for weights holding NaN).
impl Eq for FusedPointwise {}

impl Op for FusedPointwise {
    fn name(&self) -> StaticName {
        "FusedPointwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (inputs, outputs) = self.layer.channels();
        let (min, max) = self.layer.clamp();
        Ok(vec![format!(
            "{inputs} → {outputs} on {:?}, clamp [{min}, {max}]{}, {}",
            self.input_shape,
            if self.residual { ", + residual" } else { "" },
            self.isa
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for FusedPointwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(
            inputs.len() == 1 + usize::from(self.residual),
            "FusedPointwise expects {} inputs, got {}",
            1 + usize::from(self.residual),
            inputs.len()
        );
        for (input, shape) in inputs.iter().zip([&self.input_shape, &self.output_shape]) {
            ensure!(
                input.datum_type() == f32::datum_type() && input.shape() == &**shape,
                "FusedPointwise expects f32 {shape:?}, got {:?} {:?}",
                input.datum_type(),
                input.shape()
            );
        }
        let x = inputs[0].try_as_plain_ram()?;
        let residual = inputs.get(1).map(|r| r.try_as_plain_ram()).transpose()?;
        let residual = residual.as_ref().map(|r| r.as_slice::<f32>()).transpose()?;
        let output = self.layer.run_to_tensor(
            self.isa,
            &self.output_shape,
            x.as_slice::<f32>()?,
            residual,
        )?;
        Ok(tvec!(output.into()))
    }
}

impl TypedOp for FusedPointwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let dims = |s: &[usize]| s.iter().map(|&d| d.to_dim()).collect::<TVec<TDim>>();
        let expected: Vec<TVec<TDim>> = [&self.input_shape, &self.output_shape]
            .into_iter()
            .take(1 + usize::from(self.residual))
            .map(|s| dims(s))
            .collect();
        ensure!(
            inputs.len() == expected.len()
                && inputs
                    .iter()
                    .zip(&expected)
                    .all(|(f, s)| f.datum_type == f32::datum_type() && f.shape.to_tvec() == *s),
            "FusedPointwise expects f32 inputs of shapes {expected:?}, got {inputs:?}"
        );
        Ok(tvec!(f32::fact(&*self.output_shape)))
    }

    as_op!();
}

/// One 1×1 convolution of a decluttered (channels-first) model that [`super::fuse`] replaces,
/// with what follows it.
#[derive(Debug, Clone)]
pub struct PointwiseLayer {
    /// Name of the `EinSum` node.
    pub name: String,
    pub einsum: EinSum,
    /// `[outputs][inputs]`.
    pub weights: Arc<Tensor>,
    /// Broadcast against the einsum's output (`[O, 1, 1]` or `[1, O, 1, 1]`); `None` when the
    /// model has no bias (tract drops a zero one).
    pub bias: Option<Arc<Tensor>>,
    pub inputs: usize,
    pub outputs: usize,
    pub height: usize,
    pub width: usize,
    /// Whether the input has a batch axis (`N × C × H × W`) or not (`C × H × W`); tract's
    /// declutter drops it from some einsums' outputs, so the output says for itself.
    pub batch_in: bool,
    pub batch_out: bool,
    pub min: f32,
    pub max: f32,
    /// The other input of the residual `Add` after the clamp, when there is one.
    residual: Option<OutletId>,
    /// The last node the fused op stands in for.
    last_node: usize,
}

impl PointwiseLayer {
    pub fn has_residual(&self) -> bool {
        self.residual.is_some()
    }

    /// The fused operator for this layer.
    pub fn op(&self, isa: Isa) -> TractResult<FusedPointwise> {
        let weights = self.weights.try_as_plain_ram()?;
        let bias = match &self.bias {
            Some(b) => b.try_as_plain_ram()?.as_slice::<f32>()?.to_vec(),
            None => vec![0.0; self.outputs],
        };
        let layer = Pointwise::from_oi(
            self.inputs,
            self.outputs,
            weights.as_slice::<f32>()?,
            &bias,
            self.min,
            self.max,
        )?;
        let channels_last = |c: usize, batch: bool| -> TVec<usize> {
            let hwc = [self.height, self.width, c];
            let batch = if batch { &[1][..] } else { &[] };
            batch.iter().chain(&hwc).copied().collect()
        };
        Ok(FusedPointwise {
            layer: Arc::new(layer),
            isa,
            input_shape: channels_last(self.inputs, self.batch_in),
            output_shape: channels_last(self.outputs, self.batch_out),
            residual: self.residual.is_some(),
        })
    }

    fn channels_first(&self, c: usize, batch: bool) -> Vec<usize> {
        let chw = [c, self.height, self.width];
        if batch {
            [&[1], &chw[..]].concat()
        } else {
            chw.to_vec()
        }
    }

    /// The layer's input shape, channels first as in the decluttered model.
    pub fn input_shape(&self) -> Vec<usize> {
        self.channels_first(self.inputs, self.batch_in)
    }

    /// The residual's (and the output's) shape, channels first.
    pub fn output_shape(&self) -> Vec<usize> {
        self.channels_first(self.outputs, self.batch_out)
    }

    /// The same layer with other weights (same shape), e.g. to check that a comparison notices.
    pub fn with_weights(&self, weights: Tensor) -> TractResult<Self> {
        ensure!(
            weights.shape() == self.weights.shape() && weights.datum_type() == f32::datum_type(),
            "weights of shape {:?} expected",
            self.weights.shape()
        );
        Ok(Self {
            weights: Arc::new(weights),
            ..self.clone()
        })
    }

    /// A model of this layer alone, as tract sees it after declutter: `x` (and `residual`, the
    /// second input, when the layer has one) in, the stock `EinSum`, `Add` of the bias, `Max` /
    /// `Min` for the clamp, `Add` of the residual. For checking the fused op against tract's.
    pub fn standalone(&self) -> TractResult<TypedModel> {
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(self.input_shape()))?;
        let weights = model.add_const("weights", self.weights.clone())?;
        let mut y = model.wire_node(&self.name, self.einsum.clone(), &[x, weights])?[0];
        if let Some(bias) = &self.bias {
            let bias = model.add_const("bias", bias.clone())?;
            y = model.wire_node(
                "bias.add",
                tract_onnx::tract_core::ops::math::add(),
                &[y, bias],
            )?[0];
        }
        y = wire_clamp(
            &mut model,
            y,
            self.output_shape().len(),
            (self.min, self.max),
        )?;
        if self.residual.is_some() {
            let r = model.add_source("residual", f32::fact(self.output_shape()))?;
            y = model.wire_node(
                "residual.add",
                tract_onnx::tract_core::ops::math::add(),
                &[y, r],
            )?[0];
        }
        model.select_output_outlets(&[y])?;
        Ok(model)
    }
}

/// Whether `expr` is a 1×1 convolution's einsum: `IHW,OI->OHW` up to the letters, with a
/// leading batch axis on the input when `batch_in` (`NIHW`) and on the output when `batch_out`
/// (`NOHW`; without it the batch axis, of size 1, is dropped).
fn is_pointwise_einsum(expr: &str, batch_in: bool, batch_out: bool) -> bool {
    let Some((ins, out)) = expr.split_once("->") else {
        return false;
    };
    let Some((x, w)) = ins.split_once(',') else {
        return false;
    };
    let chars = |s: &str| s.chars().collect::<Vec<_>>();
    let (mut x, w, mut out) = (chars(x), chars(w), chars(out));
    let mut letters = w.clone();
    if batch_out && !batch_in {
        return false;
    }
    if batch_in {
        if x.is_empty() || (batch_out && x.first() != out.first()) {
            return false;
        }
        letters.push(x.remove(0));
        if batch_out {
            out.remove(0);
        }
    }
    if x.len() != 3 {
        return false;
    }
    letters.extend(&x[1..]);
    let distinct = letters.len() == 5 - usize::from(!batch_in)
        && letters
            .iter()
            .enumerate()
            .all(|(i, c)| !letters[..i].contains(c));
    x.len() == 3
        && w.len() == 2
        && out.len() == 3
        && w[1] == x[0]
        && out[0] == w[0]
        && out[1..] == x[1..]
        && distinct
}

/// A constant the shape of `like` broadcasts to with `channels` values along `c_axis` (a bias).
fn channel_constant(
    model: &TypedModel,
    outlet: OutletId,
    rank: usize,
    c_axis: usize,
    channels: usize,
) -> Option<Arc<Tensor>> {
    let k = model.outlet_fact(outlet).ok()?.konst.clone()?;
    let shape = k.shape();
    let fits = k.datum_type() == f32::datum_type()
        && shape.len() == rank
        && shape
            .iter()
            .enumerate()
            .all(|(i, &d)| d == if i == c_axis { channels } else { 1 });
    fits.then_some(k)
}

/// `Some(other input)` when `node` is an `Add` of `from` and something else.
fn add_of(node: &TypedNode, from: OutletId) -> Option<OutletId> {
    let op = node.op_as::<TypedBinOp>()?;
    if !op.0.is::<Add>() || node.inputs.len() != 2 {
        return None;
    }
    node.inputs.iter().copied().find(|&i| i != from)
}

/// Reads a 1×1 layer the fused op can run at `node`, or `None`.
fn layer_at(model: &TypedModel, node: &TypedNode, einsum: &EinSum) -> Option<PointwiseLayer> {
    if einsum.q_params.is_some()
        || einsum.operating_dt != f32::datum_type()
        || node.inputs.len() != 2
    {
        return None;
    }
    let x = model.outlet_fact(node.inputs[0]).ok()?;
    let shape = x.shape.as_concrete()?;
    let batch_in = match shape.len() {
        4 if shape[0] == 1 => true,
        3 => false,
        _ => return None,
    };
    let out_shape = model
        .outlet_fact(node.id.into())
        .ok()?
        .shape
        .as_concrete()?
        .to_vec();
    let batch_out = out_shape.len() == 4;
    if x.datum_type != f32::datum_type()
        || !is_pointwise_einsum(&einsum.axes.to_string(), batch_in, batch_out)
    {
        return None;
    }
    let c_axis = usize::from(batch_in);
    let (inputs, height, width) = (shape[c_axis], shape[c_axis + 1], shape[c_axis + 2]);
    let weights = model.outlet_fact(node.inputs[1]).ok()?.konst.clone()?;
    if weights.datum_type() != f32::datum_type()
        || weights.rank() != 2
        || weights.shape()[1] != inputs
    {
        return None;
    }
    let outputs = weights.shape()[0];
    let mut layer = PointwiseLayer {
        name: node.name.clone(),
        einsum: einsum.clone(),
        weights,
        bias: None,
        inputs,
        outputs,
        height,
        width,
        batch_in,
        batch_out,
        min: f32::NEG_INFINITY,
        max: f32::INFINITY,
        residual: None,
        last_node: node.id,
    };
    if out_shape != layer.output_shape() {
        return None;
    }
    let (rank, c_out) = (out_shape.len(), usize::from(batch_out));
    // The bias: an `Add` of a per-channel constant.
    if let Some(next) = only_successor(model, node.id)
        && let Some(other) = add_of(next, node.id.into())
        && let Some(bias) = channel_constant(model, other, rank, c_out, outputs)
    {
        layer.bias = Some(bias);
        layer.last_node = next.id;
    }
    let (min, max, last) = trailing_clamp(model, layer.last_node)?;
    (layer.min, layer.max, layer.last_node) = (min, max, last);
    // The residual: an `Add` of another f32 tensor of the output's shape.
    if let Some(next) = only_successor(model, layer.last_node)
        && let Some(other) = add_of(next, layer.last_node.into())
        && let Ok(fact) = model.outlet_fact(other)
        && fact.konst.is_none()
        && fact.datum_type == f32::datum_type()
        && fact.shape.as_concrete() == Some(&out_shape[..])
        && model.outlet_fact(next.id.into()).ok()?.shape.as_concrete() == Some(&out_shape[..])
    {
        layer.residual = Some(other);
        layer.last_node = next.id;
    }
    Some(layer)
}

/// Every 1×1 layer of a decluttered model that [`super::fuse`] would replace, in evaluation
/// order.
pub fn layers(model: &TypedModel) -> TractResult<Vec<PointwiseLayer>> {
    layers_with(model, layer_at)
}

pub(super) fn rule(
    ctx: &FuseContext,
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    einsum: &EinSum,
) -> TractResult<Option<TypedModelPatch>> {
    let Some(layer) = layer_at(model, node, einsum) else {
        return Ok(None);
    };
    let op = layer.op(ctx.unwrap_or(Isa::Portable))?;
    let mut patch = TypedModelPatch::default();
    let mut inputs = tvec![(node.inputs[0], layer.batch_in)];
    inputs.extend(layer.residual.map(|r| (r, layer.batch_out)));
    let mut wires = tvec![];
    for (i, (outlet, batch)) in inputs.into_iter().enumerate() {
        let (c_axis, last) = channel_axes(batch);
        let x = patch.tap_model(model, outlet)?;
        wires.push(
            patch.wire_node(
                format!("{name}.nhwc_in.{i}"),
                AxisOp::Move(c_axis, last),
                &[x],
            )?[0],
        );
    }
    let y = patch.wire_node(format!("{name}.fused"), op, &wires)?;
    let (c_axis, last) = channel_axes(layer.batch_out);
    let y = patch.wire_node(format!("{name}.nhwc_out"), AxisOp::Move(last, c_axis), &y)?;
    patch.shunt_outside(model, layer.last_node.into(), y[0])?;
    Ok(Some(patch))
}
