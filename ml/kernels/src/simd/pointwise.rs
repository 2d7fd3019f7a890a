//! Pointwise (1×1) kernels: `out[p][o] = clamp(bias[o] + Σ_i in[p][i] · w[o][i]) (+ res[p][o])`.
//!
//! How a layer runs: the weights are packed once, at load, into panels of [`PANEL`] output
//! channels, `[panel][input channel][PANEL]`, the last panel padded with zeros (see
//! `Pointwise::from_oi`), so one input channel's slice of a panel is one or two contiguous
//! vectors. The pixels' channel vectors are used where they lie: a tile of `M` pixels × one
//! panel keeps its `M × PANEL` accumulators in registers, and for each input channel loads the
//! panel's weight vectors once and broadcasts each pixel's value into its row of multiply-adds —
//! no copy of the activations is made. Bias is the accumulators' start; the clamp, then the
//! residual, are applied just before the single store. Pixels are taken in chunks whose input
//! rows fit in the L2 cache, and within a chunk panel by panel, so a panel's weights stay in L1
//! while the chunk's tiles pass over them.

use std::mem::MaybeUninit;

use super::{Kernel, Vector, dispatch};
use crate::{Error, Isa};

/// Output channels per packed weight panel: two 256-bit vectors, one 512-bit vector.
pub(crate) const PANEL: usize = 16;

/// Bytes of input rows a chunk of pixels spans (half of a 512 KiB–1 MiB L2).
const CHUNK_BYTES: usize = 256 * 1024;

pub(crate) struct Args<'a> {
    pub inputs: usize,
    pub outputs: usize,
    pub pixels: usize,
    /// `[outputs.div_ceil(PANEL)][inputs][PANEL]`.
    pub panels: &'a [f32],
    /// `[outputs.div_ceil(PANEL) · PANEL]`, zero after `outputs`.
    pub bias: &'a [f32],
    pub min: f32,
    pub max: f32,
    /// `[pixels][inputs]`.
    pub input: &'a [f32],
    /// `[pixels][outputs]`, added after the clamp.
    pub residual: Option<&'a [f32]>,
}

/// Runs the layer; the caller has checked the buffer lengths. Every element of `out` is written
/// exactly once (pixels by tiles covering each chunk, channels by panels covering `outputs`) and
/// none is read, so `out` may start uninitialised.
pub(crate) fn run(isa: Isa, a: &Args, out: &mut [MaybeUninit<f32>]) -> Result<(), Error> {
    dispatch(isa, Layer { a, out })
}

struct Layer<'a, 'o> {
    a: &'a Args<'a>,
    out: &'o mut [MaybeUninit<f32>],
}

impl Kernel for Layer<'_, '_> {
    #[inline(always)]
    fn run<V: Vector>(self) {
        // Tile heights that keep the accumulators, the panel's weights and one broadcast in the
        // registers: 32 × 512 bits (AVX-512), 16 × 256 (AVX2), 16 × 128 (the portable lane
        // array on x86-64's baseline, two registers per 8-lane vector).
        match (V::LANES, V::PORTABLE) {
            (16, _) => layer::<V, 14, 1>(self.a, self.out),
            (8, false) => layer::<V, 6, 2>(self.a, self.out),
            (8, true) => layer::<V, 2, 2>(self.a, self.out),
            _ => unreachable!("no tile for {} lanes", V::LANES),
        }
    }
}

/// `NV` vectors of `V` span one panel; tiles are `M` pixels high, the pixels left at the end of a
/// chunk go by tiles of 8, 4, 2 and 1 (those below `M`).
#[inline(always)]
fn layer<V: Vector, const M: usize, const NV: usize>(a: &Args, out: &mut [MaybeUninit<f32>]) {
    assert!(NV * V::LANES == PANEL);
    let panels = a.outputs.div_ceil(PANEL);
    assert!(a.inputs > 0 && a.outputs > 0);
    assert!(a.input.len() == a.pixels * a.inputs && out.len() == a.pixels * a.outputs);
    assert!(a.panels.len() == panels * a.inputs * PANEL && a.bias.len() == panels * PANEL);
    assert!(a.residual.is_none_or(|r| r.len() == out.len()));
    let chunk = (CHUNK_BYTES / 4 / a.inputs).max(M) / M * M;
    let mut p0 = 0;
    while p0 < a.pixels {
        let p1 = (p0 + chunk).min(a.pixels);
        for panel in 0..panels {
            let mut p = p0;
            while p + M <= p1 {
                tile::<V, M, NV>(a, p, panel, out);
                p += M;
            }
            for rows in [8, 4, 2, 1] {
                while rows < M && p + rows <= p1 {
                    match rows {
                        8 => tile::<V, 8, NV>(a, p, panel, out),
                        4 => tile::<V, 4, NV>(a, p, panel, out),
                        2 => tile::<V, 2, NV>(a, p, panel, out),
                        _ => tile::<V, 1, NV>(a, p, panel, out),
                    }
                    p += rows;
                }
            }
        }
        p0 = p1;
    }
}

