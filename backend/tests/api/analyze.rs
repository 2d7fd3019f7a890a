//! `POST /api/v1/analyze` end to end through the backend, with ml replaced by `MlDouble`.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{BrokenMl, MlBehaviour, MlDouble, PHOTO, TestApp, ok_body, predictions};

/// Three bottles that together are the plurality (0.36) but not a majority of the top-5 (0.74),
/// under a cat that is not confident either.
fn bottles() -> Value {
    predictions(&[
        ("tabby cat", 281, 0.30),
        ("beer bottle", 440, 0.14),
        ("wine bottle", 907, 0.12),
        ("soda bottle", 737, 0.10),
        ("coffee mug", 504, 0.08),
    ])
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[tokio::test]
async fn stable_answers_item_classification_assessment_and_trail() {
    let ml = MlDouble::answering(predictions(&[
        ("beer bottle", 440, 0.91),
        ("wine bottle", 907, 0.05),
    ]))
    .await;
    let app = TestApp::spawn(&ml.url, &[]).await;

    let response = app
        .upload("image", "image/png", PHOTO)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("x-served-by")
            .and_then(|v| v.to_str().ok()),
        Some("backend/stable")
    );
    let body = json_of(response).await;
    assert_eq!(body["item"]["label"], "beer bottle");
    assert_eq!(body["item"]["class_index"], 440);
    assert_eq!(body["item"]["category"], "drink-bottles");
    assert_eq!(body["assessment"]["known"], true);
    assert_eq!(body["assessment"]["strategy"], "top1");
    assert_eq!(body["assessment"]["category"]["id"], "drink-bottles");
    assert_eq!(body["assessment"]["recyclable"], true);
    assert!(
        body["assessment"]["tips"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(
        body["assessment"]["disposal"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(
        body["classification"]["model"]["name"],
        "efficientnet-lite0"
    );
    assert_eq!(
        body["classification"]["predictions"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(body["timings_ms"]["ml"]["inference"], 14.2);
    assert!(
        body["timings_ms"]["ml_total"]
            .as_f64()
            .is_some_and(|t| t > 0.0)
    );
    assert_eq!(body["served_by"], json!(["backend/stable", "ml/stable"]));

    let received = ml.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].body.as_ref(),
        PHOTO,
        "the photo bytes reach ml unchanged"
    );
    assert_eq!(received[0].query.as_deref(), Some("top_k=5"));
    assert_eq!(
        received[0]
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
}

#[tokio::test]
async fn canary_aggregates_what_stable_calls_not_sure() {
    let ml = MlDouble::answering(bottles()).await;
    let stable = TestApp::spawn(&ml.url, &[]).await;
    let canary = TestApp::spawn(&ml.url, &[("SERVICE_VERSION", "canary")]).await;

    let s = json_of(
        stable
            .upload("image", "image/jpeg", PHOTO)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(s["assessment"]["strategy"], "top1");
    assert_eq!(s["assessment"]["known"], false);
    assert_eq!(s["assessment"]["uncertainty"], "low_confidence");
    assert_eq!(s["assessment"]["category"], Value::Null);
    assert_eq!(s["item"]["category"], Value::Null, "{s}");

    let response = canary
        .upload("image", "image/jpeg", PHOTO)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        response
            .headers()
            .get("x-served-by")
            .and_then(|v| v.to_str().ok()),
        Some("backend/canary")
    );
    let c = json_of(response).await;
    assert_eq!(c["assessment"]["strategy"], "category-aggregate");
    assert_eq!(c["assessment"]["known"], true);
    assert_eq!(c["assessment"]["category"]["id"], "drink-bottles");
    let confidence = c["assessment"]["confidence"].as_f64().unwrap_or_default();
    assert!((confidence - 0.36).abs() < 1e-6, "{confidence}");
    let contributing: Vec<&str> = c["assessment"]["contributing"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["label"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(contributing, ["beer bottle", "wine bottle", "soda bottle"]);
    assert_eq!(c["item"]["label"], "beer bottle");
    assert_eq!(c["served_by"][0], "backend/canary");
}

#[tokio::test]
async fn an_animal_gets_an_honest_not_sure() {
    let ml = MlDouble::answering(predictions(&[
        ("tabby cat", 281, 0.88),
        ("carton", 478, 0.04),
    ]))
    .await;
    let app = TestApp::spawn(&ml.url, &[("SERVICE_VERSION", "canary")]).await;
    let body = json_of(
        app.upload("image", "image/jpeg", PHOTO)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(body["assessment"]["known"], false);
    assert_eq!(body["assessment"]["uncertainty"], "not_a_product");
    assert_eq!(body["assessment"]["recyclable"], Value::Null);
    assert_eq!(body["item"]["label"], "tabby cat");
    assert_eq!(body["item"]["category"], Value::Null);
}

#[tokio::test]
async fn routing_and_trace_headers_reach_ml() {
    let ml = MlDouble::answering(bottles()).await;
    let app = TestApp::spawn(&ml.url, &[]).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = app
        .upload("image", "image/png", PHOTO)
        .header("x-canary", "true")
        .header("x-request-id", "req-analyze-1")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let received = ml.received();
    let headers = &received.first().expect("ml was called").headers;
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(get("x-canary").as_deref(), Some("true"));
    assert_eq!(get("x-request-id").as_deref(), Some("req-analyze-1"));
    let traceparent = get("traceparent").expect("traceparent propagated");
    assert!(traceparent.contains(trace_id), "same trace: {traceparent}");
}

#[tokio::test]
async fn ml_down_is_a_fast_503_with_retry_after() {
    let app = TestApp::spawn(&MlDouble::unreachable_url().await, &[]).await;
    let started = Instant::now();
    let response = app
        .upload("image", "image/png", PHOTO)
        .send()
        .await
        .expect("sent");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body = json_of(response).await;
    assert_eq!(error_code(&body), "ml_unavailable");
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
}

#[tokio::test]
async fn ml_too_slow_is_a_504_within_the_timeout() {
    let ml = MlDouble::start(MlBehaviour::Slow(Duration::from_secs(3))).await;
    let app = TestApp::spawn(&ml.url, &[("ML_TIMEOUT_MS", "300")]).await;
    let started = Instant::now();
    let response = app
        .upload("image", "image/png", PHOTO)
        .send()
        .await
        .expect("sent");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body = json_of(response).await;
    assert_eq!(error_code(&body), "ml_timeout");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1500),
        "took {elapsed:?}"
    );
}

#[tokio::test]
async fn ml_client_errors_pass_through_with_a_readable_message() {
    let cases = [
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "undecodable_image",
            "the JPEG data ends early",
        ),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "not a JPEG, PNG or WebP image",
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "image_too_large",
            "more than 40 megapixels",
        ),
    ];
    for (status, code, message) in cases {
        let ml = MlDouble::start(MlBehaviour::Answer(
            status,
            json!({"error": {"code": code, "message": message}}),
            None,
        ))
        .await;
        let app = TestApp::spawn(&ml.url, &[]).await;
        let response = app
            .upload("image", "image/png", PHOTO)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), status);
        let body = json_of(response).await;
        assert_eq!(error_code(&body), code);
        let text = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(message) && text.len() > message.len(),
            "{text}"
        );
    }
}

#[tokio::test]
async fn ml_overloaded_is_a_503_carrying_mls_retry_after() {
    let ml = MlDouble::start(MlBehaviour::Answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": {"code": "overloaded", "message": "all workers busy"}}),
        Some("2"),
    ))
    .await;
    let app = TestApp::spawn(&ml.url, &[]).await;
    let response = app
        .upload("image", "image/png", PHOTO)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    assert_eq!(error_code(&json_of(response).await), "ml_overloaded");
}

