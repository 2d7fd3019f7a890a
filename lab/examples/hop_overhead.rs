//! Load generator for the three-hop overhead benchmark (`benches/hops.sh` runs it).
//!
//! 1. Closed loop at `--concurrency` for `--seconds`: the peak rate through the frontend.
//! 2. Open loop at `--load` × peak (default 50 %) for `--seconds`: requests start on a fixed
//!    schedule whether or not earlier ones finished. For each answer it takes the end-to-end time
//!    and subtracts the time ml reports for its own work (`timings_ms.ml`: queue, decode,
//!    preprocess, inference), which leaves what the three hops cost: HTTP, multipart, JSON, HTML,
//!    propagation, the backend's assessment.
//!
//! Prints one JSON object. Usage:
//! `hop_overhead --url http://127.0.0.1:3000 --image PATH [--seconds 10] [--concurrency 2] [--load 0.5]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long)]
    image: std::path::PathBuf,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    #[arg(long, default_value_t = 0.5)]
    load: f64,
}

struct Sample {
    total: Duration,
    /// What ml reports for its own work.
    ml: Duration,
    /// The backend's round trip to ml, as the backend measured it.
    ml_round_trip: Duration,
}

async fn one(http: &reqwest::Client, url: &str, image: &Arc<Vec<u8>>) -> anyhow::Result<Sample> {
    let part = reqwest::multipart::Part::bytes(image.as_ref().clone())
        .file_name("photo.jpg")
        .mime_str("image/jpeg")?;
    let started = Instant::now();
    let response = http
        .post(format!("{url}/analyze"))
        .header("accept", "application/json")
        .multipart(reqwest::multipart::Form::new().part("image", part))
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    let total = started.elapsed();
    if !status.is_success() {
        bail!("status {status}: {body}");
    }
    let ml_ms: f64 = body["timings_ms"]["ml"]
        .as_object()
        .context("the answer has no timings_ms.ml")?
        .values()
        .filter_map(serde_json::Value::as_f64)
        .sum();
    let round_trip_ms = body["timings_ms"]["ml_total"].as_f64().unwrap_or(f64::NAN);
    Ok(Sample {
        total,
        ml: Duration::from_secs_f64(ml_ms / 1000.0),
        ml_round_trip: Duration::from_secs_f64(round_trip_ms.max(0.0) / 1000.0),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let image = Arc::new(
        std::fs::read(&args.image).with_context(|| format!("reading {}", args.image.display()))?,
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let window = Duration::from_secs(args.seconds);

    // Warm up connections and caches.
    for _ in 0..20 {
        one(&http, &args.url, &image).await?;
    }

    // 1. Closed loop: peak.
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (http, url, image) = (http.clone(), args.url.clone(), image.clone());
        workers.spawn(async move {
            let mut done = 0u64;
            while started.elapsed() < window {
                one(&http, &url, &image).await?;
                done += 1;
            }
            anyhow::Ok(done)
        });
    }
    let mut completed = 0;
    while let Some(done) = workers.join_next().await {
        completed += done??;
    }
    let peak = completed as f64 / started.elapsed().as_secs_f64();

    // 2. Open loop at a fraction of the peak.
    let rate = peak * args.load;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    while started.elapsed() < window {
        ticker.tick().await;
        let (http, url, image) = (http.clone(), args.url.clone(), image.clone());
        requests.spawn(async move { one(&http, &url, &image).await });
    }
    let mut totals = Vec::new();
    let mut overheads = Vec::new();
    let mut ml_hop = Vec::new();
    let mut edge_hops = Vec::new();
    let mut errors = 0;
    while let Some(sample) = requests.join_next().await {
        match sample? {
            Ok(s) => {
                totals.push(s.total.as_secs_f64() * 1000.0);
                overheads.push(s.total.saturating_sub(s.ml).as_secs_f64() * 1000.0);
                ml_hop.push(s.ml_round_trip.saturating_sub(s.ml).as_secs_f64() * 1000.0);
                edge_hops.push(s.total.saturating_sub(s.ml_round_trip).as_secs_f64() * 1000.0);
            }
            Err(_) => errors += 1,
        }
    }
    totals.sort_by(f64::total_cmp);
    overheads.sort_by(f64::total_cmp);
    ml_hop.sort_by(f64::total_cmp);
    edge_hops.sort_by(f64::total_cmp);
    let report = serde_json::json!({
        "image_bytes": image.len(),
        "peak_rps": (peak * 10.0).round() / 10.0,
        "offered_rps": (rate * 10.0).round() / 10.0,
        "requests": totals.len(),
        "errors": errors,
        "total_ms": {"p50": percentile(&totals, 50.0), "p99": percentile(&totals, 99.0)},
        "overhead_ms": {"p50": percentile(&overheads, 50.0), "p99": percentile(&overheads, 99.0)},
        // Where the overhead goes: backend→ml (HTTP, body, ml's handler outside its timings) and
        // client→frontend→backend (two HTTP hops, multipart, JSON, the assessment).
        "ml_hop_ms": {"p50": percentile(&ml_hop, 50.0), "p99": percentile(&ml_hop, 99.0)},
        "client_frontend_backend_ms": {"p50": percentile(&edge_hops, 50.0), "p99": percentile(&edge_hops, 99.0)},
    });
    println!("{report}");
    Ok(())
}
