//! The project's depthwise convolution inside tract's graph.
//!
//! tract lowers EfficientNet-Lite's depthwise convolutions to its own `DepthWise` op, whose
//! channels-last path on x86 re-loads and re-stores the output for every tap, and runs the ReLU6
//! that follows (`Clip`, decluttered into `Max` then `Min`) as two more passes. [`super::fuse`] replaces
//! each decluttered depthwise `Conv` and the clamp after it with one [`FusedDepthwise`] node,
//! which runs the `ml-kernels` kernels (AVX-512 or AVX2 + FMA chosen at run time) channels-last,
//! wrapped in the same axis moves tract's `conv_nhwc` puts around a convolution, so the
//! following `conv_nhwc` + declutter cancel them against their neighbours'.

use std::sync::Arc;

use ml_kernels::{Filter, Geometry, Isa};
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

use super::{FuseContext, channel_axes, layers_with, trailing_clamp, wire_clamp};

/// Depthwise convolution + bias + clamp on one channels-last `1 × H × W × C` tensor, or
/// `H × W × C` where tract's declutter has removed the batch axis.
#[derive(Debug, Clone)]
pub struct FusedDepthwise {
    filter: Arc<Filter>,
    isa: Isa,
    batch_axis: bool,
}

impl FusedDepthwise {
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    fn shape(&self, h: usize, w: usize) -> TVec<usize> {
        let c = self.filter.geometry().channels;
        if self.batch_axis {
            tvec![1, h, w, c]
        } else {
            tvec![h, w, c]
        }
    }

    fn input_shape(&self) -> TVec<usize> {
        let g = self.filter.geometry();
        self.shape(g.height, g.width)
    }

    fn output_shape(&self) -> TVec<usize> {
        let g = self.filter.geometry();
        self.shape(g.out_h, g.out_w)
    }
}

impl PartialEq for FusedDepthwise {
    fn eq(&self, other: &Self) -> bool {
        self.isa == other.isa
            && self.batch_axis == other.batch_axis
            && (Arc::ptr_eq(&self.filter, &other.filter) || self.filter == other.filter)
    }
}

// tract compares ops with `Eq`; two nodes are equal when they hold the same filter (the pointer
// test keeps this reflexive even for weights holding NaN).
impl Eq for FusedDepthwise {}

