//! `spawn_app()` and friends: the real router from `ml::build`, driven with `oneshot` (no socket).

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use mesh::Mesh;
use mesh::config::Env;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tower::ServiceExt;

/// Tests that measure the process's memory take this exclusively; every other test holds it
/// shared while it runs, so nothing else allocates during the measurement.
static PROCESS: RwLock<()> = RwLock::const_new(());

pub async fn shared_process() -> RwLockReadGuard<'static, ()> {
    PROCESS.read().await
}

pub async fn exclusive_process() -> RwLockWriteGuard<'static, ()> {
    PROCESS.write().await
}

pub fn fixture_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

pub fn fixture(relative: &str) -> Vec<u8> {
    let path = fixture_path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

pub struct TestApp {
    pub router: Router,
    pub mesh: Mesh,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `error.code` of an error answer.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Class indices of the predictions, most probable first.
    pub fn indices(&self) -> Vec<u64> {
        self.json()["predictions"]
            .as_array()
            .expect("predictions")
            .iter()
            .map(|p| p["index"].as_u64().expect("index"))
            .collect()
    }
}

/// Builds the service as `main` does, from the given environment (stable, Lite0 by default).
pub async fn spawn_app(vars: &[(&str, &str)]) -> TestApp {
    let config =
        ml::Config::from_env(&Env::from_pairs(vars.iter().copied())).expect("valid config");
    let mesh = Mesh::new(config.mesh.identity.clone());
    let router = ml::build(&config, &mesh).await.expect("the service builds");
    TestApp { router, mesh }
}

impl TestApp {
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Request::get(path).body(Body::empty()).expect("request"))
            .await
    }

    /// `POST /v1/classify{query}` with a raw body.
    pub async fn classify(
        &self,
        content_type: Option<&str>,
        body: Vec<u8>,
        query: &str,
    ) -> TestResponse {
        let mut request = Request::post(format!("/v1/classify{query}"));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        self.send(request.body(Body::from(body)).expect("request"))
            .await
    }

    /// `POST /v1/classify` as a browser form would: multipart with the file in field `field`.
    pub async fn classify_multipart(
        &self,
        field: &str,
        file_type: &str,
        bytes: &[u8],
    ) -> TestResponse {
        let boundary = "ml-test-boundary-7d1f";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"upload\"\r\n\
                 Content-Type: {file_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = Request::post("/v1/classify")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }

    /// A known-good request; asserts it succeeds.
    pub async fn assert_still_serving(&self, after: &str) {
        let response = self
            .classify(Some("image/jpeg"), fixture("photos/coffee.jpg"), "")
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "no longer serving after {after}: {}",
            response.text()
        );
        assert_eq!(response.indices()[0], 967, "espresso after {after}");
    }
}
