//! Canary routing at every hop, from the mesh's own VirtualServices.

use futures::StreamExt as _;

use crate::support::{Analysis, spawn_lab};

const TIERS: [&str; 3] = ["frontend", "backend", "ml"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_through_the_frontend_names_the_item() {
    let app = spawn_lab().await;
    let response = app
        .http
        .post(format!("{}/analyze", app.lab.url()))
        .multipart(app.form())
        .send()
        .await
        .expect("the edge answers");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().is_ok_and(|v| v.starts_with("text/html")))
    );
    let page = response.text().await.expect("page");
    assert!(page.to_lowercase().contains("espresso"), "{page}");
    assert!(page.contains("frontend/"), "the page shows the trail");
    app.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn x_canary_takes_the_canary_at_every_hop() {
    let app = spawn_lab().await;
    for _ in 0..12 {
        let analysis = app.analyze_json(true).await;
        assert_eq!(
            analysis.served_by,
            ["frontend/canary", "backend/canary", "ml/canary"]
        );
        assert_eq!(analysis.item.label, "espresso");
    }
    app.lab.shutdown().await;
}

/// Without the header each hop sends 10 % to the canary (DESIGN.md); each hop rolls on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_header_each_hop_splits_ninety_ten() {
    const REQUESTS: usize = 300;
    let app = spawn_lab().await;
    let trails: Vec<Analysis> = futures::stream::iter(0..REQUESTS)
        .map(|_| app.analyze_json(false))
        .buffer_unordered(4)
        .collect()
        .await;
    // Binomial bound: 4 standard deviations of the canary share for this many requests.
    let p = 0.10_f64;
    let bound = 4.0 * (p * (1.0 - p) / REQUESTS as f64).sqrt();
    for (hop, tier) in TIERS.iter().enumerate() {
        let canary = trails
            .iter()
            .filter(|t| t.served_by[hop] == format!("{tier}/canary"))
            .count();
        let stable = trails
            .iter()
            .filter(|t| t.served_by[hop] == format!("{tier}/stable"))
            .count();
        assert_eq!(
            canary + stable,
            REQUESTS,
            "{tier}: every trail names a build"
        );
        let share = canary as f64 / REQUESTS as f64;
        assert!(
            (share - p).abs() <= bound,
            "{tier}: canary share {share:.3} is not within {bound:.3} of {p}"
        );
    }
    app.lab.shutdown().await;
}
