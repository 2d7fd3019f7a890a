//! Every kernel against the definition (in f64) on channel counts of EfficientNet-Lite's 1×1
//! layers and on awkward ones: output channels that leave a partial panel, pixel counts that
//! leave every size of tile tail, one input channel, with and without a residual.

use super::*;
use crate::test_support::{Noise, isas};

/// Allowed difference per element, relative to `max(1, |bias| + Σ |in · w|)`: rounding in f32
/// grows with the magnitude of what is summed, not of the (possibly cancelled) result. Both
/// kernels and the definition round each product differently (FMA rounds once), by a few f32
/// ulps of that magnitude (ulp = 1.2e-7 relative).
const TOLERANCE: f64 = 1e-6;

/// Largest difference between `out` and the definition, in units of each element's tolerance
/// (> 1 fails).
fn worst(out: &[f32], (expected, scale): &(Vec<f32>, Vec<f64>)) -> f64 {
    out.iter()
        .zip(expected)
        .zip(scale)
        .map(|((a, b), s)| f64::from((a - b).abs()) / (TOLERANCE * s.max(1.0)))
        .fold(0.0, f64::max)
}

/// The definition: out[p][o] = clamp(bias[o] + Σ_i in[p][i] · w[o][i]) + res[p][o], and for
/// each element `|bias| + Σ |in · w|`.
fn reference(
    (inputs, outputs): (usize, usize),
    oi: &[f32],
    bias: &[f32],
    (min, max): (f32, f32),
    input: &[f32],
    residual: Option<&[f32]>,
) -> (Vec<f32>, Vec<f64>) {
    let pixels = input.len() / inputs;
    let mut out = vec![0.0; pixels * outputs];
    let mut scale = vec![0.0; pixels * outputs];
    for p in 0..pixels {
        for o in 0..outputs {
            let products = (0..inputs)
                .map(|i| f64::from(input[p * inputs + i]) * f64::from(oi[o * inputs + i]));
            let sum = products.clone().sum::<f64>() + f64::from(bias[o]);
            scale[p * outputs + o] = products.map(f64::abs).sum::<f64>() + f64::from(bias[o]).abs();
            let y = (sum as f32).max(min).min(max);
            out[p * outputs + o] = y + residual.map_or(0.0, |r| r[p * outputs + o]);
        }
    }
    (out, scale)
}

fn check(inputs: usize, outputs: usize, pixels: usize, residual: bool, seed: u64) {
    let mut noise = Noise(seed);
    let oi = noise.fill(inputs * outputs, -1.0, 1.0);
    let bias = noise.fill(outputs, -0.5, 0.5);
    let input = noise.fill(pixels * inputs, -1.0, 6.0);
    let res = residual.then(|| noise.fill(pixels * outputs, -2.0, 2.0));
    let clamp = if residual {
        (f32::NEG_INFINITY, f32::INFINITY)
    } else {
        (0.0, 6.0)
    };
    let expected = reference((inputs, outputs), &oi, &bias, clamp, &input, res.as_deref());
    let layer = Pointwise::from_oi(inputs, outputs, &oi, &bias, clamp.0, clamp.1).expect("valid");
    for isa in isas() {
        let mut out = vec![f32::NAN; pixels * outputs];
        layer
            .run(isa, pixels, &input, res.as_deref(), &mut out)
            .expect("runs");
        assert!(
            out.iter().all(|v| v.is_finite()),
            "{isa} left outputs unwritten for {inputs} → {outputs} × {pixels}"
        );
        let err = worst(&out, &expected);
        assert!(
            err <= 1.0,
            "{isa} is {err} tolerances off on {inputs} → {outputs} × {pixels} (residual {residual})"
        );
    }
}

/// Shapes small enough for Miri; the large EfficientNet-Lite layers run in the `ml` crate's
/// equivalence test against tract's own operator.
#[test]
fn every_kernel_matches_the_definition() {
    let mut seed = 0x2545_f491_4f6c_dd1d;
    // (inputs, outputs): Lite-like expansions and projections, outputs that leave a partial
    // panel (24, 40, 56, 7), a single input or output channel.
    let channels = [
        (16, 40),
        (48, 24),
        (40, 56),
        (24, 32),
        (1, 16),
        (3, 7),
        (33, 1),
    ];
    let pixels: &[usize] = if cfg!(miri) {
        // Under Miri (about a million times slower): still a whole tile and tails of each size.
        &[1, 7, 15, 29]
    } else {
        &[1, 2, 3, 5, 6, 7, 13, 14, 15, 29, 49]
    };
    for (inputs, outputs) in channels {
        for &p in pixels {
            for residual in [false, true] {
                seed += 1;
                check(inputs, outputs, p, residual, seed);
            }
        }
    }
}

