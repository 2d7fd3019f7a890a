//! RouteTable on small hand-written configs; the shipped renders are in tests/config/shipped.rs.
use super::*;
use crate::load::load_str;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::path::Path;

const TIER: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend, namespace: backend}
spec:
  hosts: [backend.backend.svc.cluster.local]
  http:
  - name: canary-by-header
    match:
    - headers:
        X-Canary: {exact: "true"}
    route:
    - destination: {host: backend.backend.svc.cluster.local, subset: canary, port: {number: 8080}}
      weight: 100
    timeout: 1.5s
    retries: {attempts: 2, perTryTimeout: 500ms, retryOn: "5xx,reset"}
  - name: weighted
    route:
    - destination: {host: backend.backend.svc.cluster.local, subset: stable}
      weight: 90
    - destination: {host: backend.backend.svc.cluster.local, subset: canary}
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend, namespace: backend}
spec:
  host: backend
  subsets:
  - {name: stable, labels: {version: stable}}
  - {name: canary, labels: {version: canary}}
"#;

fn table(yaml: &str) -> RouteTable {
    let resources = load_str(yaml, Path::new("t.yaml")).expect("fixture loads");
    RouteTable::from_resources(&resources).expect("table builds")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    map
}

/// One VirtualService for host `h` in namespace `ns` with the given http routes (YAML list).
fn vs(http: &str) -> RouteTable {
    table(&format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: ns}}\n\
             spec:\n  hosts: [h]\n  http:\n{http}"
    ))
}

fn subset_of(t: &RouteTable, path: &str, h: &HeaderMap) -> Option<String> {
    let d = t
        .decide(&Caller::sidecar("ns"), "h", path, h)
        .expect("routes");
    assert_eq!(d.destinations.len(), 1, "{d:?}");
    d.destinations[0].destination.subset.clone()
}

#[test]
fn header_route_wins_and_header_names_are_case_insensitive() {
    let t = table(TIER);
    for name in ["x-canary", "X-Canary", "X-CANARY"] {
        let d = t
            .decide(
                &Caller::sidecar("backend"),
                "backend.backend.svc.cluster.local",
                "/api/v1/analyze",
                &headers(&[(name, "true")]),
            )
            .expect("routes");
        assert_eq!(d.route_name.as_deref(), Some("canary-by-header"));
        assert_eq!(d.destinations.len(), 1);
        assert_eq!(d.destinations[0].probability, 1.0);
        assert_eq!(d.destinations[0].destination.port, Some(8080));
        assert_eq!(d.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(
            d.retries,
            Some(Retries {
                attempts: 2,
                per_try_timeout: Some(Duration::from_millis(500)),
                retry_on: Some("5xx,reset".to_owned())
            })
        );
    }
}

#[test]
fn header_values_are_case_sensitive_and_fall_through_to_weights() {
    let t = table(TIER);
    let d = t
        .decide(
            &Caller::sidecar("backend"),
            "backend",
            "/",
            &headers(&[("x-canary", "TRUE")]),
        )
        .expect("routes");
    assert_eq!(d.route_name.as_deref(), Some("weighted"));
    assert_eq!(d.probability_of_subset("stable"), 0.9);
    assert_eq!(d.probability_of_subset("canary"), 0.1);
    assert_eq!(d.timeout, None);
    assert_eq!(d.retries, None);
}

#[test]
fn accepts_short_and_partial_host_forms() {
    let t = table(TIER);
    for host in [
        "backend",
        "backend.backend",
        "backend.backend.svc",
        "backend.backend.svc.cluster.local",
        "BACKEND.backend.svc.cluster.local:8080",
    ] {
        let d = t
            .decide(&Caller::sidecar("backend"), host, "/", &HeaderMap::new())
            .expect(host);
        assert_eq!(d.route_name.as_deref(), Some("weighted"), "{host}");
    }
    let err = t
        .decide(
            &Caller::sidecar("frontend"),
            "backend",
            "/",
            &HeaderMap::new(),
        )
        .expect_err("`backend` from namespace frontend is backend.frontend");
    assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
    let err = t
        .decide(
            &Caller::sidecar("backend"),
            "frontend",
            "/",
            &HeaderMap::new(),
        )
        .expect_err("unknown");
    assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
    let err = t
        .decide(
            &Caller::sidecar("backend"),
            "backend.other",
            "/",
            &HeaderMap::new(),
        )
        .expect_err("other ns");
    assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
}

#[test]
fn short_hosts_resolve_in_the_callers_namespace_not_globally() {
    let t = table(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: one}\n\
             spec: {hosts: [api], http: [{name: one, route: [{destination: {host: api}}]}]}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: two}\n\
             spec: {hosts: [api], http: [{name: two, route: [{destination: {host: api}}]}]}\n",
    );
    let none = HeaderMap::new();
    for (caller, host, route, fqdn) in [
        ("one", "api", "one", "api.one.svc.cluster.local"),
        ("two", "api", "two", "api.two.svc.cluster.local"),
        ("one", "api.two", "two", "api.two.svc.cluster.local"),
    ] {
        let d = t
            .decide(&Caller::sidecar(caller), host, "/", &none)
            .expect(host);
        assert_eq!(d.route_name.as_deref(), Some(route), "{caller} → {host}");
        // The destination's short host resolves in its VirtualService's namespace.
        assert_eq!(d.destinations[0].destination.fqdn, fqdn);
    }
    let err = t
        .decide(&Caller::sidecar("three"), "api", "/", &none)
        .expect_err("no api in namespace three");
    assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
}

