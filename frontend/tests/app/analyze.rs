//! `POST /analyze` when the backend answers.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{
    BackendDouble, Behaviour, PHOTO, photo_form, read, sample_analysis, spawn_app,
};

#[tokio::test]
async fn the_result_page_shows_the_item_the_3rs_and_the_route() {
    let backend = BackendDouble::answering("water bottle").await;
    let app = spawn_app(&backend.url, &[]).await;
    let (status, headers, html) = read(app.post_photo(&[]).await).await;

    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(html.contains("<h1>water bottle</h1>"), "{html}");
    assert!(html.contains("87.3%"), "confidence as a percentage: {html}");
    assert!(
        html.contains("frontend/stable → backend/stable → ml/stable"),
        "{html}"
    );
    for text in [
        "Recyclable",
        "Reusable",
        "Resellable",
        "Biodegradable",
        "PET plastic",
        "put it in the plastics bin",
        "Reuse: Refill it instead",
        "80 g CO2e",
        "Drink bottles",
        "This looks like a drink bottle.",
        "Decision strategy: top1",
        "ml.inference: 14.2 ms",
        "efficientnet-lite0",
        "pop bottle",
    ] {
        assert!(html.contains(text), "missing {text:?} in {html}");
    }
    assert!(
        html.contains(r#"<div class="verdict yes"><dt>Recyclable</dt><dd>Yes</dd></div>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<div class="verdict no"><dt>Resellable</dt><dd>No</dd></div>"#),
        "{html}"
    );
}

#[tokio::test]
async fn the_form_reaches_the_backend_byte_for_byte() {
    let backend = BackendDouble::answering("water bottle").await;
    let app = spawn_app(&backend.url, &[]).await;
    let boundary = "browser-boundary-7MA4YWxk";
    let mut form = Vec::new();
    form.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nkeep me\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"bottle.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    form.extend_from_slice(PHOTO);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");

    let response = app
        .client
        .post(format!("{}/analyze", app.address))
        .header("content-type", &content_type)
        .body(form.clone())
        .send()
        .await
        .expect("POST reaches the frontend");
    assert_eq!(response.status(), StatusCode::OK);

    // Not re-encoded: the same type and boundary, the same length, the same bytes.
    let received = backend.only_request();
    assert_eq!(received.header("content-type"), Some(content_type.as_str()));
    assert_eq!(
        received.header("content-length"),
        Some(form.len().to_string().as_str())
    );
    assert_eq!(received.raw_body, form);
    assert_eq!(received.field_name.as_deref(), Some("note"));
}

#[tokio::test]
async fn a_form_sent_in_chunks_streams_through_whole() {
    let backend = BackendDouble::answering("water bottle").await;
    let app = spawn_app(&backend.url, &[]).await;
    let form = photo_form(vec![0xd8; 300 * 1024], "big.jpg", "image/jpeg");
    let response = app.post_form_chunked(form).await;
    assert_eq!(response.status(), StatusCode::OK);
    let received = backend.only_request();
    assert_eq!(received.field_name.as_deref(), Some("image"));
    assert_eq!(received.bytes, vec![0xd8; 300 * 1024]);
}

#[tokio::test]
async fn backend_strings_are_html_escaped() {
    let hostile = r#"<script>alert("x")</script>"#;
    let mut answer = sample_analysis(hostile);
    answer["assessment"]["tips"] =
        json!([{"kind": "reuse", "text": r#"<img src=x onerror="alert(1)">"#}]);
    answer["assessment"]["category"] = json!({"id": "x", "name": "<b>bold</b>"});
    let backend = BackendDouble::start(Behaviour::json(StatusCode::OK, answer)).await;
    let app = spawn_app(&backend.url, &[]).await;
    let (status, _, html) = read(app.post_photo(&[]).await).await;

    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains("&lt;img src=x"), "{html}");
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"), "{html}");
}

#[tokio::test]
async fn an_unknown_item_is_reported_honestly() {
    // What the backend sends when it is not sure (backend/src/assessment.rs).
    let mut answer = sample_analysis("tabby cat");
    answer["item"]["category"] = Value::Null;
    answer["assessment"] = json!({
        "known": false, "strategy": "top1", "confidence": 0.62,
        "uncertainty": "not_a_product",
        "summary": "This doesn't look like a product or waste item we know.",
        "category": null, "materials": [],
        "recyclable": null, "reusable": null, "resellable": null, "biodegradable": null,
        "functional_categories": [],
        "disposal": "If in doubt, ask your local recycling centre.",
        "tips": [], "carbon_note": null, "contributing": []
    });
    let backend = BackendDouble::start(Behaviour::json(StatusCode::OK, answer)).await;
    let app = spawn_app(&backend.url, &[]).await;
    let (status, _, html) = read(app.post_photo(&[]).await).await;

    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<h1>Not sure what this is</h1>"), "{html}");
    assert!(html.contains("ask your local recycling centre"), "{html}");
    assert!(html.contains("Not known"), "{html}");
    assert!(
        html.contains("not a product or piece of waste we know"),
        "{html}"
    );
    assert!(
        html.contains("The closest match was “tabby cat” (87.3%)"),
        "{html}"
    );
    assert!(!html.contains("<h1>tabby cat</h1>"), "{html}");
}

#[tokio::test]
async fn json_callers_get_the_backend_answer_with_the_frontend_first() {
    let backend = BackendDouble::answering("water bottle").await;
    let app = spawn_app(&backend.url, &[("SERVICE_VERSION", "canary")]).await;
    let (status, headers, body) =
        read(app.post_photo(&[("accept", "application/json")]).await).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(
        body["served_by"],
        json!(["frontend/canary", "backend/stable", "ml/stable"])
    );
    assert_eq!(body["item"]["label"], "water bottle");
    assert_eq!(body["assessment"]["recyclable"], true);
}

#[tokio::test]
async fn a_backend_answer_that_is_not_json_is_a_502_page() {
    let backend = BackendDouble::start(Behaviour::Answer {
        status: StatusCode::OK,
        headers: vec![("x-served-by", "backend/canary".to_owned())],
        body: "<html>proxy page</html>".to_owned(),
    })
    .await;
    let app = spawn_app(&backend.url, &[]).await;
    let (status, _, html) = read(app.post_photo(&[]).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{html}");
    assert!(html.contains("Something went wrong on our side"), "{html}");
    assert!(html.contains("frontend/stable → backend/canary"), "{html}");
    assert!(!html.contains("proxy page"), "{html}");
}

#[tokio::test]
async fn a_declared_type_is_forwarded_as_declared() {
    let backend = BackendDouble::answering("water bottle").await;
    let app = spawn_app(&backend.url, &[]).await;
    app.post_form(photo_form(PHOTO.to_vec(), "notes.txt", "text/plain"), &[])
        .await;
    assert_eq!(
        backend.only_request().content_type.as_deref(),
        Some("text/plain"),
        "the backend decides what it takes"
    );
}
