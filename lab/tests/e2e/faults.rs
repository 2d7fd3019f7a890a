//! The fault-injection overlays (mesh/deploy/overlays/fault-*), executed by the lab's hops: what a
//! person sees when the mesh aborts calls to the backend or delays calls to ml.

use std::time::{Duration, Instant};

use crate::support::{rendered_overlay, spawn_lab_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_aborted_backend_gives_the_friendly_error_page() {
    let app = spawn_lab_on(rendered_overlay("fault-abort-backend"), Vec::new()).await;
    // The backend hop answers the abort itself, as the caller's sidecar would.
    let backend = app.post_to_backend().await;
    assert_eq!(backend.status(), 503);
    let body: serde_json::Value = backend.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "fault_abort", "{body}");

    let page = app.post_page(app.form()).await;
    assert_eq!(page.status(), 503);
    let html = page.text().await.expect("page");
    assert!(
        html.contains("<html") && html.contains("try again"),
        "the frontend's error page: {html}"
    );
    app.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delayed_ml_is_cut_off_by_the_backends_timeout() {
    let app = spawn_lab_on(rendered_overlay("fault-delay-ml"), Vec::new()).await;
    let started = Instant::now();
    let page = app.post_page(app.form()).await;
    let took = started.elapsed();
    assert_eq!(page.status(), 504);
    assert!(page.text().await.expect("page").contains("<html"));
    // ml is held 6 s; the backend's ML_TIMEOUT_MS (4.5 s, under ml's 5 s route timeout) answers
    // first, well inside the frontend's 10 s route timeout.
    assert!(
        took >= Duration::from_millis(4400) && took < Duration::from_secs(6),
        "the error page took {took:?}"
    );
    app.lab.shutdown().await;
}
