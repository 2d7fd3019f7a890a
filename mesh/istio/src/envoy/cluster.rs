//! Envoy clusters: one per destination `(host, subset)`, addressed by compose service name, with
//! the DestinationRule's traffic policy (the subset's when it has one, else the rule's).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{EnvoyError, EnvoyOptions, socket_address};
use crate::duration::parse_duration;
use crate::resources::{DestinationRule, Resource, TrafficPolicy};

/// A destination as a cluster: the Service FQDN, the subset, the port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClusterKey {
    pub fqdn: String,
    pub subset: Option<String>,
    pub port: u16,
}

impl ClusterKey {
    /// `<service>-<subset>` (or `<service>`): the compose service it reaches, and the cluster's name.
    pub fn name(&self) -> String {
        let service = service_name(&self.fqdn);
        match &self.subset {
            Some(subset) => format!("{service}-{subset}"),
            None => service.to_owned(),
        }
    }
}

/// The first label of a host: `ml.ml.svc.cluster.local` → `ml`.
pub fn service_name(fqdn: &str) -> &str {
    fqdn.split('.').next().unwrap_or(fqdn)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionPool {
    #[serde(default)]
    tcp: TcpSettings,
    #[serde(default)]
    http: HttpSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TcpSettings {
    max_connections: Option<u32>,
    connect_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpSettings {
    http1_max_pending_requests: Option<u32>,
    http2_max_requests: Option<u32>,
    max_retries: Option<u32>,
    idle_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutlierDetection {
    consecutive_5xx_errors: Option<u32>,
    consecutive_gateway_errors: Option<u32>,
    interval: Option<String>,
    base_ejection_time: Option<String>,
    max_ejection_percent: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct LoadBalancer {
    simple: Option<String>,
}

/// Istio's default TCP connect timeout (MeshConfig `connectTimeout`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Clusters<'a> {
    rules: &'a BTreeMap<String, (&'a Resource, &'a DestinationRule)>,
    service_ports: &'a BTreeMap<String, u16>,
    options: &'a EnvoyOptions,
    used: BTreeMap<String, Value>,
    not_rendered: Vec<String>,
}

impl<'a> Clusters<'a> {
    pub(super) fn new(
        rules: &'a BTreeMap<String, (&'a Resource, &'a DestinationRule)>,
        service_ports: &'a BTreeMap<String, u16>,
        options: &'a EnvoyOptions,
    ) -> Self {
        Self {
            rules,
            service_ports,
            options,
            used: BTreeMap::new(),
            not_rendered: Vec::new(),
        }
    }

    /// The port a destination without `port.number` goes to: its Service's first port.
    pub(super) fn service_port(&self, fqdn: &str) -> Option<u16> {
        self.service_ports.get(fqdn).copied()
    }

    /// Registers a destination and answers its cluster name.
    pub(super) fn cluster(&mut self, key: ClusterKey) -> Result<String, EnvoyError> {
        let name = key.name();
        if !self.used.contains_key(&name) {
            let cluster = self.build(&key, &name)?;
            self.used.insert(name.clone(), cluster);
        }
        Ok(name)
    }

    pub(super) fn not_rendered(&self) -> Vec<String> {
        let mut lines = self.not_rendered.clone();
        lines.sort();
        lines.dedup();
        lines
    }

    pub(super) fn into_values(self) -> Vec<Value> {
        self.used.into_values().collect()
    }

    fn build(&mut self, key: &ClusterKey, name: &str) -> Result<Value, EnvoyError> {
        let mut cluster = json!({
            "name": name,
            "type": "STRICT_DNS",
            "dns_lookup_family": "V4_ONLY",
            "dns_refresh_rate": seconds(Duration::from_millis(self.options.dns_refresh_ms)),
            "connect_timeout": seconds(DEFAULT_CONNECT_TIMEOUT),
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(name, key.port)}}]}],
            },
        });
        let Some((resource, rule)) = self.rules.get(&key.fqdn).copied() else {
            return Ok(cluster);
        };
        let subset = match &key.subset {
            None => None,
            Some(wanted) => Some(
                rule.spec
                    .subsets
                    .iter()
                    .find(|s| &s.name == wanted)
                    .ok_or_else(|| {
                        EnvoyError::Topology(format!(
                            "DestinationRule {} has no subset `{wanted}`",
                            resource.qualified_name()
                        ))
                    })?,
            ),
        };
        let policy = subset
            .and_then(|s| s.traffic_policy.as_ref())
            .or(rule.spec.traffic_policy.as_ref());
        if let Some(policy) = policy {
            let context = format!("DestinationRule {}", resource.qualified_name());
            self.apply(&mut cluster, policy, &context)?;
        }
        Ok(cluster)
    }

    fn apply(
        &mut self,
        cluster: &mut Value,
        policy: &TrafficPolicy,
        context: &str,
    ) -> Result<(), EnvoyError> {
        if let Some(mode) = policy.tls.as_ref().and_then(|t| t.mode.as_deref()) {
            self.not_rendered
                .push(format!("{context}: trafficPolicy.tls.mode {mode}"));
        }
        if !policy.port_level_settings.is_empty() {
            self.not_rendered
                .push(format!("{context}: trafficPolicy.portLevelSettings"));
        }
        for (field, value) in &policy.other {
            match field.as_str() {
                "connectionPool" => {
                    let pool: ConnectionPool = typed(value, context, field)?;
                    connection_pool(cluster, &pool, context)?;
                }
                "outlierDetection" => {
                    let outlier: OutlierDetection = typed(value, context, field)?;
                    cluster["outlier_detection"] = outlier_detection(&outlier, context)?;
                }
                "loadBalancer" => {
                    let lb: LoadBalancer = typed(value, context, field)?;
                    match lb.simple.as_deref() {
                        Some("LEAST_REQUEST" | "LEAST_CONN") => {
                            cluster["lb_policy"] = json!("LEAST_REQUEST")
                        }
                        Some("ROUND_ROBIN") | None => cluster["lb_policy"] = json!("ROUND_ROBIN"),
                        Some("RANDOM") => cluster["lb_policy"] = json!("RANDOM"),
                        Some(other) => self.not_rendered.push(format!(
                            "{context}: trafficPolicy.loadBalancer.simple {other}"
                        )),
                    }
                }
                other => self
                    .not_rendered
                    .push(format!("{context}: trafficPolicy.{other}")),
            }
        }
        Ok(())
    }
}

