//! Semantic checks over a set of resources, in the spirit of `istioctl analyze`.
//!
//! Every [`Finding`] names the file, the resource and the field it is about. Codes are a [`Code`]
//! with a stable id: `MSH01xx` routing, `MSH02xx` Services, `MSH03xx` mesh security, `MSH04xx`
//! probes. The checks are split by concern: [`routing`], [`services`], [`security`],
//! [`workloads`]; this module holds the finding type and the index they share.

mod code;
mod routing;
mod security;
mod services;
mod workloads;

pub use code::Code;
use routing::check_virtual_services;
use security::{check_authorization, check_destination_rules, check_namespaces};
use services::check_services;
use workloads::check_deployments;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::host::{CLUSTER_DOMAIN, resolve_short_name};
use crate::resources::{
    Container, Deployment, DestinationRule, Gateway, IntOrString, PeerAuthentication, Resource,
    ResourceBody, Service, VirtualService, selects,
};

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
    pub code: Code,
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
            code: Code::Unexecuted,
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
        code: Code,
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
        code: Code,
        at: &Resource,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) {
        self.push(Severity::Error, code, at, field, msg);
    }

    fn warning(
        &mut self,
        code: Code,
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

pub(super) fn ns(r: &Resource) -> &str {
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

/// True when any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}
