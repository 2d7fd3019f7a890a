//! What a person sees when a tier is down, too slow, or sent something that is not a photo.

use std::time::{Duration, Instant};

use lab::topology::Tier;

use crate::support::{spawn_lab, spawn_lab_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ml_down_gives_503_and_a_friendly_page_fast() {
    let mut app = spawn_lab().await;
    app.lab.stop_tier(Tier::Ml).await;

    let started = Instant::now();
    let backend = app.post_to_backend().await;
    assert_eq!(backend.status(), 503);
    assert!(backend.headers().contains_key("retry-after"));
    let body: serde_json::Value = backend.json().await.expect("json error");
    // The ml hop answers 503 upstream_unavailable (with Retry-After): that is ml missing, not ml
    // busy (the bug was "the classifier is busy").
    assert_eq!(body["error"]["code"], "ml_unavailable", "{body}");

    let page = app.post_page(app.form()).await;
    assert_eq!(page.status(), 503);
    let html = page.text().await.expect("page");
    assert!(html.contains("<html"), "an HTML page: {html}");
    assert!(
        html.contains("The analysis service is unavailable") && !html.contains("busy"),
        "says unavailable, not busy: {html}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "failing took {:?}",
        started.elapsed()
    );
    app.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ml_slower_than_the_timeout_gives_504() {
    let app = spawn_lab_with(vec![(Tier::Backend, "ML_TIMEOUT_MS", "1")]).await;
    let backend = app.post_to_backend().await;
    assert_eq!(backend.status(), 504);
    let page = app.post_page(app.form()).await;
    assert_eq!(page.status(), 504);
    assert!(page.text().await.expect("page").contains("<html"));
    app.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_text_file_named_jpg_is_a_readable_415_page() {
    let app = spawn_lab().await;
    let form = app.form_with(
        b"just some notes, not a photo\n".to_vec(),
        "notes.jpg",
        "image/jpeg",
    );
    let page = app.post_page(form).await;
    assert_eq!(page.status(), 415);
    let html = page.text().await.expect("page");
    assert!(html.contains("<html"));
    assert!(
        html.to_lowercase().contains("jpeg"),
        "says which formats work: {html}"
    );
    // The lab keeps serving.
    let ok = app.analyze_json(false).await;
    assert_eq!(ok.item.label, "espresso");
    app.lab.shutdown().await;
}

/// The frontend streams the form to the backend unopened; what the backend finds wrong with it
/// comes back as the frontend's own pages, and a photo a browser could only call generic binary
/// is named by its bytes and analysed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_backend_judges_the_streamed_form_and_the_frontend_explains_it() {
    let app = spawn_lab().await;

    let empty = app.form_with(Vec::new(), "", "application/octet-stream");
    let page = app.post_page(empty).await;
    assert_eq!(page.status(), 400);
    let html = page.text().await.expect("page");
    assert!(html.contains("No photo was attached"), "{html}");

    let no_field = reqwest::multipart::Form::new().text("comment", "no photo here");
    let page = app.post_page(no_field).await;
    assert_eq!(page.status(), 400);
    let html = page.text().await.expect("page");
    assert!(html.contains("No photo was attached"), "{html}");

    let generic = app.form_with(
        crate::support::photo(),
        "IMG_0001",
        "application/octet-stream",
    );
    let page = app.post_page(generic).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("page");
    assert!(html.contains("espresso"), "{html}");
    app.lab.shutdown().await;
}
