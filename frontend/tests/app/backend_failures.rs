//! Every way an analysis can fail gets the right status and a page a person can act on.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::Value;

use crate::harness::{
    BackendDouble, Behaviour, photo_form, read, spawn_app, unreachable_backend_url,
};

#[tokio::test]
async fn an_unreachable_backend_is_a_503_page_with_retry_after() {
    let app = spawn_app(&unreachable_backend_url().await, &[]).await;
    let (status, headers, html) = read(app.post_photo(&[]).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    assert!(
        html.contains("The analysis service is unavailable"),
        "{html}"
    );
    assert!(html.contains("can't be reached"), "{html}");
    assert!(html.contains("<code>frontend/stable</code>"), "{html}");
}

#[tokio::test]
async fn a_slow_backend_is_a_504_page_after_the_timeout() {
    let backend = BackendDouble::start(Behaviour::Slow(Duration::from_secs(5))).await;
    let app = spawn_app(&backend.url, &[("BACKEND_TIMEOUT_MS", "300")]).await;
    let started = Instant::now();
    let (status, _, html) = read(app.post_photo(&[]).await).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{html}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up after {:?}",
        started.elapsed()
    );
    assert!(html.contains("That took too long"), "{html}");
}

#[tokio::test]
async fn backend_refusals_keep_their_status_and_read_well() {
    let cases = [
        (StatusCode::BAD_REQUEST, "We couldn't read that upload"),
        (StatusCode::PAYLOAD_TOO_LARGE, "That photo is too large"),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "That file isn't an image we can read (JPEG, PNG or WebP)",
        ),
        (StatusCode::UNPROCESSABLE_ENTITY, "could not be decoded"),
    ];
    for (backend_status, text) in cases {
        let backend = BackendDouble::start(Behaviour::error(
            backend_status,
            "refused",
            "the <b>upload</b> was refused",
        ))
        .await;
        let app = spawn_app(&backend.url, &[]).await;
        let (status, _, html) = read(app.post_photo(&[]).await).await;
        assert_eq!(status, backend_status, "{html}");
        assert!(
            html.contains(text),
            "{backend_status}: missing {text:?} in {html}"
        );
        assert!(
            html.contains("frontend/stable → backend/stable"),
            "{backend_status}: {html}"
        );
        assert!(
            html.contains("the &lt;b&gt;upload&lt;/b&gt; was refused"),
            "{backend_status}: the backend's reason, escaped: {html}"
        );
    }
}

