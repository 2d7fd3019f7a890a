//! SIGTERM to the lab binary while requests are in flight: readiness fails first, the requests
//! complete, the process exits within the drain bound.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::photo;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "error")
        .env("SHUTDOWN_DELAY_MS", "400")
        .env("SHUTDOWN_DRAIN_MS", "5000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the lab binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (edge, replicas) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut edge = None;
        let mut replicas = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("utf-8 output");
            if let Some(url) = line.strip_prefix("3RVision lab is up: open ") {
                edge = Some(url.to_owned());
            } else if edge.is_some() && line.starts_with("  ") {
                replicas.push(
                    line.split_whitespace()
                        .last()
                        .unwrap_or_default()
                        .to_owned(),
                );
            } else if edge.is_some() {
                break;
            }
        }
        // Keep draining the pipe so the child never blocks on a full stdout.
        std::thread::spawn(move || for _ in lines {});
        (edge.expect("the lab printed its address"), replicas)
    })
    .await
    .expect("reader");
    assert_eq!(replicas.len(), 6, "{replicas:?}");

    let http = reqwest::Client::new();
    let in_flight: Vec<_> = (0..6)
        .map(|_| {
            let part = reqwest::multipart::Part::bytes(photo())
                .file_name("coffee.jpg")
                .mime_str("image/jpeg")
                .expect("mime");
            let request = http
                .post(format!("{edge}/analyze"))
                .header("accept", "application/json")
                .multipart(reqwest::multipart::Form::new().part("image", part))
                .send();
            tokio::spawn(request)
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;

    let stopped_at = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());

    // Readiness fails while the listeners are still open.
    tokio::time::sleep(Duration::from_millis(150)).await;
    for replica in &replicas {
        let ready = http
            .get(format!("{replica}/readyz"))
            .send()
            .await
            .expect("still listening during the shutdown delay");
        assert_eq!(ready.status(), 503, "{replica} still says ready");
    }

    for request in in_flight {
        let response = request
            .await
            .expect("task")
            .expect("in-flight request completes");
        assert_eq!(response.status(), 200);
    }

    let exit = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .expect("waiter")
    .expect("the lab exits within 10 s of SIGTERM");
    assert!(exit.success(), "exit status {exit}");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(6),
        "took {:?}",
        stopped_at.elapsed()
    );
}
