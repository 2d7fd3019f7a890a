//! Reading the photo out of the upload form, within the configured size limit (the form itself is
//! read by `mesh::upload`, as at every tier).

use axum::extract::Multipart;
use mesh::upload::{self, UploadError};

use crate::config::UploadLimit;
use crate::error::AnalyzeError;

/// The form field that carries the photo (every tier reads the same name).
pub const IMAGE_FIELD: &str = upload::IMAGE_FIELD;
const FALLBACK_CONTENT_TYPE: &str = "application/octet-stream";

/// One uploaded photo: its type and bytes. The browser's file name is not kept (it is never
/// shown, logged or passed on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Upload {
    /// Reads the `image` field, refusing it as soon as it grows past `limit`. Other fields are
    /// skipped. A form without a file (or with an empty one) is [`AnalyzeError::MissingImage`].
    pub async fn from_form(
        multipart: &mut Multipart,
        limit: UploadLimit,
    ) -> Result<Self, AnalyzeError> {
        let upload =
            upload::read_image(multipart, limit.bytes())
                .await
                .map_err(|error| match error {
                    UploadError::TooLarge { .. } => AnalyzeError::TooLarge { limit },
                    UploadError::Malformed(reason) => AnalyzeError::MalformedForm { reason },
                    UploadError::Missing | UploadError::Empty => AnalyzeError::MissingImage,
                })?;
        // Some browsers label a photo they don't recognise as a generic binary (or send no type);
        // name the type from the file's signature then, so the backend does not refuse a good photo.
        let declared = upload
            .declared_type
            .as_ref()
            .map(|t| t.essence_str().to_owned())
            .filter(|t| t != FALLBACK_CONTENT_TYPE);
        let content_type = declared
            .or_else(|| upload.format().map(|f| f.mime().essence_str().to_owned()))
            .unwrap_or_else(|| FALLBACK_CONTENT_TYPE.to_owned());
        Ok(Self {
            content_type,
            // Without a copy: the reader built the Bytes from a Vec it alone holds.
            bytes: Vec::from(upload.bytes),
        })
    }
}
