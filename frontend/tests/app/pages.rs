//! The pages that need no backend: the upload form, the stylesheet, not-found.

use axum::http::StatusCode;

use crate::harness::{read, spawn_app, unreachable_backend_url};

#[tokio::test]
async fn the_upload_page_is_an_accessible_multipart_form() {
    let app = spawn_app(&unreachable_backend_url().await, &[]).await;
    let (status, headers, html) = read(app.get("/").await).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains(r#"<html lang="en">"#), "{html}");
    for attribute in [
        r#"method="post""#,
        r#"action="/analyze""#,
        r#"enctype="multipart/form-data""#,
        r#"<label for="image">"#,
        r#"type="file""#,
        r#"id="image""#,
        r#"name="image""#,
        r#"accept="image/jpeg,image/png,image/webp""#,
        r#"<button type="submit">"#,
        r#"href="/static/app.css""#,
    ] {
        assert!(html.contains(attribute), "missing {attribute} in {html}");
    }
    assert_eq!(html.matches("<h1").count(), 1, "one top heading: {html}");
    assert!(html.contains("frontend/stable"), "names the build: {html}");
    assert!(html.contains("build-stable"), "{html}");
    assert!(!html.contains("<script"), "no JavaScript needed: {html}");
    assert!(
        !html.contains("style="),
        "no inline style (the CSP allows none): {html}"
    );
    // A strict policy: the one stylesheet from here, the form posts here, no framing.
    let csp = headers["content-security-policy"].to_str().expect("text");
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn the_canary_build_looks_different() {
    let app = spawn_app(
        &unreachable_backend_url().await,
        &[("SERVICE_VERSION", "canary")],
    )
    .await;
    let (_, headers, html) = read(app.get("/").await).await;
    assert_eq!(headers["x-served-by"], "frontend/canary");
    assert!(html.contains(r#"<body class="build-canary">"#), "{html}");
    assert!(html.contains("canary build"), "{html}");
    assert!(html.contains("frontend/canary"), "{html}");
}

#[tokio::test]
async fn the_form_states_the_configured_size_limit() {
    let app = spawn_app(
        &unreachable_backend_url().await,
        &[("MAX_UPLOAD_BYTES", "2097152")],
    )
    .await;
    let (_, _, html) = read(app.get("/").await).await;
    assert!(html.contains("up to 2 MiB"), "{html}");
}

#[tokio::test]
async fn the_stylesheet_is_served_with_a_cache_header() {
    let app = spawn_app(&unreachable_backend_url().await, &[]).await;
    let (status, headers, css) = read(app.get("/static/app.css").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/css; charset=utf-8");
    assert!(
        headers["cache-control"]
            .to_str()
            .is_ok_and(|v| v.contains("max-age=")),
        "{headers:?}"
    );
    assert!(css.contains("body.build-canary"), "{css}");
    assert!(css.contains(":focus-visible"), "{css}");
}

#[tokio::test]
async fn unknown_paths_get_a_friendly_404_page() {
    let app = spawn_app(&unreachable_backend_url().await, &[]).await;
    let (status, _, html) = read(app.get("/no/such/page").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Page not found"), "{html}");
    assert!(html.contains(r#"href="/""#), "{html}");
}

#[tokio::test]
async fn reloading_the_result_url_goes_back_to_the_form() {
    let app = spawn_app(&unreachable_backend_url().await, &[]).await;
    let response = app.get("/analyze").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let app = spawn_app(&unreachable_backend_url().await, &[]).await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    app.post_photo(&[]).await;
    let (status, _, metrics) = read(app.get("/metrics").await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains(r#"frontend_analyses_total{outcome="backend_unreachable"} 1"#),
        "{metrics}"
    );
}
