//! The one error contract every tier answers with and every client parses:
//! `{"error":{"code":"…","message":"…"}}`, with `Retry-After` on a 503.
//!
//! A service keeps its own error enum (what can go wrong there) and implements [`ServiceError`] for
//! it; [`ServiceError::into_error_response`] does the rest the same way everywhere. A 5xx message is
//! the service's own generic text, never the cause (the cause goes to the log).

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable `code` and a sentence for people. A client reading
/// an answer takes a missing field as empty rather than refusing the whole body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }

    /// Parses an error answer; `None` when the body is not the shared error body.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    pub fn code(&self) -> &str {
        &self.error.code
    }

    pub fn message(&self) -> &str {
        &self.error.message
    }

    /// The answer with this body: `status`, JSON, and `Retry-After` when `status` is 503.
    pub fn into_response_with(self, status: StatusCode) -> Response {
        let mut response = (status, Json(self)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

/// Codes more than one tier answers with. A service's own codes stay in its error type.
pub mod code {
    pub const INTERNAL: &str = "internal";
    pub const NOT_READY: &str = "not_ready";
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    pub const MISSING_IMAGE: &str = "missing_image";
    /// The photo field is there but empty (a browser form sent without choosing a file).
    pub const EMPTY_IMAGE: &str = "empty_image";
    pub const INVALID_MULTIPART: &str = "invalid_multipart";
    /// Past a tier's in-flight bound (503 with `Retry-After`).
    pub const OVERLOADED: &str = "overloaded";
    /// The request body did not arrive within the body-read bound (408).
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
}

/// What a 503 from a downstream means: it is there but busy (come back soon), or it is not there
/// to serve (down, not ready, no healthy replica, the connection failed). Both are 503 to the
/// caller, but they read differently to a person and only the first is worth retrying soon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailability {
    Overloaded,
    Unavailable,
}

impl Unavailability {
    /// Reads a 503: the shared error body says which by its code (`overloaded`, or a tier's own
    /// `…_overloaded`, is busy; `not_ready`, `upstream_unavailable`, `no_healthy_upstream`, … are
    /// not). A 503 that is not the shared body came from a proxy: Envoy marks its own overload
    /// (circuit breaker, pending-request overflow) with `x-envoy-overloaded`, and a server that asks
    /// for a retry with `Retry-After` is busy; anything else — Envoy's `no healthy upstream` or
    /// `upstream connect error … connection failure` — is unavailable.
    pub fn of_503(headers: &http::HeaderMap, body: &[u8]) -> Self {
        if let Some(error) = ErrorBody::parse(body) {
            let code = error.code();
            return if code == code::OVERLOADED || code.ends_with("_overloaded") {
                Self::Overloaded
            } else {
                Self::Unavailable
            };
        }
        if headers.contains_key("x-envoy-overloaded") || headers.contains_key(header::RETRY_AFTER) {
            Self::Overloaded
        } else {
            Self::Unavailable
        }
    }
}

/// A service's error, as the shared contract sees it.
pub trait ServiceError: std::error::Error {
    fn status(&self) -> StatusCode;
    fn code(&self) -> &str;

    /// Seconds a client is asked to wait, sent as `Retry-After` when the status is 503.
    fn retry_after_secs(&self) -> u64 {
        RETRY_AFTER_SECS
    }

    /// The cause to log for a 5xx; `None` for a refusal that the message already explains.
    fn internal_cause(&self) -> Option<String> {
        None
    }

    /// Logs the error (a 5xx with its cause, anything else as a refusal) and answers the shared body.
    fn into_error_response(self) -> Response
    where
        Self: Sized,
    {
        let status = self.status();
        if let Some(cause) = self.internal_cause() {
            tracing::error!(status = status.as_u16(), code = self.code(), error = %cause, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), code = self.code(), error = %self, "request refused");
        }
        let mut response =
            (status, Json(ErrorBody::new(self.code(), self.to_string()))).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(self.retry_after_secs()),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_round_trips_in_the_documented_shape() {
        let body = ErrorBody::new("payload_too_large", "too big");
        let json = serde_json::to_value(&body).expect("serialize");
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "payload_too_large", "message": "too big"}})
        );
        let back = ErrorBody::parse(json.to_string().as_bytes()).expect("parse");
        assert_eq!(back, body);
        assert_eq!(ErrorBody::parse(b"<html>"), None);
    }

    #[test]
    fn a_503_is_busy_only_when_it_says_so() {
        use http::HeaderMap;
        let none = HeaderMap::new();
        let mut retry = HeaderMap::new();
        retry.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        let mut envoy = HeaderMap::new();
        envoy.insert("x-envoy-overloaded", HeaderValue::from_static("true"));
        let json = |c: &str| serde_json::to_vec(&ErrorBody::new(c, "m")).expect("json");
        let cases: [(&HeaderMap, Vec<u8>, Unavailability); 8] = [
            (&retry, json("overloaded"), Unavailability::Overloaded),
            (&none, json("ml_overloaded"), Unavailability::Overloaded),
            // The lab's hops and ml's readiness send Retry-After too, but say what happened.
            (&retry, json("upstream_unavailable"), Unavailability::Unavailable),
            (&retry, json("not_ready"), Unavailability::Unavailable),
            // Envoy's own answers are plain text.
            (&none, b"no healthy upstream".to_vec(), Unavailability::Unavailable),
            (
                &none,
                b"upstream connect error or disconnect/reset before headers. reset reason: connection failure".to_vec(),
                Unavailability::Unavailable,
            ),
            (&envoy, b"upstream connect error or disconnect/reset before headers. reset reason: overflow".to_vec(), Unavailability::Overloaded),
            (&retry, Vec::new(), Unavailability::Overloaded),
        ];
        for (headers, body, want) in cases {
            assert_eq!(
                Unavailability::of_503(headers, &body),
                want,
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn only_a_503_asks_to_retry_later() {
        let busy = ErrorBody::new("overloaded", "busy")
            .into_response_with(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let bad = ErrorBody::new("bad", "bad").into_response_with(StatusCode::BAD_REQUEST);
        assert!(!bad.headers().contains_key(header::RETRY_AFTER));
    }
}
