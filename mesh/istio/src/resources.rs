//! Serde model of the Kubernetes and Istio kinds the mesh uses.
//!
//! Only the fields the router and the analyzer read are modelled. Unknown fields are tolerated
//! (strict schema validation is the job of the schema tools run elsewhere), but a field that is
//! present with the wrong type is an error naming its path.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Where a resource came from: the file (or `-` for standard input) and its document index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub file: PathBuf,
    /// Zero-based index of the YAML document inside the file.
    pub document: usize,
    /// How many documents the file holds; used to decide whether the index is worth printing.
    pub documents_in_file: usize,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.documents_in_file > 1 {
            write!(f, "{}#{}", self.file.display(), self.document + 1)
        } else {
            write!(f, "{}", self.file.display())
        }
    }
}

/// One loaded Kubernetes object.
#[derive(Debug, Clone)]
pub struct Resource {
    pub provenance: Provenance,
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub body: ResourceBody,
}

impl Resource {
    /// The namespace the object lives in; `default` when a namespaced object names none.
    /// Cluster-scoped kinds (Namespace) answer `None`.
    pub fn namespace(&self) -> Option<&str> {
        match self.body {
            ResourceBody::Namespace(_) => None,
            _ => Some(self.metadata.namespace.as_deref().unwrap_or("default")),
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// `ns/name` for namespaced objects, `name` for cluster-scoped ones.
    pub fn qualified_name(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{ns}/{}", self.metadata.name),
            None => self.metadata.name.clone(),
        }
    }
}

/// The typed body of a resource, by kind.
#[derive(Debug, Clone)]
pub enum ResourceBody {
    Namespace(Namespace),
    ServiceAccount,
    Deployment(Deployment),
    Service(Service),
    VirtualService(VirtualService),
    DestinationRule(DestinationRule),
    Gateway(Gateway),
    PeerAuthentication(PeerAuthentication),
    AuthorizationPolicy(AuthorizationPolicy),
    /// Kinds the mesh ships but nothing here inspects (Telemetry, NetworkPolicy, PDB, HPA, ...).
    Opaque,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A Kubernetes `IntOrString` (ports, targetPorts).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(n) => write!(f, "{n}"),
            IntOrString::Str(s) => write!(f, "{s}"),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Namespace {}

// ---------- apps/v1 Deployment ----------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    #[serde(default)]
    pub spec: DeploymentSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    pub replicas: Option<i64>,
    #[serde(default)]
    pub selector: LabelSelector,
    #[serde(default)]
    pub template: PodTemplate,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub service_account_name: Option<String>,
    #[serde(default)]
    pub containers: Vec<Container>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub container_port: i64,
    pub name: Option<String>,
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub http_get: Option<HttpGetAction>,
    pub tcp_socket: Option<TcpSocketAction>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpGetAction {
    pub path: Option<String>,
    pub port: IntOrString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpSocketAction {
    pub port: IntOrString,
}

// ---------- v1 Service ----------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    #[serde(default)]
    pub spec: ServiceSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `None` when the Service has no selector (its endpoints are managed by hand).
    pub selector: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: i64,
    pub target_port: Option<IntOrString>,
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
}

// ---------- networking.istio.io VirtualService ----------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualService {
    #[serde(default)]
    pub spec: VirtualServiceSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default)]
    pub http: Vec<HttpRoute>,
    /// Fields this crate does not model (`tcp`, `tls`, `exportTo`, …), kept so that
    /// [`crate::unexecuted`] can report them instead of dropping them silently.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    pub name: Option<String>,
    /// `None` (or empty) matches every request.
    #[serde(rename = "match")]
    pub matches: Option<Vec<HttpMatchRequest>>,
    #[serde(default)]
    pub route: Vec<HttpRouteDestination>,
    pub timeout: Option<String>,
    pub retries: Option<HttpRetry>,
    pub fault: Option<HttpFault>,
    pub redirect: Option<serde_norway::Value>,
    pub direct_response: Option<serde_norway::Value>,
    pub delegate: Option<serde_norway::Value>,
    /// Fields this crate does not execute (`mirror`, `rewrite`, `headers`, `corsPolicy`, …), kept
    /// so that [`crate::unexecuted`] reports them.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

