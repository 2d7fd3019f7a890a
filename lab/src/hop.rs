//! A hop: the lab's stand-in for the Envoy sidecar in front of a tier. For each request it asks the
//! [`RouteTable`] built from the mesh's VirtualServices where the request may go, rolls the dice with
//! the configured weights, and forwards to the replica whose `version` label the chosen subset
//! selects. It executes the route's decision as Envoy would:
//! - fault injection: a fixed delay, then an abort (answered here, never forwarded), each for its
//!   percentage of requests;
//! - the route timeout caps the whole exchange, retries included (the delay is not counted, as in
//!   Envoy, where the fault filter runs before the router starts its timer);
//! - retries: up to `attempts` more tries, each bounded by `perTryTimeout`, on the `retryOn`
//!   conditions it can observe (see `RetryOn`). A retry must replay the request body, so a body
//!   is buffered when its `Content-Length` is at most [`MAX_REPLAY_BYTES`]; a larger or chunked
//!   body is streamed and gets no retries (Envoy likewise stops retrying a request whose body
//!   overflowed its buffer).
//!
//! The response body is always streamed.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, StatusCode, header};
use mesh::Version;
use mesh_istio::route::{Caller, Fault, Retries, RouteTable};

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
            retries: decision.retries,
            fault: decision.fault,
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
    retries: Option<Retries>,
    fault: Option<Fault>,
}

/// Request bodies up to this size (by `Content-Length`) are buffered so that a retry can replay
/// them; uploads the services accept are well below it.
pub const MAX_REPLAY_BYTES: u64 = 32 * 1024 * 1024;

/// The `retryOn` conditions a hop can observe. Unset means Envoy's default for HTTP:
/// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` — of which only
/// the connection failures apply to plain HTTP/1 without configured status codes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RetryOn {
    /// `connect-failure`, `refused-stream`: the request never reached the app.
    connect_failure: bool,
    /// `reset`: the connection broke after it was made, or no answer came within perTryTimeout.
    reset: bool,
    /// `5xx`: any 5xx answer, or a per-try timeout.
    server_error: bool,
    /// `gateway-error`: 502, 503, 504, or a per-try timeout.
    gateway_error: bool,
}

impl RetryOn {
    fn parse(text: Option<&str>) -> Self {
        let text = text.unwrap_or("connect-failure,refused-stream");
        let mut on = RetryOn::default();
        for condition in text.split(',').map(str::trim) {
            match condition {
                "connect-failure" | "refused-stream" => on.connect_failure = true,
                "reset" => on.reset = true,
                "5xx" => on.server_error = true,
                "gateway-error" => on.gateway_error = true,
                // gRPC conditions and retriable-status-codes never fire on this plain-HTTP hop.
                _ => {}
            }
        }
        on
    }

    fn status(self, status: StatusCode) -> bool {
        (self.server_error && status.is_server_error())
            || (self.gateway_error && matches!(status.as_u16(), 502..=504))
    }
}

/// What one try ended with.
enum Try {
    Answer(reqwest::Response),
    ConnectFailed,
    Broken,
    TimedOut,
}

fn percent_roll(percentage: f64) -> bool {
    rand::random::<f64>() * 100.0 < percentage
}