fn typed<T: serde::de::DeserializeOwned>(
    value: &serde_norway::Value,
    context: &str,
    field: &str,
) -> Result<T, EnvoyError> {
    serde_norway::from_value(value.clone())
        .map_err(|e| EnvoyError::Topology(format!("{context}: trafficPolicy.{field}: {e}")))
}

fn duration(text: &str, context: &str, field: &str) -> Result<Duration, EnvoyError> {
    parse_duration(text).map_err(|e| EnvoyError::Topology(format!("{context}: {field}: {e}")))
}

/// A protobuf JSON duration: `8s`, `0.25s`.
pub(super) fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn connection_pool(
    cluster: &mut Value,
    pool: &ConnectionPool,
    context: &str,
) -> Result<(), EnvoyError> {
    if let Some(timeout) = &pool.tcp.connect_timeout {
        let d = duration(timeout, context, "connectionPool.tcp.connectTimeout")?;
        cluster["connect_timeout"] = json!(seconds(d));
    }
    let mut thresholds = serde_json::Map::new();
    thresholds.insert("priority".into(), json!("DEFAULT"));
    let limits = [
        ("max_connections", pool.tcp.max_connections),
        ("max_pending_requests", pool.http.http1_max_pending_requests),
        ("max_requests", pool.http.http2_max_requests),
        ("max_retries", pool.http.max_retries),
    ];
    for (name, limit) in limits {
        if let Some(limit) = limit {
            thresholds.insert(name.into(), json!(limit));
        }
    }
    cluster["circuit_breakers"] = json!({"thresholds": [thresholds]});
    let mut common = serde_json::Map::new();
    if let Some(idle) = &pool.http.idle_timeout {
        let d = duration(idle, context, "connectionPool.http.idleTimeout")?;
        common.insert("idle_timeout".into(), json!(seconds(d)));
    }
    cluster["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "common_http_protocol_options": common,
            "explicit_http_config": {"http_protocol_options": {}},
        },
    });
    Ok(())
}

fn outlier_detection(outlier: &OutlierDetection, context: &str) -> Result<Value, EnvoyError> {
    let mut out = serde_json::Map::new();
    if let Some(n) = outlier.consecutive_5xx_errors {
        out.insert("consecutive_5xx".into(), json!(n));
    }
    if let Some(n) = outlier.consecutive_gateway_errors {
        out.insert("consecutive_gateway_failure".into(), json!(n));
        out.insert("enforcing_consecutive_gateway_failure".into(), json!(100));
    }
    let durations = [
        ("interval", &outlier.interval, "outlierDetection.interval"),
        (
            "base_ejection_time",
            &outlier.base_ejection_time,
            "outlierDetection.baseEjectionTime",
        ),
    ];
    for (name, text, field) in durations {
        if let Some(text) = text {
            out.insert(name.into(), json!(seconds(duration(text, context, field)?)));
        }
    }
    if let Some(percent) = outlier.max_ejection_percent {
        out.insert("max_ejection_percent".into(), json!(percent));
    }
    Ok(Value::Object(out))
}
