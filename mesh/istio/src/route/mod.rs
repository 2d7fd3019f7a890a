//! Istio HTTP routing, evaluated: which destinations a request may go to, and how likely each is.
//!
//! Semantics follow Istio's VirtualService: the first http route whose match holds wins; match
//! blocks are OR'ed; inside a block uri, authority, headers, withoutHeaders and queryParams are
//! AND'ed; header names are case-insensitive, values case-sensitive; a lone destination weighs 100.
//! Uri `exact` and `regex` look at the path without its query string, `prefix` at the whole path
//! (as Envoy does); regexes must match the whole value (RE2 full-match semantics).
//!
//! Context, as Istio has it: a VirtualService applies where `spec.gateways` binds it: at a Gateway
//! (`ns/name`, or `name` in the VirtualService's namespace) for requests entering there, and on the
//! sidecars (`mesh`, or no `gateways` at all) for requests between workloads. A [`Caller`] says
//! which of the two a request is in. Short hosts in a VirtualService or DestinationRule resolve in
//! its own namespace; a caller's short host in the caller's namespace (see [`crate::host`]).
//! Weights are relative, as Istio's `HTTPRouteDestination.weight` is: a destination gets
//! `weight / sum of weights` of the traffic (the analyzer warns, MSH0105, when the sum is not 100).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::duration::{DurationError, parse_duration};
use crate::host::{covers, resolve_from, resolve_short_name, strip_port};
use crate::resources::{HttpRoute, Resource, ResourceBody};
use crate::unexecuted::{Unexecuted, unexecuted};

mod fault;
mod matching;

use fault::compile_fault;
pub use matching::compile_regex;
use matching::{CompiledMatch, Request, block_matches, compile_match};

/// Where a request is being routed: entering the mesh at a Gateway, or leaving a workload's
/// sidecar. Decides which VirtualServices apply (their `spec.gateways`) and how short hosts resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The ingress gateway named `namespace/name` (a Gateway resource).
    Gateway(String),
    /// A sidecar in `namespace`: VirtualServices bound to `mesh` apply; short hosts resolve here.
    Sidecar { namespace: String },
}

impl Caller {
    pub fn sidecar(namespace: &str) -> Self {
        Caller::Sidecar {
            namespace: namespace.to_owned(),
        }
    }
}

/// The name VirtualServices use to bind themselves to every sidecar.
pub const MESH_GATEWAY: &str = "mesh";

/// Why a route table could not be built or a request could not be routed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("no VirtualService routes host `{host}` for {caller}")]
    NoRouteForHost { host: String, caller: String },
    #[error(
        "VirtualService {virtual_service}: no http route matches path `{path}` with the given headers"
    )]
    NoMatchingRoute {
        virtual_service: String,
        path: String,
    },
    #[error(
        "VirtualService {virtual_service}: {field}: the `{condition}` condition cannot be evaluated from host, path and headers"
    )]
    UnsupportedMatch {
        virtual_service: String,
        field: String,
        condition: String,
    },
    #[error("VirtualService {virtual_service}: {field}: the route has no destinations ({reason})")]
    NoDestinations {
        virtual_service: String,
        field: String,
        reason: &'static str,
    },
    #[error("VirtualService {virtual_service}: {field}: invalid regex: {source}")]
    InvalidRegex {
        virtual_service: String,
        field: String,
        #[source]
        source: Box<regex::Error>,
    },
    #[error("VirtualService {virtual_service}: {field}: {source}")]
    InvalidDuration {
        virtual_service: String,
        field: String,
        #[source]
        source: DurationError,
    },
    #[error("VirtualService {virtual_service}: {field}: {reason}")]
    InvalidValue {
        virtual_service: String,
        field: String,
        reason: String,
    },
}

/// Where a request may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The destination host as written in the VirtualService.
    pub host: String,
    /// The host resolved in the VirtualService's namespace (a Service FQDN for short names).
    pub fqdn: String,
    pub subset: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightedDestination {
    pub destination: Destination,
    /// Share of matching requests sent here, in [0, 1]; a decision's probabilities sum to 1.
    pub probability: f64,
}

/// Istio HTTP retry policy of a route. `None` in a decision means the mesh default applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retries {
    pub attempts: u32,
    pub per_try_timeout: Option<Duration>,
    pub retry_on: Option<String>,
}

/// Istio HTTP fault injection of a route: what a hop does to a share of the requests before (or
/// instead of) forwarding them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fault {
    pub delay: Option<Delay>,
    pub abort: Option<Abort>,
}

