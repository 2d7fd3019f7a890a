//! Depthwise convolution: one `KH × KW` filter per channel, channels-last, bias and clamp fused.

use std::mem::MaybeUninit;

use crate::{Error, Isa, check_len, simd};

/// Shape of one depthwise layer: input `height × width × channels`, a `kernel_h × kernel_w`
/// window moved by `stride_*`, zero padding `pad_*` before the first row / column (whatever
/// padding comes after is implied by the output size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl Geometry {
    /// Checks that every size is positive, that every output window overlaps the input, and
    /// that no buffer length overflows.
    pub fn validate(&self) -> Result<(), Error> {
        let sizes = [
            ("height", self.height),
            ("width", self.width),
            ("channels", self.channels),
            ("kernel_h", self.kernel_h),
            ("kernel_w", self.kernel_w),
            ("stride_h", self.stride_h),
            ("stride_w", self.stride_w),
            ("out_h", self.out_h),
            ("out_w", self.out_w),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(Error::Geometry(format!("{name} is zero")));
        }
        if self.kernel_h > simd::depthwise::MAX_KERNEL
            || self.kernel_w > simd::depthwise::MAX_KERNEL
        {
            return Err(Error::Geometry(format!(
                "kernel {}×{} is larger than {m}×{m}",
                self.kernel_h,
                self.kernel_w,
                m = simd::depthwise::MAX_KERNEL
            )));
        }
        if self.pad_top >= self.kernel_h || self.pad_left >= self.kernel_w {
            return Err(Error::Geometry(format!(
                "padding {}×{} is not smaller than the kernel {}×{}",
                self.pad_top, self.pad_left, self.kernel_h, self.kernel_w
            )));
        }
        // The last window must start inside the input (this also keeps index arithmetic in range).
        let last_y = (self.out_h - 1).checked_mul(self.stride_h);
        let last_x = (self.out_w - 1).checked_mul(self.stride_w);
        match (last_y, last_x) {
            (Some(y), Some(x))
                if y < self.height.saturating_add(self.pad_top)
                    && x < self.width.saturating_add(self.pad_left) => {}
            _ => {
                return Err(Error::Geometry(format!(
                    "an output of {}×{} with stride {}×{} reaches past the input {}×{}",
                    self.out_h, self.out_w, self.stride_h, self.stride_w, self.height, self.width
                )));
            }
        }
        for (what, len) in [
            ("input", [self.height, self.width, self.channels]),
            ("output", [self.out_h, self.out_w, self.channels]),
            ("weights", [self.kernel_h, self.kernel_w, self.channels]),
        ] {
            if len
                .iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .is_none()
            {
                return Err(Error::Geometry(format!("the {what} size overflows")));
            }
        }
        Ok(())
    }

    pub fn input_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    pub fn output_len(&self) -> usize {
        self.out_h * self.out_w * self.channels
    }

    /// Length of the weights in the kernel's layout (see [`Filter::from_oihw`]).
    pub fn weights_len(&self) -> usize {
        self.kernel_h * self.kernel_w * self.channels
    }
}

/// A depthwise layer ready to run: geometry, weights tap-major with the channel innermost
/// (`[KH][KW][C]`), one bias per channel and the clamp applied to every output.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    geometry: Geometry,
    weights: Vec<f32>,
    bias: Vec<f32>,
    min: f32,
    max: f32,
}

impl Filter {
    /// Builds a filter from ONNX-layout weights (`[C][1][KH][KW]`, i.e. OIHW with one input
    /// channel per group) and a bias per channel. `min`/`max` bound every output (use
    /// infinities for no bound).
    pub fn from_oihw(
        geometry: Geometry,
        oihw: &[f32],
        bias: &[f32],
        min: f32,
        max: f32,
    ) -> Result<Self, Error> {
        geometry.validate()?;
        check_len("weights", geometry.weights_len(), oihw.len())?;
        check_len("bias", geometry.channels, bias.len())?;
        if min.is_nan() || max.is_nan() || min > max {
            return Err(Error::Geometry(format!("clamp [{min}, {max}] is empty")));
        }
        let (c, taps) = (geometry.channels, geometry.kernel_h * geometry.kernel_w);
        let mut weights = vec![0.0; oihw.len()];
        for (channel, filter) in oihw.chunks_exact(taps).enumerate() {
            for (tap, &w) in filter.iter().enumerate() {
                weights[tap * c + channel] = w;
            }
        }
        Ok(Self {
            geometry,
            weights,
            bias: bias.to_vec(),
            min,
            max,
        })
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    pub fn clamp(&self) -> (f32, f32) {
        (self.min, self.max)
    }

    /// Runs the layer on `input` (`H × W × C`, row-major) into `output` (`OH × OW × C`).
    pub fn run(&self, isa: Isa, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
        self.run_uninit(isa, input, simd::as_uninit(output))
    }

    /// [`Filter::run`] into memory that need not be initialised: every element of `output` is
    /// written (once) when this answers `Ok`.
    pub fn run_uninit(
        &self,
        isa: Isa,
        input: &[f32],
        output: &mut [MaybeUninit<f32>],
    ) -> Result<(), Error> {
        check_len("input", self.geometry.input_len(), input.len())?;
        check_len("output", self.geometry.output_len(), output.len())?;
        let args = simd::depthwise::Args {
            g: &self.geometry,
            weights: &self.weights,
            bias: &self.bias,
            min: self.min,
            max: self.max,
            input,
        };
        simd::depthwise::run(isa, &args, output)
    }
}

#[cfg(feature = "tract")]
impl Filter {
    /// Runs the layer on a `1 × H × W × C` input into a new `1 × OH × OW × C` tract tensor,
    /// without zeroing the output first.
    pub fn run_to_tensor(
        &self,
        isa: Isa,
        input: &[f32],
    ) -> Result<tract_data::prelude::Tensor, Error> {
        let g = &self.geometry;
        simd::new_tensor(&[1, g.out_h, g.out_w, g.channels], |out| {
            self.run_uninit(isa, input, out)
        })
    }
}

#[cfg(test)]
mod tests;
