//! The one error type the backend's API answers with: `{"error":{"code":"…","message":"…"}}`.
//! A 4xx says what was wrong with the request; a 5xx says what a person can do about it and nothing
//! about internals (the details go to the log, inside the request's span).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesh::ServiceError;
use mesh::error::{RETRY_AFTER_SECS, code};

use crate::classifier::ClassifyError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request must be multipart/form-data with the photo in a field named `image`: {0}")]
    InvalidMultipart(String),
    #[error("no photo was sent: add a file field named `image`")]
    MissingImage,
    #[error("the photo in field `image` is empty")]
    EmptyImage,
    #[error("the photo is larger than the {limit} bytes accepted")]
    TooLarge { limit: usize },
    #[error("the field `image` must be a photo (image/jpeg, image/png or image/webp), not {0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    RejectedByMl {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("the service is busy analysing other photos; please try again in a moment")]
    Busy,
    #[error("the image classifier is unavailable right now; please try again in a moment")]
    MlUnavailable { retry_after: u64 },
    #[error("the image classifier is busy right now; please try again in a moment")]
    MlOverloaded { retry_after: u64 },
    #[error("the image classifier took too long to answer; please try again")]
    MlTimeout,
    #[error("the image classifier failed to answer properly; please try again later")]
    MlError,
    #[error("something went wrong on our side; please try again later")]
    Unexpected(#[from] anyhow::Error),
}

impl ServiceError for ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidMultipart(_) | Self::MissingImage | Self::EmptyImage => {
                StatusCode::BAD_REQUEST
            }
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RejectedByMl { status, .. } => *status,
            Self::Busy | Self::MlUnavailable { .. } | Self::MlOverloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::MlTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::MlError => StatusCode::BAD_GATEWAY,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &str {
        match self {
            Self::InvalidMultipart(_) => code::INVALID_MULTIPART,
            Self::MissingImage => code::MISSING_IMAGE,
            Self::EmptyImage => code::EMPTY_IMAGE,
            Self::TooLarge { .. } => code::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => code::UNSUPPORTED_MEDIA_TYPE,
            Self::RejectedByMl { code, .. } => code,
            Self::Busy => "overloaded",
            Self::MlUnavailable { .. } => "ml_unavailable",
            Self::MlOverloaded { .. } => "ml_overloaded",
            Self::MlTimeout => "ml_timeout",
            Self::MlError => "ml_error",
            Self::Unexpected(_) => code::INTERNAL,
        }
    }

    fn retry_after_secs(&self) -> u64 {
        match self {
            Self::MlUnavailable { retry_after } | Self::MlOverloaded { retry_after } => {
                *retry_after
            }
            _ => RETRY_AFTER_SECS,
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
        match &error {
            ClassifyError::Timeout(_) => {
                tracing::warn!(error = %error, "ml timed out");
                Self::MlTimeout
            }
            ClassifyError::Unreachable(_) => {
                tracing::warn!(error = %error, "ml unreachable");
                Self::MlUnavailable {
                    retry_after: RETRY_AFTER_SECS,
                }
            }
            ClassifyError::Overloaded { retry_after, .. } => {
                tracing::warn!(error = %error, "ml overloaded");
                Self::MlOverloaded {
                    retry_after: retry_after.unwrap_or(RETRY_AFTER_SECS),
                }
            }
            ClassifyError::Unavailable { .. } => {
                tracing::warn!(error = %error, "ml unavailable");
                Self::MlUnavailable {
                    retry_after: RETRY_AFTER_SECS,
                }
            }
            ClassifyError::Rejected {
                status,
                code,
                message,
            } => Self::RejectedByMl {
                status: *status,
                code: if code.is_empty() {
                    default_rejection_code(*status).to_owned()
                } else {
                    code.clone()
                },
                message: rejection_message(*status, message),
            },
            ClassifyError::Failed(_) => {
                tracing::error!(error = %error, "ml failed");
                Self::MlError
            }
        }
    }
}

fn default_rejection_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "image_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "undecodable_image",
        _ => "invalid_image",
    }
}

/// What the person should read: a plain explanation, followed by ml's own words when it gave some.
fn rejection_message(status: StatusCode, ml_message: &str) -> String {
    let plain = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "The photo is too large to analyse",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "The file is not a photo format we can read (use JPEG, PNG or WebP)"
        }
        StatusCode::UNPROCESSABLE_ENTITY => "The photo could not be decoded; it may be damaged",
        _ => "The photo could not be analysed",
    };
    let ml_message = ml_message.trim();
    if ml_message.is_empty() {
        format!("{plain}.")
    } else {
        format!("{plain}: {ml_message}")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.into_error_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ml_failures_map_to_the_documented_statuses() {
        let cases = [
            (
                ClassifyError::Timeout(std::time::Duration::from_millis(5)),
                504,
                "ml_timeout",
            ),
            (
                ClassifyError::Unreachable("refused".into()),
                503,
                "ml_unavailable",
            ),
            (
                ClassifyError::Overloaded {
                    code: "overloaded".into(),
                    retry_after: Some(3),
                },
                503,
                "ml_overloaded",
            ),
            (
                ClassifyError::Unavailable {
                    code: "no_healthy_upstream".into(),
                },
                503,
                "ml_unavailable",
            ),
            (
                ClassifyError::Rejected {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: "undecodable_image".into(),
                    message: "bad JPEG".into(),
                },
                422,
                "undecodable_image",
            ),
            (ClassifyError::Failed("teapot".into()), 502, "ml_error"),
        ];
        for (error, status, code) in cases {
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status, "{api:?}");
            assert_eq!(api.code(), code);
        }
    }

    #[test]
    fn server_errors_do_not_leak_details() {
        let api = ApiError::from(ClassifyError::Failed(
            "connection reset by 10.0.3.7:5001".into(),
        ));
        assert!(!api.to_string().contains("10.0.3.7"));
        let api = ApiError::Unexpected(anyhow::anyhow!("secret path /etc/x"));
        assert!(!api.to_string().contains("/etc/x"));
    }

    #[test]
    fn an_ml_rejection_without_a_body_still_reads_well() {
        let api = ApiError::from(ClassifyError::Rejected {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: String::new(),
            message: String::new(),
        });
        assert_eq!(api.code(), "unsupported_media_type");
        assert!(api.to_string().contains("JPEG"), "{api}");
    }
}
