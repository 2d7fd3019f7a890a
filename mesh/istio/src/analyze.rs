//! Semantic checks over a set of resources, in the spirit of `istioctl analyze`.
//!
//! Every [`Finding`] names the file, the resource and the field it is about. Codes are stable:
//! `MSH01xx` routing, `MSH02xx` Services, `MSH03xx` mesh security, `MSH04xx` probes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::duration::parse_duration;
use crate::host::{CLUSTER_DOMAIN, resolve_short_name};
use crate::resources::{
    Container, Deployment, DestinationRule, Gateway, IntOrString, PeerAuthentication, Probe,
    Resource, ResourceBody, Service, StringMatch, VirtualService, selects,
};
use crate::route::compile_regex;

/// The ingress gateway's identity: it lives outside the project's files but may be named as a
/// principal.
pub const KNOWN_EXTERNAL_PRINCIPALS: &[&str] =
    &["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"];

/// The namespace mesh-wide Istio policies live in.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// A PeerAuthentication carrying this annotation (with the reason as its value) may relax mTLS
/// on a port without being reported.
pub const PORT_MTLS_EXCEPTION_ANNOTATION: &str = "mesh.3rvision.dev/port-mtls-exception";

/// Istio protocol prefixes for Service port names (`<protocol>[-<suffix>]`).
pub const PORT_PROTOCOLS: &[&str] = &[
    "http", "http2", "https", "grpc", "grpc-web", "mongo", "mysql", "redis", "tcp", "tls", "udp",
];

/// Every code the analyzer emits, with what it means.
pub const CODES: &[(&str, &str)] = &[
    (
        "MSH0101",
        "VirtualService destination host is not a Service",
    ),
    (
        "MSH0102",
        "VirtualService destination port is not a port of the Service",
    ),
    (
        "MSH0103",
        "VirtualService destination subset is not defined by a DestinationRule",
    ),
    (
        "MSH0104",
        "DestinationRule subset selects no pods behind the Service",
    ),
    ("MSH0105", "route weights do not add up to 100"),
    ("MSH0106", "route is unreachable behind a catch-all route"),
    (
        "MSH0107",
        "gateway referenced by a VirtualService does not exist",
    ),
    (
        "MSH0108",
        "invalid regex, duration, weight or string match in a VirtualService",
    ),
    (
        "MSH0109",
        "two VirtualServices claim the same host for the mesh",
    ),
    (
        "MSH0110",
        "match condition the local router cannot evaluate",
    ),
    (
        "MSH0111",
        "field the local lab does not execute (mirror, rewrite, headers, traffic policy, …)",
    ),
    (
        "MSH0201",
        "Service port name does not declare an Istio protocol",
    ),
    (
        "MSH0202",
        "Service targetPort is not a containerPort of a selected Deployment",
    ),
    ("MSH0203", "Service selects no Deployment"),
    (
        "MSH0301",
        "workload namespace is not enabled for sidecar injection",
    ),
    (
        "MSH0302",
        "workload namespace is not covered by STRICT mTLS",
    ),
    (
        "MSH0303",
        "PeerAuthentication relaxes mTLS on a port without a documented exception",
    ),
    (
        "MSH0304",
        "AuthorizationPolicy principal names an unknown ServiceAccount",
    ),
    ("MSH0305", "Deployment's ServiceAccount does not exist"),
    (
        "MSH0306",
        "Deployment runs as the namespace's default ServiceAccount",
    ),
    ("MSH0307", "DestinationRule TLS mode is not ISTIO_MUTUAL"),
    ("MSH0401", "probe port is not a port of the container"),
    (
        "MSH0402",
        "probe path is not the conventional /healthz or /readyz",
    ),
    ("MSH0403", "container has no liveness or readiness probe"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    /// A field Istio applies in a cluster but the local lab does not execute (MSH0111).
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One problem found in the resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub code: &'static str,
    /// The file (and document, when the file holds several) of the resource.
    pub file: String,
    pub kind: String,
    /// `namespace/name` (or `name` for cluster-scoped kinds).
    pub resource: String,
    /// Dotted field path inside the resource, e.g. `spec.http[1].route[0].weight`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}] {}: {} {}: {}: {}",
            self.severity, self.code, self.file, self.kind, self.resource, self.field, self.message
        )
    }
}

