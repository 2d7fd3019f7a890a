//! Depthwise kernels.
//!
//! How a layer runs: input rows are copied, as they are first needed, into a ring of `KH`
//! zero-padded rows, so every output pixel's window lies inside a row and no border needs code of
//! its own. Each output row is then computed in blocks of `P` neighbouring pixels (8, then 4, then
//! 1 for what is left). For one block and one channel vector, the `KW` weight vectors of a kernel
//! row are loaded once, and each input vector of the row is loaded once and multiplied into every
//! output of the block whose window covers it; bias is the accumulators' start, and the clamp
//! (ReLU6) is applied just before the single store. Channels left over after the last whole
//! vector are done one at a time.

use std::mem::MaybeUninit;

use super::{Kernel, Vector, dispatch};
use crate::{Error, Geometry, Isa};

pub(crate) struct Args<'a> {
    pub g: &'a Geometry,
    /// `[KH][KW][C]`.
    pub weights: &'a [f32],
    pub bias: &'a [f32],
    pub min: f32,
    pub max: f32,
    /// `[H][W][C]`.
    pub input: &'a [f32],
}

/// Largest kernel side the kernels take (bounds the per-row table of ring offsets).
pub(crate) const MAX_KERNEL: usize = 16;

/// Runs the layer; the caller has checked the buffer lengths against the geometry. Every element
/// of `out` is written exactly once (rows by `chunks_exact_mut`, pixels by blocks of 8, 4 and 1
/// covering the row, channels by whole vectors then `tail_channels`), and none is read, so `out`
/// may start uninitialised.
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
        layer::<V>(self.a, self.out);
    }
}

/// The taps `k` of a window starting at coordinate `start` (may be negative) inside `0..size`.
#[inline(always)]
fn valid_taps(start: isize, kernel: usize, size: usize) -> (usize, usize) {
    let first = (-start).clamp(0, kernel as isize) as usize;
    let end = (size as isize - start).clamp(first as isize, kernel as isize) as usize;
    (first, end)
}

/// One output row's view of the ring: the valid kernel rows `ky0..ky1` and, for each, where its
/// padded input row starts in the ring.
struct RowSet<'r> {
    ring: &'r [f32],
    offsets: [usize; MAX_KERNEL],
    ky0: usize,
    ky1: usize,
}

#[inline(always)]
fn layer<V: Vector>(a: &Args, out: &mut [MaybeUninit<f32>]) {
    let g = a.g;
    let (c, kh, kw) = (g.channels, g.kernel_h, g.kernel_w);
    assert!(kh <= MAX_KERNEL && kw <= MAX_KERNEL);
    assert!(a.input.len() == g.height * g.width * c && out.len() == g.out_h * g.out_w * c);
    assert!(a.weights.len() == kh * kw * c && a.bias.len() == c);
    // Padded row: `pad_left` zero pixels, the input row, zeros up to the last window's end.
    let padded_w = ((g.out_w - 1) * g.stride_w + kw).max(g.pad_left + g.width);
    let slot = padded_w * c;
    let mut ring = vec![0.0f32; kh * slot];
    let mut copied = 0; // input rows copied into the ring so far
    let row_len = g.width * c;
    for (oy, out_row) in out.chunks_exact_mut(g.out_w * c).enumerate() {
        let y0 = (oy * g.stride_h) as isize - g.pad_top as isize;
        let (ky0, ky1) = valid_taps(y0, kh, g.height);
        let last = (y0 + ky1 as isize).max(0) as usize; // one past the last input row read
        while copied < last {
            let at = (copied % kh) * slot + g.pad_left * c;
            ring[at..at + row_len].copy_from_slice(&a.input[copied * row_len..][..row_len]);
            copied += 1;
        }
        let mut offsets = [0; MAX_KERNEL];
        for (ky, offset) in offsets.iter_mut().enumerate().take(ky1).skip(ky0) {
            *offset = ((y0 + ky as isize) as usize % kh) * slot;
        }
        let rows = RowSet {
            ring: &ring,
            offsets,
            ky0,
            ky1,
        };
        match (kw, g.stride_w) {
            (3, 1) => output_row::<V, 3, 1>(a, &rows, out_row),
            (3, 2) => output_row::<V, 3, 2>(a, &rows, out_row),
            (5, 1) => output_row::<V, 5, 1>(a, &rows, out_row),
            (5, 2) => output_row::<V, 5, 2>(a, &rows, out_row),
            _ => {
                for ox in 0..g.out_w {
                    any_pixel::<V>(a, &rows, ox, out_row);
                }
            }
        }
    }
}

#[inline(always)]
fn output_row<V: Vector, const KW: usize, const SW: usize>(
    a: &Args,
    rows: &RowSet,
    out_row: &mut [MaybeUninit<f32>],
) {
    let out_w = a.g.out_w;
    let mut ox = 0;
    while ox + 8 <= out_w {
        block::<V, KW, SW, 8>(a, rows, ox, out_row);
        ox += 8;
    }
    if ox + 4 <= out_w {
        block::<V, KW, SW, 4>(a, rows, ox, out_row);
        ox += 4;
    }
    while ox < out_w {
        block::<V, KW, SW, 1>(a, rows, ox, out_row);
        ox += 1;
    }
}

