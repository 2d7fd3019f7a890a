//! Canary routing at every hop, from the mesh's own VirtualServices.

use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue};
use lab::LabOptions;
use mesh_istio::route::RouteTable;
use mesh_istio::trail::subset_share_per_hop;

use crate::support::{Analysis, spawn_lab};

/// What `mesh route` says: each hop's probability of the canary for these headers, evaluated from
/// the same files the lab routes by.
fn configured_canary_share(headers: &HeaderMap) -> Vec<(&'static str, f64)> {
    let config = LabOptions::default_mesh_config();
    let resources =
        mesh_istio::load::load_input(&config.display().to_string()).expect("mesh config");
    let table = RouteTable::from_resources(&resources).expect("route table");
    subset_share_per_hop(&table, headers, "canary").expect("every hop routes")
}

const TIERS: [&str; 3] = ["frontend", "backend", "ml"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_through_the_frontend_names_the_item() {
    let app = spawn_lab().await;
    let response = app.post_page(app.form()).await;
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
    let mut canary = HeaderMap::new();
    canary.insert("x-canary", HeaderValue::from_static("true"));
    let expected = configured_canary_share(&canary);
    assert_eq!(
        expected,
        [("frontend", 1.0), ("backend", 1.0), ("ml", 1.0)],
        "mesh route agrees"
    );
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
    let expected = configured_canary_share(&HeaderMap::new());
    for (hop, tier) in TIERS.iter().enumerate() {
        // `mesh route` and DESIGN.md agree on the weight; the lab's traffic must agree with both.
        assert_eq!(
            expected[hop],
            (*tier, 0.10),
            "mesh route's canary share at {tier}"
        );
        let p = expected[hop].1;
        // Binomial bound: 4 standard deviations of the canary share for this many requests.
        let bound = 4.0 * (p * (1.0 - p) / REQUESTS as f64).sqrt();
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