/// More input rows than one chunk holds (256 KiB, 109 rows of 600 channels): the chunk loop's
/// boundary.
#[test]
fn pixels_beyond_one_chunk_match_the_definition() {
    check(600, 8, 120, true, 5);
}

/// The comparison above can fail: a layer with one weight changed is caught.
#[test]
fn a_perturbed_weight_is_detected() {
    let (inputs, outputs, pixels) = (24, 40, 9);
    let mut noise = Noise(42);
    let mut oi = noise.fill(inputs * outputs, -1.0, 1.0);
    let bias = noise.fill(outputs, -0.5, 0.5);
    let input = noise.fill(pixels * inputs, 0.0, 6.0);
    let unbounded = (f32::NEG_INFINITY, f32::INFINITY);
    let expected = reference((inputs, outputs), &oi, &bias, unbounded, &input, None);
    // Output channel 37 (in the partial last panel), input channel 5.
    oi[37 * inputs + 5] += 1e-3;
    let layer =
        Pointwise::from_oi(inputs, outputs, &oi, &bias, unbounded.0, unbounded.1).expect("valid");
    for isa in isas() {
        let mut out = vec![0.0; pixels * outputs];
        layer
            .run(isa, pixels, &input, None, &mut out)
            .expect("runs");
        assert!(
            worst(&out, &expected) > 1.0,
            "{isa} did not notice the changed weight"
        );
    }
}

#[test]
fn clamp_bounds_the_outputs_before_the_residual() {
    let (inputs, outputs, pixels) = (8, 20, 7);
    let oi = vec![1.0; inputs * outputs];
    let bias = vec![0.0; outputs];
    let input: Vec<f32> = (0..pixels * inputs)
        .map(|i| if (i / inputs) % 2 == 0 { 10.0 } else { -10.0 })
        .collect();
    let layer = Pointwise::from_oi(inputs, outputs, &oi, &bias, 0.0, 6.0).expect("valid");
    let residual = vec![0.5; pixels * outputs];
    for isa in isas() {
        let mut out = vec![f32::NAN; pixels * outputs];
        layer
            .run(isa, pixels, &input, None, &mut out)
            .expect("runs");
        assert!(out.iter().all(|v| *v == 0.0 || *v == 6.0), "{isa}: {out:?}");
        assert!(out.contains(&0.0) && out.contains(&6.0), "{isa}");
        layer
            .run(isa, pixels, &input, Some(&residual), &mut out)
            .expect("runs");
        assert!(out.iter().all(|v| *v == 0.5 || *v == 6.5), "{isa}: {out:?}");
    }
}

#[test]
fn bad_shapes_and_lengths_are_errors() {
    let (w, b) = (vec![0.0; 8 * 4], vec![0.0; 4]);
    assert!(matches!(
        Pointwise::from_oi(0, 4, &[], &b, 0.0, 6.0),
        Err(Error::Geometry(_))
    ));
    assert!(matches!(
        Pointwise::from_oi(8, 4, &w[1..], &b, 0.0, 6.0),
        Err(Error::Length {
            what: "weights",
            ..
        })
    ));
    assert!(matches!(
        Pointwise::from_oi(8, 4, &w, &b[1..], 0.0, 6.0),
        Err(Error::Length { what: "bias", .. })
    ));
    assert!(matches!(
        Pointwise::from_oi(8, 4, &w, &b, 6.0, 0.0),
        Err(Error::Geometry(_))
    ));
    assert!(matches!(
        Pointwise::from_oi(usize::MAX / 2, usize::MAX / 2, &w, &b, 0.0, 6.0),
        Err(Error::Geometry(_))
    ));
    let layer = Pointwise::from_oi(8, 4, &w, &b, 0.0, 6.0).expect("valid");
    let (input, mut out) = (vec![0.0; 3 * 8], vec![0.0; 3 * 4]);
    assert!(matches!(
        layer.run(Isa::Portable, 3, &input[1..], None, &mut out),
        Err(Error::Length { what: "input", .. })
    ));
    assert!(matches!(
        layer.run(Isa::Portable, 3, &input, None, &mut out[1..]),
        Err(Error::Length { what: "output", .. })
    ));
    assert!(matches!(
        layer.run(Isa::Portable, 3, &input, Some(&out.clone()[1..]), &mut out),
        Err(Error::Length {
            what: "residual",
            ..
        })
    ));
    assert!(matches!(
        layer.run(Isa::Portable, usize::MAX, &input, None, &mut out),
        Err(Error::Geometry(_))
    ));
}
