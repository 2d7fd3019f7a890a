//! The mesh layers around a service's routes, exercised through a real router with `oneshot`.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use mesh::{Mesh, RequestContext, ServiceIdentity, Version};
use opentelemetry::trace::TracerProvider as _;
use tower::ServiceExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

fn app() -> (Mesh, Router) {
    let mesh = Mesh::new(ServiceIdentity::new("backend", Version::Canary));
    let routes = Router::new().route(
        "/items/{id}",
        get(|ctx: RequestContext| async move { ctx.request_id().to_owned() }),
    );
    let router = mesh.wrap(routes);
    (mesh, router)
}

async fn body_text(response: axum::response::Response) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn get_request(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

#[tokio::test]
async fn every_answer_says_who_served_it() {
    let (_, router) = app();
    let response = router
        .oneshot(get_request("/items/7"))
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-served-by"], "backend/canary");
    // Security headers on every answer; a service without a CSP of its own gets "load nothing".
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert_eq!(
        response.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
}

#[tokio::test]
async fn a_request_id_is_made_when_missing_and_kept_when_given() {
    let (_, router) = app();
    let made = body_text(
        router
            .clone()
            .oneshot(get_request("/items/1"))
            .await
            .expect("answer"),
    )
    .await;
    assert_eq!(made.len(), 36, "a UUID: {made}");
    let blank = Request::get("/items/1")
        .header("x-request-id", "")
        .body(Body::empty())
        .expect("request");
    let remade = body_text(router.clone().oneshot(blank).await.expect("answer")).await;
    assert_eq!(
        remade.len(),
        36,
        "a blank id is replaced by a UUID: {remade}"
    );
    let kept = Request::get("/items/1")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .expect("request");
    assert_eq!(
        body_text(router.oneshot(kept).await.expect("answer")).await,
        "abc-123"
    );
}

#[tokio::test]
async fn readiness_follows_the_service() {
    let (mesh, router) = app();
    let before = router
        .clone()
        .oneshot(get_request("/readyz"))
        .await
        .expect("answer");
    assert_eq!(before.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(before.headers().contains_key("retry-after"));
    let alive = router
        .clone()
        .oneshot(get_request("/healthz"))
        .await
        .expect("answer");
    assert_eq!(alive.status(), StatusCode::OK);
    mesh.readiness().set_ready(true);
    let after = router
        .oneshot(get_request("/readyz"))
        .await
        .expect("answer");
    assert_eq!(after.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_use_route_templates_never_raw_paths() {
    let (_, router) = app();
    for path in ["/items/1", "/items/2", "/no/such/page/42"] {
        let _ = router
            .clone()
            .oneshot(get_request(path))
            .await
            .expect("answer");
    }
    let metrics = body_text(
        router
            .oneshot(get_request("/metrics"))
            .await
            .expect("answer"),
    )
    .await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("http_server_requests_total{") && l.contains("route=\"/items/{id}\"")
        })
        .unwrap_or_else(|| panic!("no request counter for the template:\n{metrics}"));
    assert!(line.contains("service=\"backend\""), "{line}");
    assert!(line.contains("version=\"canary\""), "{line}");
    assert!(line.contains("status=\"2xx\""), "{line}");
    assert!(
        line.ends_with(" 2"),
        "two requests on that template: {line}"
    );
    assert!(
        !metrics.contains("/items/1"),
        "a raw path leaked into labels"
    );
    assert!(
        !metrics.contains("/no/such/page/42"),
        "a raw path leaked into labels"
    );
}

#[tokio::test]
async fn the_outbound_client_carries_the_propagated_headers() {
    // A real server on port 0 stands in for the downstream; it answers with what it received.
    let echo = Router::new().route(
        "/echo",
        get(|headers: http::HeaderMap| async move {
            let pick = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned()
            };
            format!(
                "{} {} {}",
                pick("x-canary"),
                pick("x-request-id"),
                pick("traceparent")
            )
        }),
    );
    let server = mesh::Server::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let url = format!("http://{}/echo", server.local_addr());
    let downstream = tokio::spawn(server.run_until_stopped(
        echo,
        mesh::Readiness::default(),
        std::future::pending(),
        mesh::StopPolicy {
            delay: std::time::Duration::ZERO,
            drain: std::time::Duration::from_secs(1),
        },
    ));

    // A tracer for this test only (a scoped subscriber, no global state), so the request span is a
    // real span with its own id, and what it exports can be checked.
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("layers-test")));
    let _scoped = tracing::subscriber::set_default(subscriber);

    let mesh = Mesh::new(ServiceIdentity::new("frontend", Version::Stable));
    let client = mesh.client(std::time::Duration::from_secs(5));
    let router = mesh.wrap(Router::new().route(
        "/call",
        get(move |ctx: RequestContext| {
            let client = client.clone();
            let url = url.clone();
            async move {
                client
                    .get(&ctx, &url)
                    .send()
                    .await
                    .expect("downstream answers")
                    .text()
                    .await
                    .expect("text")
            }
        }),
    ));
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let incoming_span = "00f067aa0ba902b7";
    let request = Request::get("/call")
        .header("x-canary", "true")
        .header("x-request-id", "req-9")
        .header("traceparent", format!("00-{trace}-{incoming_span}-01"))
        .body(Body::empty())
        .expect("request");
    let seen = body_text(router.oneshot(request).await.expect("answer")).await;
    let mut parts = seen.split(' ');
    assert_eq!(parts.next(), Some("true"));
    assert_eq!(parts.next(), Some("req-9"));
    let traceparent = parts.next().unwrap_or_default();
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(
        fields.len(),
        4,
        "a W3C traceparent downstream: {traceparent}"
    );
    assert_eq!(fields[1], trace, "the same trace downstream: {traceparent}");
    let downstream_parent = fields[2];
    assert_ne!(
        downstream_parent, incoming_span,
        "a new span, not the incoming header copied verbatim: {traceparent}"
    );
    assert!(
        downstream_parent.len() == 16 && downstream_parent != "0000000000000000",
        "a valid span id: {traceparent}"
    );
    // The span downstream's parent is this service's request span, a child of the incoming one.
    let spans = exporter.get_finished_spans().expect("exported spans");
    let request_span = spans
        .iter()
        .find(|s| s.span_context.span_id().to_string() == downstream_parent)
        .unwrap_or_else(|| panic!("the request span was exported: {spans:?}"));
    assert_eq!(request_span.span_context.trace_id().to_string(), trace);
    assert_eq!(request_span.parent_span_id.to_string(), incoming_span);
    assert_eq!(request_span.name, "GET /call");
    downstream.abort();
}

#[tokio::test]
async fn a_handler_that_panics_answers_the_json_500_and_the_service_keeps_serving() {
    let mesh = Mesh::new(ServiceIdentity::new("ml", Version::Stable));
    let router = mesh.wrap(
        Router::new()
            .route(
                "/boom",
                get(|| async { panic!("secret internal detail") as &'static str }),
            )
            .route("/fine", get(|| async { "fine" })),
    );
    let boom = router
        .clone()
        .oneshot(get_request("/boom"))
        .await
        .expect("answer");
    assert_eq!(boom.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(boom.headers()["x-served-by"], "ml/stable");
    assert!(boom.headers().contains_key("x-request-id"));
    let body = body_text(boom).await;
    let error = mesh::ErrorBody::parse(body.as_bytes())
        .unwrap_or_else(|| panic!("the shared error body: {body}"));
    assert_eq!(error.code(), "internal");
    assert!(
        !body.contains("secret"),
        "a 5xx says nothing about internals: {body}"
    );
    let fine = router.oneshot(get_request("/fine")).await.expect("answer");
    assert_eq!(fine.status(), StatusCode::OK);
    assert_eq!(body_text(fine).await, "fine");
}