#[test]
fn gateways_bind_a_virtual_service_to_the_edge_or_the_mesh() {
    let t = table(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: web}\n\
             spec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*/shop.example.com']}]}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: at-edge, namespace: web}\n\
             spec: {hosts: [shop.example.com, web], gateways: [edge], http: [{name: edge, route: [{destination: {host: web}}]}]}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: inside, namespace: web}\n\
             spec: {hosts: [web], http: [{name: inside, route: [{destination: {host: web}}]}]}\n",
    );
    let none = HeaderMap::new();
    let edge = t.gateway_for("shop.example.com:80").expect("gateway");
    assert_eq!(edge, Caller::Gateway("web/edge".to_owned()));
    let d = t
        .decide(&edge, "shop.example.com", "/", &none)
        .expect("edge");
    assert_eq!(d.route_name.as_deref(), Some("edge"));
    // The gateway-bound VirtualService does not apply on sidecars, the unbound one does.
    let d = t
        .decide(&Caller::sidecar("web"), "web", "/", &none)
        .expect("mesh");
    assert_eq!(d.route_name.as_deref(), Some("inside"));
    let err = t
        .decide(&Caller::sidecar("web"), "shop.example.com", "/", &none)
        .expect_err("edge host from a sidecar");
    assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
    assert!(t.gateway_for("other.example.com").is_none());
}