/// Istio `HTTPFaultInjection`: a delay and/or an abort, each for a percentage of requests.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpFault {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultDelay {
    pub fixed_delay: Option<String>,
    pub percentage: Option<Percent>,
    /// Deprecated integer percentage; `percentage` wins when both are set.
    pub percent: Option<i64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultAbort {
    pub http_status: Option<i64>,
    pub percentage: Option<Percent>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

/// Istio `Percent`: a share in [0, 100].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Percent {
    #[serde(default)]
    pub value: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatchRequest {
    pub name: Option<String>,
    pub uri: Option<StringMatch>,
    #[serde(default)]
    pub headers: BTreeMap<String, StringMatch>,
    #[serde(default)]
    pub without_headers: BTreeMap<String, StringMatch>,
    #[serde(default)]
    pub query_params: BTreeMap<String, StringMatch>,
    #[serde(default)]
    pub ignore_uri_case: bool,
    pub authority: Option<StringMatch>,
    // Conditions the route table cannot evaluate from (host, path, headers):
    pub method: Option<StringMatch>,
    pub scheme: Option<StringMatch>,
    pub port: Option<i64>,
    pub source_labels: Option<BTreeMap<String, String>>,
    pub gateways: Option<Vec<String>>,
    pub source_namespace: Option<String>,
    /// Conditions this crate does not model (`statPrefix`, …), reported by [`crate::unexecuted`].
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

impl HttpMatchRequest {
    /// The name of the first condition a request's (host, path, headers) cannot decide, if any.
    pub fn unsupported_condition(&self) -> Option<&'static str> {
        if self.method.is_some() {
            Some("method")
        } else if self.scheme.is_some() {
            Some("scheme")
        } else if self.port.is_some() {
            Some("port")
        } else if self.source_labels.is_some() {
            Some("sourceLabels")
        } else if self.gateways.is_some() {
            Some("gateways")
        } else if self.source_namespace.is_some() {
            Some("sourceNamespace")
        } else {
            None
        }
    }

    /// True when this block matches every request: nothing but (at most) `uri: prefix: "/"`.
    pub fn is_catch_all(&self) -> bool {
        let uri_catches_all = match &self.uri {
            None => true,
            Some(m) => {
                m.exact.is_none()
                    && (matches!(m.prefix.as_deref(), Some("/") | Some(""))
                        || matches!(m.regex.as_deref(), Some(".*") | Some("/.*")))
            }
        };
        uri_catches_all
            && self.headers.is_empty()
            && self.without_headers.is_empty()
            && self.query_params.is_empty()
            && self.authority.is_none()
            && self.unsupported_condition().is_none()
    }
}

impl HttpRoute {
    /// True when the route matches every request (no match blocks, or one catch-all block).
    pub fn is_catch_all(&self) -> bool {
        match &self.matches {
            None => true,
            Some(blocks) => blocks.is_empty() || blocks.iter().any(HttpMatchRequest::is_catch_all),
        }
    }
}

/// Istio `StringMatch`: exactly one of `exact`, `prefix`, `regex`; an empty one means "present".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub regex: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteDestination {
    pub destination: DestinationRef,
    pub weight: Option<i64>,
    /// Per-destination `headers` and anything else not executed, reported by
    /// [`crate::unexecuted`].
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRef {
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<PortSelector>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortSelector {
    pub number: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRetry {
    #[serde(default)]
    pub attempts: i64,
    pub per_try_timeout: Option<String>,
    pub retry_on: Option<String>,
    /// `retryRemoteLocalities`, `backoff`, …: not executed, reported by [`crate::unexecuted`].
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

// ---------- networking.istio.io DestinationRule ----------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    #[serde(default)]
    pub spec: DestinationRuleSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    #[serde(default)]
    pub host: String,
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default)]
    pub subsets: Vec<Subset>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    pub tls: Option<ClientTls>,
    #[serde(default)]
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// `connectionPool`, `outlierDetection`, `loadBalancer`, …: checked by schema tools, applied
    /// by Istio, never by the lab (reported by [`crate::unexecuted`]).
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortTrafficPolicy {
    pub port: Option<PortSelector>,
    pub tls: Option<ClientTls>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientTls {
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub traffic_policy: Option<TrafficPolicy>,
}

// ---------- networking.istio.io Gateway ----------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    #[serde(default)]
    pub spec: GatewaySpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default)]
    pub servers: Vec<GatewayServer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayServer {
    #[serde(default)]
    pub hosts: Vec<String>,
}

// ---------- security.istio.io ----------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthentication {
    #[serde(default)]
    pub spec: PeerAuthenticationSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    pub selector: Option<LabelSelector>,
    pub mtls: Option<PeerMtls>,
    #[serde(default)]
    pub port_level_mtls: BTreeMap<IntOrString, PeerMtls>,
}

impl PeerAuthenticationSpec {
    /// True when the policy applies to a whole namespace (no or empty workload selector).
    pub fn is_namespace_wide(&self) -> bool {
        self.selector
            .as_ref()
            .is_none_or(|s| s.match_labels.is_empty())
    }

    /// The policy's mTLS mode, `UNSET` when none is given.
    pub fn mode(&self) -> &str {
        self.mtls
            .as_ref()
            .and_then(|m| m.mode.as_deref())
            .unwrap_or("UNSET")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerMtls {
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    #[serde(default)]
    pub spec: AuthorizationPolicySpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicySpec {
    pub selector: Option<LabelSelector>,
    pub action: Option<String>,
    #[serde(default)]
    pub rules: Vec<AuthorizationRule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationRule {
    #[serde(default)]
    pub from: Vec<RuleFrom>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleFrom {
    #[serde(default)]
    pub source: RuleSource,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSource {
    #[serde(default)]
    pub principals: Vec<String>,
    #[serde(default)]
    pub not_principals: Vec<String>,
}

/// True when every `selector` label is carried, with the same value, by `labels`.
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