#[tokio::test]
async fn ml_server_errors_and_garbage_are_502_without_internals() {
    let broken = MlDouble::start(MlBehaviour::Answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"error": {"code": "internal", "message": "tract: shape mismatch in node 42"}}),
        None,
    ))
    .await;
    let garbage = MlDouble::start(MlBehaviour::Garbage).await;
    for ml in [&broken, &garbage] {
        let app = TestApp::spawn(&ml.url, &[]).await;
        let response = app
            .upload("image", "image/png", PHOTO)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body = json_of(response).await;
        assert_eq!(error_code(&body), "ml_error");
        let text = body.to_string();
        assert!(
            !text.contains("tract") && !text.contains("html") && !text.contains("127.0.0.1"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn bad_uploads_are_refused_before_ml_is_called() {
    let ml = MlDouble::answering(bottles()).await;
    let app = TestApp::spawn(&ml.url, &[("MAX_UPLOAD_BYTES", "1024")]).await;

    let missing = app
        .upload("photo", "image/png", PHOTO)
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&json_of(missing).await), "missing_image");

    let empty = app
        .upload("image", "application/octet-stream", b"")
        .send()
        .await
        .expect("sent");
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&json_of(empty).await), "empty_image");

    let large = app
        .upload("image", "image/png", &[7u8; 2048])
        .send()
        .await
        .expect("sent");
    assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&json_of(large).await), "payload_too_large");

    let text = app
        .upload("image", "text/plain", b"hello")
        .send()
        .await
        .expect("sent");
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&json_of(text).await), "unsupported_media_type");

    let not_multipart = app
        .http
        .post(app.url("/api/v1/analyze"))
        .header("content-type", "image/png")
        .body(PHOTO.to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(not_multipart.status(), StatusCode::BAD_REQUEST);
    let body = json_of(not_multipart).await;
    assert_eq!(error_code(&body), "invalid_multipart");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`image`"))
    );

    assert!(ml.received().is_empty(), "ml must not see refused uploads");

    // Exactly at the limit is accepted.
    let at_limit = app
        .upload("image", "image/png", &[7u8; 1024])
        .send()
        .await
        .expect("sent");
    assert_eq!(at_limit.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_photo_labelled_as_generic_binary_goes_to_ml_with_the_type_its_bytes_name() {
    let ml = MlDouble::answering(bottles()).await;
    let app = TestApp::spawn(&ml.url, &[]).await;
    let webp = b"RIFF\x24\x00\x00\x00WEBPVP8 fake".to_vec();

    let answer = app
        .upload("image", "application/octet-stream", &webp)
        .send()
        .await
        .expect("sent");
    assert_eq!(answer.status(), StatusCode::OK);
    let received = ml.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].headers["content-type"], "image/webp");
    assert_eq!(received[0].body, webp);

    // Generic binary that is not a photo is still not an image we take.
    let notes = app
        .upload("image", "application/octet-stream", b"just some notes")
        .send()
        .await
        .expect("sent");
    assert_eq!(notes.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body = json_of(notes).await;
    assert_eq!(error_code(&body), "unsupported_media_type");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a JPEG, PNG or WebP")),
        "{body}"
    );
    assert_eq!(ml.received().len(), 1, "ml must not see the notes");
}

