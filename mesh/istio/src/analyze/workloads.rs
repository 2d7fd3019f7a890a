//! Deployments: ServiceAccounts (MSH0305, MSH0306) and probes (MSH04xx).

use super::services::container_has_port;
use super::*;
use crate::resources::Probe;

pub(super) fn check_deployments(index: &Index<'_>, out: &mut Findings) {
    for &(r, d) in &index.deployments {
        let pod = &d.spec.template.spec;
        match &pod.service_account_name {
            None => out.warning(
                Code::DefaultServiceAccount,
                r,
                "spec.template.spec.serviceAccountName",
                "not set: the pods run as the namespace's `default` ServiceAccount, so AuthorizationPolicies cannot tell them apart",
            ),
            Some(sa) if !index.service_account_exists(ns(r), sa) => out.error(
                Code::MissingServiceAccount,
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
                        Code::MissingProbe,
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

pub(super) fn check_probe(
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
                    Code::UnconventionalProbePath,
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
            Code::ProbePortNotInContainer,
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
