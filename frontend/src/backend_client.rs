//! The frontend's one outbound call: the photo to the backend's `POST /api/v1/analyze`.
//!
//! The request goes out through the mesh client, so `x-canary`, `x-request-id` and the trace
//! headers of the incoming request travel with it, and the configured timeout applies.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use mesh::{Mesh, MeshClient, RequestContext, Unavailability};
use reqwest::multipart::{Form, Part};
use serde_json::{Map, Value};

use crate::config::BackendUrl;
use crate::upload::{IMAGE_FIELD, Upload};

/// The backend's answers are small JSON documents; anything bigger is refused unread.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
const SERVED_BY_HEADER: &str = "x-served-by";
/// The file name the photo is forwarded under, whatever the browser called it.
pub const FORWARDED_FILE_NAME: &str = "photo";

#[derive(Clone)]
pub struct BackendClient {
    client: MeshClient,
    endpoint: String,
}

/// A successful analysis: the backend's JSON object, untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendAnswer {
    pub body: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the upload could not be forwarded: {0}")]
    InvalidUpload(#[source] reqwest::Error),
    #[error("the backend could not be reached: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("the backend did not answer in time")]
    Timeout,
    #[error("the backend refused the upload with {status}")]
    Rejected {
        status: StatusCode,
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
            Self::InvalidUpload(_) | Self::Unreachable(_) | Self::Timeout => &[],
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
        }
    }

    /// Sends the photo as multipart field `image` (same content type, file name
    /// [`FORWARDED_FILE_NAME`]) and reads the backend's verdict.
    pub async fn analyze(
        &self,
        ctx: &RequestContext,
        upload: Upload,
    ) -> Result<BackendAnswer, BackendError> {
        let part = Part::bytes(upload.bytes)
            .file_name(FORWARDED_FILE_NAME)
            .mime_str(&upload.content_type)
            .map_err(BackendError::InvalidUpload)?;
        let form = Form::new().part(IMAGE_FIELD, part);
        let response = self
            .client
            .post(ctx, &self.endpoint)
            .multipart(form)
            .send()
            .await
            .map_err(transport_error)?;

        let status = response.status();
        let headers = response.headers().clone();
        let body = read_limited(response).await?;
        if status.is_success() {
            return parse_answer(&body, &headers);
        }
        let served_by = error_trail(&body, &headers);
        Err(match status {
            StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY => BackendError::Rejected {
                status,
                message: error_message(&body),
                served_by,
            },
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                let retry_after = headers
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let busy = status == StatusCode::TOO_MANY_REQUESTS
                    || Unavailability::of_503(&headers, &body) == Unavailability::Overloaded;
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

/// The `message` of the shared error body, when the backend sent one.
fn error_message(body: &[u8]) -> Option<String> {
    mesh::ErrorBody::parse(body)
        .map(|b| b.error.message)
        .filter(|m| !m.is_empty())
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
    fn error_message_reads_the_json_error_body() {
        assert_eq!(
            error_message(br#"{"error":{"code":"unsupported","message":"send a JPEG"}}"#),
            Some("send a JPEG".to_owned())
        );
        assert_eq!(error_message(b"<html>oops</html>"), None);
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