impl Op for FusedDepthwise {
    fn name(&self) -> StaticName {
        "FusedDepthwise".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = self.filter.geometry();
        let (min, max) = self.filter.clamp();
        Ok(vec![format!(
            "{}×{} stride {}×{} pad {}×{} on {}×{}×{} → {}×{}, clamp [{min}, {max}], {}",
            g.kernel_h,
            g.kernel_w,
            g.stride_h,
            g.stride_w,
            g.pad_top,
            g.pad_left,
            g.height,
            g.width,
            g.channels,
            g.out_h,
            g.out_w,
            self.isa
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for FusedDepthwise {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let expected = self.input_shape();
        ensure!(
            input.datum_type() == f32::datum_type() && input.shape() == &*expected,
            "FusedDepthwise expects f32 {expected:?}, got {:?} {:?}",
            input.datum_type(),
            input.shape()
        );
        let view = input.try_as_plain_ram()?;
        let output = self
            .filter
            .run_to_tensor(self.isa, view.as_slice::<f32>()?)?
            .into_shape(&self.output_shape())?;
        Ok(tvec!(output.into()))
    }
}

impl TypedOp for FusedDepthwise {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let expected: TVec<TDim> = self.input_shape().iter().map(|&d| d.to_dim()).collect();
        ensure!(
            inputs.len() == 1
                && inputs[0].datum_type == f32::datum_type()
                && inputs[0].shape.to_tvec() == expected,
            "FusedDepthwise expects one f32 input of shape {expected:?}, got {inputs:?}"
        );
        Ok(tvec!(f32::fact(&*self.output_shape())))
    }

    as_op!();
}

/// One depthwise convolution of a decluttered (channels-first) model that [`super::fuse`] replaces, with
/// the clamp that follows it.
#[derive(Debug, Clone)]
pub struct DepthwiseLayer {
    /// Name of the `Conv` node.
    pub name: String,
    pub conv: Conv,
    /// ONNX layout, `[C][1][KH][KW]`.
    pub kernel: Arc<Tensor>,
    /// One value per channel.
    pub bias: Arc<Tensor>,
    pub geometry: Geometry,
    /// Whether the tensors have a batch axis (`N × C × H × W`) or not (`C × H × W`).
    pub batch_axis: bool,
    pub min: f32,
    pub max: f32,
    /// The last node the fused op stands in for (the `Conv`, or the `Max`/`Min` after it).
    last_node: usize,
}

impl DepthwiseLayer {
    /// The fused operator for this layer.
    pub fn op(&self, isa: Isa) -> TractResult<FusedDepthwise> {
        let kernel = self.kernel.try_as_plain_ram()?;
        let bias = self.bias.try_as_plain_ram()?;
        let filter = Filter::from_oihw(
            self.geometry,
            kernel.as_slice::<f32>()?,
            bias.as_slice::<f32>()?,
            self.min,
            self.max,
        )?;
        Ok(FusedDepthwise {
            filter: Arc::new(filter),
            isa,
            batch_axis: self.batch_axis,
        })
    }

    /// The layer's input shape, channels first as in the decluttered model.
    pub fn input_shape(&self) -> Vec<usize> {
        let g = &self.geometry;
        let chw = [g.channels, g.height, g.width];
        if self.batch_axis {
            [&[1], &chw[..]].concat()
        } else {
            chw.to_vec()
        }
    }

    /// The same layer with other weights (same shape), e.g. to check that a comparison notices.
    pub fn with_kernel(&self, kernel: Tensor) -> TractResult<Self> {
        ensure!(
            kernel.shape() == self.kernel.shape() && kernel.datum_type() == f32::datum_type(),
            "kernel of shape {:?} expected",
            self.kernel.shape()
        );
        Ok(Self {
            kernel: Arc::new(kernel),
            ..self.clone()
        })
    }

    /// A model of this layer alone, as tract sees it after declutter: `1 × C × H × W` in, the
    /// stock `Conv`, then `Max`/`Min` for the clamp. For checking the fused op against tract's.
    pub fn standalone(&self) -> TractResult<TypedModel> {
        let shape = self.input_shape();
        let mut model = TypedModel::default();
        let x = model.add_source("x", f32::fact(&shape))?;
        let kernel = model.add_const("kernel", self.kernel.clone())?;
        let bias = model.add_const("bias", self.bias.clone())?;
        let y = model.wire_node(&self.name, self.conv.clone(), &[x, kernel, bias])?[0];
        let y = wire_clamp(&mut model, y, shape.len(), (self.min, self.max))?;
        model.select_output_outlets(&[y])?;
        Ok(model)
    }
}

/// Reads a depthwise layer the fused op can run at `node`, or `None`.
fn layer_at(model: &TypedModel, node: &TypedNode, conv: &Conv) -> Option<DepthwiseLayer> {
    let spec = &conv.pool_spec;
    let c = spec.input_channels;
    // tract's declutter drops the batch axis of a one-image graph: most layers are CHW.
    let batch_axis = match spec.data_format {
        DataFormat::NCHW => true,
        DataFormat::CHW => false,
        _ => return None,
    };
    if conv.q_params.is_some()
        || conv.kernel_fmt != KernelFormat::OIHW
        || conv.group != c
        || spec.output_channels != c
        || c < 2
        || spec.rank() != 2
        || spec.dilations().iter().any(|&d| d != 1)
        || node.inputs.len() != 3
    {
        return None;
    }
    let x = model.outlet_fact(node.inputs[0]).ok()?;
    let shape = x.shape.as_concrete()?;
    let chw = if batch_axis {
        (shape.len() == 4 && shape[0] == 1).then(|| &shape[1..])?
    } else {
        (shape.len() == 3).then_some(shape)?
    };
    if x.datum_type != f32::datum_type() || chw[0] != c {
        return None;
    }
    let kernel = model.outlet_fact(node.inputs[1]).ok()?.konst.clone()?;
    let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
    if kernel.datum_type() != f32::datum_type() || kernel.shape() != [c, 1, kh, kw] {
        return None;
    }
    let bias = model.outlet_fact(node.inputs[2]).ok()?.konst.clone()?;
    if bias.datum_type() != f32::datum_type() || bias.len() != c {
        return None;
    }
    let bias = Arc::new(bias.clone().into_tensor().into_shape(&[c]).ok()?);
    let (h, w) = (chw[1], chw[2]);
    let padded = spec.computed_padding(&[h, w]);
    let out = model
        .outlet_fact(node.id.into())
        .ok()?
        .shape
        .as_concrete()?
        .to_vec();
    let strides = spec.strides();
    let geometry = Geometry {
        height: h,
        width: w,
        channels: c,
        kernel_h: kh,
        kernel_w: kw,
        stride_h: strides[0],
        stride_w: strides[1],
        pad_top: padded[0].pad_before,
        pad_left: padded[1].pad_before,
        out_h: padded[0].convoluted,
        out_w: padded[1].convoluted,
    };
    let out_chw = if batch_axis { out.get(1..)? } else { &out[..] };
    if (batch_axis && out.first() != Some(&1))
        || out_chw != [c, geometry.out_h, geometry.out_w]
        || geometry.validate().is_err()
    {
        return None;
    }

    let (min, max, last) = trailing_clamp(model, node.id)?;
    Some(DepthwiseLayer {
        name: node.name.clone(),
        conv: conv.clone(),
        kernel,
        bias,
        geometry,
        batch_axis,
        min,
        max,
        last_node: last,
    })
}

/// Every depthwise layer of a decluttered model that [`super::fuse`] would replace, in evaluation order.
pub fn layers(model: &TypedModel) -> TractResult<Vec<DepthwiseLayer>> {
    layers_with(model, layer_at)
}

pub(super) fn rule(
    ctx: &FuseContext,
    model: &TypedModel,
    node: &TypedNode,
    name: &str,
    conv: &Conv,
) -> TractResult<Option<TypedModelPatch>> {
    let Some(layer) = layer_at(model, node, conv) else {
        return Ok(None);
    };
    let op = layer.op(ctx.unwrap_or(Isa::Portable))?;
    let mut patch = TypedModelPatch::default();
    // The same moves conv_nhwc puts around a convolution: channels last in, channels back out.
    let (c_axis, last) = channel_axes(layer.batch_axis);
    let x = patch.tap_model(model, node.inputs[0])?;
    let x = patch.wire_node(format!("{name}.nhwc_in"), AxisOp::Move(c_axis, last), &[x])?;
    let y = patch.wire_node(format!("{name}.fused"), op, &x)?;
    let y = patch.wire_node(format!("{name}.nhwc_out"), AxisOp::Move(last, c_axis), &y)?;
    patch.shunt_outside(model, layer.last_node.into(), y[0])?;
    Ok(Some(patch))
}
