//! `<service> healthcheck`: the binary probes its own `/readyz` on the configured port and exits 0
//! when it answers 200, 1 otherwise. Container images have no shell or curl, so this is how a
//! `HEALTHCHECK` (or compose's `healthcheck: test: [<binary>, healthcheck]`) gets in.

use std::time::Duration;

/// The argument that turns a service binary into its own readiness probe.
pub const HEALTHCHECK_ARG: &str = "healthcheck";

/// How long one probe may take, connect included.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a replica is not ready.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("GET {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url}: answered {status}, not 200")]
    NotReady { url: String, status: u16 },
}

/// Probes `http://127.0.0.1:<port>/readyz` once.
pub async fn probe_ready(port: u16, timeout: Duration) -> Result<(), ProbeError> {
    let url = format!("http://127.0.0.1:{port}/readyz");
    let unreachable = |source| ProbeError::Unreachable {
        url: url.clone(),
        source,
    };
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(unreachable)?;
    let response = client.get(&url).send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    if status == 200 {
        Ok(())
    } else {
        Err(ProbeError::NotReady { url, status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mesh, Server, ServiceIdentity, StopPolicy, Version};

    async fn serve(mesh: &Mesh) -> u16 {
        let server = Server::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let port = server.port();
        let app = mesh.wrap(axum::Router::new());
        let readiness = mesh.readiness();
        tokio::spawn(server.run_until_stopped(
            app,
            readiness,
            std::future::pending(),
            StopPolicy {
                delay: Duration::ZERO,
                drain: Duration::ZERO,
            },
        ));
        port
    }

    #[tokio::test]
    async fn fails_until_ready_then_passes() {
        let mesh = Mesh::new(ServiceIdentity::new("ml", Version::Canary));
        let port = serve(&mesh).await;
        let not_ready = probe_ready(port, PROBE_TIMEOUT).await;
        assert!(
            matches!(not_ready, Err(ProbeError::NotReady { status: 503, .. })),
            "{not_ready:?}"
        );
        mesh.readiness().set_ready(true);
        probe_ready(port, PROBE_TIMEOUT).await.expect("ready");
    }

    #[tokio::test]
    async fn fails_when_nothing_listens() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let error = probe_ready(port, PROBE_TIMEOUT)
            .await
            .expect_err("nothing listens");
        assert!(matches!(error, ProbeError::Unreachable { .. }), "{error}");
        assert!(error.to_string().contains("/readyz"), "{error}");
    }
}
