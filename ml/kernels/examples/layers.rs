//! Times each kernel on the depthwise and the 1×1 layer shapes of EfficientNet-Lite0 (224×224
//! input), one line per kernel and kind: the sum over the layers of each layer's fastest of
//! `--runs` calls (the minimum is the figure least disturbed by other work on a shared machine),
//! and with `--layers` one line per layer with its multiply-add rate.
//!
//! Usage: cargo run --release -p ml-kernels --example layers -- [--runs 60] [--layers]

use std::time::Instant;

use ml_kernels::{Filter, Geometry, Isa, Pointwise};

/// ONNX/TF "same" padding: output `ceil(size / stride)`, the extra row and column after.
fn same(size: usize, channels: usize, kernel: usize, stride: usize) -> Geometry {
    let out = size.div_ceil(stride);
    let pad = ((out - 1) * stride + kernel).saturating_sub(size) / 2;
    Geometry {
        height: size,
        width: size,
        channels,
        kernel_h: kernel,
        kernel_w: kernel,
        stride_h: stride,
        stride_w: stride,
        pad_top: pad,
        pad_left: pad,
        out_h: out,
        out_w: out,
    }
}

/// (input side, channels, kernel, stride) of Lite0's depthwise layers, in order.
const LITE0: [(usize, usize, usize, usize); 16] = [
    (112, 32, 3, 1),
    (112, 96, 3, 2),
    (56, 144, 3, 1),
    (56, 144, 5, 2),
    (28, 240, 5, 1),
    (28, 240, 3, 2),
    (14, 480, 3, 1),
    (14, 480, 3, 1),
    (14, 480, 5, 1),
    (14, 672, 5, 1),
    (14, 672, 5, 1),
    (14, 672, 5, 2),
    (7, 1152, 5, 1),
    (7, 1152, 5, 1),
    (7, 1152, 5, 1),
    (7, 1152, 3, 1),
];

/// (side, input channels, output channels, residual) of Lite0's 1×1 layers, in order: each
/// block's expansion (none in the first) and projection (a residual where the block keeps its
/// shape), then the head.
const LITE0_POINTWISE: [(usize, usize, usize, bool); 32] = [
    (112, 32, 16, false),
    (112, 16, 96, false),
    (56, 96, 24, false),
    (56, 24, 144, false),
    (56, 144, 24, true),
    (56, 24, 144, false),
    (28, 144, 40, false),
    (28, 40, 240, false),
    (28, 240, 40, true),
    (28, 40, 240, false),
    (14, 240, 80, false),
    (14, 80, 480, false),
    (14, 480, 80, true),
    (14, 80, 480, false),
    (14, 480, 80, true),
    (14, 80, 480, false),
    (14, 480, 112, false),
    (14, 112, 672, false),
    (14, 672, 112, true),
    (14, 112, 672, false),
    (14, 672, 112, true),
    (14, 112, 672, false),
    (7, 672, 192, false),
    (7, 192, 1152, false),
    (7, 1152, 192, true),
    (7, 192, 1152, false),
    (7, 1152, 192, true),
    (7, 192, 1152, false),
    (7, 1152, 192, true),
    (7, 192, 1152, false),
    (7, 1152, 320, false),
    (7, 320, 1280, false),
];

/// The fastest of `runs` calls of `f`, in ms.
fn fastest(
    runs: usize,
    mut f: impl FnMut() -> Result<(), ml_kernels::Error>,
) -> Result<f64, ml_kernels::Error> {
    let mut best = f64::MAX;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(best)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut runs, mut per_layer) = (60usize, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a value")?.parse()?,
            "--layers" => per_layer = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    for isa in [Isa::Avx512, Isa::Avx2Fma, Isa::Portable] {
        if !isa.is_available() {
            println!("{{\"kernel\":\"{isa}\",\"available\":false}}");
            continue;
        }
        let mut total = 0.0;
        for &(size, c, k, s) in &LITE0 {
            let g = same(size, c, k, s);
            let w: Vec<f32> = (0..g.weights_len())
                .map(|i| (i % 7) as f32 * 0.01)
                .collect();
            let b = vec![0.1; c];
            let filter = Filter::from_oihw(g, &w, &b, 0.0, 6.0)?;
            let x: Vec<f32> = (0..g.input_len()).map(|i| (i % 13) as f32 * 0.3).collect();
            let mut out = vec![0.0; g.output_len()];
            let best = fastest(runs, || filter.run(isa, &x, &mut out))?;
            total += best;
            if per_layer {
                let macs = (g.output_len() * k * k) as f64;
                println!(
                    "{{\"kernel\":\"{isa}\",\"layer\":\"{size}x{size}x{c} k{k} s{s}\",\"min_ms\":{best:.4},\"gmac_per_s\":{:.1}}}",
                    macs / best / 1e6
                );
            }
        }
        println!("{{\"kernel\":\"{isa}\",\"lite0_depthwise_sum_of_min_ms\":{total:.3}}}");
        let mut total = 0.0;
        for &(size, inputs, outputs, residual) in &LITE0_POINTWISE {
            let pixels = size * size;
            let w: Vec<f32> = (0..inputs * outputs)
                .map(|i| (i % 7) as f32 * 0.01)
                .collect();
            let b = vec![0.1; outputs];
            let (min, max) = if residual {
                (f32::NEG_INFINITY, f32::INFINITY)
            } else {
                (0.0, 6.0)
            };
            let layer = Pointwise::from_oi(inputs, outputs, &w, &b, min, max)?;
            let x: Vec<f32> = (0..pixels * inputs)
                .map(|i| (i % 13) as f32 * 0.3)
                .collect();
            let r = residual.then(|| vec![0.5; pixels * outputs]);
            let mut out = vec![0.0; pixels * outputs];
            let best = fastest(runs, || layer.run(isa, pixels, &x, r.as_deref(), &mut out))?;
            total += best;
            if per_layer {
                let macs = (pixels * inputs * outputs) as f64;
                println!(
                    "{{\"kernel\":\"{isa}\",\"layer\":\"{size}x{size} {inputs}->{outputs}{}\",\"min_ms\":{best:.4},\"gmac_per_s\":{:.1}}}",
                    if residual { " +res" } else { "" },
                    macs / best / 1e6
                );
            }
        }
        println!("{{\"kernel\":\"{isa}\",\"lite0_pointwise_sum_of_min_ms\":{total:.3}}}");
    }
    Ok(())
}