/// Hold the request for `fixed_delay`, for `percentage` (0–100) of the requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Delay {
    pub fixed_delay: Duration,
    pub percentage: f64,
}

/// Answer `http_status` without forwarding, for `percentage` (0–100) of the requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Abort {
    pub http_status: u16,
    pub percentage: f64,
}

/// The outcome of routing one request at one hop: where it may go, and the route's timeout,
/// retries and fault injection, which the hop executes.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDecision {
    pub route_name: Option<String>,
    pub destinations: Vec<WeightedDestination>,
    pub timeout: Option<Duration>,
    pub retries: Option<Retries>,
    pub fault: Option<Fault>,
}

/// Returned by [`RouteDecision::pick`] only for a hand-built decision with no destinations
/// ([`RouteTable::decide`] never produces one): a destination with an empty host.
static NOWHERE: Destination = Destination {
    host: String::new(),
    fqdn: String::new(),
    subset: None,
    port: None,
};

impl RouteDecision {
    /// Picks one destination given a uniform roll in [0, 1) (values outside are clamped).
    pub fn pick(&self, roll: f64) -> &Destination {
        let roll = if roll.is_nan() {
            0.0
        } else {
            roll.clamp(0.0, 1.0)
        };
        let mut cumulative = 0.0;
        for weighted in &self.destinations {
            cumulative += weighted.probability;
            if weighted.probability > 0.0 && roll < cumulative {
                return &weighted.destination;
            }
        }
        // Rounding left the roll past the last boundary: the last destination that can be chosen.
        self.destinations
            .iter()
            .rev()
            .find(|w| w.probability > 0.0)
            .or(self.destinations.last())
            .map_or(&NOWHERE, |w| &w.destination)
    }

    /// Probability that this hop goes to `subset` (summed over destinations).
    pub fn probability_of_subset(&self, subset: &str) -> f64 {
        self.destinations
            .iter()
            .filter(|w| w.destination.subset.as_deref() == Some(subset))
            .map(|w| w.probability)
            .sum()
    }
}

#[derive(Debug)]
struct CompiledRoute {
    field: String,
    name: Option<String>,
    /// Empty: matches everything.
    blocks: Vec<CompiledMatch>,
    outcome: Result<Vec<WeightedDestination>, &'static str>,
    timeout: Option<Duration>,
    retries: Option<Retries>,
    fault: Option<Fault>,
}

#[derive(Debug)]
struct VirtualHost {
    /// `namespace/name` of the VirtualService.
    name: String,
    /// Hosts, short names resolved against the VirtualService's namespace.
    hosts: Vec<String>,
    /// Where it applies: `namespace/name` of Gateways, and/or [`MESH_GATEWAY`].
    gateways: Vec<String>,
    routes: Vec<CompiledRoute>,
}

impl VirtualHost {
    fn applies_to(&self, caller: &Caller) -> bool {
        match caller {
            Caller::Gateway(gateway) => self.gateways.iter().any(|g| g == gateway),
            Caller::Sidecar { .. } => self.gateways.iter().any(|g| g == MESH_GATEWAY),
        }
    }
}

/// Routing rules from VirtualServices and subsets from DestinationRules, ready to evaluate.
#[derive(Debug, Default)]
pub struct RouteTable {
    virtual_hosts: Vec<VirtualHost>,
    /// Resolved DestinationRule host → subset name → pod labels.
    subsets: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// Gateway `namespace/name` → the hosts its servers accept.
    gateways: BTreeMap<String, Vec<String>>,
    unexecuted: Vec<Unexecuted>,
}

/// `spec.gateways` entries as `namespace/name` (short names in the VirtualService's namespace);
/// none means `mesh`.
fn resolve_gateways(gateways: &[String], namespace: &str) -> Vec<String> {
    if gateways.is_empty() {
        return vec![MESH_GATEWAY.to_owned()];
    }
    gateways
        .iter()
        .map(|g| {
            if g == MESH_GATEWAY || g.contains('/') {
                g.clone()
            } else {
                format!("{namespace}/{g}")
            }
        })
        .collect()
}

