//! The one error type the HTTP API answers with: `{"error":{"code":"…","message":"…"}}`.
//! Client errors say what was wrong; a 5xx says nothing about internals (details go to the log).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::photo::DecodeError;
use crate::pool::ClassifyError;

/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is empty; send the image bytes")]
    EmptyBody,
    #[error("{0}")]
    InvalidTopK(String),
    #[error("the multipart body is malformed: {0}")]
    InvalidMultipart(String),
    #[error("the multipart body has no field named `image`")]
    MissingImage,
    #[error("the request body could not be read: {0}")]
    UnreadableBody(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    ImageTooLarge(String),
    #[error("{0}")]
    UndecodableImage(String),
    #[error("{0}; retry shortly")]
    Overloaded(String),
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::EmptyBody
            | Self::InvalidTopK(_)
            | Self::InvalidMultipart(_)
            | Self::MissingImage
            | Self::UnreadableBody(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } | Self::ImageTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::UndecodableImage(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyBody => "empty_body",
            Self::InvalidTopK(_) => "invalid_top_k",
            Self::InvalidMultipart(_) => "invalid_multipart",
            Self::MissingImage => "missing_image",
            Self::UnreadableBody(_) => "unreadable_body",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::ImageTooLarge(_) => "image_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::UndecodableImage(_) => "undecodable_image",
            Self::Overloaded(_) => "overloaded",
            Self::Unexpected(_) => "internal",
        }
    }
}

impl From<ClassifyError> for ApiError {
    fn from(error: ClassifyError) -> Self {
        match error {
            ClassifyError::Overloaded { .. } => Self::Overloaded(error.to_string()),
            ClassifyError::Decode(DecodeError::UnknownFormat) => {
                Self::UnsupportedMediaType(error.to_string())
            }
            ClassifyError::Decode(DecodeError::TooManyPixels { .. }) => {
                Self::ImageTooLarge(error.to_string())
            }
            ClassifyError::Decode(DecodeError::Undecodable { .. }) => {
                Self::UndecodableImage(error.to_string())
            }
            ClassifyError::Preprocess(_)
            | ClassifyError::Classifier(_)
            | ClassifyError::WorkerGone => Self::Unexpected(anyhow::Error::new(error)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Unexpected(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        } else {
            tracing::info!(status = status.as_u16(), code = self.code(), error = %self, "request refused");
        }
        let body = serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}
