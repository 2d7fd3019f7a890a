//! `TestApp` (the real backend router on a real socket, port 0) and `MlDouble` (a stand-in for the
//! ml tier, which these tests are not about: the lead's end-to-end tests use the real one).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use backend::Config;
use mesh::config::Env;
use serde_json::{Value, json};

/// Bytes standing in for a photo: the backend never decodes them, the double never looks.
pub const PHOTO: &[u8] = b"\x89PNG\r\n\x1a\n-test-photo-bytes-";

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
}

impl TestApp {
    /// Starts the backend with `ML_URL=ml_url` plus `extra` variables.
    pub async fn spawn(ml_url: &str, extra: &[(&str, &str)]) -> TestApp {
        let mut pairs = vec![
            ("ML_URL".to_owned(), ml_url.to_owned()),
            ("PORT".to_owned(), "0".to_owned()),
        ];
        pairs.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let config = Config::from_env(&Env::from_pairs(pairs)).expect("test config is valid");
        let backend = mesh::spawn(&config, std::future::pending())
            .await
            .expect("backend builds and serves");
        let address = format!("http://{}", backend.addr);
        TestApp {
            address,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Posts a multipart form with one file part `field` of type `content_type`.
    pub fn upload(&self, field: &str, content_type: &str, bytes: &[u8]) -> reqwest::RequestBuilder {
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name("photo.png")
            .mime_str(content_type)
            .expect("valid mime");
        let form = reqwest::multipart::Form::new()
            .text("note", "sent by a test")
            .part(field.to_owned(), part);
        self.http.post(self.url("/api/v1/analyze")).multipart(form)
    }
}

/// What the double does with each classify call.
#[derive(Clone)]
pub enum MlBehaviour {
    /// Answer with this status, JSON body and optional `Retry-After`.
    Answer(StatusCode, Value, Option<&'static str>),
    /// Answer 200 with a body that is not ml's JSON.
    Garbage,
    /// Sleep this long, then answer 200 with `ok_body`.
    Slow(Duration),
    /// Answer this status with a plain-text body and these headers, as a proxy (Envoy) would.
    Proxy(
        StatusCode,
        &'static str,
        &'static [(&'static str, &'static str)],
    ),
}

/// One request the double received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Bytes,
}

#[derive(Clone)]
struct DoubleState {
    behaviour: MlBehaviour,
    received: Arc<Mutex<Vec<Received>>>,
}

pub struct MlDouble {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl MlDouble {
    pub async fn start(behaviour: MlBehaviour) -> MlDouble {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/classify", post(classify))
            .with_state(DoubleState {
                behaviour,
                received: received.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        MlDouble { url, received }
    }

    /// The double answers with `predictions` the way ml would.
    pub async fn answering(predictions: Value) -> MlDouble {
        MlDouble::start(MlBehaviour::Answer(
            StatusCode::OK,
            ok_body(predictions),
            None,
        ))
        .await
    }

    /// A URL where nothing listens: the port was bound and released.
    pub async fn unreachable_url() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        drop(listener);
        format!("http://{addr}")
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("not poisoned").clone()
    }
}

async fn classify(
    State(state): State<DoubleState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.received.lock().expect("not poisoned").push(Received {
        headers,
        query: uri.query().map(str::to_owned),
        body,
    });
    match state.behaviour {
        MlBehaviour::Answer(status, body, retry_after) => {
            let mut response = (status, axum::Json(body)).into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    seconds.parse().expect("valid header value"),
                );
            }
            response
        }
        MlBehaviour::Garbage => (StatusCode::OK, "<html>not json</html>").into_response(),
        MlBehaviour::Proxy(status, text, headers) => {
            let mut response = (status, text).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(
                    header::HeaderName::from_static(name),
                    value.parse().expect("valid header value"),
                );
            }
            response
        }
        MlBehaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            axum::Json(ok_body(json!([]))).into_response()
        }
    }
}

/// A stand-in for ml that breaks the connection, below HTTP: raw TCP.
pub enum BrokenMl {
    /// Accepts, reads the request, and resets the connection without answering.
    Reset,
    /// Answers 200 with a `Content-Length` it does not keep, then closes.
    Truncated,
}

impl BrokenMl {
    /// Serves `self` on a free port; answers the base URL.
    pub async fn start(self) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let truncated = matches!(self, BrokenMl::Truncated);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let _ = stream.read(&mut buf).await;
                    if truncated {
                        let _ = stream
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{\"model\":{\"na",
                            )
                            .await;
                        let _ = stream.flush().await;
                    } else {
                        // SO_LINGER 0: close() sends a RST instead of a FIN.
                        let _ = stream.set_zero_linger();
                    }
                    drop(stream);
                });
            }
        });
        url
    }
}

/// ml's classify answer around `predictions`.
pub fn ok_body(predictions: Value) -> Value {
    json!({
        "model": {"name": "efficientnet-lite0", "version": "0.1.0", "input_size": 224},
        "predictions": predictions,
        "timings_ms": {"decode": 1.5, "preprocess": 0.7, "inference": 14.2, "queue": 0.1},
        "served_by": ["ml/stable"],
    })
}

/// `[{label, index, probability}]` from tuples, spelled the way ml's classify answer spells them.
pub fn predictions(list: &[(&str, u32, f64)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(label, index, p)| json!({"label": label, "index": index, "probability": p}))
            .collect(),
    )
}
