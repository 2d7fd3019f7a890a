//! The one way a tier reads an uploaded photo out of a `multipart/form-data` body: the first field
//! named [`IMAGE_FIELD`], never holding more than the limit (beyond it: 413 `payload_too_large`),
//! its declared media type parsed by the `mime` crate, and its real format judged from its first
//! bytes ([`ImageFormat::sniff`]). The backend is the tier that reads forms (the frontend streams the
//! browser's form to it unopened): it wants an `image/*` part, or trusts the bytes when a browser
//! says `application/octet-stream` or nothing; ml decodes whatever the bytes say. The part's file
//! name is ignored at every tier.

use axum::body::Bytes;
use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;

/// The form field that carries the photo, at every tier.
pub const IMAGE_FIELD: &str = "image";

// The part's file name is never read: it is the sender's text, and nothing here needs it.

/// The image formats the project takes, recognised by their magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    WebP,
}

impl ImageFormat {
    /// The format the first bytes announce, if it is one of ours.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Self::WebP)
        } else {
            None
        }
    }

    pub fn mime(self) -> mime::Mime {
        match self {
            Self::Jpeg => mime::IMAGE_JPEG,
            Self::Png => mime::IMAGE_PNG,
            // `mime` has no constant for WebP; the literal is a valid media type.
            Self::WebP => "image/webp"
                .parse()
                .unwrap_or(mime::APPLICATION_OCTET_STREAM),
        }
    }
}

/// The photo field of a form, read within the limit.
#[derive(Debug, Clone)]
pub struct ImageUpload {
    /// The part's `Content-Type` when it parses as a media type (parameters kept, case folded by
    /// `mime`); `None` when absent or malformed.
    pub declared_type: Option<mime::Mime>,
    /// Never empty.
    pub bytes: Bytes,
}

impl ImageUpload {
    /// The format the bytes announce.
    pub fn format(&self) -> Option<ImageFormat> {
        ImageFormat::sniff(&self.bytes)
    }

    /// The declared type is `image/<anything>`.
    pub fn declares_an_image(&self) -> bool {
        self.declared_type
            .as_ref()
            .is_some_and(|t| t.type_() == mime::IMAGE)
    }
}

/// Why no photo could be read from the form. Each tier maps these to its own error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    #[error("the photo is larger than the {limit} bytes accepted")]
    TooLarge { limit: usize },
    #[error("the form is not valid multipart/form-data: {0}")]
    Malformed(String),
    #[error("the form has no field named `{IMAGE_FIELD}`")]
    Missing,
    #[error("the field `{IMAGE_FIELD}` is empty")]
    Empty,
}

/// A part's `Content-Type` as a media type; `None` unless it parses and names both a type and a
/// subtype (`mime` alone accepts `image/`).
fn media_type(raw: &str) -> Option<mime::Mime> {
    let parsed: mime::Mime = raw.parse().ok()?;
    (!parsed.type_().as_str().is_empty() && !parsed.subtype().as_str().is_empty()).then_some(parsed)
}