/// Runs every check; findings come sorted by file, then resource, then field.
pub fn analyze(resources: &[Resource]) -> Vec<Finding> {
    let index = Index::new(resources);
    let mut out = Findings(Vec::new());
    check_virtual_services(&index, &mut out);
    check_services(&index, &mut out);
    check_namespaces(&index, &mut out);
    check_authorization(&index, &mut out);
    check_deployments(&index, &mut out);
    check_destination_rules(&index, &mut out);
    for field in crate::unexecuted::unexecuted(resources) {
        out.0.push(Finding {
            severity: Severity::Info,
            code: "MSH0111",
            file: field.file,
            kind: field.kind,
            resource: field.resource,
            field: field.field,
            message: "not executed by the local lab (Istio applies it in a cluster)".to_owned(),
        });
    }
    let mut findings = out.0;
    findings.sort_by(|a, b| {
        (&a.file, &a.resource, &a.field, a.code).cmp(&(&b.file, &b.resource, &b.field, b.code))
    });
    findings.dedup();
    findings
}

struct Findings(Vec<Finding>);

impl Findings {
    fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        at: &Resource,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.0.push(Finding {
            severity,
            code,
            file: at.provenance.to_string(),
            kind: at.kind.clone(),
            resource: at.qualified_name(),
            field: field.into(),
            message: message.into(),
        });
    }

    fn error(
        &mut self,
        code: &'static str,
        at: &Resource,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) {
        self.push(Severity::Error, code, at, field, msg);
    }

    fn warning(
        &mut self,
        code: &'static str,
        at: &Resource,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) {
        self.push(Severity::Warning, code, at, field, msg);
    }
}

/// The resources by kind, with their namespaces.
struct Index<'a> {
    namespaces: BTreeMap<&'a str, &'a Resource>,
    service_accounts: BTreeSet<(&'a str, &'a str)>,
    deployments: Vec<(&'a Resource, &'a Deployment)>,
    services: Vec<(&'a Resource, &'a Service)>,
    virtual_services: Vec<(&'a Resource, &'a VirtualService)>,
    destination_rules: Vec<(&'a Resource, &'a DestinationRule)>,
    gateways: Vec<(&'a Resource, &'a Gateway)>,
    peer_authentications: Vec<(&'a Resource, &'a PeerAuthentication)>,
    authorization_policies: Vec<&'a Resource>,
}

fn ns(r: &Resource) -> &str {
    r.namespace().unwrap_or("default")
}

impl<'a> Index<'a> {
    fn new(resources: &'a [Resource]) -> Self {
        let mut index = Index {
            namespaces: BTreeMap::new(),
            service_accounts: BTreeSet::new(),
            deployments: Vec::new(),
            services: Vec::new(),
            virtual_services: Vec::new(),
            destination_rules: Vec::new(),
            gateways: Vec::new(),
            peer_authentications: Vec::new(),
            authorization_policies: Vec::new(),
        };
        for r in resources {
            match &r.body {
                ResourceBody::Namespace(_) => {
                    index.namespaces.insert(r.name(), r);
                }
                ResourceBody::ServiceAccount => {
                    index.service_accounts.insert((ns(r), r.name()));
                }
                ResourceBody::Deployment(d) => index.deployments.push((r, d)),
                ResourceBody::Service(s) => index.services.push((r, s)),
                ResourceBody::VirtualService(v) => index.virtual_services.push((r, v)),
                ResourceBody::DestinationRule(d) => index.destination_rules.push((r, d)),
                ResourceBody::Gateway(g) => index.gateways.push((r, g)),
                ResourceBody::PeerAuthentication(p) => index.peer_authentications.push((r, p)),
                ResourceBody::AuthorizationPolicy(_) => index.authorization_policies.push(r),
                ResourceBody::Opaque => {}
            }
        }
        index
    }

