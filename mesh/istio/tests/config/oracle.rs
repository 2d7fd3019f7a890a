//! The router against Istio's own answers for the 90-10 render (fixtures/istio/90-10.istio.json,
//! recorded from tests/upstream/oracle, which builds istiod's route configuration with Istio's
//! pilot; tests/upstream/oracle.sh fails when the recording is stale and compares every overlay).

use std::path::PathBuf;

use mesh_istio::load::load_path;
use mesh_istio::oracle::{IstioReport, compare};
use mesh_istio::resources::{HttpRoute, Resource, ResourceBody};
use mesh_istio::route::RouteTable;

fn manifest(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn istio_90_10() -> IstioReport {
    let text = std::fs::read_to_string(manifest("tests/fixtures/istio/90-10.istio.json"))
        .expect("the recorded oracle answers");
    serde_json::from_str(&text).expect("an oracle report")
}

fn resources() -> Vec<Resource> {
    load_path(&manifest("../deploy/rendered/90-10.yaml")).expect("the 90-10 render loads")
}

fn table(resources: &[Resource]) -> RouteTable {
    RouteTable::from_resources(resources).expect("the render routes")
}

/// The backend VirtualService's http route `name`, to change the project's side of the comparison.
fn backend_route<'a>(resources: &'a mut [Resource], name: &str) -> &'a mut HttpRoute {
    resources
        .iter_mut()
        .filter(|r| r.qualified_name() == "backend/backend")
        .find_map(|r| match &mut r.body {
            ResourceBody::VirtualService(vs) => Some(vs),
            _ => None,
        })
        .expect("VirtualService backend/backend")
        .spec
        .http
        .iter_mut()
        .find(|route| route.name.as_deref() == Some(name))
        .expect("the named http route")
}

#[test]
fn the_router_agrees_with_istio_on_every_probe_of_90_10() {
    let report = istio_90_10();
    assert!(report.probes.len() >= 100, "{} probes", report.probes.len());
    let disagreements = compare(&table(&resources()), &report);
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn a_changed_weight_is_named_with_both_shares() {
    let mut resources = resources();
    backend_route(&mut resources, "weighted").route[0].weight = Some(80);
    let disagreements = compare(&table(&resources), &istio_90_10());
    assert!(
        disagreements.iter().any(|d| d.what.contains(
            "route `weighted`: subset `stable` of backend.backend.svc.cluster.local gets 0.8889 \
             of the requests in the project, 0.9000 in Istio"
        )),
        "{disagreements:#?}"
    );
    // Only the backend hop's weighted route differs: nothing about another host is named.
    assert!(
        disagreements
            .iter()
            .all(|d| d.what.contains("of backend.backend.svc.cluster.local")),
        "{disagreements:#?}"
    );
}

#[test]
fn a_changed_timeout_and_retry_policy_are_named() {
    let mut resources = resources();
    backend_route(&mut resources, "canary-by-header").timeout = Some("9s".into());
    let named = compare(&table(&resources), &istio_90_10());
    assert!(
        named.iter().any(|d| d
            .what
            .contains("route `canary-by-header`: timeout 9 s in the project, 8 s in Istio")),
        "{named:#?}"
    );

    let mut resources = self::resources();
    backend_route(&mut resources, "weighted")
        .retries
        .as_mut()
        .expect("retries")
        .attempts = 3;
    let named = compare(&table(&resources), &istio_90_10());
    assert!(
        named.iter().any(|d| d.what.contains(
            "route `weighted`: retries 3 × 8 s on connect-failure,refused-stream in the project, 2 × 8 s"
        )),
        "{named:#?}"
    );
}
