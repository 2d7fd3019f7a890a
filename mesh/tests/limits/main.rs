//! The serving bounds against real sockets: slow heads (slowloris), slow bodies (slow POST),
//! oversized heads, idle kept-alive connections, the connection bound and the in-flight bound.
//! Bounds are short here; the assertions on time are the bounds themselves plus generous slack.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::{MethodFilter, get, on, post};
use mesh::{Mesh, Server, ServiceIdentity, ServingLimits, StopPolicy, Version};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// What the clock may add on a loaded 2-core machine to a bound before it counts as not enforced.
const SLACK: Duration = Duration::from_secs(3);

fn limits() -> ServingLimits {
    ServingLimits {
        header_read_timeout: Duration::from_secs(2),
        body_read_timeout: Duration::from_secs(2),
        max_header_bytes: 8 * 1024,
        ..ServingLimits::default()
    }
}

/// Serves `routes` behind the edge with `limits` on a free port.
async fn serve(limits: ServingLimits, routes: Router) -> SocketAddr {
    let mesh = Mesh::new(ServiceIdentity::new("backend", Version::Stable)).with_limits(limits);
    mesh.readiness().set_ready(true);
    let app = mesh.wrap(routes);
    let server = Server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind")
        .with_limits(limits);
    let addr = server.local_addr();
    tokio::spawn(server.run_until_stopped(
        app,
        mesh.readiness(),
        std::future::pending(),
        StopPolicy {
            delay: Duration::ZERO,
            drain: Duration::from_secs(1),
        },
    ));
    addr
}

fn routes() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/boom",
            get(|| async { panic!("at /src/secret.rs: index out of bounds") as &'static str }),
        )
        // A handler that turns any body error into its own 400, as real handlers do.
        .route(
            "/upload",
            post(|body: Body| async move {
                match axum::body::to_bytes(body, 1024 * 1024).await {
                    Ok(bytes) => (http::StatusCode::OK, format!("{} bytes", bytes.len())),
                    Err(_) => (http::StatusCode::BAD_REQUEST, "unreadable body".to_owned()),
                }
            }),
        )
}