/// Checks that the block of `pixels` output pixels at `ox`, each reading `kw` padded columns
/// `stride` apart, lies inside the ring rows and the output row. Panics otherwise (a bug in
/// `layer`, never input-dependent once `Filter::run` has checked the lengths).
#[inline(always)]
fn check_block(
    a: &Args,
    rows: &RowSet,
    ox: usize,
    pixels: usize,
    kw: usize,
    out_row: &[MaybeUninit<f32>],
) {
    let g = a.g;
    let c = g.channels;
    let slot = rows.ring.len() / g.kernel_h;
    assert!(rows.ky1 <= g.kernel_h && ox + pixels <= g.out_w && out_row.len() == g.out_w * c);
    assert!(((ox + pixels - 1) * g.stride_w + kw) * c <= slot);
    assert!(
        rows.offsets[rows.ky0..rows.ky1]
            .iter()
            .all(|&o| o + slot <= rows.ring.len())
    );
}

/// `P` output pixels `ox..ox + P` of a row, kernel width `KW`, horizontal stride `SW`.
#[inline(always)]
fn block<V: Vector, const KW: usize, const SW: usize, const P: usize>(
    a: &Args,
    rows: &RowSet,
    ox: usize,
    out_row: &mut [MaybeUninit<f32>],
) {
    check_block(a, rows, ox, P, KW, out_row);
    let c = a.g.channels;
    let whole = c / V::LANES * V::LANES;
    let span = (P - 1) * SW + KW; // padded columns the block reads
    let x0 = ox * SW;
    let (ring, weights, out) = (
        rows.ring.as_ptr(),
        a.weights.as_ptr(),
        out_row.as_mut_ptr().cast::<f32>(),
    );
    // SAFETY (every vector access below): the CPU has V's features (see `Vector`); `check_block`
    // established that for ky in ky0..ky1 the columns x0 .. x0 + span of ring row `offsets[ky]`
    // lie inside the ring, and pixels ox .. ox + P inside the output row; `c0 + LANES <= whole
    // <= c` keeps each vector inside its pixel; ky < KH and kx < KW keep weight vectors inside
    // `weights` (KH · KW · C, checked in `layer`), and `bias` has C values.
    unsafe {
        let (lo, hi) = (V::splat(a.min), V::splat(a.max));
        for c0 in (0..whole).step_by(V::LANES) {
            let mut acc = [V::load(a.bias.as_ptr().add(c0)); P];
            for ky in rows.ky0..rows.ky1 {
                let row = ring.add(rows.offsets[ky] + x0 * c + c0);
                let taps = weights.add(ky * KW * c + c0);
                let w: [V; KW] = std::array::from_fn(|kx| V::load(taps.add(kx * c)));
                for j in 0..span {
                    let x = V::load(row.add(j * c));
                    for (kx, &w) in w.iter().enumerate() {
                        if j >= kx && (j - kx) % SW == 0 && (j - kx) / SW < P {
                            let p = (j - kx) / SW;
                            acc[p] = V::mul_add(x, w, acc[p]);
                        }
                    }
                }
            }
            for (p, acc) in acc.iter().enumerate() {
                acc.clamp(lo, hi).store(out.add((ox + p) * c + c0));
            }
        }
    }
    for p in 0..P {
        tail_channels(a, rows, ox + p, whole, out_row);
    }
}

/// One output pixel for any kernel width and stride.
#[inline(always)]
fn any_pixel<V: Vector>(a: &Args, rows: &RowSet, ox: usize, out_row: &mut [MaybeUninit<f32>]) {
    let g = a.g;
    let (c, kw) = (g.channels, g.kernel_w);
    check_block(a, rows, ox, 1, kw, out_row);
    let whole = c / V::LANES * V::LANES;
    let x0 = ox * g.stride_w;
    let (ring, weights, out) = (
        rows.ring.as_ptr(),
        a.weights.as_ptr(),
        out_row.as_mut_ptr().cast::<f32>(),
    );
    // SAFETY: as in `block` with P = 1 and a run-time kernel width.
    unsafe {
        let (lo, hi) = (V::splat(a.min), V::splat(a.max));
        for c0 in (0..whole).step_by(V::LANES) {
            let mut acc = V::load(a.bias.as_ptr().add(c0));
            for ky in rows.ky0..rows.ky1 {
                let row = ring.add(rows.offsets[ky] + x0 * c + c0);
                let taps = weights.add(ky * kw * c + c0);
                for kx in 0..kw {
                    acc = V::mul_add(V::load(row.add(kx * c)), V::load(taps.add(kx * c)), acc);
                }
            }
            acc.clamp(lo, hi).store(out.add(ox * c + c0));
        }
    }
    tail_channels(a, rows, ox, whole, out_row);
}

/// Channels `from..C` of one output pixel, one at a time (bounds-checked: rare and cheap).
fn tail_channels(
    a: &Args,
    rows: &RowSet,
    ox: usize,
    from: usize,
    out_row: &mut [MaybeUninit<f32>],
) {
    let g = a.g;
    let (c, kw) = (g.channels, g.kernel_w);
    for ch in from..c {
        let mut acc = a.bias[ch];
        for ky in rows.ky0..rows.ky1 {
            for kx in 0..kw {
                let x = rows.ring[rows.offsets[ky] + (ox * g.stride_w + kx) * c + ch];
                acc = x.mul_add(a.weights[(ky * kw + kx) * c + ch], acc);
            }
        }
        out_row[ox * c + ch].write(acc.max(a.min).min(a.max));
    }
}
