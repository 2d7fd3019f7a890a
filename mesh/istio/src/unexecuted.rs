//! What the resources ask for that the local lab's router and hops do not execute.
//!
//! The lab executes a VirtualService's matches, destinations and weights, `timeout`, `retries`
//! and `fault` (fixed delay, HTTP abort). Everything else a route or DestinationRule sets
//! (`mirror`, `rewrite`, `headers`, `corsPolicy`, traffic policy, …) Istio applies in a cluster
//! and the lab does not: it is listed here, reported by `mesh check` (MSH0111) and printed in the
//! lab's start banner, never silently accepted. Fields the crate does not model are captured by
//! `#[serde(flatten)]` maps in [`crate::resources`], so a new field is reported without a code
//! change here.

use std::collections::BTreeMap;
use std::fmt;

use crate::resources::{Resource, ResourceBody, TrafficPolicy};

/// One field of one resource the lab does not execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexecuted {
    /// The file (and document) of the resource.
    pub file: String,
    pub kind: String,
    /// `namespace/name`.
    pub resource: String,
    /// Dotted field path, e.g. `spec.http[0].mirror`.
    pub field: String,
}

impl fmt::Display for Unexecuted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.resource, self.field)
    }
}

/// Every unexecuted field, in resource order.
pub fn unexecuted(resources: &[Resource]) -> Vec<Unexecuted> {
    let mut out = Vec::new();
    for r in resources {
        let mut push = |field: String| {
            out.push(Unexecuted {
                file: r.provenance.to_string(),
                kind: r.kind.clone(),
                resource: r.qualified_name(),
                field,
            });
        };
        match &r.body {
            ResourceBody::VirtualService(vs) => {
                keys(&vs.spec.other, "spec", &mut push);
                for (i, route) in vs.spec.http.iter().enumerate() {
                    let field = format!("spec.http[{i}]");
                    keys(&route.other, &field, &mut push);
                    for (m, block) in route.matches.iter().flatten().enumerate() {
                        keys(&block.other, &format!("{field}.match[{m}]"), &mut push);
                    }
                    for (d, destination) in route.route.iter().enumerate() {
                        keys(
                            &destination.other,
                            &format!("{field}.route[{d}]"),
                            &mut push,
                        );
                    }
                    if let Some(retries) = &route.retries {
                        keys(&retries.other, &format!("{field}.retries"), &mut push);
                    }
                    if let Some(fault) = &route.fault {
                        if let Some(delay) = &fault.delay {
                            keys(&delay.other, &format!("{field}.fault.delay"), &mut push);
                        }
                        if let Some(abort) = &fault.abort {
                            keys(&abort.other, &format!("{field}.fault.abort"), &mut push);
                        }
                    }
                }
            }
            ResourceBody::DestinationRule(dr) => {
                if let Some(policy) = &dr.spec.traffic_policy {
                    policy_keys(policy, "spec.trafficPolicy", &mut push);
                }
                for (i, subset) in dr.spec.subsets.iter().enumerate() {
                    if let Some(policy) = &subset.traffic_policy {
                        policy_keys(
                            policy,
                            &format!("spec.subsets[{i}].trafficPolicy"),
                            &mut push,
                        );
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn keys<V>(map: &BTreeMap<String, V>, prefix: &str, push: &mut impl FnMut(String)) {
    for key in map.keys() {
        push(format!("{prefix}.{key}"));
    }
}

fn policy_keys(policy: &TrafficPolicy, prefix: &str, push: &mut impl FnMut(String)) {
    if policy.tls.is_some() {
        push(format!("{prefix}.tls"));
    }
    if !policy.port_level_settings.is_empty() {
        push(format!("{prefix}.portLevelSettings"));
    }
    keys(&policy.other, prefix, push);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_str;
    use std::path::Path;

    #[test]
    fn names_every_unexecuted_field_and_nothing_executed() {
        let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\n\
                    metadata: {name: v, namespace: ns}\nspec:\n  hosts: [h]\n  exportTo: ['.']\n  http:\n\
                    \x20 - match: [{uri: {prefix: /}, statPrefix: s}]\n\
                    \x20   route: [{destination: {host: h}, headers: {response: {set: {a: b}}}}]\n\
                    \x20   timeout: 1s\n    retries: {attempts: 1, retryRemoteLocalities: true}\n\
                    \x20   fault: {delay: {fixedDelay: 1s}, abort: {grpcStatus: UNAVAILABLE}}\n\
                    \x20   mirror: {host: shadow}\n    rewrite: {uri: /}\n    headers: {request: {set: {a: b}}}\n\
                    ---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
                    metadata: {name: d, namespace: ns}\nspec:\n  host: h\n\
                    \x20 trafficPolicy: {tls: {mode: ISTIO_MUTUAL}, outlierDetection: {interval: 1s}}\n\
                    \x20 subsets: [{name: a, labels: {v: a}, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}]\n";
        let resources = load_str(yaml, Path::new("t.yaml")).expect("loads");
        let fields: Vec<String> = unexecuted(&resources)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            fields,
            [
                "VirtualService ns/v: spec.exportTo",
                "VirtualService ns/v: spec.http[0].headers",
                "VirtualService ns/v: spec.http[0].mirror",
                "VirtualService ns/v: spec.http[0].rewrite",
                "VirtualService ns/v: spec.http[0].match[0].statPrefix",
                "VirtualService ns/v: spec.http[0].route[0].headers",
                "VirtualService ns/v: spec.http[0].retries.retryRemoteLocalities",
                "VirtualService ns/v: spec.http[0].fault.abort.grpcStatus",
                "DestinationRule ns/d: spec.trafficPolicy.tls",
                "DestinationRule ns/d: spec.trafficPolicy.outlierDetection",
                "DestinationRule ns/d: spec.subsets[0].trafficPolicy.loadBalancer",
            ]
        );
    }
}
