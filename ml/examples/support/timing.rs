//! What the ml benchmark examples report about a set of timings (included with `#[path]`; not an
//! example of its own).

/// Runs, median, p10, p90 and minimum of `times` (milliseconds), rounded to microseconds.
pub fn summary(mut times: Vec<f64>) -> serde_json::Value {
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    serde_json::json!({
        "runs": times.len(),
        "median_ms": r(pct(0.5)),
        "p10_ms": r(pct(0.1)),
        "p90_ms": r(pct(0.9)),
        "min_ms": r(times[0]),
    })
}