    /// The Service a resolved host names (`svc.ns.svc.cluster.local`).
    fn service_for_host(&self, fqdn: &str) -> Option<(&'a Resource, &'a Service)> {
        let (svc, namespace) = fqdn
            .strip_suffix(&format!(".svc.{CLUSTER_DOMAIN}"))?
            .split_once('.')?;
        self.services
            .iter()
            .copied()
            .find(|(r, _)| r.name() == svc && ns(r) == namespace)
    }

    /// Deployments in `namespace` whose pod template carries every label of `selector`.
    fn deployments_selected(
        &self,
        namespace: &str,
        selector: &BTreeMap<String, String>,
    ) -> Vec<(&'a Resource, &'a Deployment)> {
        self.deployments
            .iter()
            .copied()
            .filter(|(r, d)| {
                ns(r) == namespace && selects(selector, &d.spec.template.metadata.labels)
            })
            .collect()
    }

    fn service_account_exists(&self, namespace: &str, name: &str) -> bool {
        // Kubernetes creates `default` in every namespace.
        name == "default" || self.service_accounts.contains(&(namespace, name))
    }

    /// The mTLS mode in force for a namespace: namespace-wide policy, else mesh-wide, else Istio's
    /// default PERMISSIVE. Also answers the namespace-wide policy that decided it, if any.
    fn namespace_mtls(&self, namespace: &str) -> (String, Option<&'a Resource>) {
        let wide = |wanted: &str| {
            self.peer_authentications.iter().copied().find(|(r, p)| {
                ns(r) == wanted && p.spec.is_namespace_wide() && p.spec.mode() != "UNSET"
            })
        };
        if let Some((r, p)) = wide(namespace) {
            return (p.spec.mode().to_owned(), Some(r));
        }
        if let Some((r, p)) = wide(ROOT_NAMESPACE) {
            return (p.spec.mode().to_owned(), Some(r));
        }
        ("PERMISSIVE".to_owned(), None)
    }
}

// ---------------------------------------------------------------- routing (MSH01xx)

