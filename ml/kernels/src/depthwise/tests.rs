//! Every kernel against a plain reference loop (in f64) on the layer shapes EfficientNet-Lite uses
//! and on awkward ones (channel tails, windows wider than the input, asymmetric padding).

use super::*;
use crate::test_support::{Noise, isas, worst};

/// Output size for a kernel with `pad_before` and `pad_after` zero rows.
fn out_size(size: usize, kernel: usize, stride: usize, before: usize, after: usize) -> usize {
    (size + before + after - kernel) / stride + 1
}

/// "Same" padding as ONNX's SAME_UPPER / TF: output `ceil(size / stride)`, extra padding after.
fn same(h: usize, w: usize, c: usize, k: usize, stride: usize) -> Geometry {
    let pad = |size: usize| {
        let out = size.div_ceil(stride);
        let total = ((out - 1) * stride + k).saturating_sub(size);
        (total / 2, out)
    };
    let (pad_top, out_h) = pad(h);
    let (pad_left, out_w) = pad(w);
    Geometry {
        height: h,
        width: w,
        channels: c,
        kernel_h: k,
        kernel_w: k,
        stride_h: stride,
        stride_w: stride,
        pad_top,
        pad_left,
        out_h,
        out_w,
    }
}

/// The definition: out[y][x][c] = clamp(bias[c] + Σ in[y·s + ky − pt][x·s + kx − pl][c] · w[c][ky][kx]).
fn reference(
    g: &Geometry,
    oihw: &[f32],
    bias: &[f32],
    min: f32,
    max: f32,
    input: &[f32],
) -> Vec<f32> {
    let mut out = vec![0.0; g.output_len()];
    for oy in 0..g.out_h {
        for ox in 0..g.out_w {
            for ch in 0..g.channels {
                let mut sum = f64::from(bias[ch]);
                for ky in 0..g.kernel_h {
                    for kx in 0..g.kernel_w {
                        let iy = (oy * g.stride_h + ky) as isize - g.pad_top as isize;
                        let ix = (ox * g.stride_w + kx) as isize - g.pad_left as isize;
                        if iy < 0 || ix < 0 || iy >= g.height as isize || ix >= g.width as isize {
                            continue;
                        }
                        let x = input[(iy as usize * g.width + ix as usize) * g.channels + ch];
                        let w = oihw[(ch * g.kernel_h + ky) * g.kernel_w + kx];
                        sum += f64::from(x) * f64::from(w);
                    }
                }
                out[(oy * g.out_w + ox) * g.channels + ch] = (sum as f32).max(min).min(max);
            }
        }
    }
    out
}

fn check(g: Geometry, seed: u64) {
    let mut noise = Noise(seed);
    let oihw = noise.fill(g.weights_len(), -1.0, 1.0);
    let bias = noise.fill(g.channels, -0.5, 0.5);
    let input = noise.fill(g.input_len(), -3.0, 6.0);
    let expected = reference(&g, &oihw, &bias, 0.0, 6.0, &input);
    let filter = Filter::from_oihw(g, &oihw, &bias, 0.0, 6.0).expect("valid filter");
    for isa in isas() {
        let mut out = vec![f32::NAN; g.output_len()];
        filter.run(isa, &input, &mut out).expect("runs");
        assert!(
            out.iter().all(|v| v.is_finite()),
            "{isa} left outputs unwritten for {g:?}"
        );
        let err = worst(&out, &expected);
        assert!(err <= 1e-5, "{isa} differs by {err} on {g:?}");
    }
}

/// Shapes small enough for Miri; the large EfficientNet-Lite layers run in the `ml` crate's
/// equivalence test against tract's own operator.
#[test]
fn every_kernel_matches_the_definition() {
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    for k in [3, 5] {
        for stride in [1, 2] {
            for (h, w, c) in [(7, 9, 16), (6, 6, 35), (4, 11, 8), (2, 3, 20), (1, 1, 17)] {
                seed += 1;
                check(same(h, w, c, k, stride), seed);
            }
        }
    }
}

