use std::path::Path;

use serde_json::Value;

use super::*;
use crate::load::{load_path, load_str};

fn render_file(path: &str) -> EnvoyConfig {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let resources = load_path(&root.join(path)).expect("load");
    render(&resources, &EnvoyOptions::default()).expect("render")
}

fn listener<'a>(config: &'a EnvoyConfig, name: &str) -> &'a Value {
    config.bootstrap["static_resources"]["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == name))
        .unwrap_or_else(|| panic!("no listener {name}"))
}

fn routes(listener: &Value) -> &Vec<Value> {
    listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]
        ["routes"]
        .as_array()
        .expect("routes")
}

#[test]
fn the_90_10_step_routes_by_header_then_by_weight_at_every_hop() {
    let config = render_file("mesh/deploy/rendered/90-10.yaml");
    let listeners = config.bootstrap["static_resources"]["listeners"]
        .as_array()
        .expect("listeners");
    let names: Vec<&str> = listeners
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, ["edge", "backend", "frontend", "ml"]);
    assert_eq!(
        listener(&config, "ml")["address"]["socket_address"]["port_value"],
        5001
    );
    for name in ["edge", "backend", "ml"] {
        let routes = routes(listener(&config, name));
        assert_eq!(routes.len(), 2, "{name}");
        let by_header = &routes[0];
        assert_eq!(by_header["match"]["headers"][0]["name"], "x-canary");
        assert_eq!(
            by_header["match"]["headers"][0]["string_match"]["exact"],
            "true"
        );
        assert!(
            by_header["route"]["cluster"]
                .as_str()
                .expect("cluster")
                .ends_with("-canary")
        );
        let weighted = &routes[1]["route"]["weighted_clusters"]["clusters"];
        assert_eq!(weighted[0]["weight"], 90, "{name}");
        assert_eq!(weighted[1]["weight"], 10, "{name}");
        assert_eq!(routes[1]["route"]["retry_policy"]["num_retries"], 2);
    }
    let ml = routes(listener(&config, "ml"));
    assert_eq!(ml[1]["route"]["timeout"], "5s");
    assert_eq!(ml[1]["route"]["retry_policy"]["per_try_timeout"], "5s");
}

#[test]
fn clusters_carry_the_destination_rule_policy() {
    let config = render_file("mesh/deploy/rendered/90-10.yaml");
    let clusters = config.bootstrap["static_resources"]["clusters"]
        .as_array()
        .expect("clusters");
    let ml = clusters
        .iter()
        .find(|c| c["name"] == "ml-canary")
        .expect("ml-canary");
    assert_eq!(
        ml["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
            ["address"],
        "ml-canary"
    );
    assert_eq!(ml["connect_timeout"], "1s");
    assert_eq!(ml["lb_policy"], "LEAST_REQUEST");
    assert_eq!(
        ml["circuit_breakers"]["thresholds"][0]["max_connections"],
        32
    );
    assert_eq!(
        ml["circuit_breakers"]["thresholds"][0]["max_pending_requests"],
        16
    );
    assert_eq!(ml["outlier_detection"]["consecutive_5xx"], 5);
    assert_eq!(ml["outlier_detection"]["base_ejection_time"], "30s");
    assert!(
        config
            .not_rendered
            .iter()
            .any(|l| l.contains("tls.mode ISTIO_MUTUAL")),
        "{:?}",
        config.not_rendered
    );
}

#[test]
fn a_weight_change_changes_the_rendering() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("mesh/deploy/rendered/90-10.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    let before = render(
        &load_str(&text, &path).expect("load"),
        &EnvoyOptions::default(),
    )
    .expect("render")
    .to_yaml("x")
    .expect("yaml");
    let changed =
        text.replacen("weight: 90", "weight: 80", 1)
            .replacen("weight: 10\n", "weight: 20\n", 1);
    let after = render(
        &load_str(&changed, &path).expect("load"),
        &EnvoyOptions::default(),
    )
    .expect("render")
    .to_yaml("x")
    .expect("yaml");
    assert_ne!(before, after);
}

#[test]
fn faults_become_the_fault_filter_per_route() {
    let config = render_file("mesh/deploy/rendered/fault-abort-backend.yaml");
    let backend = routes(listener(&config, "backend"));
    let abort = backend
        .iter()
        .find_map(|r| r["typed_per_filter_config"]["envoy.filters.http.fault"]["abort"].as_object())
        .expect("an abort fault on the backend hop");
    assert!(abort["http_status"].as_u64().is_some_and(|s| s >= 500));
}

#[test]
fn an_unsupported_match_is_a_clear_error() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ml, namespace: ml}
spec:
  hosts: [ml]
  http:
  - match: [{sourceLabels: {app: backend}}]
    route: [{destination: {host: ml, port: {number: 5001}}}]
---
apiVersion: v1
kind: Service
metadata: {name: ml, namespace: ml}
spec:
  ports: [{port: 5001}]
"#;
    let resources = load_str(yaml, Path::new("t.yaml")).expect("load");
    let error = render(&resources, &EnvoyOptions::default()).expect_err("sourceLabels");
    let message = error.to_string();
    assert!(message.contains("VirtualService ml/ml"), "{message}");
    assert!(message.contains("sourceLabels"), "{message}");
}

#[test]
fn envoy_spans_go_to_the_otlp_endpoint_when_asked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let resources = load_path(&root.join("mesh/deploy/rendered/90-10.yaml")).expect("load");
    let options = EnvoyOptions {
        otlp: Some(("jaeger".to_owned(), 4318)),
        ..EnvoyOptions::default()
    };
    let config = render(&resources, &options).expect("render");
    let hcm = &listener(&config, "ml")["filter_chains"][0]["filters"][0]["typed_config"];
    let otel = &hcm["tracing"]["provider"]["typed_config"];
    assert_eq!(
        otel["http_service"]["http_uri"]["uri"],
        "http://jaeger:4318/v1/traces"
    );
    assert_eq!(otel["service_name"], "envoy");
    let untraced = render_file("mesh/deploy/rendered/90-10.yaml");
    assert!(
        listener(&untraced, "ml")["filter_chains"][0]["filters"][0]["typed_config"]["tracing"]
            .is_null()
    );
}