impl RouteTable {
    pub fn from_resources(resources: &[Resource]) -> Result<Self, RouteError> {
        let mut table = RouteTable {
            unexecuted: unexecuted(resources),
            ..RouteTable::default()
        };
        for resource in resources {
            let namespace = resource.namespace().unwrap_or("default");
            match &resource.body {
                ResourceBody::VirtualService(vs) => {
                    let name = resource.qualified_name();
                    let hosts = vs
                        .spec
                        .hosts
                        .iter()
                        .map(|h| resolve_short_name(h, namespace))
                        .collect();
                    let routes = vs
                        .spec
                        .http
                        .iter()
                        .enumerate()
                        .map(|(i, route)| compile_route(route, i, &name, namespace))
                        .collect::<Result<_, _>>()?;
                    table.virtual_hosts.push(VirtualHost {
                        name,
                        hosts,
                        gateways: resolve_gateways(&vs.spec.gateways, namespace),
                        routes,
                    });
                }
                ResourceBody::Gateway(gateway) => {
                    let hosts = gateway
                        .spec
                        .servers
                        .iter()
                        .flat_map(|s| &s.hosts)
                        .map(|h| {
                            // `ns/host` restricts which namespaces may bind; the host is the rest.
                            h.rsplit_once('/')
                                .map_or(h.as_str(), |(_, h)| h)
                                .to_ascii_lowercase()
                        })
                        .collect();
                    table.gateways.insert(resource.qualified_name(), hosts);
                }
                ResourceBody::DestinationRule(dr) => {
                    let host = resolve_short_name(&dr.spec.host, namespace);
                    let entry = table.subsets.entry(host).or_default();
                    for subset in &dr.spec.subsets {
                        entry
                            .entry(subset.name.clone())
                            .or_insert_with(|| subset.labels.clone());
                    }
                }
                _ => {}
            }
        }
        Ok(table)
    }

    /// Every host some VirtualService routes (resolved), in load order.
    pub fn hosts(&self) -> impl Iterator<Item = &str> + Clone {
        self.virtual_hosts
            .iter()
            .flat_map(|v| v.hosts.iter().map(String::as_str))
    }

    /// The Gateway whose servers accept `host` (exactly or by wildcard), as the caller for
    /// requests entering the mesh there.
    pub fn gateway_for(&self, host: &str) -> Option<Caller> {
        let host = strip_port(host).to_ascii_lowercase();
        self.gateways
            .iter()
            .filter_map(|(name, hosts)| {
                hosts
                    .iter()
                    .filter_map(|h| covers(h, &host))
                    .max()
                    .map(|rank| (rank, name))
            })
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, name)| Caller::Gateway(name.clone()))
    }

    /// What the resources ask for that the local lab does not execute (mirror, rewrite, header
    /// manipulation, traffic policy, …); `mesh check` reports the same list (MSH0111).
    pub fn unexecuted(&self) -> &[Unexecuted] {
        &self.unexecuted
    }

    /// Routes one request from `caller`; see the module documentation for the matching rules.
    pub fn decide(
        &self,
        caller: &Caller,
        host: &str,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Result<RouteDecision, RouteError> {
        let request_host = strip_port(host).to_ascii_lowercase();
        let (resolved, caller_label) = match caller {
            Caller::Gateway(name) => (request_host.clone(), format!("gateway {name}")),
            Caller::Sidecar { namespace } => (
                resolve_from(&request_host, namespace),
                format!("sidecars in namespace {namespace}"),
            ),
        };
        // The most specific host wins; among equals the first VirtualService in load order, as
        // Istio's sidecars do when two VirtualServices claim one host.
        let mut best: Option<(usize, &VirtualHost)> = None;
        for vhost in self.virtual_hosts.iter().filter(|v| v.applies_to(caller)) {
            let rank = vhost
                .hosts
                .iter()
                .filter_map(|h| covers(h, &resolved))
                .max();
            if let Some(rank) = rank
                && best.is_none_or(|(b, _)| rank > b)
            {
                best = Some((rank, vhost));
            }
        }
        let (_, vhost) = best.ok_or_else(|| RouteError::NoRouteForHost {
            host: host.to_owned(),
            caller: caller_label,
        })?;
        let request = Request::new(&request_host, path, headers);
        for route in &vhost.routes {
            if !route_matches(route, &request, &vhost.name)? {
                continue;
            }
            let destinations =
                route
                    .outcome
                    .clone()
                    .map_err(|reason| RouteError::NoDestinations {
                        virtual_service: vhost.name.clone(),
                        field: route.field.clone(),
                        reason,
                    })?;
            return Ok(RouteDecision {
                route_name: route.name.clone(),
                destinations,
                timeout: route.timeout,
                retries: route.retries.clone(),
                fault: route.fault.clone(),
            });
        }
        Err(RouteError::NoMatchingRoute {
            virtual_service: vhost.name.clone(),
            path: path.to_owned(),
        })
    }

    /// The pod labels a subset selects: the DestinationRule subset's labels. `fqdn` is a resolved
    /// host, e.g. [`Destination::fqdn`].
    pub fn subset_labels(&self, fqdn: &str, subset: &str) -> Option<&BTreeMap<String, String>> {
        let host = strip_port(fqdn).to_ascii_lowercase();
        self.subsets.get(&host)?.get(subset)
    }
}

