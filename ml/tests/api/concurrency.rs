//! More simultaneous requests than workers + queue: the excess is refused at once with 503,
//! `Retry-After` and code `overloaded`; nothing else fails, and memory goes back to where it was.

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::helpers::{exclusive_process, fixture, spawn_app};

/// Resident memory of this process, from /proc/self/status (VmRSS, in kB).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS")
}

/// What the process may keep after the bursts: allocator arenas and caches that glibc does not
/// hand back at once. A leak of the bodies or decoded images of 72 requests would exceed it.
const RSS_TOLERANCE: u64 = 48 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_is_refused_with_retry_after_and_memory_returns() {
    let _guard = exclusive_process().await;
    let app = spawn_app(&[("ML_WORKERS", "1"), ("ML_QUEUE_CAPACITY", "2")]).await;
    let jpeg = bytes::Bytes::from(fixture("photos/coffee.jpg"));
    for _ in 0..3 {
        app.assert_still_serving("warm-up").await;
    }
    let before = rss_bytes();

    let (mut ok, mut overloaded) = (0, 0);
    for round in 0..3 {
        let tasks: Vec<_> = (0..24)
            .map(|_| {
                let router = app.router.clone();
                let request = Request::post("/v1/classify")
                    .header("content-type", "image/jpeg")
                    .body(Body::from(jpeg.clone()))
                    .expect("request");
                tokio::spawn(async move {
                    let response = router.oneshot(request).await.expect("infallible");
                    let status = response.status();
                    let retry_after = response.headers().get("retry-after").cloned();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .expect("body")
                        .to_bytes();
                    (status, retry_after, body)
                })
            })
            .collect();
        for task in tasks {
            let (status, retry_after, body) = task.await.expect("no panic");
            match status {
                StatusCode::OK => ok += 1,
                StatusCode::SERVICE_UNAVAILABLE => {
                    overloaded += 1;
                    assert_eq!(
                        retry_after.as_ref().map(|v| v.to_str().unwrap_or("")),
                        Some("1")
                    );
                    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
                    assert_eq!(json["error"]["code"], "overloaded", "round {round}");
                }
                other => panic!(
                    "round {round}: unexpected {other}: {}",
                    String::from_utf8_lossy(&body)
                ),
            }
        }
    }
    eprintln!("72 requests against 1 worker + 2 queue slots: {ok} answered, {overloaded} refused");
    assert!(overloaded > 0, "some requests must be refused");
    assert_eq!(ok + overloaded, 3 * 24);
    // A simultaneous burst always gets the queue's slots; the worker's own slot too if it took the
    // first job off the queue before the burst filled it (usually, not always).
    assert!(
        ok >= 3 * 2,
        "at least the queue capacity per round is served, got {ok}"
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    app.assert_still_serving("the bursts").await;
    let metrics = app.get("/metrics").await.text();
    assert!(
        metrics.contains("ml_queue_depth 0"),
        "queue drained:\n{metrics}"
    );
    assert!(
        metrics.contains(&format!("ml_rejected_total {overloaded}")),
        "{metrics}"
    );

    let after = rss_bytes();
    eprintln!(
        "RSS before the bursts {} MiB, after {} MiB",
        before >> 20,
        after >> 20
    );
    assert!(
        after <= before + RSS_TOLERANCE,
        "RSS grew from {} MiB to {} MiB",
        before >> 20,
        after >> 20
    );
}
