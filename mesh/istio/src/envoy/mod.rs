//! Envoy configuration rendered from the mesh's VirtualServices and DestinationRules: the data plane
//! of the docker compose lab (`mesh envoy`), so compose routes by the very same files Istio applies.
//!
//! One Envoy serves every hop. Each VirtualService bound to `mesh` becomes a listener on its
//! Service's port (a tier calls the next one at `http://<envoy>:<port>`), and the VirtualService
//! bound to a Gateway becomes the edge listener. Each destination `(host, subset)` becomes a cluster
//! named and addressed `<service>-<subset>` (the compose service, e.g. `ml-canary`), with the
//! DestinationRule's connection pool, outlier detection and load balancer.
//!
//! Translated: header/uri/query/authority/method matches (first match wins, match blocks OR'ed),
//! relative weights, `timeout` (unset = none, as Istio), `retries` (unset = Istio's default
//! policy), fault delay and abort; DestinationRule `connectionPool` (tcp `maxConnections`,
//! `connectTimeout`, http `http1MaxPendingRequests`, `http2MaxRequests`, `maxRetries`,
//! `idleTimeout`), `outlierDetection` and `loadBalancer.simple`. Whatever else is set is listed in
//! [`EnvoyConfig::not_rendered`] (e.g. `tls: ISTIO_MUTUAL`: compose has no mesh identities).

mod cluster;
mod route;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::host::resolve_short_name;
use crate::resources::{DestinationRule, Resource, ResourceBody, VirtualService};
use crate::route::MESH_GATEWAY;

pub use cluster::ClusterKey;

/// Where the rendered Envoy listens and what it may talk to besides the tiers.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// The edge listener (the Gateway-bound VirtualService).
    pub edge_port: u16,
    /// Envoy's admin interface (`/stats/prometheus`, `/ready`).
    pub admin_port: u16,
    /// How often clusters re-resolve their compose service names, in milliseconds.
    pub dns_refresh_ms: u64,
    /// Where Envoy sends its own spans (OTLP/HTTP `host:port`; `/v1/traces` is appended), so a
    /// trace shows every hop's proxy between the services' spans. `None`: Envoy emits no spans and
    /// passes the trace headers through unchanged.
    pub otlp: Option<(String, u16)>,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        Self {
            edge_port: 10080,
            admin_port: 9901,
            dns_refresh_ms: 2000,
            otlp: None,
        }
    }
}

/// Why a mesh config cannot be rendered for Envoy.
#[derive(Debug, thiserror::Error)]
pub enum EnvoyError {
    #[error("VirtualService {virtual_service}: {field}: {reason}")]
    Unsupported {
        virtual_service: String,
        field: String,
        reason: String,
    },
    #[error("{0}")]
    Topology(String),
    #[error("cannot write YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// A rendered Envoy bootstrap and what of the input it leaves out.
#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    pub bootstrap: Value,
    /// `resource: field` lines for settings the rendering does not carry over.
    pub not_rendered: Vec<String>,
}

impl EnvoyConfig {
    /// The bootstrap as YAML, headed by a comment naming the source and what was left out.
    pub fn to_yaml(&self, source: &str) -> Result<String, EnvoyError> {
        let mut out = format!(
            "# Envoy bootstrap rendered by `mesh envoy` from {source}; do not edit by hand.\n\
             # Re-render every canary step with docker/render-envoy.sh.\n"
        );
        if !self.not_rendered.is_empty() {
            out.push_str("# Not rendered (no Envoy equivalent in compose):\n");
            for line in &self.not_rendered {
                out.push_str(&format!("#   {line}\n"));
            }
        }
        out.push_str(&serde_norway::to_string(&self.bootstrap)?);
        Ok(out)
    }
}

/// A VirtualService and where it is bound.
struct Bound<'a> {
    resource: &'a Resource,
    spec: &'a VirtualService,
    namespace: String,
}

