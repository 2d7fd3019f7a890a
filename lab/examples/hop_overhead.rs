//! Load generator for the three-hop overhead benchmark (`benches/hops.sh` runs it).
//!
//! 1. Closed loop at `--concurrency` for `--seconds`: the peak rate through the frontend.
//! 2. For each `--load` fraction of the peak (default 50 %, then 5 %), an open loop for
//!    `--seconds`: requests start on a fixed schedule whether or not earlier ones finished. For
//!    each answer it takes the end-to-end time and subtracts the time ml reports for its own work
//!    (`timings_ms.ml`: queue, decode, preprocess, inference), which leaves what the three hops
//!    cost: HTTP, multipart, JSON, HTML, propagation, the backend's assessment. At 50 % the hops
//!    share the cores with ml's busy workers; at 5 % they mostly find a core free, which shows
//!    their own cost apart from waiting for one.
//! 3. With `--pid NAME=PID` (repeatable), the CPU time each of those processes spent per answered
//!    request in each open-loop phase (user + system, from `/proc/PID/stat`; `--clock-ticks` is
//!    `getconf CLK_TCK`): what each tier costs in CPU, which contention cannot inflate.
//!
//! Prints one JSON object per line: the peak, then one per open-loop phase. Usage:
//! `hop_overhead --url http://127.0.0.1:3000 --image PATH [--seconds 10] [--concurrency 2]
//!  [--load 0.5,0.05] [--pid frontend=PID ...] [--clock-ticks 100]`

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
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.05")]
    load: Vec<f64>,
    #[arg(long = "pid", value_parser = parse_pid)]
    pids: Vec<(String, u32)>,
    #[arg(long, default_value_t = 100)]
    clock_ticks: u32,
}

fn parse_pid(arg: &str) -> Result<(String, u32), String> {
    let (name, pid) = arg
        .split_once('=')
        .ok_or_else(|| format!("--pid wants NAME=PID, not {arg:?}"))?;
    let pid = pid
        .parse()
        .map_err(|e| format!("--pid {arg:?}: the PID is not a number ({e})"))?;
    Ok((name.to_owned(), pid))
}

/// User + system CPU time of a whole process (every thread), in clock ticks: fields 14 and 15 of
/// `/proc/PID/stat`, counted after the parenthesised command name (which may hold spaces).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let after_name = stat
        .rsplit_once(')')
        .with_context(|| format!("{path} has no command name"))?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("{path} is short"))?
            .parse()
            .with_context(|| format!("{path}: field {} is not a number", i + 3))
    };
    // After the name, index 0 is field 3 (state): utime is field 14, stime field 15.
    Ok(field(11)? + field(12)?)
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

    println!(
        "{}",
        serde_json::json!({
            "image_bytes": image.len(),
            "concurrency": args.concurrency,
            "peak_rps": (peak * 10.0).round() / 10.0,
        })
    );

    // 2. Open loops at fractions of the peak.
    for load in &args.load {
        let report = open_loop(&http, &args, &image, peak * load, window).await?;
        println!("{report}");
    }
    Ok(())
}

async fn open_loop(
    http: &reqwest::Client,
    args: &Args,
    image: &Arc<Vec<u8>>,
    rate: f64,
    window: Duration,
) -> anyhow::Result<serde_json::Value> {
    let cpu_before = args
        .pids
        .iter()
        .map(|(_, pid)| cpu_ticks(*pid))
        .collect::<anyhow::Result<Vec<_>>>()?;
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
    let mut cpu_ms_per_request = serde_json::Map::new();
    for ((name, pid), before) in args.pids.iter().zip(cpu_before) {
        let ticks = cpu_ticks(*pid)?.saturating_sub(before);
        let ms = ticks as f64 * 1000.0 / f64::from(args.clock_ticks) / totals.len().max(1) as f64;
        cpu_ms_per_request.insert(name.clone(), ((ms * 100.0).round() / 100.0).into());
    }
    totals.sort_by(f64::total_cmp);
    overheads.sort_by(f64::total_cmp);
    ml_hop.sort_by(f64::total_cmp);
    edge_hops.sort_by(f64::total_cmp);
    let p = |v: &[f64]| serde_json::json!({"p50": percentile(v, 50.0), "p99": percentile(v, 99.0)});
    Ok(serde_json::json!({
        "offered_rps": (rate * 10.0).round() / 10.0,
        "requests": totals.len(),
        "errors": errors,
        "total_ms": p(&totals),
        "overhead_ms": p(&overheads),
        // Where the overhead goes: backend→ml (HTTP, body, ml's handler outside its timings) and
        // client→frontend→backend (two HTTP hops, multipart, JSON, the assessment).
        "ml_hop_ms": p(&ml_hop),
        "client_frontend_backend_ms": p(&edge_hops),
        "cpu_ms_per_request": cpu_ms_per_request,
    }))
}