async fn forward(State(hop): State<Arc<Hop>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let choice = match hop.choose(parts.uri.path(), &parts.headers, rand::random::<f64>()) {
        Ok(choice) => choice,
        Err(unroutable) => return unroutable.into_response(),
    };
    if let Some(fault) = &choice.fault {
        if let Some(delay) = fault.delay.as_ref().filter(|d| percent_roll(d.percentage)) {
            tokio::time::sleep(delay.fixed_delay).await;
        }
        if let Some(abort) = fault.abort.as_ref().filter(|a| percent_roll(a.percentage)) {
            let status =
                StatusCode::from_u16(abort.http_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return error(
                status,
                "fault_abort",
                "the route's fault injection aborted the request",
            );
        }
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let url = format!("{}{}", choice.base, path_and_query);
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    let replayable = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len <= MAX_REPLAY_BYTES);
    let retries = choice
        .retries
        .as_ref()
        .filter(|r| r.attempts > 0 && replayable);
    let exchange = async {
        let Some(retries) = retries else {
            let request = hop
                .client
                .request(parts.method.clone(), &url)
                .headers(headers.clone())
                .body(reqwest::Body::wrap_stream(body.into_data_stream()));
            // No retries: the route timeout bounds the one try, its body included.
            return one_try(request, choice.timeout).await;
        };
        let bytes = match axum::body::to_bytes(body, MAX_REPLAY_BYTES as usize).await {
            Ok(bytes) => bytes,
            Err(_) => return Try::Broken,
        };
        let on = RetryOn::parse(retries.retry_on.as_deref());
        let mut tries_left = retries.attempts;
        loop {
            let request = hop
                .client
                .request(parts.method.clone(), &url)
                .headers(headers.clone())
                .body(bytes.clone());
            let outcome = one_try(request, retries.per_try_timeout).await;
            let retriable = match &outcome {
                Try::Answer(answer) => on.status(answer.status()),
                Try::ConnectFailed => on.connect_failure,
                Try::Broken => on.reset,
                Try::TimedOut => on.reset || on.server_error || on.gateway_error,
            };
            if !retriable || tries_left == 0 {
                return outcome;
            }
            tries_left -= 1;
            // Envoy's base back-off is 25 ms (jittered); keep it short and fixed here.
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    };
    let outcome = match choice.timeout {
        Some(timeout) => tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Try::TimedOut),
        None => exchange.await,
    };
    let subset = choice.version.as_str();
    match outcome {
        Try::Answer(answer) => {
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
        Try::TimedOut => error(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "the upstream did not answer within the route timeout",
        ),
        Try::ConnectFailed | Try::Broken => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_unavailable",
            "the upstream replica is not reachable",
        ),
    }
}

/// Sends one try, bounded by `per_try_timeout` when set.
async fn one_try(
    request: reqwest::RequestBuilder,
    per_try_timeout: Option<std::time::Duration>,
) -> Try {
    let request = match per_try_timeout {
        Some(t) => request.timeout(t),
        None => request,
    };
    match request.send().await {
        Ok(answer) => Try::Answer(answer),
        Err(e) if e.is_timeout() => Try::TimedOut,
        Err(e) if e.is_connect() => Try::ConnectFailed,
        Err(_) => Try::Broken,
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
    mesh::ErrorBody::new(code, message).into_response_with(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An upstream that answers 503 to the first `failures` tries and then echoes the body.
    async fn flaky_upstream(failures: usize) -> (String, Arc<AtomicUsize>) {
        let tries = Arc::new(AtomicUsize::new(0));
        let seen = tries.clone();
        let app = Router::new().fallback(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) < failures {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    body.into_response()
                }
            }
        });
        (serve(app).await, tries)
    }

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    async fn hop_with_retries(attempts: u32, upstream: String) -> String {
        let yaml = format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: h, namespace: ns}}\n\
             spec: {{hosts: [h], http: [{{route: [{{destination: {{host: h, subset: stable}}}}], timeout: 5s,\n\
             \x20 retries: {{attempts: {attempts}, perTryTimeout: 1s, retryOn: 5xx}}}}]}}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: h, namespace: ns}}\n\
             spec: {{host: h, subsets: [{{name: stable, labels: {{version: stable}}}}]}}\n"
        );
        let resources =
            mesh_istio::load::load_str(&yaml, std::path::Path::new("t.yaml")).expect("loads");
        let table = RouteTable::from_resources(&resources).expect("routes");
        let hop = Hop::new(
            "h.ns.svc.cluster.local".to_owned(),
            Caller::sidecar("ns"),
            Arc::new(table),
            HashMap::from([(Version::Stable, upstream)]),
        );
        serve(hop.router()).await
    }

    #[tokio::test]
    async fn retries_replay_the_body_until_the_answer_is_not_retriable() {
        let (upstream, tries) = flaky_upstream(2).await;
        let hop = hop_with_retries(2, upstream).await;
        let answer = reqwest::Client::new()
            .post(&hop)
            .body("the photo")
            .send()
            .await
            .expect("the hop answers");
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(tries.load(Ordering::SeqCst), 3);
        assert_eq!(answer.text().await.expect("body"), "the photo");
    }

    #[tokio::test]
    async fn retries_stop_after_attempts() {
        let (upstream, tries) = flaky_upstream(5).await;
        let hop = hop_with_retries(1, upstream).await;
        let answer = reqwest::Client::new()
            .post(&hop)
            .body("the photo")
            .send()
            .await
            .expect("the hop answers");
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(tries.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn retry_on_reads_the_conditions_a_hop_can_observe() {
        let on = RetryOn::parse(Some(
            "connect-failure, refused-stream,gateway-error,unavailable",
        ));
        assert!(on.connect_failure && on.gateway_error && !on.server_error && !on.reset);
        assert!(on.status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!on.status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(RetryOn::parse(Some("5xx")).status(StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(
            RetryOn::parse(None),
            RetryOn {
                connect_failure: true,
                ..RetryOn::default()
            }
        );
    }
}
