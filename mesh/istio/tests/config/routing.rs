//! The routing contract the lab relies on, on the good fixture.

use http::{HeaderMap, HeaderValue};
use mesh_istio::route::{Caller, RouteError, RouteTable};
use mesh_istio::trail::{TIER_CHAIN, follow, subset_share_per_hop};

use crate::fixtures::good;

fn table() -> RouteTable {
    RouteTable::from_resources(&good()).expect("the good fixture routes")
}

fn canary_header() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("X-Canary", HeaderValue::from_static("true"));
    h
}

#[test]
fn edge_and_mesh_hosts_route_to_the_frontend() {
    let t = table();
    let edge = t
        .gateway_for("frontend.local")
        .expect("a Gateway accepts frontend.local");
    assert_eq!(
        edge,
        Caller::Gateway("frontend/frontend-gateway".to_owned())
    );
    let in_frontend = Caller::sidecar("frontend");
    let in_backend = Caller::sidecar("backend");
    for (caller, host) in [
        (&edge, "frontend.local"),
        (&in_frontend, "frontend"),
        (&in_backend, "frontend.frontend"),
        (&in_backend, "frontend.frontend.svc.cluster.local"),
    ] {
        let d = t
            .decide(caller, host, "/analyze", &HeaderMap::new())
            .expect(host);
        assert_eq!(d.route_name.as_deref(), Some("weighted"));
        assert_eq!(d.probability_of_subset("stable"), 0.9);
        assert_eq!(
            d.destinations[0].destination.host,
            "frontend.frontend.svc.cluster.local"
        );
        assert_eq!(d.destinations[0].destination.port, Some(3000));
    }
    // A short host resolves in the caller's namespace: from backend, `frontend` is
    // frontend.backend.svc.cluster.local, which nothing routes.
    let err = t
        .decide(&in_backend, "frontend", "/analyze", &HeaderMap::new())
        .expect_err("short host from another namespace");
    assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
}

#[test]
fn subsets_map_to_version_labels() {
    let t = table();
    for tier in TIER_CHAIN {
        for version in ["stable", "canary"] {
            let labels = t.subset_labels(tier.host, version).expect("subset");
            assert_eq!(labels.get("version").map(String::as_str), Some(version));
        }
    }
}

#[test]
fn header_pins_every_trail_to_canary() {
    let trails = follow(&table(), "frontend.local", "/analyze", &canary_header()).expect("follows");
    assert_eq!(trails.len(), 1);
    assert_eq!(
        trails[0].label(),
        "frontend/canary → backend/canary → ml/canary"
    );
    assert_eq!(trails[0].probability, 1.0);
}

#[test]
fn weighted_trails_multiply_hop_probabilities() {
    let trails =
        follow(&table(), "frontend.local", "/analyze", &HeaderMap::new()).expect("follows");
    assert_eq!(trails.len(), 8);
    assert_eq!(
        trails[0].label(),
        "frontend/stable → backend/stable → ml/stable"
    );
    assert!((trails[0].probability - 0.729).abs() < 1e-12);
    let total: f64 = trails.iter().map(|t| t.probability).sum();
    assert!((total - 1.0).abs() < 1e-12);
    let odd = trails
        .iter()
        .find(|t| t.label() == "frontend/canary → backend/stable → ml/canary")
        .expect("trail exists");
    assert!((odd.probability - 0.009).abs() < 1e-12);
}

#[test]
fn per_hop_canary_shares() {
    let shares = subset_share_per_hop(&table(), &HeaderMap::new(), "canary").expect("shares");
    assert_eq!(
        shares,
        vec![("frontend", 0.1), ("backend", 0.1), ("ml", 0.1)]
    );
}
