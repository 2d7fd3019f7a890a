//! Mesh security: injection, STRICT mTLS, port exceptions, principals, ServiceAccounts named by
//! policies, DestinationRule TLS (MSH0301–MSH0304, MSH0307).

use super::routing::labels;
use super::*;

pub(super) fn check_namespaces(index: &Index<'_>, out: &mut Findings) {
    let mut workload_namespaces: BTreeMap<&str, &Resource> = BTreeMap::new();
    for &(r, _) in &index.deployments {
        workload_namespaces.entry(ns(r)).or_insert(r);
    }
    for (&namespace, &first_deployment) in &workload_namespaces {
        match index.namespaces.get(namespace) {
            None => out.warning(
                Code::InjectionDisabled,
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
                        Code::InjectionDisabled,
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
                    Code::MtlsNotStrict,
                    pa,
                    "spec.mtls.mode",
                    format!("mTLS mode {mode} applies to workload namespace {namespace}; STRICT is required"),
                ),
                None => out.error(
                    Code::MtlsNotStrict,
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
                Code::MtlsNotStrict,
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
                    Code::UndocumentedPortMtlsException,
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

pub(super) fn check_authorization(index: &Index<'_>, out: &mut Findings) {
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

pub(super) fn check_principal(
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
            Code::UnknownPrincipal,
            r,
            field,
            format!("principal `{principal}` is not of the form <trust-domain>/ns/<namespace>/sa/<serviceaccount>"),
        );
        return;
    };
    if !index.service_account_exists(namespace, account) {
        out.error(
            Code::UnknownPrincipal,
            r,
            field,
            format!("principal `{principal}` names ServiceAccount {namespace}/{account}, which does not exist"),
        );
    }
}

pub(super) fn check_destination_rules(index: &Index<'_>, out: &mut Findings) {
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
                        Code::SubsetSelectsNothing,
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
                Code::TlsNotIstioMutual,
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

pub(super) fn check_tls_mode(
    out: &mut Findings,
    r: &Resource,
    field: &str,
    mode: Option<&str>,
    strict: bool,
) {
    match mode {
        None | Some("ISTIO_MUTUAL") => {}
        Some(mode) => {
            let why = if strict {
                "; the destination requires STRICT mTLS, so its sidecars will reject these connections"
            } else {
                ""
            };
            out.warning(
                Code::TlsNotIstioMutual,
                r,
                field,
                format!("tls mode is {mode}, expected ISTIO_MUTUAL{why}"),
            );
        }
    }
}