/// Reads the first [`IMAGE_FIELD`] of the form, skipping other fields, refusing it as soon as it
/// grows past `limit` bytes.
pub async fn read_image(
    multipart: &mut Multipart,
    limit: usize,
) -> Result<ImageUpload, UploadError> {
    let form_error = |error: MultipartError| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            UploadError::TooLarge { limit }
        } else {
            UploadError::Malformed(error.body_text())
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(form_error)? {
        if field.name() != Some(IMAGE_FIELD) {
            continue;
        }
        let declared_type = field.content_type().and_then(media_type);
        let mut image = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            if image.len() + chunk.len() > limit {
                return Err(UploadError::TooLarge { limit });
            }
            image.extend_from_slice(&chunk);
        }
        // A browser form submitted without choosing a file sends an empty part.
        if image.is_empty() {
            return Err(UploadError::Empty);
        }
        return Ok(ImageUpload {
            declared_type,
            bytes: Bytes::from(image),
        });
    }
    Err(UploadError::Missing)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::FromRequest;
    use axum::http::Request;

    use super::*;

    const BOUNDARY: &str = "XyZ";
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];

    /// One form part: name, file name, content type, bytes.
    type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

    async fn form(parts: &[Part<'_>]) -> Multipart {
        let mut body = Vec::new();
        for (name, file_name, content_type, bytes) in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
            if let Some(file_name) = file_name {
                disposition.push_str(&format!("; filename=\"{file_name}\""));
            }
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(b"\r\n");
            if let Some(content_type) = content_type {
                body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let request = Request::post("/")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from(body))
            .expect("request");
        Multipart::from_request(request, &())
            .await
            .expect("multipart")
    }

    async fn read(mut multipart: Multipart, limit: usize) -> Result<ImageUpload, UploadError> {
        read_image(&mut multipart, limit).await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_image_field_is_read_with_its_name_type_and_format() {
        let upload = read(
            form(&[
                ("note", None, None, b"hello"),
                ("image", Some("cup.jpg"), Some("Image/JPEG; q=1"), JPEG),
            ])
            .await,
            1024,
        )
        .await
        .expect("an image");
        assert_eq!(upload.bytes.as_ref(), JPEG);
        assert_eq!(upload.format(), Some(ImageFormat::Jpeg));
        assert!(upload.declares_an_image());
        assert_eq!(
            upload
                .declared_type
                .as_ref()
                .map(|t| t.essence_str().to_owned()),
            Some("image/jpeg".to_owned())
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_an_empty_and_an_oversized_field_are_told_apart() {
        let missing = read(form(&[("photo", None, None, JPEG)]).await, 1024).await;
        assert_eq!(missing.err(), Some(UploadError::Missing));
        let empty = read(
            form(&[("image", Some(""), Some("image/png"), b"")]).await,
            1024,
        )
        .await;
        assert_eq!(empty.err(), Some(UploadError::Empty));
        let big = read(form(&[("image", None, None, &[7u8; 100])]).await, 99).await;
        assert_eq!(big.err(), Some(UploadError::TooLarge { limit: 99 }));
        let exact = read(form(&[("image", None, None, &[7u8; 99])]).await, 99).await;
        assert_eq!(exact.map(|u| u.bytes.len()).ok(), Some(99));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_broken_form_and_a_malformed_type_are_reported_not_trusted() {
        let odd = read(
            form(&[("image", Some("  "), Some("not a type"), JPEG)]).await,
            1024,
        )
        .await
        .expect("the bytes still arrive");
        assert_eq!(odd.declared_type, None);
        assert!(!odd.declares_an_image());

        let request = Request::post("/")
            .header("content-type", "multipart/form-data; boundary=XyZ")
            .body(Body::from(
                "--XyZ\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nno end",
            ))
            .expect("request");
        let mut multipart = Multipart::from_request(request, &())
            .await
            .expect("multipart");
        let err = read_image(&mut multipart, 1024)
            .await
            .expect_err("truncated");
        assert!(matches!(err, UploadError::Malformed(_)), "{err:?}");
    }

    #[test]
    fn only_image_media_types_declare_an_image() {
        let declares = |raw: &str| {
            ImageUpload {
                declared_type: media_type(raw),
                bytes: Bytes::from_static(JPEG),
            }
            .declares_an_image()
        };
        for ok in ["image/jpeg", "IMAGE/PNG", "image/webp; q=1", "image/heic"] {
            assert!(declares(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/octet-stream",
            "image/",
            "image",
            "",
            "imagex/png",
        ] {
            assert!(!declares(bad), "{bad}");
        }
    }

    #[test]
    fn formats_are_judged_from_magic_bytes() {
        assert_eq!(ImageFormat::sniff(JPEG), Some(ImageFormat::Jpeg));
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageFormat::WebP)
        );
        assert_eq!(ImageFormat::sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(ImageFormat::sniff(b"GIF89a"), None);
        assert_eq!(ImageFormat::sniff(&[]), None);
        assert_eq!(ImageFormat::WebP.mime().essence_str(), "image/webp");
    }
}
