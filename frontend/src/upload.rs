//! Reading the photo out of the upload form, within the configured size limit.

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;

use crate::config::UploadLimit;
use crate::error::AnalyzeError;

/// The form field that carries the photo (the backend reads the same name).
pub const IMAGE_FIELD: &str = "image";
const FALLBACK_FILE_NAME: &str = "upload";
const FALLBACK_CONTENT_TYPE: &str = "application/octet-stream";
const MAX_FILE_NAME_CHARS: usize = 200;

/// One uploaded photo, as the browser described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub file_name: String,
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
        while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| form_error(e, limit))?
        {
            if field.name() != Some(IMAGE_FIELD) {
                continue;
            }
            let file_name = field
                .file_name()
                .map(|name| name.chars().take(MAX_FILE_NAME_CHARS).collect::<String>())
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| FALLBACK_FILE_NAME.to_owned());
            let content_type = field
                .content_type()
                .and_then(media_type)
                .unwrap_or_else(|| FALLBACK_CONTENT_TYPE.to_owned());
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| form_error(e, limit))? {
                if bytes.len() + chunk.len() > limit.bytes() {
                    return Err(AnalyzeError::TooLarge { limit });
                }
                bytes.extend_from_slice(&chunk);
            }
            if bytes.is_empty() {
                return Err(AnalyzeError::MissingImage);
            }
            // Some browsers label a photo they don't recognise as a generic binary; name the
            // type from the file's signature then, so the backend does not refuse a good photo.
            let content_type = match sniffed_image_type(&bytes) {
                Some(sniffed) if content_type == FALLBACK_CONTENT_TYPE => sniffed.to_owned(),
                _ => content_type,
            };
            return Ok(Self {
                file_name,
                content_type,
                bytes,
            });
        }
        Err(AnalyzeError::MissingImage)
    }
}

/// The image type a file's first bytes announce, for the types the lab takes.
fn sniffed_image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// `"Image/JPEG; charset=x"` → `"image/jpeg"`; `None` unless it is a plain `type/subtype`.
fn media_type(raw: &str) -> Option<String> {
    let essence = raw.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let is_token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    (is_token(kind) && is_token(subtype)).then_some(essence)
}

fn form_error(err: MultipartError, limit: UploadLimit) -> AnalyzeError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AnalyzeError::TooLarge { limit }
    } else {
        AnalyzeError::MalformedForm {
            reason: err.body_text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_signatures_are_recognised() {
        assert_eq!(
            sniffed_image_type(b"\xff\xd8\xff\xe0rest"),
            Some("image/jpeg")
        );
        assert_eq!(
            sniffed_image_type(b"\x89PNG\r\n\x1a\n\0\0"),
            Some("image/png")
        );
        assert_eq!(
            sniffed_image_type(b"RIFF\0\0\0\0WEBPVP8 "),
            Some("image/webp")
        );
        assert_eq!(sniffed_image_type(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(sniffed_image_type(b"GIF89a"), None);
        assert_eq!(sniffed_image_type(b""), None);
    }

    #[test]
    fn media_types_are_normalised_or_refused() {
        assert_eq!(media_type("image/jpeg").as_deref(), Some("image/jpeg"));
        assert_eq!(
            media_type(" Image/WebP ; q=1").as_deref(),
            Some("image/webp")
        );
        assert_eq!(media_type("jpeg"), None);
        assert_eq!(media_type("image/"), None);
        assert_eq!(media_type("image/jp eg"), None);
        assert_eq!(media_type("image/png/x"), None);
    }
}
