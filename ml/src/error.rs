//! The one error type the HTTP API answers with: `{"error":{"code":"…","message":"…"}}`.
//! Client errors say what was wrong; a 5xx says nothing about internals (details go to the log).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesh::ServiceError;
use mesh::error::code;

use crate::photo::DecodeError;
use crate::pool::ClassifyError;

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

impl ServiceError for ApiError {
    fn status(&self) -> StatusCode {
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

    fn code(&self) -> &str {
        match self {
            Self::EmptyBody => "empty_body",
            Self::InvalidTopK(_) => "invalid_top_k",
            Self::InvalidMultipart(_) => code::INVALID_MULTIPART,
            Self::MissingImage => code::MISSING_IMAGE,
            Self::UnreadableBody(_) => "unreadable_body",
            Self::PayloadTooLarge { .. } => code::PAYLOAD_TOO_LARGE,
            Self::ImageTooLarge(_) => "image_too_large",
            Self::UnsupportedMediaType(_) => code::UNSUPPORTED_MEDIA_TYPE,
            Self::UndecodableImage(_) => "undecodable_image",
            Self::Overloaded(_) => "overloaded",
            Self::Unexpected(_) => code::INTERNAL,
        }
    }

    fn internal_cause(&self) -> Option<String> {
        match self {
            Self::Unexpected(cause) => Some(format!("{cause:#}")),
            _ => None,
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
        self.into_error_response()
    }
}