#[tokio::test]
async fn predictions_spelled_with_class_index_are_understood_too() {
    // ml spells the class `index`; the backend's own spelling, `class_index`, is accepted as well.
    let ml = MlDouble::start(MlBehaviour::Answer(
        StatusCode::OK,
        ok_body(json!([{"label": "banana", "class_index": 954, "probability": 0.97}])),
        None,
    ))
    .await;
    let app = TestApp::spawn(&ml.url, &[]).await;
    let body = json_of(
        app.upload("image", "image/jpeg", PHOTO)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(body["item"]["class_index"], 954);
    assert_eq!(body["classification"]["predictions"][0]["class_index"], 954);
    assert_eq!(body["assessment"]["category"]["id"], "fresh-produce");
    assert_eq!(body["assessment"]["biodegradable"], true);
}

#[tokio::test]
async fn analyses_beyond_the_limit_are_refused_not_queued() {
    let ml = MlDouble::start(MlBehaviour::Slow(Duration::from_millis(800))).await;
    let app = TestApp::spawn(
        &ml.url,
        &[("MAX_CONCURRENT_ANALYSES", "1"), ("ML_TIMEOUT_MS", "3000")],
    )
    .await;
    let first = tokio::spawn(app.upload("image", "image/png", PHOTO).send());
    // Wait until the first analysis is inside ml.
    let deadline = Instant::now() + Duration::from_secs(2);
    while ml.received().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let second = app
        .upload("image", "image/png", PHOTO)
        .send()
        .await
        .expect("sent");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused at once"
    );
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(second.headers().contains_key("retry-after"));
    assert_eq!(error_code(&json_of(second).await), "overloaded");

    let first = first.await.expect("joined").expect("sent");
    assert_eq!(first.status(), StatusCode::OK);
    let third = app
        .upload("image", "image/png", PHOTO)
        .send()
        .await
        .expect("sent");
    assert_eq!(third.status(), StatusCode::OK, "the permit is released");
}