#[test]
fn asymmetric_and_valid_padding_match_the_definition() {
    // ONNX explicit padding may differ before and after; "valid" has none.
    for (pad_top, pad_left, after) in [(0, 0, 0), (1, 0, 1), (0, 2, 0), (2, 1, 2)] {
        let (h, w, k, s) = (9, 10, 5, 2);
        let g = Geometry {
            height: h,
            width: w,
            channels: 24,
            kernel_h: k,
            kernel_w: k,
            stride_h: s,
            stride_w: s,
            pad_top,
            pad_left,
            out_h: out_size(h, k, s, pad_top, after),
            out_w: out_size(w, k, s, pad_left, after),
        };
        check(g, 7 + pad_top as u64 * 3 + pad_left as u64);
    }
}

/// The comparison above can fail: a filter with one weight changed is caught.
#[test]
fn a_perturbed_weight_is_detected() {
    let g = same(6, 6, 32, 3, 1);
    let mut noise = Noise(42);
    let mut oihw = noise.fill(g.weights_len(), -1.0, 1.0);
    let bias = noise.fill(g.channels, -0.5, 0.5);
    let input = noise.fill(g.input_len(), 0.0, 6.0);
    let expected = reference(&g, &oihw, &bias, f32::NEG_INFINITY, f32::INFINITY, &input);
    // The centre tap of channel 19: every output pixel of that channel uses it.
    oihw[19 * 9 + 4] += 1e-3;
    let filter =
        Filter::from_oihw(g, &oihw, &bias, f32::NEG_INFINITY, f32::INFINITY).expect("valid");
    for isa in isas() {
        let mut out = vec![0.0; g.output_len()];
        filter.run(isa, &input, &mut out).expect("runs");
        assert!(
            worst(&out, &expected) > 1e-5,
            "{isa} did not notice the changed weight"
        );
    }
}

#[test]
fn clamp_bounds_the_outputs() {
    let g = same(5, 5, 16, 3, 1);
    let oihw = vec![1.0; g.weights_len()];
    let bias = vec![0.0; g.channels];
    let input: Vec<f32> = (0..g.input_len())
        .map(|i| if i % 2 == 0 { 10.0 } else { -10.0 })
        .collect();
    let filter = Filter::from_oihw(g, &oihw, &bias, 0.0, 6.0).expect("valid");
    for isa in isas() {
        let mut out = vec![f32::NAN; g.output_len()];
        filter.run(isa, &input, &mut out).expect("runs");
        assert!(out.iter().all(|v| (0.0..=6.0).contains(v)), "{isa}");
        assert!(out.contains(&0.0) && out.contains(&6.0), "{isa}");
    }
}

#[test]
fn bad_geometry_and_lengths_are_errors() {
    let g = same(4, 4, 8, 3, 1);
    let w = vec![0.0; g.weights_len()];
    let b = vec![0.0; 8];
    assert!(matches!(
        Filter::from_oihw(Geometry { channels: 0, ..g }, &w, &b, 0.0, 6.0),
        Err(Error::Geometry(_))
    ));
    assert!(matches!(
        Filter::from_oihw(Geometry { out_h: 9, ..g }, &w, &b, 0.0, 6.0),
        Err(Error::Geometry(_))
    ));
    assert!(matches!(
        Filter::from_oihw(Geometry { pad_top: 3, ..g }, &w, &b, 0.0, 6.0),
        Err(Error::Geometry(_))
    ));
    assert!(matches!(
        Filter::from_oihw(g, &w[1..], &b, 0.0, 6.0),
        Err(Error::Length {
            what: "weights",
            ..
        })
    ));
    assert!(matches!(
        Filter::from_oihw(g, &w, &b, 6.0, 0.0),
        Err(Error::Geometry(_))
    ));
    let huge = Geometry {
        height: usize::MAX / 2,
        width: usize::MAX / 2,
        ..g
    };
    assert!(matches!(
        Filter::from_oihw(huge, &w, &b, 0.0, 6.0),
        Err(Error::Geometry(_))
    ));
    let filter = Filter::from_oihw(g, &w, &b, 0.0, 6.0).expect("valid");
    let mut out = vec![0.0; g.output_len()];
    assert!(matches!(
        filter.run(Isa::Portable, &[0.0; 3], &mut out),
        Err(Error::Length { what: "input", .. })
    ));
    assert!(matches!(
        filter.run(Isa::Portable, &vec![0.0; g.input_len()], &mut out[1..]),
        Err(Error::Length { what: "output", .. })
    ));
}

#[test]
fn detect_picks_an_available_kernel() {
    assert!(Isa::detect().is_available());
    assert!(Isa::Portable.is_available());
}
