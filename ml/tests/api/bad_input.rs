//! Every kind of bad upload gets its exact status and error code, and the service keeps serving.

use http::StatusCode;

use crate::helpers::{TestApp, TestResponse, fixture, shared_process, spawn_app};

const LIMIT: usize = 1024 * 1024;

async fn app() -> TestApp {
    spawn_app(&[("MAX_UPLOAD_BYTES", "1048576"), ("ML_WORKERS", "1")]).await
}

async fn expect_error(
    app: &TestApp,
    case: &str,
    response: TestResponse,
    status: StatusCode,
    code: &str,
) {
    assert_eq!(response.status, status, "{case}: {}", response.text());
    assert_eq!(response.error_code(), code, "{case}: {}", response.text());
    let message = response.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!message.is_empty(), "{case}: the error says what was wrong");
    app.assert_still_serving(case).await;
}

#[tokio::test]
async fn bad_images_are_refused_precisely() {
    let _guard = shared_process().await;
    let app = app().await;
    let cases: [(&str, &str, StatusCode, &str); 5] = [
        (
            "bad/bomb-100000x100000.png",
            "image/png",
            StatusCode::PAYLOAD_TOO_LARGE,
            "image_too_large",
        ),
        (
            "bad/bomb-65000x65000.jpg",
            "image/jpeg",
            StatusCode::PAYLOAD_TOO_LARGE,
            "image_too_large",
        ),
        (
            "bad/truncated.jpg",
            "image/jpeg",
            StatusCode::UNPROCESSABLE_ENTITY,
            "undecodable_image",
        ),
        (
            "bad/corrupt-header.png",
            "image/png",
            StatusCode::UNPROCESSABLE_ENTITY,
            "undecodable_image",
        ),
        (
            "bad/not-an-image.jpg",
            "image/jpeg",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (file, content_type, status, code) in cases {
        let response = app.classify(Some(content_type), fixture(file), "").await;
        expect_error(&app, file, response, status, code).await;
    }
    // The same through a multipart form.
    let response = app
        .classify_multipart("image", "image/jpeg", &fixture("bad/truncated.jpg"))
        .await;
    expect_error(
        &app,
        "multipart truncated",
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "undecodable_image",
    )
    .await;
}

#[tokio::test]
async fn bad_requests_are_refused_precisely() {
    let _guard = shared_process().await;
    let app = app().await;
    let jpeg = fixture("photos/coffee.jpg");

    let response = app.classify(Some("image/jpeg"), Vec::new(), "").await;
    expect_error(
        &app,
        "empty body",
        response,
        StatusCode::BAD_REQUEST,
        "empty_body",
    )
    .await;

    let mut oversize = jpeg.clone();
    oversize.resize(LIMIT + 1, 0);
    let response = app.classify(Some("image/jpeg"), oversize.clone(), "").await;
    expect_error(
        &app,
        "oversize raw body",
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let response = app
        .classify_multipart("image", "image/jpeg", &oversize)
        .await;
    expect_error(
        &app,
        "oversize multipart",
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;

    let response = app.classify(Some("text/plain"), jpeg.clone(), "").await;
    expect_error(
        &app,
        "text/plain",
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let response = app
        .classify(Some("application/json"), b"{\"image\":1}".to_vec(), "")
        .await;
    expect_error(
        &app,
        "application/json",
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let response = app.classify(None, jpeg.clone(), "").await;
    expect_error(
        &app,
        "no content-type",
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    for query in [
        "?top_k=0",
        "?top_k=21",
        "?top_k=abc",
        "?top_k=",
        "?top_k=-3",
    ] {
        let response = app.classify(Some("image/jpeg"), jpeg.clone(), query).await;
        expect_error(
            &app,
            query,
            response,
            StatusCode::BAD_REQUEST,
            "invalid_top_k",
        )
        .await;
    }

    let response = app.classify_multipart("photo", "image/jpeg", &jpeg).await;
    expect_error(
        &app,
        "multipart without `image`",
        response,
        StatusCode::BAD_REQUEST,
        "missing_image",
    )
    .await;
    let response = app
        .classify(
            Some("multipart/form-data; boundary=xyz"),
            b"garbage without parts".to_vec(),
            "",
        )
        .await;
    expect_error(
        &app,
        "malformed multipart",
        response,
        StatusCode::BAD_REQUEST,
        "invalid_multipart",
    )
    .await;
    let response = app.classify_multipart("image", "image/jpeg", &[]).await;
    expect_error(
        &app,
        "multipart empty image",
        response,
        StatusCode::BAD_REQUEST,
        "empty_body",
    )
    .await;
}

#[tokio::test]
async fn pixel_limit_is_configurable() {
    let _guard = shared_process().await;
    // coffee.jpg is 600×400 = 240 000 pixels.
    let app = spawn_app(&[("MAX_IMAGE_PIXELS", "239999")]).await;
    let response = app
        .classify(Some("image/jpeg"), fixture("photos/coffee.jpg"), "")
        .await;
    assert_eq!(
        response.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        response.text()
    );
    assert_eq!(response.error_code(), "image_too_large");
    assert!(response.text().contains("600×400"), "{}", response.text());
    let response = app
        .classify(Some("image/jpeg"), fixture("photos/chelsea.jpg"), "")
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}
