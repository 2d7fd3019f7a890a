//! The project's routing held against Istio's: [`compare`] asks [`RouteTable::decide`] every probe
//! request Istio's own control plane answered (tests/upstream/oracle, a Go test built against
//! istio.io/istio's pilot: the route configuration istiod would push to the ingress gateway and to
//! each tier's sidecar) and names every difference in route, weighted subsets, timeout, retries or
//! fault. A report is one JSON file per overlay, `<overlay>.istio.json`.
//!
//! Istio's side is Envoy's: weights become shares of their total and zero-weight destinations are
//! gone, "no timeout" is 0 s, and a route without `retries` gets Istio's default policy, so a
//! VirtualService that sets none differs from the lab (which then retries nothing) and is named.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::route::{Caller, RouteDecision, RouteTable};

/// What the oracle wrote for one overlay.
#[derive(Debug, Clone, Deserialize)]
pub struct IstioReport {
    pub overlay: String,
    pub istio_proxy_version: String,
    pub probes: Vec<Probe>,
}

/// One request, and the Envoy route Istio's configuration takes for it (`None`: none, a 404).
#[derive(Debug, Clone, Deserialize)]
pub struct Probe {
    /// `gateway`, or `sidecar:<namespace>`.
    pub caller: String,
    pub route_config: String,
    pub virtual_host: String,
    pub host: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub istio: Option<IstioDecision>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IstioDecision {
    pub route: String,
    pub destinations: Vec<IstioDestination>,
    pub timeout_seconds: f64,
    pub retries: Option<IstioRetries>,
    pub fault: Option<IstioFault>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IstioDestination {
    pub host: String,
    pub subset: String,
    pub port: u16,
    pub share: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IstioRetries {
    pub attempts: u32,
    pub per_try_timeout_seconds: f64,
    pub retry_on: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IstioFault {
    pub delay_seconds: f64,
    pub delay_percent: f64,
    pub abort_status: u16,
    pub abort_percent: f64,
}

/// A probe on which the project and Istio differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    /// `caller → host path [headers]` and the Envoy virtual host and route configuration.
    pub probe: String,
    /// What differs, with both sides' values.
    pub what: String,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.probe, self.what)
    }
}

/// Shares and seconds agree within this (Envoy's integer weights give exact shares; the JSON's
/// decimals round).
const EPSILON: f64 = 1e-9;

/// Every probe of `report` on which `table` routes differently from Istio.
pub fn compare(table: &RouteTable, report: &IstioReport) -> Vec<Disagreement> {
    report
        .probes
        .iter()
        .flat_map(|probe| compare_probe(table, probe))
        .collect()
}

fn describe(probe: &Probe) -> String {
    let headers = if probe.headers.is_empty() {
        "no headers".to_owned()
    } else {
        probe
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} → {}{} [{headers}] (Envoy route config {}, virtual host {})",
        probe.caller, probe.host, probe.path, probe.route_config, probe.virtual_host
    )
}

fn compare_probe(table: &RouteTable, probe: &Probe) -> Vec<Disagreement> {
    let disagree = |what: String| Disagreement {
        probe: describe(probe),
        what,
    };
    let caller = match probe.caller.as_str() {
        "gateway" => table.gateway_for(&probe.host),
        other => other.strip_prefix("sidecar:").map(Caller::sidecar),
    };
    let Some(caller) = caller else {
        return vec![disagree(format!(
            "the project has no caller for `{}` (no Gateway accepts the host, or not `sidecar:<ns>`)",
            probe.caller
        ))];
    };
    let mut headers = http::HeaderMap::new();
    for (name, value) in &probe.headers {
        match (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                headers.insert(name, value);
            }
            _ => {
                return vec![disagree(format!(
                    "probe header `{name}: {value}` is not valid HTTP"
                ))];
            }
        }
    }
    let ours = table.decide(&caller, &probe.host, &probe.path, &headers);
    match (&probe.istio, ours) {
        (None, Err(_)) => Vec::new(),
        (None, Ok(ours)) => vec![disagree(format!(
            "Istio has no route (404); the project routes it by {}",
            route_label(&ours)
        ))],
        (Some(istio), Err(e)) => vec![disagree(format!(
            "Istio routes it by route `{}`; the project: {e}",
            istio.route
        ))],
        (Some(istio), Ok(ours)) => compare_decision(istio, &ours)
            .into_iter()
            .map(disagree)
            .collect(),
    }
}