/// Reads until the peer closes; the bytes read, or what was read when the read failed.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// A slowloris client: a request head that never ends, one header line every 100 ms, until the
/// server closes the connection. Answers how long the connection lived and what the server sent.
async fn dribble_head(addr: SocketAddr) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\n")
        .await
        .expect("request line");
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        for i in 0u32.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write
                .write_all(format!("x-slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Duration::from_secs(30);
    loop {
        match tokio::time::timeout(deadline, read.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
    writer.abort();
    (started.elapsed(), seen)
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(response).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn body_of(response: &[u8]) -> &str {
    let text = std::str::from_utf8(response).unwrap_or_default();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_slow_heads_neither_block_a_normal_client_nor_outlive_the_bound() {
    let limits = limits();
    let addr = serve(limits, routes()).await;
    let dribblers: Vec<_> = (0..50).map(|_| tokio::spawn(dribble_head(addr))).collect();
    // Let every dribbler connect and start its head.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let answer = reqwest::get(format!("http://{addr}/hello"))
        .await
        .expect("a normal client is served");
    let took = started.elapsed();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "hello");
    assert!(
        took < limits.header_read_timeout,
        "the normal request took {took:?}: it waited for the slow connections to be dropped"
    );

    for dribbler in dribblers {
        let (lived, seen) = dribbler.await.expect("joined");
        assert!(
            lived >= limits.header_read_timeout - Duration::from_millis(100)
                && lived < limits.header_read_timeout + SLACK,
            "a slow head was closed after {lived:?}, bound {:?}",
            limits.header_read_timeout
        );
        assert!(
            seen.is_empty(),
            "closed without an answer: {}",
            String::from_utf8_lossy(&seen)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_connection_bound_a_client_waits_for_a_slot_instead_of_being_dropped() {
    let limits = ServingLimits {
        max_connections: 3,
        ..limits()
    };
    let addr = serve(limits, routes()).await;
    let dribblers: Vec<_> = (0..3).map(|_| tokio::spawn(dribble_head(addr))).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = reqwest::get(format!("http://{addr}/hello"))
        .await
        .expect("served once a slot frees");
    assert_eq!(answer.status(), 200);
    // It could only be served after a slow connection was closed by the head bound.
    let finished = dribblers.iter().filter(|d| d.is_finished()).count();
    assert!(
        finished >= 1,
        "served while all {} slots were held by slow heads",
        limits.max_connections
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_kept_alive_connection_is_closed_within_the_bound() {
    let limits = limits();
    let addr = serve(limits, routes()).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.expect("answer");
    assert_eq!(status_of(&buf[..n]), Some(200));
    let idle_since = Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(30), read_to_close(&mut stream))
        .await
        .expect("closed at all");
    let idle = idle_since.elapsed();
    assert!(rest.is_empty());
    assert!(
        idle < limits.header_read_timeout + SLACK,
        "an idle connection stayed open {idle:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_at_one_kilobyte_a_second_is_cut_off_with_a_408_naming_the_body() {
    let limits = limits();
    let addr = serve(limits, routes()).await;
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let head = "POST /upload HTTP/1.1\r\nHost: test\r\ncontent-type: application/octet-stream\r\ncontent-length: 100000\r\n\r\n";
        write.write_all(head.as_bytes()).await.expect("head");
        let chunk = [b'x'; 100];
        // 100 bytes every 100 ms: about 1 KB/s.
        for _ in 0..1000 {
            if write.write_all(&chunk).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let answer = tokio::time::timeout(Duration::from_secs(30), async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("answered and closed");
    let took = started.elapsed();
    writer.abort();
    assert_eq!(
        status_of(&answer),
        Some(408),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let error = mesh::ErrorBody::parse(body_of(&answer).as_bytes())
        .unwrap_or_else(|| panic!("the JSON error body: {}", String::from_utf8_lossy(&answer)));
    assert_eq!(error.code(), "request_timeout");
    assert!(error.message().contains("body"), "{}", error.message());
    assert!(
        took < limits.body_read_timeout + SLACK,
        "cut off after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_that_arrives_in_time_is_untouched() {
    let addr = serve(limits(), routes()).await;
    let answer = reqwest::Client::new()
        .post(format!("http://{addr}/upload"))
        .body(vec![7u8; 300 * 1024])
        .send()
        .await
        .expect("sent");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "307200 bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_head_over_the_size_bound_is_a_431() {
    let limits = limits();
    let addr = serve(limits, routes()).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let big = "a".repeat(limits.max_header_bytes + 1);
    let request = format!("GET /hello HTTP/1.1\r\nHost: test\r\nx-big: {big}\r\n\r\n");
    // The server may answer and close before all of it is written.
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = read_to_close(&mut stream).await;
    assert_eq!(
        status_of(&answer),
        Some(431),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Just under the bound is served.
    let fits = "a".repeat(limits.max_header_bytes - 200);
    let answer = reqwest::Client::new()
        .get(format!("http://{addr}/hello"))
        .header("x-big", fits)
        .send()
        .await
        .expect("sent");
    assert_eq!(answer.status(), 200);
}

/// A route that answers "done" only once `gate` (the second value) lets it through; `entered` (the
/// third) gains a permit for each request that is inside.
fn gated_route(path: &str, method: MethodFilter) -> (Router, Arc<Semaphore>, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let entered = Arc::new(Semaphore::new(0));
    let handler = {
        let (gate, entered) = (gate.clone(), entered.clone());
        move || {
            let (gate, entered) = (gate.clone(), entered.clone());
            async move {
                entered.add_permits(1);
                let _pass = gate.acquire().await.expect("gate open");
                "done"
            }
        }
    };
    (
        Router::new().route(path, on(method, handler)),
        gate,
        entered,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_in_flight_bound_the_answer_is_503_overloaded_and_probes_still_answer() {
    let limits = ServingLimits {
        max_in_flight: 2,
        ..limits()
    };
    let (routes, gate, entered) = gated_route("/hold", MethodFilter::GET);
    let addr = serve(limits, routes).await;
    let client = reqwest::Client::new();
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.get(format!("http://{addr}/hold")).send()))
        .collect();
    let _both = entered.acquire_many(2).await.expect("both inside");

    // Bounded: without the in-flight bound this request would wait at the gate.
    let refused = client
        .get(format!("http://{addr}/hold"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("answered at once");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["x-served-by"], "backend/stable");
    let error = mesh::ErrorBody::parse(&refused.bytes().await.expect("body")).expect("JSON");
    assert_eq!(error.code(), "overloaded");
    for probe in ["/healthz", "/readyz", "/metrics"] {
        let answer = client
            .get(format!("http://{addr}{probe}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(answer.status(), 200, "{probe} while overloaded");
    }

    gate.add_permits(2);
    for request in held {
        let answer = request.await.expect("joined").expect("sent");
        assert_eq!(answer.status(), 200);
    }
    let again = client.get(format!("http://{addr}/hold")).send();
    gate.add_permits(1);
    assert_eq!(
        again.await.expect("sent").status(),
        200,
        "slots are given back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_refused_unread_is_drained_so_its_sender_reads_the_503() {
    let limits = ServingLimits {
        max_in_flight: 1,
        ..limits()
    };
    let (routes, gate, entered) = gated_route("/upload", MethodFilter::POST);
    let addr = serve(limits, routes).await;
    let held = tokio::spawn(
        reqwest::Client::new()
            .post(format!("http://{addr}/upload"))
            .send(),
    );
    let _inside = entered.acquire().await.expect("the first one is inside");

    // A client that sends its whole upload before it reads (as a browser posting a form may):
    // 8 MiB, far more than a loopback socket buffers. Without the drain the refusal closes the
    // connection with the upload unread, the kernel resets it, and the client's writes fail
    // (broken pipe) and the 503 is lost with the reset.
    let size = 8 * 1024 * 1024;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: {size}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("head written");
    let chunk = vec![7_u8; 64 * 1024];
    for sent in (0..size).step_by(chunk.len()) {
        stream
            .write_all(&chunk)
            .await
            .unwrap_or_else(|err| panic!("the upload was cut off after {sent} bytes: {err}"));
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0_u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"overloaded\"") {
            let n = stream.read(&mut buf).await.expect("the answer is readable");
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    });
    read.await.expect("answered within 10 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("\"overloaded\""), "{answer}");

    gate.add_permits(1);
    assert_eq!(held.await.expect("joined").expect("sent").status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_handler_answers_the_json_500_and_the_server_keeps_serving() {
    let addr = serve(limits(), routes()).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let boom = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .expect("answered");
        assert_eq!(boom.status(), 500);
        assert_eq!(boom.headers()["content-type"], "application/json");
        let body = boom.text().await.expect("body");
        let error = mesh::ErrorBody::parse(body.as_bytes())
            .unwrap_or_else(|| panic!("the shared error body: {body}"));
        assert_eq!(error.code(), "internal");
        assert!(
            !body.contains("secret") && !body.contains("panic") && !body.contains(".rs"),
            "{body}"
        );
    }
    let fine = client
        .get(format!("http://{addr}/hello"))
        .send()
        .await
        .expect("still serving");
    assert_eq!(fine.status(), 200);
}
