//! `GET /api/v1/categories` and the probes the mesh adds.

use axum::http::StatusCode;
use serde_json::Value;

use crate::helpers::{MlDouble, TestApp};

#[tokio::test]
async fn categories_list_the_whole_knowledge_base() {
    let app = TestApp::spawn(&MlDouble::unreachable_url().await, &[]).await;
    let response = app
        .http
        .get(app.url("/api/v1/categories"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: Value = response.json().await.expect("JSON");
    let categories = body["categories"].as_array().expect("categories array");
    assert!(categories.len() >= 20, "{} categories", categories.len());
    let classes: usize = categories
        .iter()
        .map(|c| c["classes"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(body["class_count"].as_u64(), Some(classes as u64));
    assert!(classes >= 150);
    let bottles = categories
        .iter()
        .find(|c| c["id"] == "drink-bottles")
        .expect("drink bottles listed");
    assert_eq!(bottles["recyclable"], true);
    assert!(
        bottles["classes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|x| x["label"] == "beer bottle"))
    );
    let groups = body["not_products"].as_array().expect("not_products array");
    let grouped: usize = groups
        .iter()
        .map(|g| g["classes"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(classes + grouped, 1000, "every class is listed once");
    assert!(
        groups
            .iter()
            .any(|g| g["id"] == "animals" && g["reason"] == "an animal")
    );
    assert_eq!(body["served_by"][0], "backend/stable");
}

#[tokio::test]
async fn the_backend_is_ready_without_ml() {
    // Readiness must not depend on ml: a slow ml would otherwise take every backend out of rotation.
    let app = TestApp::spawn(&MlDouble::unreachable_url().await, &[]).await;
    for probe in ["/healthz", "/readyz"] {
        let response = app.http.get(app.url(probe)).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK, "{probe}");
    }
    let refused = app
        .upload("image", "image/png", crate::helpers::PHOTO)
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent");
    let text = metrics.text().await.expect("text");
    assert!(
        text.contains(r#"backend_ml_calls_total{outcome="unreachable"} 1"#),
        "{text}"
    );
}
