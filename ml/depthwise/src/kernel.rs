//! The one body every instruction set compiles: plain Rust on fixed-size lane arrays, written so
//! the compiler keeps the accumulators in vector registers. `dispatch.rs` instantiates it inside
//! functions built for AVX-512 or AVX2 + FMA, and once for the baseline target.
//!
//! Loop order per output row: pixels in blocks of `P` (when the whole window is inside the input)
//! or one at a time (at the borders), then channels in blocks of `L`, then the taps. A block keeps
//! `P × L` sums in registers, loads each weight vector once for `P` pixels, and stores each output
//! once, after bias and clamp. Channels left over after the last full block go through the same
//! code with one lane.

use crate::Geometry;

/// How a product is added to a running sum.
pub(crate) trait MulAdd {
    fn mul_add(x: f32, w: f32, acc: f32) -> f32;
}

/// One rounding (`vfmadd` where the function is compiled with `fma`).
pub(crate) struct Fused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(x: f32, w: f32, acc: f32) -> f32 {
        x.mul_add(w, acc)
    }
}

/// Multiply, round, add, round: what a CPU without FMA does quickly.
pub(crate) struct Separate;

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(x: f32, w: f32, acc: f32) -> f32 {
        x * w + acc
    }
}

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

#[inline(always)]
fn lanes<const L: usize>(s: &[f32], at: usize) -> &[f32; L] {
    s[at..]
        .first_chunk::<L>()
        .expect("lane block lies inside the buffer")
}

#[inline(always)]
fn lanes_mut<const L: usize>(s: &mut [f32], at: usize) -> &mut [f32; L] {
    s[at..]
        .first_chunk_mut::<L>()
        .expect("lane block lies inside the buffer")
}

/// The taps `k` of a window starting at input coordinate `start` (may be negative) that fall
/// inside `0..size`.
#[inline(always)]
fn valid_taps(start: isize, kernel: usize, size: usize) -> (usize, usize) {
    let first = (-start).clamp(0, kernel as isize) as usize;
    let end = (size as isize - start).clamp(first as isize, kernel as isize) as usize;
    (first, end)
}

/// Runs the whole layer. `L` lanes per channel block, `P` pixels per interior block.
#[inline(always)]
pub(crate) fn run<M: MulAdd, const L: usize, const P: usize>(a: &Args, out: &mut [f32]) {
    let g = a.g;
    let c = g.channels;
    let full = c / L * L;
    let row_len = g.out_w * c;
    // Output columns whose whole window lies inside the input.
    let interior_first = g.pad_left.div_ceil(g.stride_w);
    let interior_end = if g.width + g.pad_left >= g.kernel_w {
        ((g.width + g.pad_left - g.kernel_w) / g.stride_w + 1).min(g.out_w)
    } else {
        0
    };
    for (oy, out_row) in out.chunks_exact_mut(row_len).enumerate() {
        let y0 = (oy * g.stride_h) as isize - g.pad_top as isize;
        let (ky0, ky1) = valid_taps(y0, g.kernel_h, g.height);
        let rows = Rows { y0, ky0, ky1 };
        let mut ox = 0;
        while ox < g.out_w {
            if ox >= interior_first && ox + P <= interior_end {
                block::<M, L, P>(a, &rows, ox, full, out_row);
                if full < c {
                    for p in 0..P {
                        pixel::<M, 1>(a, &rows, ox + p, full, c, out_row);
                    }
                }
                ox += P;
            } else {
                pixel::<M, L>(a, &rows, ox, 0, full, out_row);
                pixel::<M, 1>(a, &rows, ox, full, c, out_row);
                ox += 1;
            }
        }
    }
}

/// The input rows one output row reads: window start `y0`, valid taps `ky0..ky1`.
struct Rows {
    y0: isize,
    ky0: usize,
    ky1: usize,
}

/// `P` neighbouring output pixels whose windows lie inside the input horizontally, channels
/// `0..channels` (a multiple of `L`).
#[inline(always)]
fn block<M: MulAdd, const L: usize, const P: usize>(
    a: &Args,
    rows: &Rows,
    ox: usize,
    channels: usize,
    out_row: &mut [f32],
) {
    let g = a.g;
    let c = g.channels;
    let in_row_len = g.width * c;
    let x0 = ox * g.stride_w - g.pad_left;
    for c0 in (0..channels).step_by(L) {
        let bias = lanes::<L>(a.bias, c0);
        let mut acc = [*bias; P];
        for ky in rows.ky0..rows.ky1 {
            let iy = (rows.y0 + ky as isize) as usize;
            let in_row = &a.input[iy * in_row_len..(iy + 1) * in_row_len];
            let w_row = &a.weights[ky * g.kernel_w * c..(ky + 1) * g.kernel_w * c];
            for kx in 0..g.kernel_w {
                let w = lanes::<L>(w_row, kx * c + c0);
                for (p, acc) in acc.iter_mut().enumerate() {
                    let x = lanes::<L>(in_row, (x0 + p * g.stride_w + kx) * c + c0);
                    for ((acc, &x), &w) in acc.iter_mut().zip(x).zip(w) {
                        *acc = M::mul_add(x, w, *acc);
                    }
                }
            }
        }
        for (p, acc) in acc.iter().enumerate() {
            let o = lanes_mut::<L>(out_row, (ox + p) * c + c0);
            for (o, &v) in o.iter_mut().zip(acc) {
                *o = v.max(a.min).min(a.max);
            }
        }
    }
}

/// One output pixel anywhere (borders included), channels `from..to` (a multiple of `L` apart).
#[inline(always)]
fn pixel<M: MulAdd, const L: usize>(
    a: &Args,
    rows: &Rows,
    ox: usize,
    from: usize,
    to: usize,
    out_row: &mut [f32],
) {
    let g = a.g;
    let c = g.channels;
    let in_row_len = g.width * c;
    let x0 = (ox * g.stride_w) as isize - g.pad_left as isize;
    let (kx0, kx1) = valid_taps(x0, g.kernel_w, g.width);
    for c0 in (from..to).step_by(L) {
        let mut acc = *lanes::<L>(a.bias, c0);
        for ky in rows.ky0..rows.ky1 {
            let iy = (rows.y0 + ky as isize) as usize;
            let in_row = &a.input[iy * in_row_len..(iy + 1) * in_row_len];
            for kx in kx0..kx1 {
                let ix = (x0 + kx as isize) as usize;
                let w = lanes::<L>(a.weights, (ky * g.kernel_w + kx) * c + c0);
                let x = lanes::<L>(in_row, ix * c + c0);
                for ((acc, &x), &w) in acc.iter_mut().zip(x).zip(w) {
                    *acc = M::mul_add(x, w, *acc);
                }
            }
        }
        let o = lanes_mut::<L>(out_row, ox * c + c0);
        for (o, &v) in o.iter_mut().zip(&acc) {
            *o = v.max(a.min).min(a.max);
        }
    }
}