fn compile_route(
    route: &HttpRoute,
    index: usize,
    vs: &str,
    namespace: &str,
) -> Result<CompiledRoute, RouteError> {
    let field = format!("spec.http[{index}]");
    let blocks = route
        .matches
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| compile_match(m, &format!("{field}.match[{i}]"), vs))
        .collect::<Result<Vec<_>, _>>()?;
    let outcome = if route.redirect.is_some() {
        Err("it redirects")
    } else if route.direct_response.is_some() {
        Err("it answers directly")
    } else if route.delegate.is_some() {
        Err("it delegates to another VirtualService, which is not supported")
    } else if route.route.is_empty() {
        Err("`route` is empty")
    } else {
        Ok(weigh(route, &field, vs, namespace)?)
    };
    let duration = |text: &str, field: String| {
        parse_duration(text).map_err(|source| RouteError::InvalidDuration {
            virtual_service: vs.to_owned(),
            field,
            source,
        })
    };
    let timeout = route
        .timeout
        .as_deref()
        .map(|t| duration(t, format!("{field}.timeout")))
        .transpose()?;
    let retries = match &route.retries {
        None => None,
        Some(r) => Some(Retries {
            attempts: u32::try_from(r.attempts).map_err(|_| RouteError::InvalidValue {
                virtual_service: vs.to_owned(),
                field: format!("{field}.retries.attempts"),
                reason: format!("{} is not a valid number of attempts", r.attempts),
            })?,
            per_try_timeout: r
                .per_try_timeout
                .as_deref()
                .map(|t| duration(t, format!("{field}.retries.perTryTimeout")))
                .transpose()?,
            retry_on: r.retry_on.clone(),
        }),
    };
    let fault = route
        .fault
        .as_ref()
        .map(|f| compile_fault(f, &format!("{field}.fault"), vs))
        .transpose()?;
    Ok(CompiledRoute {
        field,
        name: route.name.clone(),
        blocks,
        outcome,
        timeout,
        retries,
        fault,
    })
}

fn weigh(
    route: &HttpRoute,
    field: &str,
    vs: &str,
    namespace: &str,
) -> Result<Vec<WeightedDestination>, RouteError> {
    let invalid = |field: String, reason: String| RouteError::InvalidValue {
        virtual_service: vs.to_owned(),
        field,
        reason,
    };
    let mut weights = Vec::with_capacity(route.route.len());
    for (i, d) in route.route.iter().enumerate() {
        let port = match &d.destination.port {
            None => None,
            Some(p) => Some(u16::try_from(p.number).map_err(|_| {
                invalid(
                    format!("{field}.route[{i}].destination.port.number"),
                    format!("{} is not a port number", p.number),
                )
            })?),
        };
        let weight = match (route.route.len(), d.weight) {
            (1, _) => 100,
            (_, None) => 0,
            (_, Some(w)) if w < 0 => {
                return Err(invalid(
                    format!("{field}.route[{i}].weight"),
                    format!("negative weight {w}"),
                ));
            }
            (_, Some(w)) => w,
        };
        let destination = Destination {
            fqdn: resolve_short_name(&d.destination.host, namespace),
            host: d.destination.host.clone(),
            subset: d.destination.subset.clone(),
            port,
        };
        weights.push((destination, weight));
    }
    // Istio's weights are 32-bit; huge ones must be an error, not an overflow.
    let total = weights
        .iter()
        .try_fold(0i64, |sum, (_, w)| sum.checked_add(*w))
        .ok_or_else(|| {
            invalid(
                format!("{field}.route"),
                "the destinations' weights add up to more than a 64-bit integer holds".to_owned(),
            )
        })?;
    if total <= 0 {
        return Err(invalid(
            format!("{field}.route"),
            "the destinations' weights add up to 0".to_owned(),
        ));
    }
    Ok(weights
        .into_iter()
        .map(|(destination, w)| WeightedDestination {
            destination,
            probability: w as f64 / total as f64,
        })
        .collect())
}

fn route_matches(
    route: &CompiledRoute,
    request: &Request<'_>,
    vs: &str,
) -> Result<bool, RouteError> {
    if route.blocks.is_empty() {
        return Ok(true);
    }
    for block in &route.blocks {
        if block_matches(block, request, vs)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests;
