//! Overload at the tier that takes uploads from browsers. Past its in-flight bound the frontend
//! answers 503 with `Retry-After` at once (the edge drains the unread upload, so the client reads
//! that answer rather than a reset), and what the process holds — its resident memory — stays
//! within the bound however many uploads arrive. Its own binary, so that the process's peak RSS is
//! this test's.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart};
use axum::routing::post;
use mesh::config::Env;
use serde_json::json;

const UPLOAD_BYTES: usize = 2 * 1024 * 1024;
const CONCURRENT_UPLOADS: usize = 48;
const IN_FLIGHT: usize = 4;
/// What this process may hold per admitted upload: the frontend streams it through and holds a
/// chunk, but the backend double in the same process reads each form whole (form and field), with
/// connection buffers and room for allocator rounding.
const COPIES_PER_UPLOAD: usize = 4;
/// Runtime, client and connection buffers, allocator slack.
const BASE_SLACK_BYTES: u64 = 40 * 1024 * 1024;

/// `VmRSS` or `VmHWM` of this process, in bytes.
fn memory(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    kib * 1024
}

/// A backend that reads the photo, takes its time, and answers an analysis.
async fn slow_backend() -> String {
    let app = Router::new().route(
        "/api/v1/analyze",
        post(|mut form: Multipart| async move {
            while let Ok(Some(field)) = form.next_field().await {
                let _ = field.bytes().await;
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
            axum::Json(json!({
                "item": {"label": "water bottle", "class_index": 898, "confidence": 0.9, "category": "drink-bottles"},
                "classification": {"model": {}, "predictions": []},
                "assessment": {"known": true, "summary": "A bottle."},
                "served_by": ["backend/stable", "ml/stable"]
            }))
        }),
    )
    // Read the whole form, as the backend does up to its own upload limit.
    .layer(DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// One multipart form with a JPEG-signed photo of `UPLOAD_BYTES`, built once and shared.
fn form() -> (String, Bytes) {
    let boundary = "overload-boundary-7d1f";
    let mut body = Vec::with_capacity(UPLOAD_BYTES + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\ncontent-type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    let mut photo = vec![0x5au8; UPLOAD_BYTES];
    photo[..3].copy_from_slice(&[0xff, 0xd8, 0xff]);
    body.extend_from_slice(&photo);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(body),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_bound_uploads_get_503_and_memory_stays_bounded() {
    let backend = slow_backend().await;
    let in_flight = IN_FLIGHT;
    let config = frontend::Config::from_env(&Env::from_pairs([
        ("BACKEND_URL", backend.as_str()),
        ("PORT", "0"),
        ("MAX_UPLOAD_BYTES", "4194304"),
        ("HTTP_MAX_IN_FLIGHT", &in_flight.to_string()),
    ]))
    .expect("valid config");
    let app = mesh::spawn(&config, std::future::pending())
        .await
        .expect("frontend serves");
    let url = format!("http://{}/analyze", app.addr);
    let (content_type, body) = form();
    let client = reqwest::Client::new();

    // Warm up (connection pool, lazily built state), then measure from here.
    let warm = client
        .post(&url)
        .header("content-type", &content_type)
        .header("accept", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("warm-up answered");
    assert_eq!(warm.status(), 200);
    let before = memory("VmRSS:");
    // Reset the peak to the current RSS (Linux ≥ 4.0), so VmHWM below is this burst's peak.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");

    let requests: Vec<_> = (0..CONCURRENT_UPLOADS)
        .map(|_| {
            let request = client
                .post(&url)
                .header("content-type", &content_type)
                .header("accept", "application/json")
                .body(body.clone());
            tokio::spawn(async move {
                let answer = request.send().await.expect("answered, not reset");
                let status = answer.status().as_u16();
                let retry_after = answer.headers().contains_key("retry-after");
                let text = answer.text().await.unwrap_or_default();
                (status, retry_after, text)
            })
        })
        .collect();
    let mut served = 0;
    let mut refused = 0;
    for request in requests {
        let (status, retry_after, text) = request.await.expect("joined");
        match status {
            200 => served += 1,
            503 => {
                assert!(retry_after, "a 503 without Retry-After: {text}");
                refused += 1;
            }
            other => panic!("overload answered {other}, not 200 or 503: {text}"),
        }
    }
    let peak = memory("VmHWM:");
    let grew = peak.saturating_sub(before);
    let budget = (in_flight * UPLOAD_BYTES * COPIES_PER_UPLOAD) as u64 + BASE_SLACK_BYTES;
    println!(
        "{served} served, {refused} refused; RSS {} MiB before, peak {} MiB (+{} MiB, budget {} MiB)",
        before >> 20,
        peak >> 20,
        grew >> 20,
        budget >> 20
    );
    assert!(
        grew <= budget,
        "resident memory grew {} MiB under overload, budget {} MiB",
        grew >> 20,
        budget >> 20
    );
    assert!(served >= 1, "nothing was served");
    assert!(
        refused >= 1,
        "the burst never reached the bound: the test proves nothing"
    );
}
