//! Times tract's raw inference on the committed models and golden input tensors — the same
//! files `benches/ort_infer.py` times onnxruntime on — plus decode + preprocess of the benchmark
//! photos. Prints one JSON object per line.
//!
//! Setups per model and convolution layout:
//!   threads=1            one session, sequential calls
//!   streams=2 threads=1  two sessions sharing one optimised plan (`Arc`), run from two threads
//!                        at once, as the service's two workers would
//!
//! Usage: cargo run --release -p ml --example bench_inference -- [--runs 100] [--warmup 10]
//!        [--model efficientnet-lite0] [--layout nhwc-fused|nhwc|nchw]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use ml::classifier::{Classifier, ConvLayout, ModelSelection};
use ml::manifest::Manifest;
use ml::photo::{DecodeLimits, decode};
use tract_onnx::prelude::Tensor;

#[path = "support/timing.rs"]
mod timing;
use timing::summary;

struct Args {
    runs: usize,
    warmup: usize,
    models: Vec<String>,
    layouts: Vec<ConvLayout>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        runs: 100,
        warmup: 10,
        models: Vec::new(),
        layouts: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--runs" => args.runs = value()?.parse()?,
            "--warmup" => args.warmup = value()?.parse()?,
            "--model" => args.models.push(value()?),
            "--layout" => args
                .layouts
                .push(value()?.parse().map_err(anyhow::Error::msg)?),
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    anyhow::ensure!(args.runs >= 60, "--runs must be at least 60");
    if args.layouts.is_empty() {
        args.layouts = vec![ConvLayout::NhwcFused, ConvLayout::Nhwc, ConvLayout::Nchw];
    }
    Ok(args)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn merge(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn time_runs(
    classifier: &Classifier,
    input: &Tensor,
    warmup: usize,
    runs: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut session = classifier.session()?;
    for _ in 0..warmup {
        session.logits(input.clone())?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let input = input.clone();
        let t = Instant::now();
        session.logits(input)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| (kb / 1024.0 * 10.0).round() / 10.0)
        .unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let manifest_path = root().join("ml/model/manifest.json");
    let manifest = Manifest::load(&manifest_path)?;
    let cpus = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    for entry in &manifest.models {
        if !args.models.is_empty() && !args.models.contains(&entry.name) {
            continue;
        }
        let short = entry.name.trim_start_matches("efficientnet-");
        let input_file = format!("ml/tests/fixtures/golden/{short}-coffee.input.f32");
        let raw = std::fs::read(root().join(&input_file))?;
        let values: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let s = entry.input_size as usize;
        let input = Tensor::from_shape(&[1, 3, s, s], &values)?;

        for &layout in &args.layouts {
            let started = Instant::now();
            let classifier = Classifier::load(&ModelSelection {
                manifest: manifest_path.clone(),
                name: Some(entry.name.clone()),
                role: "stable".into(),
                path: None,
                layout,
            })?;
            let load_ms = started.elapsed().as_secs_f64() * 1e3;
            let base = serde_json::json!({
                "engine": "tract",
                "engine_version": "0.23",
                "model": entry.name,
                "layout": layout.as_str(),
                "input": input_file,
                "cpus": cpus,
                "load_ms": (load_ms * 10.0).round() / 10.0,
                "rss_mib_after_load": rss_mib(),
            });

            let times = time_runs(&classifier, &input, args.warmup, args.runs)?;
            let single = summary(times);
            let median = single["median_ms"].as_f64().unwrap_or(f64::NAN);
            println!(
                "{}",
                merge(
                    merge(
                        base.clone(),
                        serde_json::json!({"setup": "threads=1", "threads": 1, "streams": 1})
                    ),
                    merge(
                        single,
                        serde_json::json!({"images_per_s": (10000.0 / median).round() / 10.0})
                    )
                )
            );

            let barrier = Arc::new(Barrier::new(3));
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let classifier = classifier.clone();
                    let input = input.clone();
                    let barrier = barrier.clone();
                    let (warmup, runs) = (args.warmup, args.runs);
                    std::thread::spawn(move || -> anyhow::Result<Vec<f64>> {
                        let mut session = classifier.session()?;
                        for _ in 0..warmup {
                            session.logits(input.clone())?;
                        }
                        barrier.wait();
                        let mut times = Vec::with_capacity(runs);
                        for _ in 0..runs {
                            let input = input.clone();
                            let t = Instant::now();
                            session.logits(input)?;
                            times.push(t.elapsed().as_secs_f64() * 1e3);
                        }
                        Ok(times)
                    })
                })
                .collect();
            barrier.wait();
            let started = Instant::now();
            let mut all = Vec::new();
            for handle in handles {
                all.extend(
                    handle
                        .join()
                        .map_err(|_| anyhow::anyhow!("bench thread panicked"))??,
                );
            }
            let wall = started.elapsed().as_secs_f64();
            let throughput = (2 * args.runs) as f64 / wall;
            println!(
                "{}",
                merge(
                    merge(
                        base,
                        serde_json::json!({"setup": "streams=2 threads=1", "threads": 1, "streams": 2})
                    ),
                    merge(
                        summary(all),
                        serde_json::json!({"images_per_s": (throughput * 10.0).round() / 10.0})
                    )
                )
            );
        }

        // Decode + preprocess (what a request costs before inference), on the benchmark photos.
        let pre = entry.preprocessing()?;
        for image in ["espresso-640x480.jpg", "espresso-4000x3000.jpg"] {
            let bytes = std::fs::read(root().join("benches/images").join(image))?;
            let (mut decode_ms, mut pre_ms) = (Vec::new(), Vec::new());
            let mut scale = 0;
            for i in 0..(args.runs + args.warmup) {
                let t = Instant::now();
                let photo = decode(&bytes, pre.min_short_side(), &DecodeLimits::default())?;
                let d = t.elapsed().as_secs_f64() * 1e3;
                let t = Instant::now();
                let _tensor = pre.tensor(&photo.pixels)?;
                let p = t.elapsed().as_secs_f64() * 1e3;
                scale = photo.scale_denominator;
                if i >= args.warmup {
                    decode_ms.push(d);
                    pre_ms.push(p);
                }
            }
            println!(
                "{}",
                serde_json::json!({
                    "engine": "ml decode+preprocess",
                    "model": entry.name,
                    "image": format!("benches/images/{image}"),
                    "dct_scale": format!("1/{scale}"),
                    "decode": summary(decode_ms),
                    "preprocess": summary(pre_ms),
                })
            );
        }
    }
    Ok(())
}