fn check_virtual_services(index: &Index<'_>, out: &mut Findings) {
    let mut mesh_hosts: BTreeMap<String, &Resource> = BTreeMap::new();
    for &(r, vs) in &index.virtual_services {
        let namespace = ns(r);
        let bound_to_mesh =
            vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh");
        for (i, host) in vs.spec.hosts.iter().enumerate() {
            let resolved = resolve_short_name(host, namespace);
            if bound_to_mesh {
                if let Some(first) = mesh_hosts.get(&resolved) {
                    out.warning(
                        "MSH0109",
                        r,
                        format!("spec.hosts[{i}]"),
                        format!(
                            "host `{host}` is also claimed by VirtualService {} ({}); sidecars use only one of them",
                            first.qualified_name(),
                            first.provenance
                        ),
                    );
                } else {
                    mesh_hosts.insert(resolved, r);
                }
            }
        }
        for (i, gateway) in vs.spec.gateways.iter().enumerate() {
            check_gateway_ref(index, out, r, gateway, &format!("spec.gateways[{i}]"));
        }
        let mut catch_all: Option<usize> = None;
        for (i, route) in vs.spec.http.iter().enumerate() {
            let field = format!("spec.http[{i}]");
            let label = route
                .name
                .as_deref()
                .map_or_else(|| field.clone(), |n| format!("`{n}`"));
            if let Some(c) = catch_all {
                let what = if route.is_catch_all() {
                    "route"
                } else {
                    "route with matches"
                };
                out.error(
                    "MSH0106",
                    r,
                    &field,
                    format!(
                        "{what} {label} is unreachable: spec.http[{c}] before it matches every request; \
                         move specific matches first"
                    ),
                );
            } else if route.is_catch_all() {
                catch_all = Some(i);
            }
            for (m, block) in route.matches.iter().flatten().enumerate() {
                let mfield = format!("{field}.match[{m}]");
                if let Some(condition) = block.unsupported_condition() {
                    out.warning(
                        "MSH0110",
                        r,
                        format!("{mfield}.{condition}"),
                        "the local lab's router cannot evaluate this condition and will refuse requests that reach it",
                    );
                }
                for (g, gateway) in block.gateways.iter().flatten().enumerate() {
                    check_gateway_ref(index, out, r, gateway, &format!("{mfield}.gateways[{g}]"));
                }
                let mut string_matches: Vec<(String, &StringMatch)> = Vec::new();
                if let Some(uri) = &block.uri {
                    string_matches.push((format!("{mfield}.uri"), uri));
                }
                if let Some(authority) = &block.authority {
                    string_matches.push((format!("{mfield}.authority"), authority));
                }
                for (what, map) in [
                    ("headers", &block.headers),
                    ("withoutHeaders", &block.without_headers),
                    ("queryParams", &block.query_params),
                ] {
                    for (name, sm) in map {
                        string_matches.push((format!("{mfield}.{what}.{name}"), sm));
                    }
                }
                for (f, sm) in string_matches {
                    check_string_match(out, r, &f, sm);
                }
            }
            if let Some(timeout) = &route.timeout
                && let Err(e) = parse_duration(timeout)
            {
                out.error("MSH0108", r, format!("{field}.timeout"), e.to_string());
            }
            if let Some(retries) = &route.retries {
                if retries.attempts < 0 {
                    out.error(
                        "MSH0108",
                        r,
                        format!("{field}.retries.attempts"),
                        "attempts must not be negative",
                    );
                }
                if let Some(t) = &retries.per_try_timeout
                    && let Err(e) = parse_duration(t)
                {
                    out.error(
                        "MSH0108",
                        r,
                        format!("{field}.retries.perTryTimeout"),
                        e.to_string(),
                    );
                }
            }
            if route.route.len() > 1 {
                let weights: Vec<i64> = route.route.iter().map(|d| d.weight.unwrap_or(0)).collect();
                let total: i64 = weights.iter().sum();
                let parts: Vec<String> = weights.iter().map(ToString::to_string).collect();
                if total <= 0 {
                    out.error(
                        "MSH0105",
                        r,
                        format!("{field}.route"),
                        format!(
                            "weights {} add up to {total}: no destination gets traffic",
                            parts.join(" + ")
                        ),
                    );
                } else if total != 100 {
                    // Istio's weights are relative: each destination gets weight / total, which is
                    // also what the router does; the sum is still most likely a typo.
                    let shares: Vec<String> = weights
                        .iter()
                        .map(|w| format!("{:.1} %", *w as f64 * 100.0 / total as f64))
                        .collect();
                    out.warning(
                        "MSH0105",
                        r,
                        format!("{field}.route"),
                        format!(
                            "weights {} add up to {total}, not 100; Istio splits them relatively: {}",
                            parts.join(" + "),
                            shares.join(" / ")
                        ),
                    );
                }
            }
            for (d, dest) in route.route.iter().enumerate() {
                let dfield = format!("{field}.route[{d}]");
                if let Some(w) = dest.weight
                    && w < 0
                {
                    out.error(
                        "MSH0108",
                        r,
                        format!("{dfield}.weight"),
                        format!("negative weight {w}"),
                    );
                }
                check_destination(index, out, r, &dfield, dest);
            }
        }
    }
}

