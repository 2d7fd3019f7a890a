//! Real photos through the HTTP API, against the reference top-5 in photos/expected.json.

use std::collections::HashSet;
use std::io::Cursor;

use http::StatusCode;

use crate::helpers::{TestApp, TestResponse, fixture, shared_process, spawn_app};

fn expected() -> serde_json::Value {
    serde_json::from_slice(&fixture("photos/expected.json")).expect("expected.json parses")
}

fn content_type(file: &str) -> &'static str {
    if file.ends_with(".webp") {
        "image/webp"
    } else if file.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    }
}

/// Expected top-1 is in our top-5, the top-5 sets mostly agree, and where the reference's top-1
/// wins by a wide margin ours is the same.
fn assert_agrees(file: &str, model: &str, response: &TestResponse, reference: &serde_json::Value) {
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{file} on {model}: {}",
        response.text()
    );
    let ours = response.indices();
    let theirs: Vec<u64> = reference["top5"]
        .as_array()
        .expect("top5")
        .iter()
        .map(|p| p["index"].as_u64().expect("index"))
        .collect();
    let p = |i: usize| {
        reference["top5"][i]["probability"]
            .as_f64()
            .expect("probability")
    };
    assert!(
        ours[..5].contains(&theirs[0]),
        "{file} on {model}: expected {} in our top-5 {ours:?}",
        theirs[0]
    );
    let overlap = ours[..5]
        .iter()
        .collect::<HashSet<_>>()
        .intersection(&theirs.iter().collect())
        .count();
    assert!(
        overlap >= 3,
        "{file} on {model}: top-5 overlap {overlap} (ours {ours:?}, reference {theirs:?})"
    );
    if p(0) - p(1) > 0.3 {
        assert_eq!(
            ours[0], theirs[0],
            "{file} on {model}: top-1 with a wide margin"
        );
    }
}

async fn check_all_photos(app: &TestApp, model: &str, identity: &str) {
    for photo in expected()["photos"].as_array().expect("photos") {
        let file = photo["file"].as_str().expect("file");
        let started = std::time::Instant::now();
        let response = app
            .classify(
                Some(content_type(file)),
                fixture(&format!("photos/{file}")),
                "",
            )
            .await;
        let wall_ms = started.elapsed().as_secs_f64() * 1e3;
        assert_agrees(file, model, &response, &photo["models"][model]);
        let json = response.json();
        assert_eq!(json["model"]["name"], model);
        assert_eq!(json["served_by"], serde_json::json!([identity]));
        assert_eq!(response.headers["x-served-by"], identity);
        assert_eq!(json["predictions"].as_array().map(Vec::len), Some(5));
        // Decoding, resizing and running a real model on a real photo each take measurable time;
        // waiting in the queue may take none; together they fit inside the request as seen here.
        let timing = |key: &str| {
            json["timings_ms"][key]
                .as_f64()
                .unwrap_or_else(|| panic!("{file}: timings_ms.{key} is a number: {json}"))
        };
        for key in ["decode", "preprocess", "inference"] {
            assert!(
                timing(key) > 0.0,
                "{file}: timings_ms.{key} = {}",
                timing(key)
            );
        }
        assert!(timing("queue") >= 0.0, "{file}: timings_ms.queue");
        let stages: f64 = ["decode", "preprocess", "inference", "queue"]
            .iter()
            .map(|k| timing(k))
            .sum();
        assert!(
            stages <= wall_ms,
            "{file}: the stages ({stages:.3} ms) cannot take longer than the request ({wall_ms:.3} ms)"
        );
    }
}

#[tokio::test]
async fn stable_lite0_agrees_with_the_reference_on_every_photo() {
    let _guard = shared_process().await;
    let app = spawn_app(&[]).await;
    check_all_photos(&app, "efficientnet-lite0", "ml/stable").await;
}

#[tokio::test]
async fn canary_lite1_agrees_with_the_reference_on_every_photo() {
    let _guard = shared_process().await;
    let app = spawn_app(&[("SERVICE_VERSION", "canary")]).await;
    let json = app.get("/v1/model").await.json();
    assert_eq!(json["name"], "efficientnet-lite1");
    assert_eq!(json["input_size"], 240);
    check_all_photos(&app, "efficientnet-lite1", "ml/canary").await;
}

#[tokio::test]
async fn exif_orientation_is_honoured() {
    let _guard = shared_process().await;
    let app = spawn_app(&[]).await;
    let rotated = app
        .classify(
            Some("image/jpeg"),
            fixture("photos/rocket-exif-orientation-6.jpg"),
            "",
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    // Upright the rocket reads as `missile` (657); ignoring the tag gives `construction crane` (517).
    assert_eq!(rotated.indices()[0], 657, "{}", rotated.text());
    let upright = app
        .classify(Some("image/jpeg"), fixture("photos/rocket.jpg"), "")
        .await;
    assert_eq!(upright.indices()[0], rotated.indices()[0]);
}

#[tokio::test]
async fn png_webp_and_multipart_uploads_work() {
    let _guard = shared_process().await;
    let app = spawn_app(&[]).await;
    // A lossless PNG of the espresso, made from the JPEG fixture.
    let pixels = image::load_from_memory(&fixture("photos/coffee.jpg"))
        .expect("decode")
        .to_rgb8();
    let mut png = Cursor::new(Vec::new());
    pixels
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode png");
    let png = png.into_inner();

    let response = app.classify(Some("image/png"), png.clone(), "").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.indices()[0], 967);

    let response = app
        .classify(
            Some("image/webp"),
            fixture("photos/coffee.webp"),
            "?top_k=3",
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.indices(), response.indices()[..3].to_vec());
    assert_eq!(response.indices().len(), 3);
    assert_eq!(response.indices()[0], 967);

    // The format comes from the bytes: a PNG labelled image/jpeg still works.
    let response = app.classify(Some("image/jpeg"), png.clone(), "").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());

    let response = app.classify_multipart("image", "image/png", &png).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.indices()[0], 967);
    let response = app
        .classify_multipart(
            "image",
            "application/octet-stream",
            &fixture("photos/chelsea.jpg"),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());

    let json = app
        .classify(
            Some("image/jpeg"),
            fixture("photos/coffee.jpg"),
            "?top_k=20",
        )
        .await
        .json();
    let probabilities: Vec<f64> = json["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| p["probability"].as_f64().expect("p"))
        .collect();
    assert_eq!(probabilities.len(), 20);
    assert!(
        probabilities.windows(2).all(|w| w[0] >= w[1]),
        "sorted: {probabilities:?}"
    );
    assert!(probabilities[0] > 0.5 && probabilities.iter().sum::<f64>() <= 1.0 + 1e-4);
}

/// A 12 MP photo is decoded at 1/8 DCT scale (its short side 3000 → 375 ≥ 256) and still classified.
#[tokio::test]
async fn twelve_megapixel_jpeg_is_classified() {
    let _guard = shared_process().await;
    let app = spawn_app(&[]).await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../benches/images/espresso-4000x3000.jpg");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let photo =
        ml::photo::decode(&bytes, 256, &ml::photo::DecodeLimits::default()).expect("decodes");
    assert_eq!(
        (
            photo.stored_width,
            photo.stored_height,
            photo.scale_denominator
        ),
        (4000, 3000, 8)
    );
    assert_eq!((photo.pixels.width(), photo.pixels.height()), (500, 375));
    let response = app.classify(Some("image/jpeg"), bytes, "").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.indices()[0], 967, "{}", response.text());
}
