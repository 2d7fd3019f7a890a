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

use regex::Regex;

use crate::duration::{DurationError, parse_duration};
use crate::host::{covers, resolve_from, resolve_short_name, strip_port};
use crate::resources::{
    HttpFault, HttpMatchRequest, HttpRoute, Percent, Resource, ResourceBody, StringMatch,
};
use crate::unexecuted::{Unexecuted, unexecuted};

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
enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(Regex),
    Present,
}

impl Matcher {
    fn compile(m: &StringMatch, vs: &str, field: &str) -> Result<Self, RouteError> {
        let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err(RouteError::InvalidValue {
                virtual_service: vs.to_owned(),
                field: field.to_owned(),
                reason: "set only one of exact, prefix, regex".to_owned(),
            });
        }
        Ok(if let Some(exact) = &m.exact {
            Matcher::Exact(exact.clone())
        } else if let Some(prefix) = &m.prefix {
            Matcher::Prefix(prefix.clone())
        } else if let Some(regex) = &m.regex {
            Matcher::Regex(compile_regex(regex, vs, field)?)
        } else {
            Matcher::Present
        })
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(e) => value == e,
            Matcher::Prefix(p) => value.starts_with(p.as_str()),
            Matcher::Regex(r) => r.is_match(value),
            Matcher::Present => true,
        }
    }
}

/// Compiles an Istio (RE2) regex with full-match semantics.
pub fn compile_regex(pattern: &str, vs: &str, field: &str) -> Result<Regex, RouteError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|source| RouteError::InvalidRegex {
        virtual_service: vs.to_owned(),
        field: field.to_owned(),
        source: Box::new(source),
    })
}

#[derive(Debug)]
struct CompiledMatch {
    field: String,
    uri: Option<Matcher>,
    ignore_uri_case: bool,
    authority: Option<Matcher>,
    headers: Vec<(String, Matcher)>,
    without_headers: Vec<(String, Matcher)>,
    query_params: Vec<(String, Matcher)>,
    unsupported: Option<&'static str>,
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

fn compile_fault(fault: &HttpFault, field: &str, vs: &str) -> Result<Fault, RouteError> {
    let invalid = |field: String, reason: String| RouteError::InvalidValue {
        virtual_service: vs.to_owned(),
        field,
        reason,
    };
    let percentage = |p: Option<&Percent>, legacy: Option<i64>, field: String| {
        // Istio: an unset percentage means every request.
        let value = p.map_or_else(|| legacy.map_or(100.0, |v| v as f64), |p| p.value);
        if (0.0..=100.0).contains(&value) {
            Ok(value)
        } else {
            Err(invalid(
                field,
                format!("{value} is not a percentage in 0..=100"),
            ))
        }
    };
    let delay = match &fault.delay {
        None => None,
        Some(d) => {
            let text = d.fixed_delay.as_deref().ok_or_else(|| {
                invalid(
                    format!("{field}.delay.fixedDelay"),
                    "the lab executes only fixed delays; set fixedDelay".to_owned(),
                )
            })?;
            Some(Delay {
                fixed_delay: parse_duration(text).map_err(|source| {
                    RouteError::InvalidDuration {
                        virtual_service: vs.to_owned(),
                        field: format!("{field}.delay.fixedDelay"),
                        source,
                    }
                })?,
                percentage: percentage(
                    d.percentage.as_ref(),
                    d.percent,
                    format!("{field}.delay.percentage.value"),
                )?,
            })
        }
    };
    let abort = match &fault.abort {
        None => None,
        Some(a) => {
            let status = a.http_status.ok_or_else(|| {
                invalid(
                    format!("{field}.abort.httpStatus"),
                    "the lab executes only HTTP aborts; set httpStatus".to_owned(),
                )
            })?;
            let http_status = u16::try_from(status)
                .ok()
                .filter(|s| (200..=599).contains(s))
                .ok_or_else(|| {
                    invalid(
                        format!("{field}.abort.httpStatus"),
                        format!("{status} is not an HTTP status"),
                    )
                })?;
            Some(Abort {
                http_status,
                percentage: percentage(
                    a.percentage.as_ref(),
                    None,
                    format!("{field}.abort.percentage.value"),
                )?,
            })
        }
    };
    Ok(Fault { delay, abort })
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
    let total: i64 = weights.iter().map(|(_, w)| w).sum();
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

fn compile_match(m: &HttpMatchRequest, field: &str, vs: &str) -> Result<CompiledMatch, RouteError> {
    let map = |entries: &BTreeMap<String, StringMatch>, what: &str| {
        entries
            .iter()
            .map(|(name, sm)| {
                // Header names are case-insensitive; query parameter names are not.
                let key = if what == "queryParams" {
                    name.clone()
                } else {
                    name.to_ascii_lowercase()
                };
                Ok((
                    key,
                    Matcher::compile(sm, vs, &format!("{field}.{what}.{name}"))?,
                ))
            })
            .collect::<Result<Vec<_>, RouteError>>()
    };
    let mut unsupported = m.unsupported_condition();
    let headers = map(&m.headers, "headers")?;
    let without_headers = map(&m.without_headers, "withoutHeaders")?;
    for (name, _) in headers.iter().chain(&without_headers) {
        if name.starts_with(':') && name != ":authority" && name != ":path" {
            unsupported = unsupported.or(Some("pseudo-header"));
        }
    }
    Ok(CompiledMatch {
        field: field.to_owned(),
        uri: m
            .uri
            .as_ref()
            .map(|u| Matcher::compile(u, vs, &format!("{field}.uri")))
            .transpose()?,
        ignore_uri_case: m.ignore_uri_case,
        authority: m
            .authority
            .as_ref()
            .map(|a| Matcher::compile(a, vs, &format!("{field}.authority")))
            .transpose()?,
        headers,
        without_headers,
        query_params: map(&m.query_params, "queryParams")?,
        unsupported,
    })
}

struct Request<'a> {
    host: &'a str,
    path: &'a str,
    path_without_query: &'a str,
    query: Vec<(&'a str, &'a str)>,
    headers: &'a http::HeaderMap,
}

impl<'a> Request<'a> {
    fn new(host: &'a str, path: &'a str, headers: &'a http::HeaderMap) -> Self {
        let (path_without_query, query) = path.split_once('?').unwrap_or((path, ""));
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        Request {
            host,
            path,
            path_without_query,
            query,
            headers,
        }
    }

