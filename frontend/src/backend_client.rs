//! The frontend's one outbound call: the upload form to the backend's `POST /api/v1/analyze`.
//!
//! The request goes out through the mesh client, so `x-canary`, `x-request-id` and the trace
//! headers of the incoming request travel with it. The form streams through as the browser sends
//! it ([`FormUpload`]); the configured timeout counts from the end of the upload, as Envoy's route
//! timeout does, so a slow uplink is bounded by the edge's body deadline
//! (`HTTP_BODY_READ_TIMEOUT_MS`) and not mistaken for a slow backend.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use mesh::{Mesh, MeshClient, RequestContext, Unavailability};
use serde_json::{Map, Value};

use crate::config::BackendUrl;
use crate::error::AnalyzeError;
use crate::upload::FormUpload;

/// The backend's answers are small JSON documents; anything bigger is refused unread.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
const SERVED_BY_HEADER: &str = "x-served-by";

#[derive(Clone)]
pub struct BackendClient {
    client: MeshClient,
    endpoint: String,
    /// The longest an upload may take to arrive (the edge cuts it off then).
    upload_deadline: Duration,
}

/// A successful analysis: the backend's JSON object, untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendAnswer {
    pub body: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the backend could not be reached: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("the backend did not answer in time")]
    Timeout,
    #[error("the backend refused the upload with {status}")]
    Rejected {
        status: StatusCode,
        /// The error body's `code`, when the backend sent the shared error body.
        code: Option<String>,
        message: Option<String>,
        served_by: Vec<String>,
    },
    #[error("the backend is busy or not ready ({status})")]
    Busy {
        status: StatusCode,
        retry_after: Option<String>,
        served_by: Vec<String>,
    },
    #[error("the backend or its downstream is unavailable ({status})")]
    Unavailable {
        status: StatusCode,
        retry_after: Option<String>,
        served_by: Vec<String>,
    },
    #[error("the backend's own downstream timed out")]
    DownstreamTimeout { served_by: Vec<String> },
    #[error("the backend failed with {status}")]
    Failed {
        status: StatusCode,
        served_by: Vec<String>,
    },
    #[error("the backend's answer could not be read: {reason}")]
    InvalidAnswer {
        reason: String,
        served_by: Vec<String>,
    },
}

impl BackendError {
    /// The trail of services that took part before the failure, as far as the backend told us.
    pub fn served_by(&self) -> &[String] {
        match self {
            Self::Unreachable(_) | Self::Timeout => &[],
            Self::Rejected { served_by, .. }
            | Self::Busy { served_by, .. }
            | Self::Unavailable { served_by, .. }
            | Self::DownstreamTimeout { served_by }
            | Self::Failed { served_by, .. }
            | Self::InvalidAnswer { served_by, .. } => served_by,
        }
    }
}

impl BackendClient {
    pub fn new(mesh: &Mesh, backend: &BackendUrl, timeout: Duration) -> Self {
        Self {
            client: mesh.client(timeout),
            endpoint: backend.analyze_endpoint(),
            upload_deadline: mesh.limits().body_read_timeout,
        }
    }

    /// Streams the upload form to the backend unchanged (its type, boundary and length) and reads
    /// the backend's verdict. The timeout starts once the last byte of the form is handed on.
    pub async fn analyze(
        &self,
        ctx: &RequestContext,
        form: FormUpload,
    ) -> Result<BackendAnswer, AnalyzeError> {
        let timeout = self.client.timeout();
        let mut request = self
            .client
            .post(ctx, &self.endpoint)
            // A backstop only: the deadline below is the one that speaks.
            .timeout(self.upload_deadline + timeout)
            .header(header::CONTENT_TYPE, form.content_type().clone());
        if let Some(length) = form.declared_length() {
            request = request.header(header::CONTENT_LENGTH, length);
        }
        let limit = form.limit();
        let (stream, overrun, finished) = form.into_stream();
        let exchange = async {
            let response = request
                .body(reqwest::Body::wrap_stream(stream))
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = read_limited(response).await?;
            Ok::<_, ExchangeError>((status, headers, body))
        };
        let deadline = async {
            finished.wait().await;
            tokio::time::sleep(timeout).await;
        };
        let outcome = tokio::select! {
            exchange = exchange => match exchange {
                Ok((status, headers, body)) => verdict(status, &headers, &body),
                Err(_) if overrun.happened() => return Err(AnalyzeError::TooLarge { limit }),
                Err(ExchangeError::Transport(err)) => Err(transport_error(err)),
                Err(ExchangeError::Backend(err)) => Err(err),
            },
            () = deadline => Err(BackendError::Timeout),
        };
        outcome.map_err(|err| AnalyzeError::from_backend(err, limit))
    }
}

