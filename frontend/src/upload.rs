//! The upload form on its way to the backend. The frontend does not open the form: it checks what
//! the request's head says (a `multipart/form-data` body with a boundary, not declared larger than
//! the limit), then streams the body to the backend as it arrives, byte for byte, counting it. The
//! backend reads the photo out of the form (`mesh::upload`, the one reader of forms) and names
//! anything wrong with it; the frontend turns its refusal into a page (`crate::error`).
//!
//! Why: reading the form here and writing a new one for the backend cost a multipart parse, a
//! multipart encode and a copy of the whole photo per request, and made the frontend hold every
//! photo in flight in memory (`HTTP_MAX_IN_FLIGHT` × `MAX_UPLOAD_BYTES`). Streamed, it holds a chunk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use futures::{Stream, StreamExt};
use tokio::sync::oneshot;

use crate::config::UploadLimit;
use crate::error::AnalyzeError;

/// Room for the multipart framing and the other form fields on top of the photo itself.
pub const FORM_OVERHEAD_BYTES: usize = 64 * 1024;

/// An upload form whose head was checked, with its body not yet read.
#[derive(Debug)]
pub struct FormUpload {
    content_type: HeaderValue,
    declared_length: Option<u64>,
    body: Body,
    limit: UploadLimit,
}

/// Whether a forwarded body grew past the limit and was cut off.
#[derive(Debug, Clone, Default)]
pub struct Overrun(Arc<AtomicBool>);

impl Overrun {
    pub fn happened(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Resolves once the whole body has been handed on (never, if it failed or was cut off).
#[derive(Debug)]
pub struct BodyFinished(oneshot::Receiver<()>);

impl BodyFinished {
    pub async fn wait(self) {
        if self.0.await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl FormUpload {
    /// Checks the head of `POST /analyze`: a `multipart/form-data` type with a boundary, and a
    /// declared length (when there is one) within the photo `limit` plus
    /// [`FORM_OVERHEAD_BYTES`]. The body is not touched. (The photo's own size is judged by the
    /// backend, which reads the form.)
    pub fn from_request(
        headers: &HeaderMap,
        body: Body,
        limit: UploadLimit,
    ) -> Result<Self, AnalyzeError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .ok_or_else(|| malformed("the request has no Content-Type"))?;
        let media_type = content_type
            .to_str()
            .ok()
            .and_then(|raw| raw.parse::<mime::Mime>().ok())
            .ok_or_else(|| malformed("the Content-Type is not a media type"))?;
        if media_type.essence_str() != "multipart/form-data" {
            return Err(malformed(format!(
                "the body is {}, not multipart/form-data",
                media_type.essence_str()
            )));
        }
        if media_type.get_param(mime::BOUNDARY).is_none() {
            return Err(malformed("the multipart/form-data type has no boundary"));
        }
        let declared_length = match headers.get(header::CONTENT_LENGTH) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| malformed("the Content-Length is not a number"))?,
            ),
        };
        if declared_length.is_some_and(|length| length > max_body_bytes(limit) as u64) {
            return Err(AnalyzeError::TooLarge { limit });
        }
        Ok(Self {
            content_type: content_type.clone(),
            declared_length,
            body,
            limit,
        })
    }

    /// The photo limit this form is held to.
    pub fn limit(&self) -> UploadLimit {
        self.limit
    }

    /// The form's `Content-Type` (with its boundary), to send on unchanged.
    pub fn content_type(&self) -> &HeaderValue {
        &self.content_type
    }

    /// The declared `Content-Length`, to send on unchanged (absent: the body goes chunked).
    pub fn declared_length(&self) -> Option<u64> {
        self.declared_length
    }

