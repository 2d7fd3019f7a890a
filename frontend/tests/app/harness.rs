//! `spawn_app` runs the real frontend router on port 0; `BackendDouble` stands in for the backend
//! tier (an axum router on port 0) and records what reached it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use frontend::Config;
use mesh::config::Env;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// What one request to the double carried: the raw body, and its first form field as the
/// backend's multipart reader sees it.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub headers: HeaderMap,
    pub raw_body: Vec<u8>,
    pub field_name: Option<String>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How the double answers `POST /api/v1/analyze`.
#[derive(Debug, Clone)]
pub enum Behaviour {
    Answer {
        status: StatusCode,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Answers the sample analysis only after this long.
    Slow(Duration),
}

impl Behaviour {
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self::Answer {
            status,
            headers: vec![
                ("content-type", "application/json".to_owned()),
                ("x-served-by", "backend/stable".to_owned()),
            ],
            body: body.to_string(),
        }
    }

    pub fn error(status: StatusCode, code: &str, message: &str) -> Self {
        Self::json(status, json!({"error": {"code": code, "message": message}}))
    }
}

#[derive(Clone)]
struct DoubleState {
    behaviour: Behaviour,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
}

pub struct BackendDouble {
    pub url: String,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
}

impl BackendDouble {
    pub async fn start(behaviour: Behaviour) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = DoubleState {
            behaviour,
            received: received.clone(),
        };
        let app = Router::new()
            .route("/api/v1/analyze", post(analyze))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind double");
        let addr = listener.local_addr().expect("double address");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("double serves");
        });
        Self {
            url: format!("http://{addr}"),
            received,
        }
    }

    /// A backend that answers with [`sample_analysis`] labelled `label`.
    pub async fn answering(label: &str) -> Self {
        Self::start(Behaviour::json(StatusCode::OK, sample_analysis(label))).await
    }

    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received.lock().expect("double lock").clone()
    }

    pub fn only_request(&self) -> ReceivedRequest {
        let received = self.received();
        assert_eq!(
            received.len(),
            1,
            "expected exactly one request at the backend"
        );
        received.into_iter().next().expect("one request")
    }
}

async fn analyze(State(state): State<DoubleState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let raw_body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let mut received = ReceivedRequest {
        headers: parts.headers.clone(),
        raw_body: raw_body.clone(),
        field_name: None,
        file_name: None,
        content_type: None,
        bytes: Vec::new(),
    };
    let again = Request::from_parts(parts, Body::from(raw_body));
    if let Ok(mut multipart) = Multipart::from_request(again, &()).await
        && let Ok(Some(field)) = multipart.next_field().await
    {
        received.field_name = field.name().map(str::to_owned);
        received.file_name = field.file_name().map(str::to_owned);
        received.content_type = field.content_type().map(str::to_owned);
        received.bytes = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    }
    state.received.lock().expect("double lock").push(received);
    match state.behaviour {
        Behaviour::Answer {
            status,
            headers,
            body,
        } => {
            let mut response = (status, body).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            response
        }
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            axum::Json(sample_analysis("slow item")).into_response()
        }
    }
}

/// A backend URL where nothing listens (the port was bound, then released).
pub async fn unreachable_backend_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}")
}

/// The backend's answer shape, as the backend tier sends it (see backend/src/api.rs).
pub fn sample_analysis(label: &str) -> Value {
    json!({
        "item": {"label": label, "class_index": 898, "confidence": 0.873, "category": "drink-bottles"},
        "classification": {
            "model": {"name": "efficientnet-lite0", "version": "2026.11", "input_size": 224},
            "predictions": [
                {"label": label, "class_index": 898, "probability": 0.873},
                {"label": "pop bottle", "class_index": 737, "probability": 0.061}
            ]
        },
        "assessment": {
            "known": true, "strategy": "top1", "confidence": 0.873,
            "summary": "This looks like a drink bottle.",
            "category": {"id": "drink-bottles", "name": "Drink bottles"},
            "materials": ["PET plastic", "PP cap"],
            "recyclable": true, "reusable": true, "resellable": false, "biodegradable": false,
            "functional_categories": ["container"],
            "disposal": "Empty it, keep the cap on, and put it in the plastics bin.",
            "tips": [{"kind": "reuse", "text": "Refill it instead of buying a new one"}],
            "carbon_note": "Recycling one bottle saves roughly 80 g CO2e.",
            "contributing": [{"label": label, "class_index": 898, "probability": 0.873}]
        },
        "timings_ms": {"ml_total": 31.5, "ml": {"decode": 2.1, "preprocess": 1.4, "inference": 14.2, "queue": 0.1}},
        "served_by": ["backend/stable", "ml/stable"]
    })
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

/// Starts the frontend against `backend_url`, with extra environment pairs.
pub async fn spawn_app(backend_url: &str, extra_env: &[(&str, &str)]) -> TestApp {
    let mut pairs = vec![
        ("BACKEND_URL".to_owned(), backend_url.to_owned()),
        ("SHUTDOWN_DRAIN_MS".to_owned(), "100".to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
    ];
    pairs.extend(
        extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = Config::from_env(&Env::from_pairs(pairs)).expect("test config is valid");
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let stop = async {
        let _ = stop_rx.await;
    };
    let frontend = mesh::spawn(&config, stop)
        .await
        .expect("frontend builds and serves");
    let address = format!("http://{}", frontend.addr);
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        _stop: stop_tx,
    }
}

/// Bytes that start like a JPEG; the double never decodes them.
pub const PHOTO: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake photo bytes";

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("GET reaches the frontend")
    }

    /// Posts the upload form as a stream of unknown length: reqwest sends it chunked (no
    /// `Content-Length`), and the frontend must pass it on the same way.
    pub async fn post_form_chunked(&self, form: reqwest::multipart::Form) -> reqwest::Response {
        let content_type = format!("multipart/form-data; boundary={}", form.boundary());
        self.client
            .post(format!("{}/analyze", self.address))
            .header("content-type", content_type)
            .body(reqwest::Body::wrap_stream(form.into_stream()))
            .send()
            .await
            .expect("POST reaches the frontend")
    }

    /// Posts the upload form the way a browser does, with extra request headers.
    pub async fn post_form(
        &self,
        form: reqwest::multipart::Form,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/analyze", self.address))
            .multipart(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("POST reaches the frontend")
    }

    /// Posts `PHOTO` as `bottle.jpg` (`image/jpeg`) in field `image`.
    pub async fn post_photo(&self, headers: &[(&str, &str)]) -> reqwest::Response {
        self.post_form(
            photo_form(PHOTO.to_vec(), "bottle.jpg", "image/jpeg"),
            headers,
        )
        .await
    }
}

pub fn photo_form(bytes: Vec<u8>, file_name: &str, content_type: &str) -> reqwest::multipart::Form {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(file_name.to_owned())
        .mime_str(content_type)
        .expect("valid content type");
    reqwest::multipart::Form::new().part("image", part)
}

/// Status, headers and body text of a response.
pub async fn read(response: reqwest::Response) -> (StatusCode, HeaderMap, String) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    (status, headers, body)
}