    /// A header's value, multiple values joined by `,`; `None` when absent or not text.
    fn header(&self, name: &str) -> Option<String> {
        match name {
            ":authority" => return Some(self.host.to_owned()),
            ":path" => return Some(self.path.to_owned()),
            _ => {}
        }
        let values: Vec<&str> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str())
            .collect::<Result<_, _>>()
            .ok()?;
        if values.is_empty() {
            None
        } else {
            Some(values.join(","))
        }
    }
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

fn block_matches(
    block: &CompiledMatch,
    request: &Request<'_>,
    vs: &str,
) -> Result<bool, RouteError> {
    if let Some(condition) = block.unsupported {
        return Err(RouteError::UnsupportedMatch {
            virtual_service: vs.to_owned(),
            field: block.field.clone(),
            condition: condition.to_owned(),
        });
    }
    if let Some(uri) = &block.uri {
        let subject = match uri {
            Matcher::Prefix(_) => request.path,
            _ => request.path_without_query,
        };
        let ok = if block.ignore_uri_case {
            match uri {
                Matcher::Exact(e) => subject.eq_ignore_ascii_case(e),
                Matcher::Prefix(p) => subject
                    .get(..p.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(p)),
                other => other.matches(subject),
            }
        } else {
            uri.matches(subject)
        };
        if !ok {
            return Ok(false);
        }
    }
    if let Some(authority) = &block.authority
        && !authority.matches(request.host)
    {
        return Ok(false);
    }
    for (name, matcher) in &block.headers {
        match request.header(name) {
            Some(value) if matcher.matches(&value) => {}
            _ => return Ok(false),
        }
    }
    for (name, matcher) in &block.without_headers {
        if request
            .header(name)
            .is_some_and(|value| matcher.matches(&value))
        {
            return Ok(false);
        }
    }
    for (name, matcher) in &block.query_params {
        let found = request.query.iter().find(|(k, _)| k == name);
        match found {
            Some((_, value)) if matcher.matches(value) => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_str;
    use http::{HeaderMap, HeaderName, HeaderValue};
    use std::path::Path;

    const TIER: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend, namespace: backend}
spec:
  hosts: [backend.backend.svc.cluster.local]
  http:
  - name: canary-by-header
    match:
    - headers:
        X-Canary: {exact: "true"}
    route:
    - destination: {host: backend.backend.svc.cluster.local, subset: canary, port: {number: 8080}}
      weight: 100
    timeout: 1.5s
    retries: {attempts: 2, perTryTimeout: 500ms, retryOn: "5xx,reset"}
  - name: weighted
    route:
    - destination: {host: backend.backend.svc.cluster.local, subset: stable}
      weight: 90
    - destination: {host: backend.backend.svc.cluster.local, subset: canary}
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend, namespace: backend}
spec:
  host: backend
  subsets:
  - {name: stable, labels: {version: stable}}
  - {name: canary, labels: {version: canary}}
"#;

    fn table(yaml: &str) -> RouteTable {
        let resources = load_str(yaml, Path::new("t.yaml")).expect("fixture loads");
        RouteTable::from_resources(&resources).expect("table builds")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        map
    }

    /// One VirtualService for host `h` in namespace `ns` with the given http routes (YAML list).
    fn vs(http: &str) -> RouteTable {
        table(&format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: ns}}\n\
             spec:\n  hosts: [h]\n  http:\n{http}"
        ))
    }

    fn subset_of(t: &RouteTable, path: &str, h: &HeaderMap) -> Option<String> {
        let d = t
            .decide(&Caller::sidecar("ns"), "h", path, h)
            .expect("routes");
        assert_eq!(d.destinations.len(), 1, "{d:?}");
        d.destinations[0].destination.subset.clone()
    }

    #[test]
    fn header_route_wins_and_header_names_are_case_insensitive() {
        let t = table(TIER);
        for name in ["x-canary", "X-Canary", "X-CANARY"] {
            let d = t
                .decide(
                    &Caller::sidecar("backend"),
                    "backend.backend.svc.cluster.local",
                    "/api/v1/analyze",
                    &headers(&[(name, "true")]),
                )
                .expect("routes");
            assert_eq!(d.route_name.as_deref(), Some("canary-by-header"));
            assert_eq!(d.destinations.len(), 1);
            assert_eq!(d.destinations[0].probability, 1.0);
            assert_eq!(d.destinations[0].destination.port, Some(8080));
            assert_eq!(d.timeout, Some(Duration::from_millis(1500)));
            assert_eq!(
                d.retries,
                Some(Retries {
                    attempts: 2,
                    per_try_timeout: Some(Duration::from_millis(500)),
                    retry_on: Some("5xx,reset".to_owned())
                })
            );
        }
    }

    #[test]
    fn header_values_are_case_sensitive_and_fall_through_to_weights() {
        let t = table(TIER);
        let d = t
            .decide(
                &Caller::sidecar("backend"),
                "backend",
                "/",
                &headers(&[("x-canary", "TRUE")]),
            )
            .expect("routes");
        assert_eq!(d.route_name.as_deref(), Some("weighted"));
        assert_eq!(d.probability_of_subset("stable"), 0.9);
        assert_eq!(d.probability_of_subset("canary"), 0.1);
        assert_eq!(d.timeout, None);
        assert_eq!(d.retries, None);
    }

    #[test]
    fn accepts_short_and_partial_host_forms() {
        let t = table(TIER);
        for host in [
            "backend",
            "backend.backend",
            "backend.backend.svc",
            "backend.backend.svc.cluster.local",
            "BACKEND.backend.svc.cluster.local:8080",
        ] {
            let d = t
                .decide(&Caller::sidecar("backend"), host, "/", &HeaderMap::new())
                .expect(host);
            assert_eq!(d.route_name.as_deref(), Some("weighted"), "{host}");
        }
        let err = t
            .decide(
                &Caller::sidecar("frontend"),
                "backend",
                "/",
                &HeaderMap::new(),
            )
            .expect_err("`backend` from namespace frontend is backend.frontend");
        assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
        let err = t
            .decide(
                &Caller::sidecar("backend"),
                "frontend",
                "/",
                &HeaderMap::new(),
            )
            .expect_err("unknown");
        assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
        let err = t
            .decide(
                &Caller::sidecar("backend"),
                "backend.other",
                "/",
                &HeaderMap::new(),
            )
            .expect_err("other ns");
        assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
    }

    #[test]
    fn short_hosts_resolve_in_the_callers_namespace_not_globally() {
        let t = table(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: one}\n\
             spec: {hosts: [api], http: [{name: one, route: [{destination: {host: api}}]}]}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: two}\n\
             spec: {hosts: [api], http: [{name: two, route: [{destination: {host: api}}]}]}\n",
        );
        let none = HeaderMap::new();
        for (caller, host, route, fqdn) in [
            ("one", "api", "one", "api.one.svc.cluster.local"),
            ("two", "api", "two", "api.two.svc.cluster.local"),
            ("one", "api.two", "two", "api.two.svc.cluster.local"),
        ] {
            let d = t
                .decide(&Caller::sidecar(caller), host, "/", &none)
                .expect(host);
            assert_eq!(d.route_name.as_deref(), Some(route), "{caller} → {host}");
            // The destination's short host resolves in its VirtualService's namespace.
            assert_eq!(d.destinations[0].destination.fqdn, fqdn);
        }
        let err = t
            .decide(&Caller::sidecar("three"), "api", "/", &none)
            .expect_err("no api in namespace three");
        assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
    }

    #[test]
    fn gateways_bind_a_virtual_service_to_the_edge_or_the_mesh() {
        let t = table(
            "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: web}\n\
             spec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*/shop.example.com']}]}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: at-edge, namespace: web}\n\
             spec: {hosts: [shop.example.com, web], gateways: [edge], http: [{name: edge, route: [{destination: {host: web}}]}]}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: inside, namespace: web}\n\
             spec: {hosts: [web], http: [{name: inside, route: [{destination: {host: web}}]}]}\n",
        );
        let none = HeaderMap::new();
        let edge = t.gateway_for("shop.example.com:80").expect("gateway");
        assert_eq!(edge, Caller::Gateway("web/edge".to_owned()));
        let d = t
            .decide(&edge, "shop.example.com", "/", &none)
            .expect("edge");
        assert_eq!(d.route_name.as_deref(), Some("edge"));
        // The gateway-bound VirtualService does not apply on sidecars, the unbound one does.
        let d = t
            .decide(&Caller::sidecar("web"), "web", "/", &none)
            .expect("mesh");
        assert_eq!(d.route_name.as_deref(), Some("inside"));
        let err = t
            .decide(&Caller::sidecar("web"), "shop.example.com", "/", &none)
            .expect_err("edge host from a sidecar");
        assert!(matches!(err, RouteError::NoRouteForHost { .. }), "{err}");
        assert!(t.gateway_for("other.example.com").is_none());
    }

    #[test]
    fn fault_injection_and_retries_are_part_of_the_decision() {
        let t = vs(r#"
  - route: [{destination: {host: h}}]
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
    fault:
      delay: {fixedDelay: 1.5s, percentage: {value: 25}}
      abort: {httpStatus: 503, percentage: {value: 10.5}}
"#);
        let d = t
            .decide(&Caller::sidecar("ns"), "h", "/", &HeaderMap::new())
            .expect("routes");
        assert_eq!(
            d.fault,
            Some(Fault {
                delay: Some(Delay {
                    fixed_delay: Duration::from_millis(1500),
                    percentage: 25.0
                }),
                abort: Some(Abort {
                    http_status: 503,
                    percentage: 10.5
                }),
            })
        );
        assert_eq!(d.retries.map(|r| r.attempts), Some(3));
        let err = build_err(
            "  - route: [{destination: {host: h}}]\n    fault: {abort: {httpStatus: 503, percentage: {value: 150}}}\n",
        );
        assert!(
            err.to_string().contains("fault.abort.percentage.value"),
            "{err}"
        );
        let err = build_err(
            "  - route: [{destination: {host: h}}]\n    fault: {abort: {grpcStatus: UNAVAILABLE}}\n",
        );
        assert!(err.to_string().contains("fault.abort.httpStatus"), "{err}");
    }

    #[test]
    fn unexecuted_fields_are_data_on_the_table() {
        let t = vs("  - route: [{destination: {host: h}}]\n    mirror: {host: shadow}\n");
        let listed: Vec<String> = t.unexecuted().iter().map(ToString::to_string).collect();
        assert_eq!(listed, ["VirtualService ns/v: spec.http[0].mirror"]);
    }

    #[test]
    fn literal_and_wildcard_hosts() {
        let t = table(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: edge, namespace: frontend}\n\
             spec: {hosts: [frontend.local], http: [{name: edge, route: [{destination: {host: frontend}}]}]}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: wild, namespace: frontend}\n\
             spec: {hosts: ['*.example.com'], http: [{name: wild, route: [{destination: {host: frontend}}]}]}\n",
        );
        let d = t
            .decide(
                &Caller::sidecar("frontend"),
                "frontend.local",
                "/",
                &HeaderMap::new(),
            )
            .expect("literal host");
        assert_eq!(d.route_name.as_deref(), Some("edge"));
        assert_eq!(d.destinations[0].destination.host, "frontend");
        let d = t
            .decide(
                &Caller::sidecar("frontend"),
                "shop.example.com",
                "/",
                &HeaderMap::new(),
            )
            .expect("wildcard");
        assert_eq!(d.route_name.as_deref(), Some("wild"));
        assert!(
            t.decide(
                &Caller::sidecar("frontend"),
                "example.com.evil",
                "/",
                &HeaderMap::new()
            )
            .is_err()
        );
    }

    #[test]
    fn uri_prefix_exact_and_regex() {
        let t = vs(r#"
  - match: [{uri: {exact: /exact}}]
    route: [{destination: {host: h, subset: exact}}]
  - match: [{uri: {regex: "/v[0-9]+/items"}}]
    route: [{destination: {host: h, subset: regex}}]
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: h, subset: prefix}}]
  - route: [{destination: {host: h, subset: rest}}]
