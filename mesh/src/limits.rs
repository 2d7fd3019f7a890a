//! What one client may make a service hold, and for how long. Every tier serves behind the same
//! bounds: the connection-level ones are applied by [`Server`](crate::Server) (hyper's HTTP/1
//! connection builder), the request-level ones by the edge ([`Mesh::wrap`](crate::Mesh::wrap)).
//!
//! | variable | default | bound |
//! |---|---|---|
//! | `HTTP_HEADER_READ_TIMEOUT_MS` | 10000 | a request's head (request line and headers) must arrive within this; it also bounds how long a kept-alive connection may wait idle for its next request. The connection is closed without an answer (slowloris) |
//! | `HTTP_BODY_READ_TIMEOUT_MS` | 60000 | a request's body must arrive within this once its head is in; past it the answer is 408 `request_timeout` (slow POST) |
//! | `HTTP_MAX_HEADER_BYTES` | 65536 | request line plus headers; past it hyper answers 431 and closes |
//! | `HTTP_MAX_CONNECTIONS` | 512 | open connections; past it new connections wait in the listen backlog until one closes |
//! | `HTTP_MAX_IN_FLIGHT` | 64 | requests being served at once (probes and `/metrics` not counted); past it the answer is 503 `overloaded` with `Retry-After`, at once; the unread body is drained and thrown away ([`DRAIN_LIMIT_BYTES`]) |
//!
//! Why these values (also in docs/hardening.md, with the tests):
//! - 10 s for a head: browsers and sidecars send a head in one write, well under a second even on a
//!   poor mobile link; 10 s leaves room for retransmissions and still frees a slowloris connection
//!   quickly. Hyper re-arms the same timer while a kept-alive connection waits for its next head.
//! - 60 s for a body: a full 10 MiB upload (the default `MAX_UPLOAD_BYTES`) needs about 1.4 Mbit/s
//!   to make it, a typical 3 MB phone photo about 0.4 Mbit/s; a client slower than that holds a
//!   connection and an in-flight slot for at most a minute.
//! - 64 KiB of headers: Envoy's own default limit is 60 KiB (`max_request_headers_kb`), so nothing a
//!   sidecar forwards is refused here, and a request cannot make hyper buffer more than that.
//! - 512 connections: under the usual 1024 open-file soft limit, with room for the outbound
//!   connection pool and files; each idle connection costs a few KiB.
//! - 64 in flight: above the backend's own `MAX_CONCURRENT_ANALYSES` (32) and ml's queue (workers +
//!   `ML_QUEUE_CAPACITY`), so those tiers' own, more specific refusals come first; it bounds what a
//!   tier buffers to about 64 × `MAX_UPLOAD_BYTES` (see the memory budget in docs/hardening.md).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use crate::error::{ErrorBody, code};

/// The bounds one service serves behind. [`Default`] holds the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServingLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub max_in_flight: usize,
}

impl ServingLimits {
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
    /// Below this a plain browser request (cookies, trace and routing headers) would not fit.
    pub const MIN_MAX_HEADER_BYTES: usize = 1024;
    pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
}

impl Default for ServingLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: Self::DEFAULT_BODY_READ_TIMEOUT,
            max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// The answer past the in-flight bound: 503 `overloaded` with `Retry-After`. The handler never
/// reads the refused request's body; the edge drains it ([`DRAIN_LIMIT_BYTES`]), so the client
/// reads this answer instead of a reset.
pub(crate) fn overloaded() -> Response {
    ErrorBody::new(
        code::OVERLOADED,
        "the service is busy with other requests; please try again in a moment",
    )
    .into_response_with(StatusCode::SERVICE_UNAVAILABLE)
}

/// Edge middleware: the body must arrive within `timeout` of the head. A body that does not is cut
/// off (the handler reading it sees an error) and, whatever the handler made of that, the answer
/// is 408 `request_timeout`.
pub(crate) async fn bound_body_read(
    State(timeout): State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let req = {
        let expired = expired.clone();
        req.map(move |inner| {
            Body::new(DeadlineBody {
                inner,
                deadline: Box::pin(tokio::time::sleep(timeout)),
                expired,
            })
        })
    };
    let response = next.run(req).await;
    if !expired.load(Ordering::SeqCst) {
        return response;
    }
    tracing::info!(
        timeout_ms = timeout.as_millis() as u64,
        "request body too slow: cut off"
    );
    let mut response = ErrorBody::new(
        code::REQUEST_TIMEOUT,
        format!(
            "the request body did not arrive within {} s; send it faster or send a smaller file",
            timeout.as_secs_f64()
        ),
    )
    .into_response_with(StatusCode::REQUEST_TIMEOUT);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// At most this much of a body the service did not read (a request refused before its body, an
/// upload past its limit) is read and thrown away, within the body deadline, before the connection
/// is given up. Closing a socket with unread data makes the kernel reset it, and a client still
/// sending its upload then sees a broken pipe instead of the 503 or 413 it was sent — what Apache
/// and nginx call a lingering close. Nothing drained is kept, so memory does not grow with it.
pub const DRAIN_LIMIT_BYTES: usize = 32 * 1024 * 1024;

/// A request body that fails once its deadline passes before its end, and whose unread rest is
/// drained when it is dropped.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

/// The error a handler sees when it reads a body past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyReadTimeout;

impl Drop for DeadlineBody {
    fn drop(&mut self) {
        if self.expired.load(Ordering::SeqCst) || self.inner.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut rest = std::mem::replace(&mut self.inner, Body::empty());
        let deadline = self.deadline.deadline();
        runtime.spawn(async move {
            let drain = async {
                let mut drained = 0_usize;
                while let Some(Ok(frame)) =
                    std::future::poll_fn(|cx| Pin::new(&mut rest).poll_frame(cx)).await
                {
                    drained += frame.data_ref().map_or(0, Bytes::len);
                    if drained > DRAIN_LIMIT_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout_at(deadline, drain).await;
        });
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.expired.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired.store(true, Ordering::SeqCst);
                    Poll::Ready(Some(Err(axum::Error::new(BodyReadTimeout))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
