//! A hop: the lab's stand-in for the Envoy sidecar in front of a tier. For each request it asks the
//! [`RouteTable`] built from the mesh's VirtualServices where the request may go, rolls the dice with
//! the configured weights, and forwards to the replica whose `version` label the chosen subset
//! selects, streaming both bodies. Route timeouts apply; retries are not replayed (the request body
//! is streamed, not buffered), which the README notes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, StatusCode, header};
use mesh::Version;
use mesh_istio::route::{Caller, RouteTable};
use serde_json::json;

/// The header a hop adds to the response so a person can see which subset it picked.
pub const X_LAB_SUBSET: HeaderName = HeaderName::from_static("x-lab-subset");

pub struct Hop {
    /// The host requests arrive for (`frontend.local` at the edge, the Service FQDN inside).
    host: String,
    /// Who routes requests arriving here: the edge Gateway, or the calling tier's sidecar.
    caller: Caller,
    routes: Arc<RouteTable>,
    replicas: HashMap<Version, String>,
    client: reqwest::Client,
}

impl Hop {
    pub fn new(
        host: String,
        caller: Caller,
        routes: Arc<RouteTable>,
        replicas: HashMap<Version, String>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            host,
            caller,
            routes,
            replicas,
            client,
        }
    }

    pub fn router(self) -> Router {
        Router::new().fallback(forward).with_state(Arc::new(self))
    }

    /// The replica a request goes to, or why it goes nowhere.
    fn choose(&self, path: &str, headers: &HeaderMap, roll: f64) -> Result<Choice<'_>, Unroutable> {
        let decision = self
            .routes
            .decide(&self.caller, &self.host, path, headers)
            .map_err(|e| Unroutable::NoRoute(e.to_string()))?;
        let destination = decision.pick(roll);
        let version = destination
            .subset
            .as_deref()
            .and_then(|subset| self.routes.subset_labels(&destination.fqdn, subset))
            .and_then(|labels| labels.get("version"))
            .and_then(|v| v.parse::<Version>().ok());
        let Some(version) = version else {
            return Err(Unroutable::NoReplica(
                "the chosen subset selects no replica",
            ));
        };
        let base = self
            .replicas
            .get(&version)
            .ok_or(Unroutable::NoReplica("no replica runs the chosen version"))?;
        Ok(Choice {
            base,
            version,
            timeout: decision.timeout,
        })
    }
}

/// Why a request goes nowhere: Envoy answers 404 without a route, 503 without an upstream.
enum Unroutable {
    NoRoute(String),
    NoReplica(&'static str),
}

impl IntoResponse for Unroutable {
    fn into_response(self) -> Response {
        match self {
            Unroutable::NoRoute(why) => error(StatusCode::NOT_FOUND, "no_route", &why),
            Unroutable::NoReplica(why) => {
                error(StatusCode::SERVICE_UNAVAILABLE, "no_healthy_upstream", why)
            }
        }
    }
}

struct Choice<'a> {
    base: &'a str,
    version: Version,
    timeout: Option<std::time::Duration>,
}

async fn forward(State(hop): State<Arc<Hop>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let choice = match hop.choose(parts.uri.path(), &parts.headers, rand::random::<f64>()) {
        Ok(choice) => choice,
        Err(unroutable) => return unroutable.into_response(),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    let mut upstream = hop
        .client
        .request(parts.method, format!("{}{}", choice.base, path_and_query))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    if let Some(timeout) = choice.timeout {
        upstream = upstream.timeout(timeout);
    }
    let subset = choice.version.as_str();
    match upstream.send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            if let Some(h) = response.headers_mut() {
                let mut answer_headers = answer.headers().clone();
                strip_hop_by_hop(&mut answer_headers);
                h.extend(answer_headers);
                h.insert(X_LAB_SUBSET, http::HeaderValue::from_static(subset));
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(e) if e.is_timeout() => error(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "the upstream did not answer within the route timeout",
        ),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_unavailable",
            "the upstream replica is not reachable",
        ),
    }
}

const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::HOST,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    }
    response
}
