//! Serving with a graceful stop: on the shutdown signal readiness fails first, the listener keeps
//! accepting for `shutdown_delay` (so load balancers notice), then closes, and in-flight requests get
//! up to `drain` to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::health::Readiness;

pub struct Server {
    listener: TcpListener,
}

impl Server {
    /// Binds now, so the port is known (port 0 picks a free one) before serving starts.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
        })
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
        let serve = axum::serve(self.listener, app).with_graceful_shutdown(async move {
            let _ = close_rx.await;
        });
        let serve = tokio::spawn(async move { serve.await });
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
