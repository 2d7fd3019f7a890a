// The body of the `upload_multipart` fuzz target, shared with the regression test
// (`mesh/tests/fuzz_regressions.rs` includes this file), so both run the same code.
//
// A `multipart/form-data` request → axum's `Multipart` extractor → `mesh::upload::read_image`,
// the one way every tier reads the photo field. Input: the request's `Content-Type` value, a
// newline, then the body.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use http::Request;
use mesh::upload::{UploadError, read_image};

/// Small enough that the fuzzer reaches `TooLarge`.
const LIMIT: usize = 2048;

/// Reads the photo field of the form in `data`; answers the outcome in one line (`ok <n> bytes`,
/// `rejected: …` when no handler would see the request, or `error: <message>`). Panics when an
/// invariant breaks.
pub fn exercise(data: &[u8]) -> String {
    let Some(split) = data.iter().position(|b| *b == b'\n') else {
        return "rejected: no content type line".to_owned();
    };
    let (content_type, body) = (&data[..split], &data[split + 1..]);
    let Ok(request) = Request::post("/analyze")
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_vec()))
    else {
        // Not a valid header value: hyper refuses such a request before any handler.
        return "rejected: invalid content type header".to_owned();
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let mut multipart = match Multipart::from_request(request, &()).await {
            Ok(multipart) => multipart,
            // Not multipart/form-data with a boundary: the tier answers 400 before reading.
            Err(rejection) => return format!("rejected: {rejection}"),
        };
        match read_image(&mut multipart, LIMIT).await {
            Ok(upload) => {
                assert!(!upload.bytes.is_empty() && upload.bytes.len() <= LIMIT);
                let _ = upload.format();
                let _ = upload.declares_an_image();
                format!("ok {} bytes", upload.bytes.len())
            }
            Err(UploadError::TooLarge { limit }) => {
                assert_eq!(limit, LIMIT);
                format!("error: {}", UploadError::TooLarge { limit })
            }
            Err(error) => {
                let message = error.to_string();
                assert!(!message.is_empty());
                format!("error: {message}")
            }
        }
    })
}
