//! `cargo run --release`: the whole 3RVision lab on loopback. See the crate docs and the README.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lab::{Lab, LabOptions, ReplicaTelemetry};
use mesh::config::Env;

/// Runs stable and canary builds of frontend, backend and ml on loopback, routed by the mesh's
/// Istio VirtualServices and DestinationRules.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Mesh config to route by: a rendered kustomize file (default: the 90-10 overlay), a directory
    /// of YAML, or `-` for stdin.
    #[arg(long, default_value_os_t = LabOptions::default_mesh_config().into_os_string())]
    config: std::ffi::OsString,
    /// Address the edge (the gateway for frontend.local) listens on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let env = Env::from_process();
    let config = match lab::lab::lab_mesh_config(&env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("lab: {e}");
            return ExitCode::from(2);
        }
    };
    // The lab process itself only logs: every replica exports its own spans (ReplicaTelemetry::Own).
    let own = mesh::telemetry::TelemetryConfig {
        otlp_traces_endpoint: None,
        ..config.telemetry.clone()
    };
    let guard = match mesh::telemetry::init(&own, &config.identity, std::io::stdout) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("lab: {e:#}");
            return ExitCode::from(2);
        }
    };
    let options = LabOptions {
        mesh_config: args.config.to_string_lossy().into_owned(),
        edge: args.listen,
        base_env: std::env::vars().collect(),
        tier_env: Vec::new(),
        telemetry: ReplicaTelemetry::Own,
    };
    let traces = match &config.telemetry.otlp_traces_endpoint {
        Some(endpoint) => format!(
            "traces: every replica exports its spans to {endpoint} (OTLP http/protobuf, sampler {}), \
             as service.name frontend, backend or ml with service.version stable or canary",
            config.telemetry.sampler
        ),
        None => "traces: export off; set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4318) \
                 to send every replica's spans to an OTLP/HTTP receiver"
            .to_owned(),
    };
    let code = match run(options, &traces).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab: {e:#}");
            ExitCode::FAILURE
        }
    };
    guard.shutdown(config.drain).await;
    code
}

async fn run(options: LabOptions, traces: &str) -> anyhow::Result<()> {
    let lab = Lab::start(options).await?;
    lab.wait_ready(Duration::from_secs(60)).await?;
    println!("3RVision lab is up: open {}", lab.url());
    for replica in lab.replicas() {
        println!(
            "  {:<8} {:<6} http://{}",
            replica.tier.name(),
            replica.version.as_str(),
            replica.addr
        );
    }
    println!(
        "Requests with `x-canary: true` take the canary at every hop; others follow the weights in the \
         mesh config. Ctrl-C stops the lab."
    );
    println!("{traces}");
    let unexecuted = lab.unexecuted();
    if !unexecuted.is_empty() {
        println!(
            "Not executed by the lab ({} field{}; Istio applies them in a cluster, `mesh check` lists them as MSH0111):",
            unexecuted.len(),
            if unexecuted.len() == 1 { "" } else { "s" }
        );
        for field in unexecuted {
            println!("  {field}");
        }
    }
    mesh::shutdown_signal().await;
    println!("stopping: draining in-flight requests");
    lab.shutdown().await;
    Ok(())
}