fn route_label(d: &RouteDecision) -> String {
    d.route_name
        .as_deref()
        .map_or_else(|| "an unnamed route".to_owned(), |n| format!("route `{n}`"))
}

fn seconds(d: Option<Duration>) -> f64 {
    d.map_or(0.0, |d| d.as_secs_f64())
}

fn compare_decision(istio: &IstioDecision, ours: &RouteDecision) -> Vec<String> {
    let mut out = Vec::new();
    let route = route_label(ours);
    if let Some(name) = &ours.route_name
        && name != &istio.route
    {
        out.push(format!(
            "Istio takes route `{}`, the project {route}",
            istio.route
        ));
    }

    let mut our_shares: BTreeMap<(String, String), f64> = BTreeMap::new();
    for w in &ours.destinations {
        if w.probability > 0.0 {
            let key = (
                w.destination.fqdn.clone(),
                w.destination.subset.clone().unwrap_or_default(),
            );
            *our_shares.entry(key).or_default() += w.probability;
        }
        if let Some(port) = w.destination.port
            && let Some(theirs) = istio.destinations.iter().find(|d| {
                d.host == w.destination.fqdn
                    && Some(d.subset.as_str()) == w.destination.subset.as_deref()
            })
            && theirs.port != port
        {
            out.push(format!(
                "{route}: {}/{} on port {port} for the project, {} for Istio",
                theirs.host, theirs.subset, theirs.port
            ));
        }
    }
    let mut istio_shares: BTreeMap<(String, String), f64> = BTreeMap::new();
    for d in &istio.destinations {
        *istio_shares
            .entry((d.host.clone(), d.subset.clone()))
            .or_default() += d.share;
    }
    let keys: std::collections::BTreeSet<_> =
        our_shares.keys().chain(istio_shares.keys()).collect();
    for key in keys {
        let (a, b) = (
            our_shares.get(key).copied().unwrap_or(0.0),
            istio_shares.get(key).copied().unwrap_or(0.0),
        );
        if (a - b).abs() > EPSILON {
            out.push(format!(
                "{route}: subset `{}` of {} gets {:.4} of the requests in the project, {b:.4} in Istio",
                key.1, key.0, a
            ));
        }
    }

    let timeout = seconds(ours.timeout);
    if (timeout - istio.timeout_seconds).abs() > EPSILON {
        out.push(format!(
            "{route}: timeout {timeout} s in the project, {} s in Istio (0 = none)",
            istio.timeout_seconds
        ));
    }

    match (&ours.retries, &istio.retries) {
        (None, None) => {}
        (Some(r), None) => out.push(format!(
            "{route}: the project retries {} times, Istio not at all",
            r.attempts
        )),
        (None, Some(r)) => out.push(format!(
            "{route}: the VirtualService sets no retries: Istio applies its default ({} attempts on {}), the project none",
            r.attempts,
            r.retry_on.join(",")
        )),
        (Some(r), Some(theirs)) => {
            let mut on: Vec<String> = r
                .retry_on
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            on.sort();
            let per_try = seconds(r.per_try_timeout);
            if r.attempts != theirs.attempts
                || (per_try - theirs.per_try_timeout_seconds).abs() > EPSILON
                || on != theirs.retry_on
            {
                out.push(format!(
                    "{route}: retries {} × {per_try} s on {} in the project, {} × {} s on {} in Istio",
                    r.attempts,
                    on.join(","),
                    theirs.attempts,
                    theirs.per_try_timeout_seconds,
                    theirs.retry_on.join(",")
                ));
            }
        }
    }

    let ours_fault = ours.fault.clone().unwrap_or_default();
    let theirs = istio.fault.clone().unwrap_or_default();
    let (delay, delay_pct) = ours_fault
        .delay
        .map_or((0.0, 0.0), |d| (d.fixed_delay.as_secs_f64(), d.percentage));
    let (abort, abort_pct) = ours_fault
        .abort
        .map_or((0, 0.0), |a| (a.http_status, a.percentage));
    if (delay - theirs.delay_seconds).abs() > EPSILON
        || (delay_pct - theirs.delay_percent).abs() > EPSILON
        || abort != theirs.abort_status
        || (abort_pct - theirs.abort_percent).abs() > EPSILON
    {
        out.push(format!(
            "{route}: fault delay {delay} s for {delay_pct} %, abort {abort} for {abort_pct} % in the project; \
             delay {} s for {} %, abort {} for {} % in Istio",
            theirs.delay_seconds, theirs.delay_percent, theirs.abort_status, theirs.abort_percent
        ));
    }
    out
}
