//! Readiness, model description, metrics and start-up errors.

use http::StatusCode;
use mesh::Mesh;
use mesh::config::Env;

use crate::helpers::{fixture_path, shared_process, spawn_app};

#[tokio::test]
async fn ready_after_build_and_describes_the_model() {
    let _guard = shared_process().await;
    let app = spawn_app(&[]).await;
    assert!(app.mesh.readiness().is_ready());
    assert_eq!(app.get("/readyz").await.status, StatusCode::OK);
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);

    let model = app.get("/v1/model").await;
    assert_eq!(model.status, StatusCode::OK);
    let json = model.json();
    assert_eq!(json["name"], "efficientnet-lite0");
    assert_eq!(json["version"], "0.1.0");
    assert_eq!(json["input_size"], 224);
    assert_eq!(json["labels_count"], 1000);
    assert_eq!(
        json["sha256"],
        "d58cf0781939e0ed50ffdc0adcbe50fb0f8d89d6019f9b1f71af3dda7633759e"
    );
    assert_eq!(json["preprocessing"]["mean"], 127.0);
    assert_eq!(json["engine"]["conv_layout"], "nhwc-fused");
    assert_eq!(json["served_by"], serde_json::json!(["ml/stable"]));

    let response = app
        .classify(
            Some("image/jpeg"),
            crate::helpers::fixture("photos/coffee.jpg"),
            "",
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    let metrics = app.get("/metrics").await.text();
    for needle in [
        "ml_model_info{model=\"efficientnet-lite0\",version=\"0.1.0\"} 1",
        "ml_inference_duration_seconds_count 1",
        "ml_decode_duration_seconds_count 1",
        "ml_queue_depth 0",
    ] {
        assert!(
            metrics.contains(needle),
            "/metrics lacks {needle}:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn start_up_fails_clearly_on_a_bad_model_choice() {
    let _guard = shared_process().await;
    let build = |pairs: &[(&str, &str)]| {
        let config = ml::Config::from_env(&Env::from_pairs(pairs.iter().copied())).expect("config");
        async move {
            let mesh = Mesh::new(config.mesh.identity.clone());
            let outcome = ml::build(&config, &mesh).await;
            assert!(
                !mesh.readiness().is_ready(),
                "not ready after a failed start"
            );
            outcome.err().map(|e| format!("{e:#}")).unwrap_or_default()
        }
    };
    let message = build(&[("MODEL", "resnet50")]).await;
    assert!(
        message.contains("resnet50") && message.contains("efficientnet-lite0"),
        "{message}"
    );

    // Lite1's file where Lite0 is expected: the checksum catches it.
    let lite1 = fixture_path("../../model/efficientnet-lite1.onnx");
    let message = build(&[("MODEL_PATH", lite1.to_str().expect("utf-8 path"))]).await;
    assert!(message.contains("sha256"), "{message}");

    let message = build(&[("MODEL_DIR", "/nonexistent-model-dir")]).await;
    assert!(
        message.contains("/nonexistent-model-dir/manifest.json"),
        "{message}"
    );
}