/// Renders the Envoy bootstrap for `resources` (a whole rendered overlay).
pub fn render(resources: &[Resource], options: &EnvoyOptions) -> Result<EnvoyConfig, EnvoyError> {
    let mut gateway_bound = Vec::new();
    let mut mesh_bound = Vec::new();
    let mut rules: BTreeMap<String, (&Resource, &DestinationRule)> = BTreeMap::new();
    let mut service_ports: BTreeMap<String, u16> = BTreeMap::new();
    for resource in resources {
        let namespace = resource.namespace().unwrap_or("default").to_owned();
        match &resource.body {
            ResourceBody::VirtualService(spec) => {
                let gateways = &spec.spec.gateways;
                let bound = || Bound {
                    resource,
                    spec,
                    namespace: namespace.clone(),
                };
                if gateways.is_empty() || gateways.iter().any(|g| g == MESH_GATEWAY) {
                    mesh_bound.push(bound());
                }
                if gateways.iter().any(|g| g != MESH_GATEWAY) {
                    gateway_bound.push(bound());
                }
            }
            ResourceBody::DestinationRule(rule) => {
                let host = resolve_short_name(&rule.spec.host, &namespace);
                rules.insert(host, (resource, rule));
            }
            ResourceBody::Service(service) => {
                if let Some(port) = service.spec.ports.first() {
                    let fqdn = resolve_short_name(resource.name(), &namespace);
                    service_ports.insert(fqdn, u16::try_from(port.port).unwrap_or(0));
                }
            }
            _ => {}
        }
    }
    if gateway_bound.len() > 1 {
        return Err(EnvoyError::Topology(format!(
            "the edge listener serves one Gateway-bound VirtualService, found {}",
            gateway_bound.len()
        )));
    }

    let mut clusters = cluster::Clusters::new(&rules, &service_ports, options);
    let mut listeners = Vec::new();
    let mut not_rendered = Vec::new();
    for bound in &gateway_bound {
        let routes = route::virtual_host(bound, &mut clusters)?;
        listeners.push(listener("edge", options.edge_port, routes, options));
    }
    let mut taken = BTreeMap::new();
    for bound in &mesh_bound {
        let host = bound.spec.spec.hosts.first().ok_or_else(|| {
            EnvoyError::Topology(format!(
                "VirtualService {}: no hosts",
                bound.resource.qualified_name()
            ))
        })?;
        let fqdn = resolve_short_name(host, &bound.namespace);
        let port = *service_ports.get(&fqdn).ok_or_else(|| {
            EnvoyError::Topology(format!(
                "VirtualService {}: no Service `{fqdn}` gives the port to listen on",
                bound.resource.qualified_name()
            ))
        })?;
        if let Some(other) = taken.insert(port, bound.resource.qualified_name()) {
            return Err(EnvoyError::Topology(format!(
                "VirtualServices {other} and {} both need port {port}",
                bound.resource.qualified_name()
            )));
        }
        let routes = route::virtual_host(bound, &mut clusters)?;
        listeners.push(listener(
            cluster::service_name(&fqdn),
            port,
            routes,
            options,
        ));
    }
    not_rendered.extend(clusters.not_rendered());
    let mut all_clusters = clusters.into_values();
    if let Some((host, port)) = &options.otlp {
        all_clusters.push(json!({
            "name": OTLP_CLUSTER,
            "type": "STRICT_DNS",
            "dns_lookup_family": "V4_ONLY",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": OTLP_CLUSTER,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(host, *port)}}]}],
            },
        }));
    }
    let bootstrap = json!({
        "admin": {
            "address": socket_address("0.0.0.0", options.admin_port),
        },
        "static_resources": {
            "listeners": listeners,
            "clusters": all_clusters,
        },
    });
    Ok(EnvoyConfig {
        bootstrap,
        not_rendered,
    })
}

fn socket_address(address: &str, port: u16) -> Value {
    json!({"socket_address": {"address": address, "port_value": port}})
}

/// The cluster Envoy's own spans go to.
const OTLP_CLUSTER: &str = "otlp";

/// An HTTP listener with one catch-all virtual host; requests and responses stream through.
fn listener(name: &str, port: u16, virtual_host: Value, options: &EnvoyOptions) -> Value {
    let mut listener = json!({
        "name": name,
        "address": socket_address("0.0.0.0", port),
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": name,
                    "route_config": {"name": name, "virtual_hosts": [virtual_host]},
                    "http_filters": [
                        {
                            "name": "envoy.filters.http.fault",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"},
                        },
                        {
                            "name": "envoy.filters.http.router",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                        },
                    ],
                },
            }],
        }],
    });
    if let Some((host, port)) = &options.otlp {
        listener["filter_chains"][0]["filters"][0]["typed_config"]["tracing"] = json!({
            "provider": {
                "name": "envoy.tracers.opentelemetry",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                    "http_service": {
                        "http_uri": {
                            "uri": format!("http://{host}:{port}/v1/traces"),
                            "cluster": OTLP_CLUSTER,
                            "timeout": "1s",
                        },
                    },
                    "service_name": "envoy",
                },
            },
        });
    }
    listener
}

#[cfg(test)]
mod tests;