/// Pixels `p..p + M`, output channels of `panel`.
#[inline(always)]
fn tile<V: Vector, const M: usize, const NV: usize>(
    a: &Args,
    p: usize,
    panel: usize,
    out: &mut [MaybeUninit<f32>],
) {
    let (k, n) = (a.inputs, a.outputs);
    let c0 = panel * PANEL;
    let cols = PANEL.min(n - c0);
    // One check per tile for every address formed below (`layer` checked the buffer lengths).
    assert!(p + M <= a.pixels && c0 < n && (panel + 1) * k * PANEL <= a.panels.len());
    let (x, w, out) = (
        a.input.as_ptr(),
        a.panels.as_ptr(),
        out.as_mut_ptr().cast::<f32>(),
    );
    // SAFETY (every access below): the CPU has V's features (see `Vector`); input reads are at
    // pixel rows p..p + M (< pixels) and channels i < k, inside `input` (pixels · k); weight
    // vectors at panel · k · PANEL + i · PANEL + j · LANES with i < k and j < NV, inside the
    // panel (`NV · LANES == PANEL`); bias vectors inside the padded bias (panels · PANEL); output
    // and residual at rows p..p + M and columns c0 + j · LANES + lane only while below
    // c0 + cols <= n: whole vectors when cols == PANEL, else one value at a time.
    unsafe {
        let bias: [V; NV] =
            std::array::from_fn(|j| V::load(a.bias.as_ptr().add(c0 + j * V::LANES)));
        let mut acc = [bias; M];
        let panel_w = w.add(panel * k * PANEL);
        for i in 0..k {
            let wv: [V; NV] =
                std::array::from_fn(|j| V::load(panel_w.add(i * PANEL + j * V::LANES)));
            for (m, row) in acc.iter_mut().enumerate() {
                let xv = V::splat(*x.add((p + m) * k + i));
                for (acc, &wv) in row.iter_mut().zip(&wv) {
                    *acc = V::mul_add(xv, wv, *acc);
                }
            }
        }
        let (lo, hi) = (V::splat(a.min), V::splat(a.max));
        for (m, row) in acc.iter().enumerate() {
            let at = (p + m) * n + c0;
            if cols == PANEL {
                for (j, &v) in row.iter().enumerate() {
                    let mut v = v.clamp(lo, hi);
                    if let Some(res) = a.residual {
                        v = v.add(V::load(res.as_ptr().add(at + j * V::LANES)));
                    }
                    v.store(out.add(at + j * V::LANES));
                }
            } else {
                let mut lanes = [0.0f32; PANEL];
                for (j, &v) in row.iter().enumerate() {
                    v.clamp(lo, hi).store(lanes.as_mut_ptr().add(j * V::LANES));
                }
                for (col, &v) in lanes.iter().enumerate().take(cols) {
                    let v = match a.residual {
                        Some(res) => v + *res.as_ptr().add(at + col),
                        None => v,
                    };
                    out.add(at + col).write(v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Lanes;
    use super::*;
    use crate::test_support::Noise;

    fn run_with<V: Vector>(a: &Args) -> Vec<f32> {
        let mut out = vec![MaybeUninit::new(f32::NAN); a.pixels * a.outputs];
        Layer { a, out: &mut out }.run::<V>();
        // SAFETY: `MaybeUninit<f32>` has f32's layout and every element was initialised above.
        out.into_iter()
            .map(|v| unsafe { v.assume_init() })
            .collect()
    }

    /// AVX-512's tiling (one 16-lane vector per panel, tiles of 14 pixels, tails of 8, 4, 2, 1)
    /// run with portable 16 lanes gives exactly what the portable 8-lane tiling (two vectors per
    /// panel, 2-pixel tiles) gives: both add each element's products in input-channel order,
    /// unfused. Checks that tiling on machines without AVX-512.
    #[test]
    fn the_avx512_tiling_matches_the_portable_tiling_exactly() {
        let mut noise = Noise(7);
        for (inputs, outputs) in [(24usize, 40usize), (9, 16), (5, 33)] {
            for pixels in [1, 13, 14, 15, 23, 29, 30, 31] {
                let padded = outputs.div_ceil(PANEL) * PANEL;
                let mut panels = noise.fill(padded * inputs, -1.0, 1.0);
                let mut bias = noise.fill(padded, -0.5, 0.5);
                // Zero where a panel runs past `outputs`, as `Pointwise::from_oi` packs it.
                for (i, w) in panels.iter_mut().enumerate() {
                    if (i / (inputs * PANEL)) * PANEL + i % PANEL >= outputs {
                        *w = 0.0;
                    }
                }
                bias[outputs..].fill(0.0);
                let input = noise.fill(pixels * inputs, -1.0, 6.0);
                let residual = noise.fill(pixels * outputs, -2.0, 2.0);
                for residual in [None, Some(&residual[..])] {
                    let a = Args {
                        inputs,
                        outputs,
                        pixels,
                        panels: &panels,
                        bias: &bias,
                        min: 0.0,
                        max: 6.0,
                        input: &input,
                        residual,
                    };
                    let (wide, narrow) = (run_with::<Lanes<16>>(&a), run_with::<Lanes<8>>(&a));
                    assert!(wide.iter().all(|v| v.is_finite()), "unwritten outputs");
                    assert_eq!(wide, narrow, "{inputs} → {outputs} × {pixels}");
                }
            }
        }
    }
}
