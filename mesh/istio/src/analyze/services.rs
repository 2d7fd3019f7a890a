//! Services: port protocols, target ports, selectors (MSH02xx).

use super::routing::labels;
use super::*;

pub(super) fn check_services(index: &Index<'_>, out: &mut Findings) {
    for &(r, svc) in &index.services {
        for (i, port) in svc.spec.ports.iter().enumerate() {
            let field = format!("spec.ports[{i}]");
            if port.app_protocol.is_none() {
                match &port.name {
                    None => out.warning(
                        Code::PortNameWithoutProtocol,
                        r,
                        format!("{field}.name"),
                        format!("port {} has no name and no appProtocol; Istio cannot tell its protocol", port.port),
                    ),
                    Some(name) if !names_protocol(name) => out.warning(
                        Code::PortNameWithoutProtocol,
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
                Code::ServiceSelectsNothing,
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
                        Code::TargetPortNotInContainer,
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

pub(super) fn names_protocol(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    PORT_PROTOCOLS.iter().any(|p| {
        name == *p
            || name
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('-'))
    })
}

pub(super) fn container_has_port(container: &Container, port: &IntOrString) -> bool {
    container.ports.iter().any(|p| match port {
        IntOrString::Int(n) => p.container_port == *n,
        IntOrString::Str(name) => p.name.as_deref() == Some(name.as_str()),
    })
}
