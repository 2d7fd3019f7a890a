//! What can go wrong while analyzing a photo, and how each failure reads to a person.

use axum::http::StatusCode;
use mesh::error::code;

use crate::backend_client::BackendError;
use crate::config::{UploadLimit, human_size};

/// Seconds a client is asked to wait when the backend is busy and did not say how long.
const DEFAULT_RETRY_AFTER_SECS: &str = "2";
/// Seconds a client is asked to wait when the backend cannot be reached at all.
const UNREACHABLE_RETRY_AFTER_SECS: &str = "5";

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("the form has no photo in field `image`")]
    MissingImage,
    #[error("the photo is larger than {} bytes", limit.bytes())]
    TooLarge { limit: UploadLimit },
    #[error("the upload form could not be read: {reason}")]
    MalformedForm { reason: String },
    #[error(transparent)]
    Backend(BackendError),
}

impl AnalyzeError {
    /// A backend failure as the person sees it: the backend reads the form, so its refusals of
    /// the form itself (no photo, too large, garbled) read as the same pages the frontend would
    /// show; everything else keeps the backend's own status. `limit` is this frontend's, which the
    /// upload page advertises (the tiers share `MAX_UPLOAD_BYTES`).
    pub fn from_backend(err: BackendError, limit: UploadLimit) -> Self {
        if let BackendError::Rejected {
            status,
            code: Some(code),
            message,
            ..
        } = &err
        {
            match code.as_str() {
                code::MISSING_IMAGE | code::EMPTY_IMAGE => return Self::MissingImage,
                code::INVALID_MULTIPART => {
                    return Self::MalformedForm {
                        reason: message.clone().unwrap_or_default(),
                    };
                }
                code::PAYLOAD_TOO_LARGE if *status == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Self::TooLarge { limit };
                }
                _ => {}
            }
        }
        Self::Backend(err)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingImage | Self::MalformedForm { .. } => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Backend(err) => match err {
                BackendError::Unreachable(_)
                | BackendError::Busy { .. }
                | BackendError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                BackendError::Timeout | BackendError::DownstreamTimeout { .. } => {
                    StatusCode::GATEWAY_TIMEOUT
                }
                BackendError::Rejected { status, .. } => *status,
                BackendError::Failed { .. } | BackendError::InvalidAnswer { .. } => {
                    StatusCode::BAD_GATEWAY
                }
            },
        }
    }

    /// A stable machine-readable name: the JSON error `code` and the outcome metric label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingImage => code::MISSING_IMAGE,
            Self::TooLarge { .. } => code::PAYLOAD_TOO_LARGE,
            Self::MalformedForm { .. } => "malformed_form",
            Self::Backend(err) => match err {
                BackendError::Unreachable(_) => "backend_unreachable",
                BackendError::Timeout => "backend_timeout",
                BackendError::Rejected { status, .. } => match *status {
                    StatusCode::PAYLOAD_TOO_LARGE => code::PAYLOAD_TOO_LARGE,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => code::UNSUPPORTED_MEDIA_TYPE,
                    StatusCode::UNPROCESSABLE_ENTITY => "undecodable_image",
                    _ => "bad_request",
                },
                BackendError::Busy { .. } => "backend_busy",
                BackendError::Unavailable { .. } => "backend_unavailable",
                BackendError::DownstreamTimeout { .. } => "downstream_timeout",
                BackendError::Failed { .. } => "backend_failed",
                BackendError::InvalidAnswer { .. } => "invalid_backend_answer",
            },
        }
    }

    /// The page heading.
    pub fn headline(&self) -> &'static str {
        if let Self::Backend(BackendError::Unreachable(_) | BackendError::Unavailable { .. }) = self
        {
            return "The analysis service is unavailable";
        }
        match self.status() {
            StatusCode::BAD_REQUEST => "We couldn't read that upload",
            StatusCode::PAYLOAD_TOO_LARGE => "That photo is too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "That file isn't an image we can read",
            StatusCode::UNPROCESSABLE_ENTITY => "That image couldn't be opened",
            StatusCode::SERVICE_UNAVAILABLE => "We're busy — please try again",
            StatusCode::GATEWAY_TIMEOUT => "That took too long",
            _ => "Something went wrong on our side",
        }
    }

    /// What happened and what the person can do about it.
    pub fn explanation(&self) -> String {
        match self {
            Self::MissingImage => {
                "No photo was attached. Choose a photo with the file picker, then press \
                 “Analyze photo”."
                    .to_owned()
            }
            Self::TooLarge { limit } => format!(
                "Photos can be at most {}. Try a smaller photo, or lower the camera's resolution.",
                human_size(limit.bytes())
            ),
            Self::MalformedForm { .. } => {
                "The upload form arrived incomplete or garbled. Please choose the photo again \
                 and resend it."
                    .to_owned()
            }
            Self::Backend(err) => match err {
                BackendError::Unreachable(_) => {
                    "The analysis service can't be reached right now. Nothing is wrong with \
                     your photo — please try again in a moment."
                        .to_owned()
                }
                BackendError::Unavailable { .. } => {
                    "Part of the analysis service is unavailable right now. Nothing is wrong \
                     with your photo — please try again in a moment."
                        .to_owned()
                }
                BackendError::Busy { .. } => {
                    "The analysis service is busy with other photos. Please try again in a few \
                     seconds."
                        .to_owned()
                }
                BackendError::Timeout | BackendError::DownstreamTimeout { .. } => {
                    "The analysis didn't finish in time. Please try again; a smaller photo is \
                     quicker to analyze."
                        .to_owned()
                }
                BackendError::Rejected { status, .. } => match *status {
                    StatusCode::PAYLOAD_TOO_LARGE => {
                        "The analysis service refused the photo because it is too large. Try a \
                         smaller photo."
                            .to_owned()
                    }
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                        "That file isn't an image we can read (JPEG, PNG or WebP). Please choose \
                         a photo in one of those formats."
                            .to_owned()
                    }
                    StatusCode::UNPROCESSABLE_ENTITY => {
                        "That file looks like an image but could not be decoded; it may be \
                         damaged or cut short. Please try another photo."
                            .to_owned()
                    }
                    _ => "The analysis service couldn't read the upload. Please choose the photo \
                          again and resend it."
                        .to_owned(),
                },
                BackendError::Failed { .. } | BackendError::InvalidAnswer { .. } => {
                    "The analysis service had a problem with this request. Please try again \
                     later."
                        .to_owned()
                }
            },
        }
    }

    /// What the backend said about a refused upload (it speaks about the input, not internals).
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Backend(BackendError::Rejected { message, .. }) => message.as_deref(),
            _ => None,
        }
    }

    /// `Retry-After` seconds for the 503 answers.
    pub fn retry_after(&self) -> Option<String> {
        match self {
            Self::Backend(BackendError::Busy { retry_after, .. }) => Some(
                retry_after
                    .clone()
                    .unwrap_or_else(|| DEFAULT_RETRY_AFTER_SECS.to_owned()),
            ),
            Self::Backend(BackendError::Unavailable { retry_after, .. }) => Some(
                retry_after
                    .clone()
                    .unwrap_or_else(|| UNREACHABLE_RETRY_AFTER_SECS.to_owned()),
            ),
            Self::Backend(BackendError::Unreachable(_)) => {
                Some(UNREACHABLE_RETRY_AFTER_SECS.to_owned())
            }
            _ => None,
        }
    }

    /// The services downstream of the frontend that saw the request before it failed.
    pub fn served_by(&self) -> &[String] {
        match self {
            Self::Backend(err) => err.served_by(),
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: StatusCode) -> AnalyzeError {
        AnalyzeError::Backend(BackendError::Rejected {
            status,
            code: None,
            message: None,
            served_by: vec![],
        })
    }

    fn refusal(status: StatusCode, code: &str) -> BackendError {
        BackendError::Rejected {
            status,
            code: Some(code.to_owned()),
            message: Some("the backend's words".to_owned()),
            served_by: vec!["backend/stable".to_owned()],
        }
    }

    #[test]
    fn the_backends_refusals_of_the_form_read_as_the_frontends_own_pages() {
        let limit = UploadLimit(1024);
        let page = |status, code| AnalyzeError::from_backend(refusal(status, code), limit);
        assert!(matches!(
            page(StatusCode::BAD_REQUEST, code::MISSING_IMAGE),
            AnalyzeError::MissingImage
        ));
        assert!(matches!(
            page(StatusCode::BAD_REQUEST, code::EMPTY_IMAGE),
            AnalyzeError::MissingImage
        ));
        assert!(matches!(
            page(StatusCode::PAYLOAD_TOO_LARGE, code::PAYLOAD_TOO_LARGE),
            AnalyzeError::TooLarge {
                limit: UploadLimit(1024)
            }
        ));
        match page(StatusCode::BAD_REQUEST, code::INVALID_MULTIPART) {
            AnalyzeError::MalformedForm { reason } => assert_eq!(reason, "the backend's words"),
            other => panic!("expected a malformed form, got {other:?}"),
        }
        // Refusals of the photo itself keep the backend's status and words.
        let undecodable = page(StatusCode::UNPROCESSABLE_ENTITY, "undecodable_image");
        assert_eq!(undecodable.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(undecodable.detail(), Some("the backend's words"));
    }

    #[test]
    fn backend_refusals_keep_their_status() {
        for status in [
            StatusCode::BAD_REQUEST,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::UNPROCESSABLE_ENTITY,
        ] {
            assert_eq!(rejected(status).status(), status);
        }
        assert!(
            rejected(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                .explanation()
                .contains("JPEG, PNG or WebP")
        );
    }

    #[test]
    fn busy_and_timeouts_map_to_503_and_504() {
        let busy = AnalyzeError::Backend(BackendError::Busy {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: None,
            served_by: vec![],
        });
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            busy.retry_after().as_deref(),
            Some(DEFAULT_RETRY_AFTER_SECS)
        );
        let timeout = AnalyzeError::Backend(BackendError::Timeout);
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(timeout.retry_after(), None);
    }

    #[test]
    fn too_large_names_the_limit() {
        let err = AnalyzeError::TooLarge {
            limit: UploadLimit(10 * 1024 * 1024),
        };
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err.explanation().contains("10 MiB"));
    }
}