"#);
        let none = HeaderMap::new();
        assert_eq!(subset_of(&t, "/exact", &none).as_deref(), Some("exact"));
        assert_eq!(subset_of(&t, "/exact?q=1", &none).as_deref(), Some("exact"));
        assert_eq!(subset_of(&t, "/exactly", &none).as_deref(), Some("rest"));
        assert_eq!(subset_of(&t, "/v12/items", &none).as_deref(), Some("regex"));
        // Regexes match the whole path, not a part of it.
        assert_eq!(
            subset_of(&t, "/x/v12/items", &none).as_deref(),
            Some("rest")
        );
        assert_eq!(
            subset_of(&t, "/v12/items/7", &none).as_deref(),
            Some("rest")
        );
        assert_eq!(
            subset_of(&t, "/api/v1/analyze", &none).as_deref(),
            Some("prefix")
        );
        assert_eq!(subset_of(&t, "/API", &none).as_deref(), Some("rest"));
    }

    #[test]
    fn ignore_uri_case() {
        let t = vs(r#"
  - match: [{uri: {prefix: /api}, ignoreUriCase: true}]
    route: [{destination: {host: h, subset: api}}]
  - route: [{destination: {host: h, subset: rest}}]
"#);
        assert_eq!(
            subset_of(&t, "/API/x", &HeaderMap::new()).as_deref(),
            Some("api")
        );
    }

    #[test]
    fn match_blocks_are_ored_and_conditions_anded() {
        let t = vs(r#"
  - match:
    - uri: {prefix: /a}
      headers: {x-one: {exact: "1"}}
    - headers: {x-two: {prefix: "tw"}}
    route: [{destination: {host: h, subset: hit}}]
  - route: [{destination: {host: h, subset: miss}}]
"#);
        // Block 0 needs both uri and header.
        assert_eq!(
            subset_of(&t, "/a", &headers(&[("x-one", "1")])).as_deref(),
            Some("hit")
        );
        assert_eq!(
            subset_of(&t, "/b", &headers(&[("x-one", "1")])).as_deref(),
            Some("miss")
        );
        assert_eq!(
            subset_of(&t, "/a", &HeaderMap::new()).as_deref(),
            Some("miss")
        );
        // Block 1 alone is enough.
        assert_eq!(
            subset_of(&t, "/b", &headers(&[("x-two", "two")])).as_deref(),
            Some("hit")
        );
    }

    #[test]
    fn header_regex_presence_and_without_headers() {
        let t = vs(r#"
  - match: [{headers: {x-user: {regex: "tester-[0-9]+"}}}]
    route: [{destination: {host: h, subset: regex}}]
  - match: [{headers: {x-debug: {}}}]
    route: [{destination: {host: h, subset: present}}]
  - match: [{withoutHeaders: {x-canary: {exact: "true"}}}]
    route: [{destination: {host: h, subset: not-canary}}]
  - route: [{destination: {host: h, subset: rest}}]
"#);
        assert_eq!(
            subset_of(&t, "/", &headers(&[("x-user", "tester-42")])).as_deref(),
            Some("regex")
        );
        assert_eq!(
            subset_of(&t, "/", &headers(&[("x-debug", "")])).as_deref(),
            Some("present")
        );
        assert_eq!(
            subset_of(&t, "/", &headers(&[("x-canary", "false")])).as_deref(),
            Some("not-canary")
        );
        assert_eq!(
            subset_of(&t, "/", &headers(&[("x-canary", "true")])).as_deref(),
            Some("rest")
        );
    }

    #[test]
    fn query_params_and_authority() {
        let t = vs(r#"
  - match: [{queryParams: {debug: {exact: "1"}}}]
    route: [{destination: {host: h, subset: query}}]
  - match: [{authority: {exact: h}}]
    route: [{destination: {host: h, subset: authority}}]
"#);
        assert_eq!(
            subset_of(&t, "/x?debug=1", &HeaderMap::new()).as_deref(),
            Some("query")
        );
        assert_eq!(
            subset_of(&t, "/x?debug=2", &HeaderMap::new()).as_deref(),
            Some("authority")
        );
        let err = t
            .decide(
                &Caller::sidecar("ns"),
                "h.ns.svc.cluster.local",
                "/",
                &HeaderMap::new(),
            )
            .expect_err("no route");
        assert!(matches!(err, RouteError::NoMatchingRoute { .. }), "{err}");
    }

    #[test]
    fn first_matching_route_wins_in_order() {
        let t = vs(r#"
  - match: [{uri: {prefix: /}}]
    route: [{destination: {host: h, subset: first}}]
  - match: [{headers: {x-canary: {exact: "true"}}}]
    route: [{destination: {host: h, subset: second}}]
"#);
        assert_eq!(
            subset_of(&t, "/", &headers(&[("x-canary", "true")])).as_deref(),
            Some("first")
        );
    }

    #[test]
    fn weights_become_probabilities_and_pick_follows_them() {
        let t = vs(r#"
  - route:
    - {destination: {host: h, subset: a}, weight: 70}
    - {destination: {host: h, subset: b}, weight: 20}
    - {destination: {host: h, subset: c}, weight: 10}
"#);
        let d = t
            .decide(&Caller::sidecar("ns"), "h", "/", &HeaderMap::new())
            .expect("routes");
        let probs: Vec<f64> = d.destinations.iter().map(|w| w.probability).collect();
        assert_eq!(probs, vec![0.7, 0.2, 0.1]);
        let pick = |roll| d.pick(roll).subset.clone();
        assert_eq!(pick(0.0).as_deref(), Some("a"));
        assert_eq!(pick(0.69).as_deref(), Some("a"));
        assert_eq!(pick(0.7).as_deref(), Some("b"));
        assert_eq!(pick(0.89).as_deref(), Some("b"));
        assert_eq!(pick(0.95).as_deref(), Some("c"));
        assert_eq!(pick(1.0).as_deref(), Some("c"));
        assert_eq!(pick(-3.0).as_deref(), Some("a"));
    }

    #[test]
    fn zero_weight_is_never_picked_and_lone_destination_weighs_100() {
        let t = vs(r#"
  - match: [{headers: {x-zero: {}}}]
    route:
    - {destination: {host: h, subset: a}, weight: 100}
    - {destination: {host: h, subset: b}, weight: 0}
  - route: [{destination: {host: h, subset: only}}]
"#);
        let d = t
            .decide(
                &Caller::sidecar("ns"),
                "h",
                "/",
                &headers(&[("x-zero", "")]),
            )
            .expect("routes");
        assert_eq!(d.pick(0.999_999).subset.as_deref(), Some("a"));
        let d = t
            .decide(&Caller::sidecar("ns"), "h", "/", &HeaderMap::new())
            .expect("routes");
        assert_eq!(d.destinations[0].probability, 1.0);
        let empty = RouteDecision {
            route_name: None,
            destinations: vec![],
            timeout: None,
            retries: None,
            fault: None,
        };
        assert_eq!(empty.pick(0.5).host, "");
    }

    fn build_err(http: &str) -> RouteError {
        let resources = load_str(
            &format!(
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: v, namespace: ns}}\n\
                 spec:\n  hosts: [h]\n  http:\n{http}"
            ),
            Path::new("t.yaml"),
        )
        .expect("loads");
        RouteTable::from_resources(&resources).expect_err("must not build")
    }

    #[test]
    fn invalid_configuration_is_a_clear_error() {
        let err = build_err(
            "  - match: [{uri: {regex: '(unclosed'}}]\n    route: [{destination: {host: h}}]\n",
        );
        assert!(matches!(err, RouteError::InvalidRegex { .. }), "{err}");
        assert!(
            err.to_string().contains("spec.http[0].match[0].uri"),
            "{err}"
        );
        let err = build_err("  - timeout: soon\n    route: [{destination: {host: h}}]\n");
        assert!(matches!(err, RouteError::InvalidDuration { .. }), "{err}");
        let err = build_err(
            "  - route:\n    - {destination: {host: h, subset: a}}\n    - {destination: {host: h, subset: b}}\n",
        );
        assert!(err.to_string().contains("add up to 0"), "{err}");
        let err = build_err(
            "  - match: [{uri: {exact: /a, prefix: /b}}]\n    route: [{destination: {host: h}}]\n",
        );
        assert!(err.to_string().contains("only one of"), "{err}");
        let err = build_err("  - route: [{destination: {host: h, port: {number: 70000}}}]\n");
        assert!(err.to_string().contains("port.number"), "{err}");
    }

    #[test]
    fn unsupported_conditions_and_redirects_are_reported_when_reached() {
        let t = vs(r#"
  - match: [{headers: {x-skip: {}}}]
    redirect: {uri: /elsewhere}
  - match: [{method: {exact: POST}}]
    route: [{destination: {host: h}}]
"#);
        let err = t
            .decide(
                &Caller::sidecar("ns"),
                "h",
                "/",
                &headers(&[("x-skip", "1")]),
            )
            .expect_err("redirect");
        assert!(matches!(err, RouteError::NoDestinations { .. }), "{err}");
        let err = t
            .decide(&Caller::sidecar("ns"), "h", "/", &HeaderMap::new())
            .expect_err("method");
        assert!(matches!(err, RouteError::UnsupportedMatch { .. }), "{err}");
    }

    #[test]
    fn subset_labels_resolve_short_destination_rule_hosts() {
        let t = table(TIER);
        let labels = t
            .subset_labels("backend.backend.svc.cluster.local", "canary")
            .expect("subset");
        assert_eq!(labels.get("version").map(String::as_str), Some("canary"));
        // Short names are resolved where they are written, not here: an FQDN is needed.
        assert!(t.subset_labels("backend", "stable").is_none());
        assert!(t.subset_labels("backend", "blue").is_none());
        assert!(t.subset_labels("ml", "stable").is_none());
    }
}
