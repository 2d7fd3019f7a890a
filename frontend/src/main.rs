#![forbid(unsafe_code)]
//! The `frontend` binary: config from the environment, telemetry, serve until SIGTERM, drain.

use std::net::SocketAddr;
use std::process::ExitCode;

use frontend::Config;
use mesh::config::Env;
use mesh::{Mesh, Server, StopPolicy, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env(&Env::from_process()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("frontend: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("frontend: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let guard = telemetry::init(
        &config.mesh.telemetry,
        &config.mesh.identity,
        std::io::stdout,
    )?;
    let mesh = Mesh::new(config.mesh.identity.clone());
    let server = Server::bind(SocketAddr::from(([0, 0, 0, 0], config.mesh.port))).await?;
    let app = frontend::build(&config, &mesh).await?;
    tracing::info!(
        port = server.port(),
        backend = %config.backend_url,
        "frontend listening"
    );
    let served = server
        .run_until_stopped(
            app,
            mesh.readiness(),
            shutdown_signal(),
            StopPolicy::from(&config.mesh),
        )
        .await;
    guard.shutdown();
    Ok(served?)
}
