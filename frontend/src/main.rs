//! The `frontend` binary: configuration, telemetry, serve until SIGTERM, drain, flush (`mesh::run`).
#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mesh::run::<frontend::Config>().await
}