/// What can interrupt the exchange before a verdict.
enum ExchangeError {
    Transport(reqwest::Error),
    Backend(BackendError),
}

impl From<reqwest::Error> for ExchangeError {
    fn from(err: reqwest::Error) -> Self {
        Self::Transport(err)
    }
}

impl From<BackendError> for ExchangeError {
    fn from(err: BackendError) -> Self {
        Self::Backend(err)
    }
}

/// The backend's answer read as a verdict: its analysis, or why there is none.
fn verdict(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<BackendAnswer, BackendError> {
    if status.is_success() {
        return parse_answer(body, headers);
    }
    let served_by = error_trail(body, headers);
    Err(match status {
        StatusCode::BAD_REQUEST
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::UNPROCESSABLE_ENTITY => {
            let (code, message) = error_detail(body);
            BackendError::Rejected {
                status,
                code,
                message,
                served_by,
            }
        }
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
            let retry_after = headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let busy = status == StatusCode::TOO_MANY_REQUESTS
                || Unavailability::of_503(headers, body) == Unavailability::Overloaded;
            if busy {
                BackendError::Busy {
                    status,
                    retry_after,
                    served_by,
                }
            } else {
                BackendError::Unavailable {
                    status,
                    retry_after,
                    served_by,
                }
            }
        }
        StatusCode::GATEWAY_TIMEOUT => BackendError::DownstreamTimeout { served_by },
        _ => BackendError::Failed { status, served_by },
    })
}

/// A connection that never opened is "unreachable" (503), even when it was the connect timeout
/// that gave up; a request that was sent but not answered in time is a timeout (504).
fn transport_error(err: reqwest::Error) -> BackendError {
    if err.is_connect() || !err.is_timeout() {
        BackendError::Unreachable(err)
    } else {
        BackendError::Timeout
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, BackendError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(BackendError::InvalidAnswer {
                reason: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
                served_by: header_trail(response.headers()),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_answer(body: &[u8], headers: &HeaderMap) -> Result<BackendAnswer, BackendError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(body)) => Ok(BackendAnswer { body }),
        Ok(_) => Err(BackendError::InvalidAnswer {
            reason: "the answer is not a JSON object".to_owned(),
            served_by: header_trail(headers),
        }),
        Err(err) => Err(BackendError::InvalidAnswer {
            reason: format!("the answer is not JSON: {err}"),
            served_by: header_trail(headers),
        }),
    }
}

/// `served_by` from an error body when the backend put one there, else its `x-served-by` header.
fn error_trail(body: &[u8], headers: &HeaderMap) -> Vec<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("served_by").cloned())
        .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
        .filter(|trail| !trail.is_empty())
        .unwrap_or_else(|| header_trail(headers))
}

fn header_trail(headers: &HeaderMap) -> Vec<String> {
    headers
        .get(SERVED_BY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| vec![v.to_owned()])
        .unwrap_or_default()
}

/// The shared error body's `code` and `message` (each when not empty), when the backend sent
/// that body.
fn error_detail(body: &[u8]) -> (Option<String>, Option<String>) {
    let non_empty = |text: String| (!text.is_empty()).then_some(text);
    match mesh::ErrorBody::parse(body) {
        Some(parsed) => (
            non_empty(parsed.error.code),
            non_empty(parsed.error.message),
        ),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn error_trail_prefers_the_body_then_the_header() {
        let mut headers = HeaderMap::new();
        headers.insert(SERVED_BY_HEADER, HeaderValue::from_static("backend/canary"));
        let with_body =
            br#"{"error":{"code":"x","message":"m"},"served_by":["backend/stable","ml/stable"]}"#;
        assert_eq!(
            error_trail(with_body, &headers),
            vec!["backend/stable", "ml/stable"]
        );
        assert_eq!(error_trail(b"not json", &headers), vec!["backend/canary"]);
        assert!(error_trail(b"{}", &HeaderMap::new()).is_empty());
    }

    #[test]
    fn the_code_and_message_are_read_from_the_json_error_body() {
        let body = br#"{"error":{"code":"unsupported","message":"send a JPEG"}}"#;
        assert_eq!(
            error_detail(body),
            (
                Some("unsupported".to_owned()),
                Some("send a JPEG".to_owned())
            )
        );
        assert_eq!(error_detail(b"<html>oops</html>"), (None, None));
    }

    #[test]
    fn only_json_objects_are_answers() {
        let headers = HeaderMap::new();
        assert!(parse_answer(br#"{"item":{}}"#, &headers).is_ok());
        assert!(matches!(
            parse_answer(b"[1,2]", &headers),
            Err(BackendError::InvalidAnswer { .. })
        ));
        assert!(matches!(
            parse_answer(b"<html>", &headers),
            Err(BackendError::InvalidAnswer { .. })
        ));
    }
}