#[test]
fn fault_injection_and_retries_are_part_of_the_decision() {
    let t = vs(r#"
  - route: [{destination: {host: h}}]
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
    fault:
      delay: {fixedDelay: 1.5s, percentage: {value: 25}}
      abort: {httpStatus: 503, percentage: {value: 10.5}}
"#);
    let d = t
        .decide(&Caller::sidecar("ns"), "h", "/", &HeaderMap::new())
        .expect("routes");
    assert_eq!(
        d.fault,
        Some(Fault {
            delay: Some(Delay {
                fixed_delay: Duration::from_millis(1500),
                percentage: 25.0
            }),
            abort: Some(Abort {
                http_status: 503,
                percentage: 10.5
            }),
        })
    );
    assert_eq!(d.retries.map(|r| r.attempts), Some(3));
    let err = build_err(
        "  - route: [{destination: {host: h}}]\n    fault: {abort: {httpStatus: 503, percentage: {value: 150}}}\n",
    );
    assert!(
        err.to_string().contains("fault.abort.percentage.value"),
        "{err}"
    );
    let err = build_err(
        "  - route: [{destination: {host: h}}]\n    fault: {abort: {grpcStatus: UNAVAILABLE}}\n",
    );
    assert!(err.to_string().contains("fault.abort.httpStatus"), "{err}");
}

#[test]
fn unexecuted_fields_are_data_on_the_table() {
    let t = vs("  - route: [{destination: {host: h}}]\n    mirror: {host: shadow}\n");
    let listed: Vec<String> = t.unexecuted().iter().map(ToString::to_string).collect();
    assert_eq!(listed, ["VirtualService ns/v: spec.http[0].mirror"]);
}

#[test]
fn literal_and_wildcard_hosts() {
    let t = table(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: edge, namespace: frontend}\n\
             spec: {hosts: [frontend.local], http: [{name: edge, route: [{destination: {host: frontend}}]}]}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: wild, namespace: frontend}\n\
             spec: {hosts: ['*.example.com'], http: [{name: wild, route: [{destination: {host: frontend}}]}]}\n",
    );
    let d = t
        .decide(
            &Caller::sidecar("frontend"),
            "frontend.local",
            "/",
            &HeaderMap::new(),
        )
        .expect("literal host");
    assert_eq!(d.route_name.as_deref(), Some("edge"));
    assert_eq!(d.destinations[0].destination.host, "frontend");
    let d = t
        .decide(
            &Caller::sidecar("frontend"),
            "shop.example.com",
            "/",
            &HeaderMap::new(),
        )
        .expect("wildcard");
    assert_eq!(d.route_name.as_deref(), Some("wild"));
    assert!(
        t.decide(
            &Caller::sidecar("frontend"),
            "example.com.evil",
            "/",
            &HeaderMap::new()
        )
        .is_err()
    );
}

#[test]
fn uri_prefix_exact_and_regex() {
    let t = vs(r#"
  - match: [{uri: {exact: /exact}}]
    route: [{destination: {host: h, subset: exact}}]
  - match: [{uri: {regex: "/v[0-9]+/items"}}]
    route: [{destination: {host: h, subset: regex}}]
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: h, subset: prefix}}]
  - route: [{destination: {host: h, subset: rest}}]
"#);
    let none = HeaderMap::new();
    assert_eq!(subset_of(&t, "/exact", &none).as_deref(), Some("exact"));
    assert_eq!(subset_of(&t, "/exact?q=1", &none).as_deref(), Some("exact"));
    assert_eq!(subset_of(&t, "/exactly", &none).as_deref(), Some("rest"));
    assert_eq!(subset_of(&t, "/v12/items", &none).as_deref(), Some("regex"));
    // Regexes match the whole path, not a part of it.
    assert_eq!(
        subset_of(&t, "/x/v12/items", &none).as_deref(),
        Some("rest")
    );
    assert_eq!(
        subset_of(&t, "/v12/items/7", &none).as_deref(),
        Some("rest")
    );
    assert_eq!(
        subset_of(&t, "/api/v1/analyze", &none).as_deref(),
        Some("prefix")
    );
    assert_eq!(subset_of(&t, "/API", &none).as_deref(), Some("rest"));
}

