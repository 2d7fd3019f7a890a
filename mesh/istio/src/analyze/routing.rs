//! VirtualServices: hosts, destinations, subsets, weights, route order, gateways, values (MSH01xx).

use super::*;

pub(super) fn check_virtual_services(index: &Index<'_>, out: &mut Findings) {
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
                        Code::DuplicateHost,
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
                    Code::UnreachableRoute,
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
                        Code::UnevaluableMatch,
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
                out.error(
                    Code::InvalidValue,
                    r,
                    format!("{field}.timeout"),
                    e.to_string(),
                );
            }
            if let Some(retries) = &route.retries {
                if retries.attempts < 0 {
                    out.error(
                        Code::InvalidValue,
                        r,
                        format!("{field}.retries.attempts"),
                        "attempts must not be negative",
                    );
                }
                if let Some(t) = &retries.per_try_timeout
                    && let Err(e) = parse_duration(t)
                {
                    out.error(
                        Code::InvalidValue,
                        r,
                        format!("{field}.retries.perTryTimeout"),
                        e.to_string(),
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
                if let Some(w) = dest.weight
                    && w < 0
                {
                    out.error(
                        Code::InvalidValue,
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

pub(super) fn check_string_match(out: &mut Findings, r: &Resource, field: &str, sm: &StringMatch) {
    let set = [sm.exact.is_some(), sm.prefix.is_some(), sm.regex.is_some()];
    if set.iter().filter(|s| **s).count() > 1 {
        out.error(
            Code::InvalidValue,
            r,
            field,
            "set only one of exact, prefix, regex",
        );
    }
    if let Some(regex) = &sm.regex
        && let Err(e) = compile_regex(regex, &r.qualified_name(), field)
    {
        let detail = match &e {
            crate::route::RouteError::InvalidRegex { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        out.error(
            Code::InvalidValue,
            r,
            format!("{field}.regex"),
            format!("invalid regex: {detail}"),
        );
    }
}

pub(super) fn check_gateway_ref(
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
            Code::UnknownGateway,
            r,
            field,
            format!("gateway `{gateway}` does not exist (looked for Gateway {namespace}/{name})"),
        );
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
            Code::UnknownSubset,
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
            Code::UnknownSubset,
            r,
            sfield,
            format!(
                "subset `{subset}` is not defined for {fqdn}; defined: {}",
                names.join(", ")
            ),
        );
    }
}

pub(super) fn labels(map: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(","))
}
