//! Where the time goes in the optimised graph: runs a committed model on its golden input many
//! times, timing every node, and prints the total per operator kind (median run) as JSON lines,
//! most expensive first.
//!
//! Usage: cargo run --release -p ml --example profile_model -- [--model efficientnet-lite0]
//!        [--layout nhwc-fused|nhwc|nchw] [--runs 100]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ml::classifier::{ConvLayout, Isa, decluttered, lower};
use ml::manifest::Manifest;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::eval;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() -> anyhow::Result<()> {
    let (mut model, mut layout, mut runs) = (
        "efficientnet-lite0".to_string(),
        ConvLayout::NhwcFused,
        100usize,
    );
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--model" => model = value()?,
            "--layout" => layout = value()?.parse().map_err(anyhow::Error::msg)?,
            "--runs" => runs = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    anyhow::ensure!(runs >= 10, "--runs must be at least 10");
    let manifest_path = root().join("ml/model/manifest.json");
    let manifest = Manifest::load(&manifest_path)?;
    let entry = manifest.by_name(&model)?;
    let bytes = std::fs::read(manifest.resolve(&entry.file))?;
    let short = entry.name.trim_start_matches("efficientnet-");
    let raw =
        std::fs::read(root().join(format!("ml/tests/fixtures/golden/{short}-coffee.input.f32")))?;
    let values: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let s = entry.input_size as usize;
    let input = Tensor::from_shape(&[1, 3, s, s], &values)?;

    let optimised = lower(
        decluttered(&bytes, entry.input_size)?,
        layout,
        Isa::detect(),
    )?;
    let plan = optimised.into_runnable()?;
    let mut state = plan.spawn()?;
    // Per run: op kind → milliseconds.
    let mut per_run: Vec<BTreeMap<String, f64>> = Vec::with_capacity(runs);
    let mut walls = Vec::with_capacity(runs);
    for i in 0..runs + 10 {
        let mut times: BTreeMap<String, f64> = BTreeMap::new();
        let wall = Instant::now();
        state.run_plan_with_eval(
            tvec!(input.clone().into()),
            |ctx, op_state, node, inputs| {
                let t = Instant::now();
                let out = eval(ctx, op_state, node, inputs);
                *times.entry(node.op.name().to_string()).or_default() +=
                    t.elapsed().as_secs_f64() * 1e3;
                out
            },
        )?;
        if i >= 10 {
            walls.push(wall.elapsed().as_secs_f64() * 1e3);
            per_run.push(times);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let wall = median(walls);
    let mut kinds: Vec<(String, f64, usize)> = per_run[0]
        .keys()
        .map(|k| {
            let ms = median(per_run.iter().map(|r| r[k]).collect());
            let count = plan
                .model()
                .nodes()
                .iter()
                .filter(|n| n.op.name() == k.as_str())
                .count();
            (k.clone(), ms, count)
        })
        .collect();
    kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (kind, ms, nodes) in kinds {
        println!(
            "{}",
            serde_json::json!({
                "engine": "tract profile", "model": entry.name, "layout": layout.as_str(),
                "isa": Isa::detect().as_str(), "op": kind, "nodes": nodes,
                "median_ms": (ms * 1000.0).round() / 1000.0,
                "share": (ms / wall * 1000.0).round() / 1000.0,
            })
        );
    }
    println!(
        "{}",
        serde_json::json!({"engine": "tract profile", "model": entry.name, "layout": layout.as_str(),
            "op": "(whole run, with timing overhead)", "median_ms": (wall * 1000.0).round() / 1000.0})
    );
    Ok(())
}
