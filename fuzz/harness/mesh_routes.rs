// The body of the `mesh_routes` fuzz target, shared with the regression test
// (`mesh/istio/tests/fuzz_regressions.rs` includes this file), so both run the same code.
//
// Mesh resources YAML → `mesh_istio::load::load_str` → `RouteTable::from_resources` → `decide`
// for every host the table routes, from its gateway and from the sidecars of every tier, with and
// without `x-canary: true`; then the trails (`mesh route --follow`), the analyzer (`mesh check`)
// and the Envoy rendering (`mesh envoy`) on the same resources. This is what the local lab and the
// `mesh` tool do with `mesh/deploy/rendered/*.yaml`.

use std::path::Path;

use http::{HeaderMap, HeaderValue};
use mesh_istio::route::{Caller, RouteTable};

const PATHS: [&str; 2] = ["/", "/api/v1/analyze"];

/// Loads and routes with the resources in `data`; answers the outcome in one line (`routed <n>
/// decisions`, or `error: <message>` from the loader or the route table). Panics when an
/// invariant breaks.
pub fn exercise(data: &[u8]) -> String {
    let Ok(text) = std::str::from_utf8(data) else {
        return "rejected: not UTF-8".to_owned();
    };
    let resources = match mesh_istio::load::load_str(text, Path::new("fuzz.yaml")) {
        Ok(resources) => resources,
        Err(error) => {
            let message = error.to_string();
            assert!(message.contains("fuzz.yaml"), "{message}");
            return format!("error: {message}");
        }
    };
    let _ = mesh_istio::analyze::analyze(&resources);
    if let Ok(envoy) = mesh_istio::envoy::render(&resources, &Default::default()) {
        let _ = envoy.to_yaml("fuzz.yaml");
    }
    let table = match RouteTable::from_resources(&resources) {
        Ok(table) => table,
        Err(error) => return format!("error: {error}"),
    };
    let mut canary = HeaderMap::new();
    canary.insert("x-canary", HeaderValue::from_static("true"));
    let header_sets = [HeaderMap::new(), canary];
    let hosts: Vec<String> = table.hosts().map(str::to_owned).collect();
    let mut decisions = 0;
    for host in hosts.iter().take(8) {
        let mut callers = vec![
            Caller::sidecar("frontend"),
            Caller::sidecar("backend"),
            Caller::sidecar("ml"),
        ];
        callers.extend(table.gateway_for(host));
        for caller in &callers {
            for path in PATHS {
                for headers in &header_sets {
                    let Ok(decision) = table.decide(caller, host, path, headers) else {
                        continue;
                    };
                    decisions += 1;
                    let total: f64 = decision.destinations.iter().map(|d| d.probability).sum();
                    assert!(
                        decision.destinations.is_empty() || (total - 1.0).abs() < 1e-6,
                        "weights of {host} sum to {total}"
                    );
                    for roll in [0.0, 0.5, 0.999_999, 1.0, f64::NAN] {
                        let _ = decision.pick(roll);
                    }
                    let _ = decision.probability_of_subset("canary");
                }
            }
        }
        for headers in &header_sets {
            let _ = mesh_istio::trail::follow(&table, host, "/", headers);
        }
    }
    format!("routed {decisions} decisions")
}