/// With Envoy in front of ml, a stopped ml replica reads as Envoy's own 503s. Only an overload
/// says "busy"; a missing or unreachable ml says "unavailable" (the ml-canary-down bug).
#[tokio::test]
async fn a_proxys_503_is_busy_only_when_it_says_overload() {
    let cases = [
        (
            MlBehaviour::Proxy(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream", &[]),
            "ml_unavailable",
        ),
        (
            MlBehaviour::Proxy(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
                &[],
            ),
            "ml_unavailable",
        ),
        (
            MlBehaviour::Proxy(
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream connect error or disconnect/reset before headers. reset reason: overflow",
                &[("x-envoy-overloaded", "true")],
            ),
            "ml_overloaded",
        ),
        // The lab's hop: the shared body, with Retry-After, saying the upstream is not reachable.
        (
            MlBehaviour::Answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": {"code": "upstream_unavailable", "message": "not reachable"}}),
                Some("1"),
            ),
            "ml_unavailable",
        ),
        (
            MlBehaviour::Answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": {"code": "not_ready", "message": "loading"}}),
                Some("1"),
            ),
            "ml_unavailable",
        ),
    ];
    for (behaviour, code) in cases {
        let ml = MlDouble::start(behaviour).await;
        let app = TestApp::spawn(&ml.url, &[]).await;
        let response = app
            .upload("image", "image/png", PHOTO)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        let body = json_of(response).await;
        assert_eq!(error_code(&body), code, "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        let word = if code == "ml_overloaded" {
            "busy"
        } else {
            "unavailable"
        };
        assert!(message.contains(word), "{message}");
    }
}

/// Envoy's route timeout in front of ml answers 504 itself: still ml being too slow, not broken.
#[tokio::test]
async fn a_proxys_504_is_a_timeout_not_a_broken_answer() {
    let ml = MlDouble::start(MlBehaviour::Proxy(
        StatusCode::GATEWAY_TIMEOUT,
        "upstream request timeout",
        &[],
    ))
    .await;
    let app = TestApp::spawn(&ml.url, &[]).await;
    let response = app
        .upload("image", "image/png", PHOTO)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(error_code(&json_of(response).await), "ml_timeout");
}

#[tokio::test]
async fn a_reset_is_503_a_truncated_answer_502_and_recovery_is_automatic() {
    for (broken, status, code) in [
        (
            BrokenMl::Reset,
            StatusCode::SERVICE_UNAVAILABLE,
            "ml_unavailable",
        ),
        (BrokenMl::Truncated, StatusCode::BAD_GATEWAY, "ml_error"),
    ] {
        let url = broken.start().await;
        let app = TestApp::spawn(&url, &[("ML_TIMEOUT_MS", "2000")]).await;
        let response = app
            .upload("image", "image/png", PHOTO)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), status, "{code}");
        let body = json_of(response).await;
        assert_eq!(error_code(&body), code, "{body}");
        assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    }

    // ml gone, then back on the same address: the next request succeeds with no restart.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let app = TestApp::spawn(&format!("http://{addr}"), &[]).await;
    let gone = app
        .upload("image", "image/png", PHOTO)
        .send()
        .await
        .expect("sent");
    assert_eq!(gone.status(), StatusCode::SERVICE_UNAVAILABLE);
    let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    let back = axum::Router::new().route(
        "/v1/classify",
        axum::routing::post(|| async { axum::Json(ok_body(bottles())) }),
    );
    tokio::spawn(async move { axum::serve(listener, back).await });
    let recovered = app
        .upload("image", "image/png", PHOTO)
        .send()
        .await
        .expect("sent");
    assert_eq!(recovered.status(), StatusCode::OK);
}