#[test]
fn ignore_uri_case() {
    let t = vs(r#"
  - match: [{uri: {prefix: /api}, ignoreUriCase: true}]
    route: [{destination: {host: h, subset: api}}]
  - route: [{destination: {host: h, subset: rest}}]
"#);
    assert_eq!(
        subset_of(&t, "/API/x", &HeaderMap::new()).as_deref(),
        Some("api")
    );
}

#[test]
fn match_blocks_are_ored_and_conditions_anded() {
    let t = vs(r#"
  - match:
    - uri: {prefix: /a}
      headers: {x-one: {exact: "1"}}
    - headers: {x-two: {prefix: "tw"}}
    route: [{destination: {host: h, subset: hit}}]
  - route: [{destination: {host: h, subset: miss}}]
"#);
    // Block 0 needs both uri and header.
    assert_eq!(
        subset_of(&t, "/a", &headers(&[("x-one", "1")])).as_deref(),
        Some("hit")
    );
    assert_eq!(
        subset_of(&t, "/b", &headers(&[("x-one", "1")])).as_deref(),
        Some("miss")
    );
    assert_eq!(
        subset_of(&t, "/a", &HeaderMap::new()).as_deref(),
        Some("miss")
    );
    // Block 1 alone is enough.
    assert_eq!(
        subset_of(&t, "/b", &headers(&[("x-two", "two")])).as_deref(),
        Some("hit")
    );
}

#[test]
fn header_regex_presence_and_without_headers() {
    let t = vs(r#"
  - match: [{headers: {x-user: {regex: "tester-[0-9]+"}}}]
    route: [{destination: {host: h, subset: regex}}]
  - match: [{headers: {x-debug: {}}}]
    route: [{destination: {host: h, subset: present}}]
  - match: [{withoutHeaders: {x-canary: {exact: "true"}}}]
    route: [{destination: {host: h, subset: not-canary}}]
  - route: [{destination: {host: h, subset: rest}}]
"#);
    assert_eq!(
        subset_of(&t, "/", &headers(&[("x-user", "tester-42")])).as_deref(),
        Some("regex")
    );
    assert_eq!(
        subset_of(&t, "/", &headers(&[("x-debug", "")])).as_deref(),
        Some("present")
    );
    assert_eq!(
        subset_of(&t, "/", &headers(&[("x-canary", "false")])).as_deref(),
        Some("not-canary")
    );
    assert_eq!(
        subset_of(&t, "/", &headers(&[("x-canary", "true")])).as_deref(),
        Some("rest")
    );
}

#[test]
fn query_params_and_authority() {
    let t = vs(r#"
  - match: [{queryParams: {debug: {exact: "1"}}}]
    route: [{destination: {host: h, subset: query}}]
  - match: [{authority: {exact: h}}]
    route: [{destination: {host: h, subset: authority}}]
"#);
    assert_eq!(
        subset_of(&t, "/x?debug=1", &HeaderMap::new()).as_deref(),
        Some("query")
    );
    assert_eq!(
        subset_of(&t, "/x?debug=2", &HeaderMap::new()).as_deref(),
        Some("authority")
    );
    let err = t
        .decide(
            &Caller::sidecar("ns"),
            "h.ns.svc.cluster.local",
            "/",
            &HeaderMap::new(),
        )
        .expect_err("no route");
    assert!(matches!(err, RouteError::NoMatchingRoute { .. }), "{err}");
}

#[test]
fn first_matching_route_wins_in_order() {
    let t = vs(r#"
  - match: [{uri: {prefix: /}}]
    route: [{destination: {host: h, subset: first}}]
  - match: [{headers: {x-canary: {exact: "true"}}}]
    route: [{destination: {host: h, subset: second}}]
"#);
    assert_eq!(
        subset_of(&t, "/", &headers(&[("x-canary", "true")])).as_deref(),
        Some("first")
    );
}

#[test]
fn weights_become_probabilities_and_pick_follows_them() {
    let t = vs(r#"
  - route:
    - {destination: {host: h, subset: a}, weight: 70}
    - {destination: {host: h, subset: b}, weight: 20}
    - {destination: {host: h, subset: c}, weight: 10}
"#);
    let d = t
        .decide(&Caller::sidecar("ns"), "h", "/", &HeaderMap::new())
        .expect("routes");
    let probs: Vec<f64> = d.destinations.iter().map(|w| w.probability).collect();
    assert_eq!(probs, vec![0.7, 0.2, 0.1]);
    let pick = |roll| d.pick(roll).subset.clone();
    assert_eq!(pick(0.0).as_deref(), Some("a"));
    assert_eq!(pick(0.69).as_deref(), Some("a"));
    assert_eq!(pick(0.7).as_deref(), Some("b"));
    assert_eq!(pick(0.89).as_deref(), Some("b"));
    assert_eq!(pick(0.95).as_deref(), Some("c"));
    assert_eq!(pick(1.0).as_deref(), Some("c"));
    assert_eq!(pick(-3.0).as_deref(), Some("a"));
}

#[test]
fn zero_weight_is_never_picked_and_lone_destination_weighs_100() {
    let t = vs(r#"
  - match: [{headers: {x-zero: {}}}]
    route:
    - {destination: {host: h, subset: a}, weight: 100}
    - {destination: {host: h, subset: b}, weight: 0}
  - route: [{destination: {host: h, subset: only}}]
"#);
    let d = t
        .decide(
            &Caller::sidecar("ns"),
            "h",
            "/",
            &headers(&[("x-zero", "")]),
        )
        .expect("routes");
    assert_eq!(d.pick(0.999_999).subset.as_deref(), Some("a"));
    let d = t
        .decide(&Caller::sidecar("ns"), "h", "/", &HeaderMap::new())
        .expect("routes");
    assert_eq!(d.destinations[0].probability, 1.0);
    let empty = RouteDecision {
        route_name: None,
        destinations: vec![],
        timeout: None,
        retries: None,
        fault: None,
    };
    assert_eq!(empty.pick(0.5).host, "");
}

fn build_err(http: &str) -> RouteError {
    let resources = load_str(
            &format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: ns}}\n\
                 spec:\n  hosts: [h]\n  http:\n{http}"
            ),
            Path::new("t.yaml"),
        )
        .expect("loads");
    RouteTable::from_resources(&resources).expect_err("must not build")
}

#[test]
fn invalid_configuration_is_a_clear_error() {
    let err = build_err(
        "  - match: [{uri: {regex: '(unclosed'}}]\n    route: [{destination: {host: h}}]\n",
    );
    assert!(matches!(err, RouteError::InvalidRegex { .. }), "{err}");
    assert!(
        err.to_string().contains("spec.http[0].match[0].uri"),
        "{err}"
    );
    let err = build_err("  - timeout: soon\n    route: [{destination: {host: h}}]\n");
    assert!(matches!(err, RouteError::InvalidDuration { .. }), "{err}");
    let err = build_err(
        "  - route:\n    - {destination: {host: h, subset: a}}\n    - {destination: {host: h, subset: b}}\n",
    );
    assert!(err.to_string().contains("add up to 0"), "{err}");
    let err = build_err(
        "  - match: [{uri: {exact: /a, prefix: /b}}]\n    route: [{destination: {host: h}}]\n",
    );
    assert!(err.to_string().contains("only one of"), "{err}");
    let err = build_err("  - route: [{destination: {host: h, port: {number: 70000}}}]\n");
    assert!(err.to_string().contains("port.number"), "{err}");
}

#[test]
fn unsupported_conditions_and_redirects_are_reported_when_reached() {
    let t = vs(r#"
  - match: [{headers: {x-skip: {}}}]
    redirect: {uri: /elsewhere}
  - match: [{method: {exact: POST}}]
    route: [{destination: {host: h}}]
"#);
    let err = t
        .decide(
            &Caller::sidecar("ns"),
            "h",
            "/",
            &headers(&[("x-skip", "1")]),
        )
        .expect_err("redirect");
    assert!(matches!(err, RouteError::NoDestinations { .. }), "{err}");
    let err = t
        .decide(&Caller::sidecar("ns"), "h", "/", &HeaderMap::new())
        .expect_err("method");
    assert!(matches!(err, RouteError::UnsupportedMatch { .. }), "{err}");
}

#[test]
fn subset_labels_resolve_short_destination_rule_hosts() {
    let t = table(TIER);
    let labels = t
        .subset_labels("backend.backend.svc.cluster.local", "canary")
        .expect("subset");
    assert_eq!(labels.get("version").map(String::as_str), Some("canary"));
    // Short names are resolved where they are written, not here: an FQDN is needed.
    assert!(t.subset_labels("backend", "stable").is_none());
    assert!(t.subset_labels("backend", "blue").is_none());
    assert!(t.subset_labels("ml", "stable").is_none());
}
