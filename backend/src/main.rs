#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;

use backend::Config;
use mesh::config::Env;
use mesh::{Mesh, Server, StopPolicy, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env(&Env::from_process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("backend: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("backend: {error:#}");
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
    let app = backend::build(&config, &mesh).await?;
    tracing::info!(port = server.port(), "listening");
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
