//! Pointwise (1×1) convolution, channels-last: each pixel's `inputs` channels times the
//! `outputs × inputs` weights, plus bias, clamped, optionally plus a residual of the output's
//! shape (an inverted-residual block's skip connection, added after the clamp as the graph does).

use std::mem::MaybeUninit;

use crate::simd::pointwise::{Args, PANEL};
use crate::{Error, Isa, check_len, simd};

/// A 1×1 layer ready to run: its weights packed for the kernels, one bias per output channel
/// and the clamp applied to every output.
#[derive(Debug, Clone, PartialEq)]
pub struct Pointwise {
    inputs: usize,
    outputs: usize,
    /// `[outputs.div_ceil(PANEL)][inputs][PANEL]`, zero where a panel runs past `outputs`.
    panels: Vec<f32>,
    /// Padded like the panels.
    bias: Vec<f32>,
    min: f32,
    max: f32,
}

impl Pointwise {
    /// Builds a layer from ONNX-layout weights (`[outputs][inputs]`, OIHW with 1×1 windows) and a
    /// bias per output channel. `min`/`max` bound every output before the residual is added (use
    /// infinities for no bound).
    pub fn from_oi(
        inputs: usize,
        outputs: usize,
        oi: &[f32],
        bias: &[f32],
        min: f32,
        max: f32,
    ) -> Result<Self, Error> {
        if inputs == 0 || outputs == 0 {
            return Err(Error::Geometry(format!(
                "a 1×1 layer of {inputs} → {outputs} channels"
            )));
        }
        let overflow = || Error::Geometry("the weights' size overflows".into());
        let padded_outputs = outputs
            .div_ceil(PANEL)
            .checked_mul(PANEL)
            .ok_or_else(overflow)?;
        let weights = inputs.checked_mul(padded_outputs).ok_or_else(overflow)?;
        check_len(
            "weights",
            inputs.checked_mul(outputs).ok_or_else(overflow)?,
            oi.len(),
        )?;
        check_len("bias", outputs, bias.len())?;
        if min.is_nan() || max.is_nan() || min > max {
            return Err(Error::Geometry(format!("clamp [{min}, {max}] is empty")));
        }
        let mut panels = vec![0.0; weights];
        for (o, row) in oi.chunks_exact(inputs).enumerate() {
            let (panel, col) = (o / PANEL, o % PANEL);
            for (i, &w) in row.iter().enumerate() {
                panels[(panel * inputs + i) * PANEL + col] = w;
            }
        }
        let mut padded = bias.to_vec();
        padded.resize(padded_outputs, 0.0);
        Ok(Self {
            inputs,
            outputs,
            panels,
            bias: padded,
            min,
            max,
        })
    }

    /// Input and output channels.
    pub fn channels(&self) -> (usize, usize) {
        (self.inputs, self.outputs)
    }

    pub fn clamp(&self) -> (f32, f32) {
        (self.min, self.max)
    }

    /// Runs the layer on `pixels` pixels: `input` is `pixels × inputs`, `output` and `residual`
    /// are `pixels × outputs`, all row-major.
    pub fn run(
        &self,
        isa: Isa,
        pixels: usize,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [f32],
    ) -> Result<(), Error> {
        self.run_uninit(isa, pixels, input, residual, simd::as_uninit(output))
    }

    /// [`Pointwise::run`] into memory that need not be initialised: every element of `output` is
    /// written (once) when this answers `Ok`.
    pub fn run_uninit(
        &self,
        isa: Isa,
        pixels: usize,
        input: &[f32],
        residual: Option<&[f32]>,
        output: &mut [MaybeUninit<f32>],
    ) -> Result<(), Error> {
        let len = |what: &'static str, channels: usize| {
            pixels
                .checked_mul(channels)
                .ok_or_else(|| Error::Geometry(format!("the {what} size overflows")))
        };
        let (in_len, out_len) = (len("input", self.inputs)?, len("output", self.outputs)?);
        check_len("input", in_len, input.len())?;
        check_len("output", out_len, output.len())?;
        if let Some(residual) = residual {
            check_len("residual", out_len, residual.len())?;
        }
        let args = Args {
            inputs: self.inputs,
            outputs: self.outputs,
            pixels,
            panels: &self.panels,
            bias: &self.bias,
            min: self.min,
            max: self.max,
            input,
            residual,
        };
        simd::pointwise::run(isa, &args, output)
    }
}

#[cfg(feature = "tract")]
impl Pointwise {
    /// Runs the layer into a new tract tensor of `shape` (whose last axis is the output
    /// channels; the others multiply to the pixel count), without zeroing it first.
    pub fn run_to_tensor(
        &self,
        isa: Isa,
        shape: &[usize],
        input: &[f32],
        residual: Option<&[f32]>,
    ) -> Result<tract_data::prelude::Tensor, Error> {
        let (last, rest) = shape
            .split_last()
            .ok_or_else(|| Error::Geometry("an output of rank 0".into()))?;
        check_len("output channels", self.outputs, *last)?;
        let pixels = rest.iter().product();
        simd::new_tensor(shape, |out| {
            self.run_uninit(isa, pixels, input, residual, out)
        })
    }
}

#[cfg(test)]
mod tests;