fn check_string_match(out: &mut Findings, r: &Resource, field: &str, sm: &StringMatch) {
    let set = [sm.exact.is_some(), sm.prefix.is_some(), sm.regex.is_some()];
    if set.iter().filter(|s| **s).count() > 1 {
        out.error("MSH0108", r, field, "set only one of exact, prefix, regex");
    }
    if let Some(regex) = &sm.regex
        && let Err(e) = compile_regex(regex, &r.qualified_name(), field)
    {
        let detail = match &e {
            crate::route::RouteError::InvalidRegex { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        out.error(
            "MSH0108",
            r,
            format!("{field}.regex"),
            format!("invalid regex: {detail}"),
        );
    }
}

fn check_gateway_ref(
    index: &Index<'_>,
    out: &mut Findings,
    r: &Resource,
    gateway: &str,
    field: &str,
) {
    if gateway == "mesh" {
        return;
    }
    let (namespace, name) = gateway.split_once('/').unwrap_or((ns(r), gateway));
    let exists = index
        .gateways
        .iter()
        .any(|(g, _)| ns(g) == namespace && g.name() == name);
    if !exists {
        out.error(
            "MSH0107",
            r,
            field,
            format!("gateway `{gateway}` does not exist (looked for Gateway {namespace}/{name})"),
        );
    }
}

fn check_destination(
    index: &Index<'_>,
    out: &mut Findings,
    r: &Resource,
    field: &str,
    dest: &crate::resources::HttpRouteDestination,
) {
    let host = &dest.destination.host;
    let fqdn = resolve_short_name(host, ns(r));
    let Some((svc_resource, svc)) = index.service_for_host(&fqdn) else {
        out.error(
            "MSH0101",
            r,
            format!("{field}.destination.host"),
            format!("host `{host}` ({fqdn}) is not a Service in the loaded resources"),
        );
        return;
    };
    if let Some(port) = &dest.destination.port
        && !svc.spec.ports.iter().any(|p| p.port == port.number)
    {
        let known: Vec<String> = svc.spec.ports.iter().map(|p| p.port.to_string()).collect();
        out.error(
            "MSH0102",
            r,
            format!("{field}.destination.port.number"),
            format!(
                "port {} is not a port of Service {} (it has {})",
                port.number,
                svc_resource.qualified_name(),
                known.join(", ")
            ),
        );
    }
    let Some(subset) = &dest.destination.subset else {
        return;
    };
    let rules: Vec<_> = index
        .destination_rules
        .iter()
        .filter(|(d, dr)| resolve_short_name(&dr.spec.host, ns(d)) == fqdn)
        .collect();
    let sfield = format!("{field}.destination.subset");
    if rules.is_empty() {
        out.error(
            "MSH0103",
            r,
            sfield,
            format!("subset `{subset}` is used but no DestinationRule has host {fqdn}"),
        );
        return;
    }
    if !rules
        .iter()
        .any(|(_, dr)| dr.spec.subsets.iter().any(|s| &s.name == subset))
    {
        let names: Vec<String> = rules
            .iter()
            .flat_map(|(d, dr)| {
                dr.spec
                    .subsets
                    .iter()
                    .map(move |s| format!("{} ({})", s.name, d.qualified_name()))
            })
            .collect();
        out.error(
            "MSH0103",
            r,
            sfield,
            format!(
                "subset `{subset}` is not defined for {fqdn}; defined: {}",
                names.join(", ")
            ),
        );
    }
}

fn labels(map: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(","))
}

// ---------------------------------------------------------------- Services (MSH02xx)

fn check_services(index: &Index<'_>, out: &mut Findings) {
    for &(r, svc) in &index.services {
        for (i, port) in svc.spec.ports.iter().enumerate() {
            let field = format!("spec.ports[{i}]");
            if port.app_protocol.is_none() {
                match &port.name {
                    None => out.warning(
                        "MSH0201",
                        r,
                        format!("{field}.name"),
                        format!("port {} has no name and no appProtocol; Istio cannot tell its protocol", port.port),
                    ),
                    Some(name) if !names_protocol(name) => out.warning(
                        "MSH0201",
                        r,
                        format!("{field}.name"),
                        format!(
                            "port name `{name}` does not start with an Istio protocol ({}) followed by `-` or nothing, \
                             and there is no appProtocol",
                            PORT_PROTOCOLS.join(", ")
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        let Some(selector) = &svc.spec.selector else {
            continue;
        };
        let selected = index.deployments_selected(ns(r), selector);
        if selected.is_empty() {
            out.warning(
                "MSH0203",
                r,
                "spec.selector",
                format!(
                    "selector {} matches no Deployment's pod template in namespace {}",
                    labels(selector),
                    ns(r)
                ),
            );
            continue;
        }
        for (i, port) in svc.spec.ports.iter().enumerate() {
            let target = port
                .target_port
                .clone()
                .unwrap_or(IntOrString::Int(port.port));
            for (d, deployment) in &selected {
                let containers = &deployment.spec.template.spec.containers;
                if !containers.iter().any(|c| container_has_port(c, &target)) {
                    out.error(
                        "MSH0202",
                        r,
                        format!("spec.ports[{i}].targetPort"),
                        format!(
                            "targetPort {target} is not a containerPort of Deployment {} ({})",
                            d.qualified_name(),
                            d.provenance
                        ),
                    );
                }
            }
        }
    }
}

fn names_protocol(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    PORT_PROTOCOLS.iter().any(|p| {
        name == *p
            || name
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('-'))
    })
}

fn container_has_port(container: &Container, port: &IntOrString) -> bool {
    container.ports.iter().any(|p| match port {
        IntOrString::Int(n) => p.container_port == *n,
        IntOrString::Str(name) => p.name.as_deref() == Some(name.as_str()),
    })
}

// ---------------------------------------------------------------- security (MSH03xx)

fn check_namespaces(index: &Index<'_>, out: &mut Findings) {
    let mut workload_namespaces: BTreeMap<&str, &Resource> = BTreeMap::new();
    for &(r, _) in &index.deployments {
        workload_namespaces.entry(ns(r)).or_insert(r);
    }
    for (&namespace, &first_deployment) in &workload_namespaces {
        match index.namespaces.get(namespace) {
            None => out.warning(
                "MSH0301",
                first_deployment,
                "metadata.namespace",
                format!("namespace {namespace} is not declared in the loaded resources, so its injection label cannot be checked"),
            ),
            Some(ns_resource) => {
                let labels = &ns_resource.metadata.labels;
                let injected = labels.get("istio-injection").map(String::as_str) == Some("enabled")
                    || labels.contains_key("istio.io/rev");
                if !injected {
                    out.error(
                        "MSH0301",
                        ns_resource,
                        "metadata.labels",
                        format!(
                            "namespace {namespace} runs Deployments but is not labelled istio-injection=enabled \
                             (or istio.io/rev), so its pods get no sidecar"
                        ),
                    );
                }
            }
        }
        let (mode, decided_by) = index.namespace_mtls(namespace);
        if mode != "STRICT" {
            match decided_by {
                Some(pa) => out.error(
                    "MSH0302",
                    pa,
                    "spec.mtls.mode",
                    format!("mTLS mode {mode} applies to workload namespace {namespace}; STRICT is required"),
                ),
                None => out.error(
                    "MSH0302",
                    index.namespaces.get(namespace).copied().unwrap_or(first_deployment),
                    "metadata.name",
                    format!(
                        "no PeerAuthentication makes namespace {namespace} STRICT (neither namespace-wide there \
                         nor mesh-wide in {ROOT_NAMESPACE}); Istio defaults to PERMISSIVE"
                    ),
                ),
            }
        }
    }
    for &(r, pa) in &index.peer_authentications {
        if !pa.spec.is_namespace_wide() && !matches!(pa.spec.mode(), "STRICT" | "UNSET") {
            out.error(
                "MSH0302",
                r,
                "spec.mtls.mode",
                format!(
                    "workload policy sets mTLS mode {}; STRICT is required",
                    pa.spec.mode()
                ),
            );
        }
        let documented = r
            .metadata
            .annotations
            .get(PORT_MTLS_EXCEPTION_ANNOTATION)
            .is_some_and(|reason| !reason.trim().is_empty());
        for (port, mtls) in &pa.spec.port_level_mtls {
            let mode = mtls.mode.as_deref().unwrap_or("UNSET");
            if !matches!(mode, "STRICT" | "UNSET") && !documented {
                out.error(
                    "MSH0303",
                    r,
                    format!("spec.portLevelMtls.{port}.mode"),
                    format!(
                        "port {port} is set to {mode}; document why with the annotation \
                         {PORT_MTLS_EXCEPTION_ANNOTATION}: <reason>, or remove the exception"
                    ),
                );
            }
        }
    }
}

fn check_authorization(index: &Index<'_>, out: &mut Findings) {
    for &r in &index.authorization_policies {
        let ResourceBody::AuthorizationPolicy(ap) = &r.body else {
            continue;
        };
        for (i, rule) in ap.spec.rules.iter().enumerate() {
            for (f, from) in rule.from.iter().enumerate() {
                let lists = [
                    ("principals", &from.source.principals),
                    ("notPrincipals", &from.source.not_principals),
                ];
                for (what, principals) in lists {
                    for (p, principal) in principals.iter().enumerate() {
                        let field = format!("spec.rules[{i}].from[{f}].source.{what}[{p}]");
                        check_principal(index, out, r, &field, principal);
                    }
                }
            }
        }
    }
}

fn check_principal(
    index: &Index<'_>,
    out: &mut Findings,
    r: &Resource,
    field: &str,
    principal: &str,
) {
    if principal.contains('*') || KNOWN_EXTERNAL_PRINCIPALS.contains(&principal) {
        return;
    }
    let parts: Vec<&str> = principal.split('/').collect();
    let [_trust_domain, "ns", namespace, "sa", account] = parts.as_slice() else {
        out.warning(
            "MSH0304",
            r,
            field,
            format!("principal `{principal}` is not of the form <trust-domain>/ns/<namespace>/sa/<serviceaccount>"),
        );
        return;
    };
    if !index.service_account_exists(namespace, account) {
        out.error(
            "MSH0304",
            r,
            field,
            format!("principal `{principal}` names ServiceAccount {namespace}/{account}, which does not exist"),
        );
    }
}

fn check_destination_rules(index: &Index<'_>, out: &mut Findings) {
    for &(r, dr) in &index.destination_rules {
        let host = resolve_short_name(&dr.spec.host, ns(r));
        let strict = host
            .strip_suffix(&format!(".svc.{CLUSTER_DOMAIN}"))
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(_, namespace)| index.namespace_mtls(namespace).0 == "STRICT");
        if let Some((svc_resource, svc)) = index.service_for_host(&host)
            && let Some(selector) = &svc.spec.selector
        {
            for (s, subset) in dr.spec.subsets.iter().enumerate() {
                let mut wanted = selector.clone();
                wanted.extend(subset.labels.clone());
                if index
                    .deployments_selected(ns(svc_resource), &wanted)
                    .is_empty()
                {
                    out.error(
                        "MSH0104",
                        r,
                        format!("spec.subsets[{s}].labels"),
                        format!(
                            "subset `{}` (labels {}) selects no Deployment pods behind Service {} (selector {})",
                            subset.name,
                            labels(&subset.labels),
                            svc_resource.qualified_name(),
                            labels(selector)
                        ),
                    );
                }
            }
        }
        let top = dr.spec.traffic_policy.as_ref();
        match top.and_then(|t| t.tls.as_ref()) {
            None => out.warning(
                "MSH0307",
                r,
                "spec.trafficPolicy.tls.mode",
                "no tls mode set; the mesh expects ISTIO_MUTUAL to be explicit",
            ),
            Some(tls) => check_tls_mode(
                out,
                r,
                "spec.trafficPolicy.tls.mode",
                Some(tls.mode.as_deref().unwrap_or("DISABLE")),
                strict,
            ),
        }
        for (p, port) in top
            .iter()
            .flat_map(|t| t.port_level_settings.iter())
            .enumerate()
        {
            if let Some(tls) = &port.tls {
                check_tls_mode(
                    out,
                    r,
                    &format!("spec.trafficPolicy.portLevelSettings[{p}].tls.mode"),
                    tls.mode.as_deref(),
                    strict,
                );
            }
        }
        for (s, subset) in dr.spec.subsets.iter().enumerate() {
            if let Some(tls) = subset.traffic_policy.as_ref().and_then(|t| t.tls.as_ref()) {
                check_tls_mode(
                    out,
                    r,
                    &format!("spec.subsets[{s}].trafficPolicy.tls.mode"),
                    tls.mode.as_deref(),
                    strict,
                );
            }
        }
    }
}

fn check_tls_mode(out: &mut Findings, r: &Resource, field: &str, mode: Option<&str>, strict: bool) {
    match mode {
        None | Some("ISTIO_MUTUAL") => {}
        Some(mode) => {
            let why = if strict {
                "; the destination requires STRICT mTLS, so its sidecars will reject these connections"
            } else {
                ""
            };
            out.warning(
                "MSH0307",
                r,
                field,
                format!("tls mode is {mode}, expected ISTIO_MUTUAL{why}"),
            );
        }
    }
}

// ---------------------------------------------------------------- Deployments (MSH0305/6, MSH04xx)

fn check_deployments(index: &Index<'_>, out: &mut Findings) {
    for &(r, d) in &index.deployments {
        let pod = &d.spec.template.spec;
        match &pod.service_account_name {
            None => out.warning(
                "MSH0306",
                r,
                "spec.template.spec.serviceAccountName",
                "not set: the pods run as the namespace's `default` ServiceAccount, so AuthorizationPolicies cannot tell them apart",
            ),
            Some(sa) if !index.service_account_exists(ns(r), sa) => out.error(
                "MSH0305",
                r,
                "spec.template.spec.serviceAccountName",
                format!("ServiceAccount {}/{sa} does not exist", ns(r)),
            ),
            Some(_) => {}
        }
        for (c, container) in pod.containers.iter().enumerate() {
            let base = format!("spec.template.spec.containers[{c}]");
            let probes = [
                ("livenessProbe", &container.liveness_probe, Some("/healthz")),
                (
                    "readinessProbe",
                    &container.readiness_probe,
                    Some("/readyz"),
                ),
                ("startupProbe", &container.startup_probe, None),
            ];
            for (what, probe, expected_path) in probes {
                let field = format!("{base}.{what}");
                match probe {
                    None if expected_path.is_some() => out.warning(
                        "MSH0403",
                        r,
                        field,
                        format!("container `{}` has no {what}", container.name),
                    ),
                    None => {}
                    Some(probe) => check_probe(out, r, &field, container, probe, expected_path),
                }
            }
        }
    }
}

fn check_probe(
    out: &mut Findings,
    r: &Resource,
    field: &str,
    container: &Container,
    probe: &Probe,
    expected_path: Option<&str>,
) {
    let port = match (&probe.http_get, &probe.tcp_socket) {
        (Some(get), _) => {
            let path = get.path.as_deref().unwrap_or("/");
            if let Some(expected) = expected_path
                && path != expected
            {
                out.warning(
                    "MSH0402",
                    r,
                    format!("{field}.httpGet.path"),
                    format!("path is `{path}`; the services serve this probe at `{expected}`"),
                );
            }
            Some((format!("{field}.httpGet.port"), &get.port))
        }
        (None, Some(tcp)) => Some((format!("{field}.tcpSocket.port"), &tcp.port)),
        (None, None) => None,
    };
    if let Some((pfield, port)) = port
        && !container_has_port(container, port)
    {
        let known: Vec<String> = container
            .ports
            .iter()
            .map(|p| match &p.name {
                Some(n) => format!("{n}={}", p.container_port),
                None => p.container_port.to_string(),
            })
            .collect();
        out.error(
            "MSH0401",
            r,
            pfield,
            format!(
                "probe port {port} is not a port of container `{}` (it declares {})",
                container.name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        );
    }
}

/// True when any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}
