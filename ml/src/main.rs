//! The `ml` binary (port 5001): configuration, telemetry, load the model, serve until SIGTERM,
//! drain, flush (`mesh::run`).
#![forbid(unsafe_code)]

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mesh::run::<ml::Config>().await
}