#[tokio::test]
async fn an_overloaded_backend_is_a_busy_page_with_its_retry_after() {
    let backend = BackendDouble::start(Behaviour::Answer {
        status: StatusCode::SERVICE_UNAVAILABLE,
        headers: vec![
            ("retry-after", "7".to_owned()),
            ("x-served-by", "backend/canary".to_owned()),
        ],
        body: r#"{"error":{"code":"overloaded","message":"queue full"}}"#.to_owned(),
    })
    .await;
    let app = spawn_app(&backend.url, &[]).await;
    let (status, headers, html) = read(app.post_photo(&[]).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert_eq!(headers["retry-after"], "7");
    assert!(html.contains("busy"), "{html}");
    assert!(html.contains("frontend/stable → backend/canary"), "{html}");
}

/// A 503 saying the classifier is missing (ml-canary stopped behind Envoy) is not "busy".
#[tokio::test]
async fn an_unavailable_classifier_is_an_unavailable_page_not_a_busy_one() {
    let backend = BackendDouble::start(Behaviour::Answer {
        status: StatusCode::SERVICE_UNAVAILABLE,
        headers: vec![
            ("retry-after", "1".to_owned()),
            ("x-served-by", "backend/canary".to_owned()),
        ],
        body: r#"{"error":{"code":"ml_unavailable","message":"the image classifier is unavailable right now"}}"#
            .to_owned(),
    })
    .await;
    let app = spawn_app(&backend.url, &[]).await;
    let (status, headers, html) = read(app.post_photo(&[]).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert_eq!(headers["retry-after"], "1");
    assert!(
        html.contains("The analysis service is unavailable"),
        "{html}"
    );
    assert!(!html.contains("busy"), "{html}");
    let (_, _, body) = read(app.post_photo(&[("accept", "application/json")]).await).await;
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(body["error"]["code"], "backend_unavailable");
}

#[tokio::test]
async fn a_backend_crash_is_a_502_page_without_internals() {
    let backend = BackendDouble::start(Behaviour::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "panic at src/secret.rs:12",
    ))
    .await;
    let app = spawn_app(&backend.url, &[]).await;
    let (status, _, html) = read(app.post_photo(&[]).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{html}");
    assert!(!html.contains("secret.rs"), "{html}");
}

#[tokio::test]
async fn a_downstream_timeout_at_the_backend_is_a_504_page() {
    let backend = BackendDouble::start(Behaviour::error(
        StatusCode::GATEWAY_TIMEOUT,
        "ml_timeout",
        "ml did not answer",
    ))
    .await;
    let app = spawn_app(&backend.url, &[]).await;
    let (status, _, html) = read(app.post_photo(&[]).await).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{html}");
    assert!(html.contains("That took too long"), "{html}");
}

#[tokio::test]
async fn the_backends_no_photo_refusals_are_the_choose_a_photo_page() {
    // The backend reads the form (the frontend streams it through unopened); what it says about
    // a form without a photo reads as the frontend's own page.
    for code in ["missing_image", "empty_image"] {
        let backend = BackendDouble::start(Behaviour::error(
            StatusCode::BAD_REQUEST,
            code,
            "the form has no photo",
        ))
        .await;
        let app = spawn_app(&backend.url, &[]).await;
        let empty_file = photo_form(Vec::new(), "", "application/octet-stream");
        let (status, _, html) = read(app.post_form(empty_file, &[]).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{code}: {html}");
        assert!(html.contains("No photo was attached"), "{code}: {html}");
        assert_eq!(backend.received().len(), 1);
    }
}

#[tokio::test]
async fn a_post_that_is_not_a_multipart_form_is_a_400_page() {
    let backend = BackendDouble::answering("mug").await;
    let app = spawn_app(&backend.url, &[]).await;
    let response = app
        .client
        .post(format!("{}/analyze", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("image=bottle.jpg")
        .send()
        .await
        .expect("POST reaches the frontend");
    let (status, _, html) = read(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("We couldn't read that upload"), "{html}");
    assert!(backend.received().is_empty());
}

#[tokio::test]
async fn a_form_declared_over_the_limit_is_a_413_page_and_never_reaches_the_backend() {
    let backend = BackendDouble::answering("mug").await;
    let app = spawn_app(&backend.url, &[("MAX_UPLOAD_BYTES", "1024")]).await;
    // The limit is the photo's; the form may carry 64 KiB of framing and fields on top.
    let over = 1024 + 64 * 1024 + 1;
    let response = app
        .client
        .post(format!("{}/analyze", app.address))
        .header("content-type", "multipart/form-data; boundary=b")
        .body(vec![b'x'; over])
        .send()
        .await
        .expect("POST reaches the frontend");
    let (status, _, html) = read(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{html}");
    assert!(html.contains("at most 1 KiB"), "{html}");
    assert!(backend.received().is_empty());
}

#[tokio::test]
async fn a_chunked_form_that_grows_past_the_limit_is_cut_off_with_a_413_page() {
    let backend = BackendDouble::answering("mug").await;
    let app = spawn_app(&backend.url, &[("MAX_UPLOAD_BYTES", "1024")]).await;
    let form = photo_form(vec![0xff; 200 * 1024], "big.jpg", "image/jpeg");
    let response = app.post_form_chunked(form).await;
    let (status, _, html) = read(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{html}");
    assert!(html.contains("at most 1 KiB"), "{html}");
}

#[tokio::test]
async fn the_backends_413_is_the_too_large_page_with_the_advertised_limit() {
    let backend = BackendDouble::start(Behaviour::error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the photo is larger than the 1024 bytes accepted",
    ))
    .await;
    let app = spawn_app(&backend.url, &[("MAX_UPLOAD_BYTES", "1024")]).await;
    let (status, _, html) = read(
        app.post_form(photo_form(vec![0xff; 1025], "big.jpg", "image/jpeg"), &[])
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{html}");
    assert!(html.contains("at most 1 KiB"), "{html}");
}

#[tokio::test]
async fn json_callers_get_json_errors() {
    let app = spawn_app(&unreachable_backend_url().await, &[]).await;
    let (status, headers, body) =
        read(app.post_photo(&[("accept", "application/json")]).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(body["error"]["code"], "backend_unreachable");
    assert!(body["error"]["message"].is_string());
    assert_eq!(body["served_by"], serde_json::json!(["frontend/stable"]));
}
