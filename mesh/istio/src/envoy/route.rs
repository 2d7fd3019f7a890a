//! One VirtualService as an Envoy virtual host: each http route becomes one Envoy route per match
//! block (blocks are OR'ed, Envoy takes the first route that matches, as Istio does).

use serde_json::{Value, json};

use super::cluster::{ClusterKey, Clusters, seconds};
use super::{Bound, EnvoyError};
use crate::duration::parse_duration;
use crate::host::resolve_short_name;
use crate::resources::{HttpMatchRequest, HttpRetry, HttpRoute, StringMatch};

/// Istio's retry policy for a route without `retries` (attempts 2, these conditions, 503).
const ISTIO_DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

struct Context<'a> {
    virtual_service: String,
    field: String,
    namespace: &'a str,
}

impl Context<'_> {
    fn unsupported(&self, field: &str, reason: impl Into<String>) -> EnvoyError {
        EnvoyError::Unsupported {
            virtual_service: self.virtual_service.clone(),
            field: format!("{}{field}", self.field),
            reason: reason.into(),
        }
    }
}

pub(super) fn virtual_host(bound: &Bound, clusters: &mut Clusters) -> Result<Value, EnvoyError> {
    let mut routes = Vec::new();
    for (index, http) in bound.spec.spec.http.iter().enumerate() {
        let cx = Context {
            virtual_service: bound.resource.qualified_name(),
            field: format!("spec.http[{index}]"),
            namespace: &bound.namespace,
        };
        let action = action(http, &cx, clusters)?;
        let fault = http.fault.as_ref().map(|f| fault(f, &cx)).transpose()?;
        let blocks: Vec<Option<&HttpMatchRequest>> = match &http.matches {
            Some(blocks) if !blocks.is_empty() => blocks.iter().map(Some).collect(),
            _ => vec![None],
        };
        for (b, block) in blocks.into_iter().enumerate() {
            let mut route = json!({
                "match": route_match(block, &cx, b)?,
                "route": action.clone(),
            });
            if let Some(name) = &http.name {
                route["name"] = json!(name);
            }
            if let Some(fault) = &fault {
                route["typed_per_filter_config"] = json!({"envoy.filters.http.fault": fault});
            }
            routes.push(route);
        }
    }
    Ok(json!({
        "name": bound.resource.qualified_name(),
        "domains": ["*"],
        "routes": routes,
    }))
}

fn route_match(
    block: Option<&HttpMatchRequest>,
    cx: &Context,
    index: usize,
) -> Result<Value, EnvoyError> {
    let Some(block) = block else {
        return Ok(json!({"prefix": "/"}));
    };
    let field = format!(".match[{index}]");
    if let Some(condition) = block
        .unsupported_condition()
        .filter(|c| !matches!(*c, "method" | "scheme"))
    {
        return Err(cx.unsupported(
            &field,
            format!("`{condition}` has no Envoy route match here"),
        ));
    }
    if let Some((key, _)) = block.other.iter().next() {
        return Err(cx.unsupported(&format!("{field}.{key}"), "not translated"));
    }
    let mut out = match &block.uri {
        None => json!({"prefix": "/"}),
        Some(uri) => match (&uri.exact, &uri.prefix, &uri.regex) {
            (Some(exact), None, None) => json!({"path": exact}),
            (None, Some(prefix), None) => json!({"prefix": prefix}),
            (None, None, Some(regex)) => json!({"safe_regex": {"regex": regex}}),
            (None, None, None) => json!({"prefix": "/"}),
            _ => {
                return Err(cx.unsupported(
                    &format!("{field}.uri"),
                    "more than one of exact, prefix, regex",
                ));
            }
        },
    };
    if block.ignore_uri_case {
        out["case_sensitive"] = json!(false);
    }
    let mut headers = Vec::new();
    let pseudo = [
        (":authority", &block.authority, "authority"),
        (":method", &block.method, "method"),
        (":scheme", &block.scheme, "scheme"),
    ];
    for (name, condition, key) in pseudo {
        if let Some(m) = condition {
            headers.push(header_matcher(
                name,
                m,
                false,
                cx,
                &format!("{field}.{key}"),
            )?);
        }
    }
    for (name, m) in &block.headers {
        let f = format!("{field}.headers.{name}");
        headers.push(header_matcher(
            &name.to_ascii_lowercase(),
            m,
            false,
            cx,
            &f,
        )?);
    }
    for (name, m) in &block.without_headers {
        let f = format!("{field}.withoutHeaders.{name}");
        headers.push(header_matcher(&name.to_ascii_lowercase(), m, true, cx, &f)?);
    }
    if !headers.is_empty() {
        out["headers"] = json!(headers);
    }
    let mut params = Vec::new();
    for (name, m) in &block.query_params {
        let f = format!("{field}.queryParams.{name}");
        let matcher = match string_match(m, cx, &f)? {
            None => json!({"name": name, "present_match": true}),
            Some(sm) => json!({"name": name, "string_match": sm}),
        };
        params.push(matcher);
    }
    if !params.is_empty() {
        out["query_parameters"] = json!(params);
    }
    Ok(out)
}

/// `None` for an empty StringMatch (Istio: the header is present).
fn string_match(m: &StringMatch, cx: &Context, field: &str) -> Result<Option<Value>, EnvoyError> {
    Ok(match (&m.exact, &m.prefix, &m.regex) {
        (None, None, None) => None,
        (Some(exact), None, None) => Some(json!({"exact": exact})),
        (None, Some(prefix), None) => Some(json!({"prefix": prefix})),
        (None, None, Some(regex)) => Some(json!({"safe_regex": {"regex": regex}})),
        _ => return Err(cx.unsupported(field, "more than one of exact, prefix, regex")),
    })
}

