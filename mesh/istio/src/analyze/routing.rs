//! VirtualServices: destination hosts and ports, weights, conditions the lab cannot evaluate
//! (MSH01xx). Subsets, gateways, route order, duplicate hosts and values are Istio's to judge
//! (`istioctl analyze` / `validate`; see [`super::Code`]).

use super::*;

pub(super) fn check_virtual_services(index: &Index<'_>, out: &mut Findings) {
    for &(r, vs) in &index.virtual_services {
        for (i, route) in vs.spec.http.iter().enumerate() {
            let field = format!("spec.http[{i}]");
            for (m, block) in route.matches.iter().flatten().enumerate() {
                let mfield = format!("{field}.match[{m}]");
                if let Some(condition) = block.unsupported_condition() {
                    out.warning(
                        Code::UnevaluableMatch,
                        r,
                        format!("{mfield}.{condition}"),
                        "the local lab's router cannot evaluate this condition and will refuse requests that reach it",
                    );
                }
            }
            if route.route.len() > 1 {
                let weights: Vec<i64> = route.route.iter().map(|d| d.weight.unwrap_or(0)).collect();
                // Wide enough that no list of i64 weights overflows it.
                let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
                let parts: Vec<String> = weights.iter().map(ToString::to_string).collect();
                if total <= 0 {
                    out.error(
                        Code::WeightsNot100,
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
                        Code::WeightsNot100,
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
                check_destination(index, out, r, &dfield, dest);
            }
        }
    }
}

pub(super) fn check_destination(
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
            Code::DanglingHost,
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
            Code::UnknownDestinationPort,
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
}

pub(super) fn labels(map: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(","))
}