    /// The body as a stream for the outgoing request: chunks pass through as they arrive; past
    /// the limit the stream fails (the outgoing request is abandoned) and [`Overrun`] says so.
    pub fn into_stream(
        self,
    ) -> (
        impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
        Overrun,
        BodyFinished,
    ) {
        let overrun = Overrun::default();
        let (done_tx, done_rx) = oneshot::channel();
        let limit = max_body_bytes(self.limit);
        let declared = self.declared_length;
        let flag = overrun.clone();
        let state = (self.body.into_data_stream(), 0_usize, Some(done_tx));
        let stream = futures::stream::unfold(state, move |(mut body, seen, done)| {
            let flag = flag.clone();
            async move {
                let done = done?;
                let Some(chunk) = body.next().await else {
                    let _ = done.send(());
                    return None;
                };
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(err) => return Some((Err(std::io::Error::other(err)), (body, seen, None))),
                };
                let seen = seen + chunk.len();
                if seen > limit {
                    flag.0.store(true, Ordering::SeqCst);
                    let err =
                        std::io::Error::other(format!("the upload is larger than {limit} bytes"));
                    return Some((Err(err), (body, seen, None)));
                }
                // With a declared length the sender may stop polling once it has every byte.
                if declared == Some(seen as u64) {
                    let _ = done.send(());
                    return Some((Ok(chunk), (body, seen, None)));
                }
                Some((Ok(chunk), (body, seen, Some(done))))
            }
        });
        (stream, overrun, BodyFinished(done_rx))
    }
}

/// The most a form with a photo of at most `limit` may be.
fn max_body_bytes(limit: UploadLimit) -> usize {
    limit.bytes().saturating_add(FORM_OVERHEAD_BYTES)
}

fn malformed(reason: impl Into<String>) -> AnalyzeError {
    AnalyzeError::MalformedForm {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderName;

    use super::*;

    fn head(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).expect("value")))
            .collect()
    }

    /// A photo limit of 100 bytes: a form may be 100 bytes + the overhead.
    const LIMIT: UploadLimit = UploadLimit(100);
    const MAX_FORM: usize = 100 + FORM_OVERHEAD_BYTES;

    fn check(pairs: &[(HeaderName, &str)]) -> Result<FormUpload, AnalyzeError> {
        FormUpload::from_request(&head(pairs), Body::empty(), LIMIT)
    }

    #[test]
    fn only_a_multipart_form_with_a_boundary_is_taken() {
        let form = (header::CONTENT_TYPE, "multipart/form-data; boundary=x");
        assert!(check(std::slice::from_ref(&form)).is_ok());
        for (value, names) in [
            (
                "application/x-www-form-urlencoded",
                "not multipart/form-data",
            ),
            ("multipart/form-data", "no boundary"),
            ("not a type", "not a media type"),
        ] {
            let err = check(&[(header::CONTENT_TYPE, value)]).expect_err(value);
            assert!(err.to_string().contains(names), "{value}: {err}");
        }
        let err = check(&[]).expect_err("no type");
        assert!(err.to_string().contains("no Content-Type"), "{err}");
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_the_body_is_read() {
        let form = (header::CONTENT_TYPE, "multipart/form-data; boundary=x");
        let max = MAX_FORM.to_string();
        let over = (MAX_FORM + 1).to_string();
        assert!(check(&[form.clone(), (header::CONTENT_LENGTH, &max)]).is_ok());
        assert!(matches!(
            check(&[form.clone(), (header::CONTENT_LENGTH, &over)]),
            Err(AnalyzeError::TooLarge { limit: LIMIT })
        ));
        assert!(matches!(
            check(&[form, (header::CONTENT_LENGTH, "lots")]),
            Err(AnalyzeError::MalformedForm { .. })
        ));
    }

    #[tokio::test]
    async fn the_stream_passes_chunks_through_and_fails_past_the_limit() {
        let headers = head(&[(header::CONTENT_TYPE, "multipart/form-data; boundary=x")]);
        let within = FormUpload::from_request(&headers, Body::from(vec![1_u8; MAX_FORM]), LIMIT)
            .expect("head is fine");
        let (stream, overrun, finished) = within.into_stream();
        let chunks: Vec<_> = stream.collect().await;
        let bytes: Vec<u8> = chunks
            .into_iter()
            .flat_map(|c| c.expect("chunk").to_vec())
            .collect();
        assert_eq!(bytes, vec![1_u8; MAX_FORM]);
        assert!(!overrun.happened());
        finished.wait().await;

        let over = FormUpload::from_request(&headers, Body::from(vec![1_u8; MAX_FORM + 1]), LIMIT)
            .expect("head is fine");
        let (stream, overrun, _finished) = over.into_stream();
        let chunks: Vec<_> = stream.collect().await;
        assert!(chunks.last().expect("one item").is_err());
        assert!(overrun.happened());
    }
}
