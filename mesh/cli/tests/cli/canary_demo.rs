//! `demo::run` over real HTTP against a stand-in frontend on a port-0 listener: the request
//! shape (multipart `image`, `Accept: application/json`, `x-canary`) and the verdict.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mesh_cli::demo::{DemoPlan, Tolerance, run};
use serde_json::{Value, json};

use crate::fixtures::dir;

#[derive(Clone, Copy)]
enum Behaviour {
    /// Honours x-canary and sends every 10th plain request to canary at every hop.
    Faithful,
    /// Ignores x-canary.
    IgnoresHeader,
    /// Answers 503 to everything.
    Down,
}

#[derive(Clone)]
struct StandIn {
    behaviour: Behaviour,
    counter: Arc<AtomicUsize>,
}

async fn analyze(
    State(app): State<StandIn>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Json<Value>, (StatusCode, String)> {
    if headers.get("accept").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return Err((
            StatusCode::NOT_ACCEPTABLE,
            "expected Accept: application/json".to_owned(),
        ));
    }
    let field = form
        .next_field()
        .await
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let Some(field) = field.filter(|f| f.name() == Some("image")) else {
        return Err((StatusCode::BAD_REQUEST, "no image field".to_owned()));
    };
    let bytes = field
        .bytes()
        .await
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    if !bytes.starts_with(b"\x89PNG") {
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, "not a PNG".to_owned()));
    }
    let n = app.counter.fetch_add(1, Ordering::SeqCst);
    let pinned = headers.get("x-canary").and_then(|v| v.to_str().ok()) == Some("true");
    let version = match app.behaviour {
        Behaviour::Down => return Err((StatusCode::SERVICE_UNAVAILABLE, "draining".to_owned())),
        Behaviour::Faithful if pinned => "canary",
        _ if n % 10 == 0 => "canary",
        _ => "stable",
    };
    Ok(Json(json!({
        "served_by": [format!("frontend/{version}"), format!("backend/{version}"), format!("ml/{version}")]
    })))
}

async fn serve(behaviour: Behaviour) -> String {
    let app = axum::Router::new()
        .route("/analyze", post(analyze))
        .with_state(StandIn {
            behaviour,
            counter: Arc::new(AtomicUsize::new(0)),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

fn plan(url: String, requests: usize) -> DemoPlan {
    DemoPlan {
        url,
        requests,
        image: None,
        config: dir("good"),
        tolerance: Tolerance::default(),
        timeout: Duration::from_secs(10),
        resolve: None,
    }
}

/// `--resolve` reaches a virtual host name that no resolver knows (as a kind gateway's
/// `frontend.local` is reached through 127.0.0.1); without it the same URL cannot connect.
#[tokio::test]
async fn resolve_reaches_a_virtual_host_by_address() {
    let url = serve(Behaviour::Faithful).await;
    let port = url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    let virtual_url = format!("http://frontend.lab.invalid:{port}/");
    let mut pinned = plan(virtual_url.clone(), 20);
    pinned.resolve = Some(("frontend.lab.invalid".into(), [127, 0, 0, 1].into()));
    let report = run(&pinned).await.expect("demo runs through --resolve");
    assert!(report.verdict.pass, "{report:?}");
    assert!(
        run(&plan(virtual_url, 20)).await.is_err(),
        "an unresolvable host must not connect"
    );
}

#[tokio::test]
async fn faithful_frontend_passes() {
    let url = serve(Behaviour::Faithful).await;
    let report = run(&plan(url, 40)).await.expect("demo runs");
    assert!(report.verdict.pass, "{:?}", report.verdict);
    assert_eq!(report.weighted.trails, 40);
    assert_eq!(report.weighted.per_hop[1].canary, 4);
    assert_eq!(report.pinned.per_hop[2].canary, 40);
    assert_eq!(report.expected.weighted, [0.1, 0.1, 0.1]);
}

#[tokio::test]
async fn ignoring_the_header_fails() {
    let url = serve(Behaviour::IgnoresHeader).await;
    let report = run(&plan(url, 20)).await.expect("demo runs");
    assert!(!report.verdict.pass);
    let text = mesh_cli::cli::demo_table(&report);
    assert!(text.ends_with("FAIL\n"), "{text}");
}

#[tokio::test]
async fn a_failing_frontend_gives_up_early_and_fails() {
    let url = serve(Behaviour::Down).await;
    let report = run(&plan(url, 50)).await.expect("demo runs");
    assert!(!report.verdict.pass);
    // Five failures and the give-up note, per batch — not fifty.
    assert_eq!(
        report.weighted.failures.len(),
        6,
        "{:?}",
        report.weighted.failures
    );
    assert!(
        report.weighted.failures[0].contains("HTTP 503"),
        "{:?}",
        report.weighted.failures
    );
}
