//! Following a request through the tier chain: frontend → backend → ml.
//!
//! Every tier propagates the routing headers unchanged, so each hop's routing decision is
//! independent and a trail's probability is the product of its hops' probabilities.

use http::HeaderMap;

use crate::host::service_namespace;
use crate::route::{Caller, Destination, RouteError, RouteTable};

/// One tier of the chain: its name, the host other tiers call it by, and the path they call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    pub name: &'static str,
    pub host: &'static str,
    pub path: &'static str,
}

/// The host browsers use; the ingress gateway routes it with the frontend's VirtualService.
pub const EDGE_HOST: &str = "frontend.local";

/// The tiers in call order, with the endpoint each caller uses (see the project's DESIGN).
pub const TIER_CHAIN: [Tier; 3] = [
    Tier {
        name: "frontend",
        host: "frontend.frontend.svc.cluster.local",
        path: "/analyze",
    },
    Tier {
        name: "backend",
        host: "backend.backend.svc.cluster.local",
        path: "/api/v1/analyze",
    },
    Tier {
        name: "ml",
        host: "ml.ml.svc.cluster.local",
        path: "/v1/classify",
    },
];

/// One hop of a trail: where the request went and how likely that was at this hop.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    pub destination: Destination,
    pub probability: f64,
}

impl Hop {
    /// `tier/subset`, e.g. `backend/canary` (`*` when the route names no subset).
    pub fn label(&self) -> String {
        let tier = self.destination.fqdn.split('.').next().unwrap_or_default();
        format!(
            "{tier}/{}",
            self.destination.subset.as_deref().unwrap_or("*")
        )
    }
}

/// A full path through the chain, with its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Trail {
    pub hops: Vec<Hop>,
    pub probability: f64,
}

impl Trail {
    /// `frontend/canary → backend/stable → ml/stable`.
    pub fn label(&self) -> String {
        self.hops
            .iter()
            .map(Hop::label)
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// The chain position of the tier a destination host names, if it is one of the chain's tiers.
pub fn tier_index(host: &str) -> Option<usize> {
    let host = host.to_ascii_lowercase();
    TIER_CHAIN.iter().position(|t| {
        t.host == host
            || t.host
                .strip_prefix(host.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Who routes a request entering at `host`: the Gateway that accepts the host, else (a host called
/// from inside the mesh) a sidecar in the host's own namespace.
pub fn entry_caller(table: &RouteTable, host: &str) -> Caller {
    table.gateway_for(host).unwrap_or_else(|| {
        let fqdn = crate::host::resolve_from(host, "default");
        Caller::sidecar(service_namespace(&fqdn).unwrap_or("default"))
    })
}

/// Every trail a request entering at `host` with `path` and `headers` can take, most likely first.
/// Destinations with probability 0 are left out. The first hop is routed by [`entry_caller`],
/// every later one by the sidecar of the tier that calls it.
pub fn follow(
    table: &RouteTable,
    host: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<Vec<Trail>, RouteError> {
    let mut trails = Vec::new();
    let caller = entry_caller(table, host);
    extend(
        table,
        &caller,
        host,
        path,
        headers,
        Vec::new(),
        1.0,
        &mut trails,
    )?;
    trails.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    Ok(trails)
}

#[allow(clippy::too_many_arguments)]
fn extend(
    table: &RouteTable,
    caller: &Caller,
    host: &str,
    path: &str,
    headers: &HeaderMap,
    so_far: Vec<Hop>,
    probability: f64,
    out: &mut Vec<Trail>,
) -> Result<(), RouteError> {
    let decision = table.decide(caller, host, path, headers)?;
    for weighted in decision.destinations.iter().filter(|w| w.probability > 0.0) {
        let mut hops = so_far.clone();
        hops.push(Hop {
            destination: weighted.destination.clone(),
            probability: weighted.probability,
        });
        let p = probability * weighted.probability;
        // Guard against routing loops: the chain is at most as long as the tier list.
        let next = tier_index(&weighted.destination.fqdn)
            .and_then(|i| TIER_CHAIN.get(i + 1))
            .filter(|_| hops.len() < TIER_CHAIN.len());
        match next {
            Some(tier) => {
                let from = Caller::sidecar(
                    service_namespace(&weighted.destination.fqdn).unwrap_or("default"),
                );
                extend(table, &from, tier.host, tier.path, headers, hops, p, out)?
            }
            None => out.push(Trail {
                hops,
                probability: p,
            }),
        }
    }
    Ok(())
}

/// The probability that each hop of the chain is served by `subset`, for a request entering at
/// the edge with `headers`: `[(tier, probability)]` in chain order.
pub fn subset_share_per_hop(
    table: &RouteTable,
    headers: &HeaderMap,
    subset: &str,
) -> Result<Vec<(&'static str, f64)>, RouteError> {
    TIER_CHAIN
        .iter()
        .enumerate()
        .map(|(i, tier)| {
            let (caller, host) = match i.checked_sub(1).and_then(|c| TIER_CHAIN.get(c)) {
                // Each tier calls the next from its own namespace (the tier's name).
                Some(calling) => (Caller::sidecar(calling.name), tier.host),
                None => (entry_caller(table, EDGE_HOST), EDGE_HOST),
            };
            let decision = table.decide(&caller, host, tier.path, headers)?;
            Ok((tier.name, decision.probability_of_subset(subset)))
        })
        .collect()
}