fn header_matcher(
    name: &str,
    m: &StringMatch,
    invert: bool,
    cx: &Context,
    field: &str,
) -> Result<Value, EnvoyError> {
    let mut out = match string_match(m, cx, field)? {
        None => json!({"name": name, "present_match": true}),
        Some(sm) => json!({"name": name, "string_match": sm}),
    };
    if invert {
        out["invert_match"] = json!(true);
    }
    Ok(out)
}

fn action(http: &HttpRoute, cx: &Context, clusters: &mut Clusters) -> Result<Value, EnvoyError> {
    for (key, present) in [
        ("redirect", http.redirect.is_some()),
        ("directResponse", http.direct_response.is_some()),
        ("delegate", http.delegate.is_some()),
    ] {
        if present {
            return Err(cx.unsupported(&format!(".{key}"), "not translated"));
        }
    }
    if http.route.is_empty() {
        return Err(cx.unsupported(".route", "no destinations"));
    }
    let mut weighted = Vec::new();
    for (i, dest) in http.route.iter().enumerate() {
        let fqdn = resolve_short_name(&dest.destination.host, cx.namespace);
        let port = match &dest.destination.port {
            Some(p) => u16::try_from(p.number).map_err(|_| {
                cx.unsupported(&format!(".route[{i}].destination.port"), "not a port")
            })?,
            None => clusters.service_port(&fqdn).ok_or_else(|| {
                cx.unsupported(
                    &format!(".route[{i}].destination"),
                    format!("no port given and no Service `{fqdn}` to take it from"),
                )
            })?,
        };
        let weight = match (dest.weight, http.route.len()) {
            (None, 1) => 100,
            (Some(w), _) if (0..=i64::from(u32::MAX)).contains(&w) => w,
            (w, _) => {
                return Err(cx.unsupported(
                    &format!(".route[{i}].weight"),
                    format!("{w:?} is not a non-negative 32-bit weight"),
                ));
            }
        };
        let name = clusters.cluster(ClusterKey {
            fqdn,
            subset: dest.destination.subset.clone(),
            port,
        })?;
        weighted.push((name, weight));
    }
    let mut action = if weighted.len() == 1 {
        json!({"cluster": weighted[0].0})
    } else {
        let list: Vec<Value> = weighted
            .iter()
            .filter(|(_, w)| *w > 0)
            .map(|(name, w)| json!({"name": name, "weight": w}))
            .collect();
        if list.is_empty() {
            return Err(cx.unsupported(".route", "every weight is 0"));
        }
        json!({"weighted_clusters": {"clusters": list}})
    };
    let timeout = match &http.timeout {
        None => std::time::Duration::ZERO,
        Some(t) => parse_duration(t).map_err(|e| cx.unsupported(".timeout", e.to_string()))?,
    };
    action["timeout"] = json!(seconds(timeout));
    if let Some(policy) = retry_policy(http.retries.as_ref(), cx)? {
        action["retry_policy"] = policy;
    }
    Ok(action)
}

fn retry_policy(retries: Option<&HttpRetry>, cx: &Context) -> Result<Option<Value>, EnvoyError> {
    let Some(retries) = retries else {
        return Ok(Some(json!({
            "retry_on": ISTIO_DEFAULT_RETRY_ON,
            "num_retries": 2,
            "retriable_status_codes": [503],
        })));
    };
    if retries.attempts <= 0 {
        return Ok(None);
    }
    let mut conditions = Vec::new();
    let mut codes = Vec::new();
    let retry_on = retries
        .retry_on
        .as_deref()
        .unwrap_or(ISTIO_DEFAULT_RETRY_ON);
    for token in retry_on.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match token.parse::<u16>() {
            Ok(code) => codes.push(code),
            Err(_) => conditions.push(token.to_owned()),
        }
    }
    if !codes.is_empty() && !conditions.iter().any(|c| c == "retriable-status-codes") {
        conditions.push("retriable-status-codes".to_owned());
    }
    let mut policy = json!({
        "retry_on": conditions.join(","),
        "num_retries": retries.attempts,
    });
    if !codes.is_empty() {
        policy["retriable_status_codes"] = json!(codes);
    }
    if let Some(per_try) = &retries.per_try_timeout {
        let d = parse_duration(per_try)
            .map_err(|e| cx.unsupported(".retries.perTryTimeout", e.to_string()))?;
        policy["per_try_timeout"] = json!(seconds(d));
    }
    Ok(Some(policy))
}

/// Envoy's fault filter, per route: Istio percentages (0–100, fractional) as parts per million.
fn fault(f: &crate::resources::HttpFault, cx: &Context) -> Result<Value, EnvoyError> {
    let per_million =
        |p: f64| json!({"numerator": (p * 10_000.0).round() as u64, "denominator": "MILLION"});
    let mut out = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
    });
    if let Some(delay) = &f.delay {
        let fixed = delay
            .fixed_delay
            .as_deref()
            .ok_or_else(|| cx.unsupported(".fault.delay", "only fixedDelay is translated"))?;
        let d = parse_duration(fixed)
            .map_err(|e| cx.unsupported(".fault.delay.fixedDelay", e.to_string()))?;
        let percent = delay
            .percentage
            .as_ref()
            .map(|p| p.value)
            .or(delay.percent.map(|p| p as f64))
            .unwrap_or(100.0);
        out["delay"] = json!({"fixed_delay": seconds(d), "percentage": per_million(percent)});
    }
    if let Some(abort) = &f.abort {
        let status = abort
            .http_status
            .ok_or_else(|| cx.unsupported(".fault.abort", "only httpStatus is translated"))?;
        let percent = abort.percentage.as_ref().map_or(100.0, |p| p.value);
        out["abort"] = json!({"http_status": status, "percentage": per_million(percent)});
    }
    Ok(out)
}
