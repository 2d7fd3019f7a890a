//! The analyzer and the router on the shipped renders (mesh/deploy/rendered/<overlay>.yaml, kept
//! equal to `kubectl kustomize` by tests/mesh/check.sh), not only on the hand-kept fixtures.

use std::path::PathBuf;

use http::{HeaderMap, HeaderValue};
use mesh_istio::analyze::{Severity, analyze};
use mesh_istio::load::load_path;
use mesh_istio::route::{Caller, RouteTable};
use mesh_istio::trail::{EDGE_HOST, TIER_CHAIN, follow, subset_share_per_hop};

/// Every overlay with its canary share per hop for unpinned traffic, and the subset
/// `x-canary: true` gets.
const OVERLAYS: &[(&str, f64, &str)] = &[
    ("90-10", 0.1, "canary"),
    ("50-50", 0.5, "canary"),
    ("header-only", 0.0, "canary"),
    ("promote", 1.0, "canary"),
    ("rollback", 0.0, "stable"),
    ("fault-delay-ml", 0.1, "canary"),
    ("fault-abort-backend", 0.1, "canary"),
];

fn rendered(overlay: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/rendered")
        .join(format!("{overlay}.yaml"))
}

fn table(overlay: &str) -> RouteTable {
    let resources = load_path(&rendered(overlay)).expect("the render loads");
    RouteTable::from_resources(&resources).expect("the render routes")
}

#[test]
fn every_render_is_listed_here() {
    let dir = rendered("x").parent().expect("dir").to_path_buf();
    for entry in std::fs::read_dir(&dir).expect("mesh/deploy/rendered") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy();
        let overlay = name.trim_end_matches(".yaml");
        assert!(
            OVERLAYS.iter().any(|(o, _, _)| *o == overlay),
            "{name} has no expectation in tests/config/shipped.rs"
        );
    }
}

#[test]
fn renders_have_no_errors_or_warnings() {
    for (overlay, _, _) in OVERLAYS {
        let resources = load_path(&rendered(overlay)).expect("loads");
        let problems: Vec<String> = analyze(&resources)
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .map(ToString::to_string)
            .collect();
        assert!(problems.is_empty(), "{overlay}:\n{}", problems.join("\n"));
    }
}

#[test]
fn renders_route_the_documented_canary_step() {
    let mut pinned = HeaderMap::new();
    pinned.insert("x-canary", HeaderValue::from_static("true"));
    for &(overlay, canary, header_subset) in OVERLAYS {
        let t = table(overlay);
        assert_eq!(
            t.gateway_for(EDGE_HOST),
            Some(Caller::Gateway("frontend/frontend-gateway".to_owned())),
            "{overlay}"
        );
        let shares = subset_share_per_hop(&t, &HeaderMap::new(), "canary").expect(overlay);
        let want: Vec<(&str, f64)> = TIER_CHAIN.iter().map(|t| (t.name, canary)).collect();
        assert_eq!(shares, want, "{overlay}");
        let pinned_shares = subset_share_per_hop(&t, &pinned, header_subset).expect(overlay);
        assert!(
            pinned_shares.iter().all(|(_, p)| *p == 1.0),
            "{overlay}: {pinned_shares:?}"
        );
        let total: f64 = follow(&t, EDGE_HOST, "/analyze", &HeaderMap::new())
            .expect(overlay)
            .iter()
            .map(|trail| trail.probability)
            .sum();
        assert!((total - 1.0).abs() < 1e-12, "{overlay}: {total}");
    }
}

#[test]
fn fault_overlays_carry_their_fault_to_the_hop_and_only_there() {
    let none = HeaderMap::new();
    let ml = |t: &RouteTable| {
        t.decide(&Caller::sidecar("backend"), "ml.ml", "/v1/classify", &none)
            .expect("ml routes")
    };
    let backend = |t: &RouteTable| {
        t.decide(
            &Caller::sidecar("frontend"),
            "backend.backend",
            "/api/v1/analyze",
            &none,
        )
        .expect("backend routes")
    };
    let delayed = table("fault-delay-ml");
    let delay = ml(&delayed)
        .fault
        .and_then(|f| f.delay)
        .expect("a delay on ml");
    assert_eq!(delay.fixed_delay, std::time::Duration::from_secs(6));
    assert_eq!(delay.percentage, 100.0);
    assert_eq!(backend(&delayed).fault, None);
    let aborted = table("fault-abort-backend");
    let abort = backend(&aborted)
        .fault
        .and_then(|f| f.abort)
        .expect("an abort on backend");
    assert_eq!((abort.http_status, abort.percentage), (503, 100.0));
    assert_eq!(ml(&aborted).fault, None);
    assert_eq!(ml(&table("90-10")).fault, None);
}

#[test]
fn renders_report_what_the_lab_does_not_execute() {
    let t = table("90-10");
    let fields: Vec<String> = t.unexecuted().iter().map(ToString::to_string).collect();
    for tier in ["frontend", "backend", "ml"] {
        for field in ["tls", "connectionPool", "outlierDetection", "loadBalancer"] {
            let want = format!("DestinationRule {tier}/{tier}: spec.trafficPolicy.{field}");
            assert!(fields.contains(&want), "{want} missing from {fields:?}");
        }
    }
}
