//! Serving with a graceful stop: on the shutdown signal readiness fails first, the listener keeps
//! accepting for `shutdown_delay` (so load balancers notice), then closes, and in-flight requests get
//! up to `drain` to finish.
//!
//! Connections are served by hyper's HTTP/1 connection builder with the connection-level
//! [`ServingLimits`]: a bound on open connections (past it, new ones wait in the listen backlog), on
//! the time to read a request head (which also bounds a kept-alive connection's idle wait), and on
//! the size of that head (431).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceExt as _;

use crate::health::Readiness;
use crate::limits::ServingLimits;

pub struct Server {
    listener: TcpListener,
    limits: ServingLimits,
}

impl Server {
    /// Binds now, so the port is known (port 0 picks a free one) before serving starts. Serves with
    /// the default [`ServingLimits`] unless given others.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
            limits: ServingLimits::default(),
        })
    }

    /// The connection-level bounds to serve with.
    pub fn with_limits(mut self, limits: ServingLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub async fn run_until_stopped(
        self,
        app: axum::Router,
        readiness: Readiness,
        shutdown: impl Future<Output = ()> + Send + 'static,
        stop: StopPolicy,
    ) -> std::io::Result<()> {
        let (close_tx, close_rx) = oneshot::channel::<()>();
        let (stopping_tx, stopping_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            shutdown.await;
            readiness.set_ready(false);
            tracing::info!(
                delay_ms = stop.delay.as_millis() as u64,
                "stopping: readiness failed"
            );
            let _ = stopping_tx.send(());
            tokio::time::sleep(stop.delay).await;
            let _ = close_tx.send(());
        });
        let serve = tokio::spawn(serve_connections(self.listener, app, self.limits, close_rx));
        let drained = async {
            // The drain bound starts when the listener closes, not before.
            let _ = stopping_rx.await;
            tokio::time::sleep(stop.delay).await;
            tokio::time::sleep(stop.drain).await;
        };
        tokio::select! {
            result = serve => result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            () = drained => {
                tracing::warn!(drain_ms = stop.drain.as_millis() as u64, "stopping: in-flight requests outlived the drain bound");
                Ok(())
            }
        }
    }
}

/// Accepts and serves connections until `close` resolves, then waits for the open ones to finish
/// their requests (hyper closes idle kept-alive connections at once).
async fn serve_connections(
    listener: TcpListener,
    app: axum::Router,
    limits: ServingLimits,
    close: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(close);
    loop {
        // A slot first, then a connection: past the bound, connections wait in the backlog.
        let slot = tokio::select! {
            slot = connections.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = &mut close => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            _ = &mut close => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            app.clone().oneshot(req.map(Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A failed accept: a connection that was reset before it was taken is nothing; anything else (out
/// of file descriptors, typically) is logged and waited out, as axum's own `serve` does.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %error, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// How a server stops after its shutdown signal.
#[derive(Debug, Clone, Copy)]
pub struct StopPolicy {
    pub delay: Duration,
    pub drain: Duration,
}

impl From<&crate::config::MeshConfig> for StopPolicy {
    fn from(cfg: &crate::config::MeshConfig) -> Self {
        Self {
            delay: cfg.shutdown_delay,
            drain: cfg.drain,
        }
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
