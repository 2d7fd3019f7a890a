//! `mesh envoy`: renders the Envoy bootstrap of the docker compose lab from a mesh config, or
//! checks that a checked-in rendering is current.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mesh_istio::envoy::{EnvoyOptions, render};
use mesh_istio::load::load_input;

#[derive(Debug, Args)]
pub struct EnvoyArgs {
    /// Mesh config to render: a rendered kustomize overlay, a directory, or `-` for stdin.
    #[arg(long, default_value = crate::cli::DEFAULT_CONFIG)]
    pub config: String,
    /// Write the bootstrap here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Do not write: exit 1 when `--out` differs from what the config renders to now.
    #[arg(long, requires = "out")]
    pub check: bool,
    /// Port of the edge listener (the Gateway-bound VirtualService).
    #[arg(long, default_value_t = EnvoyOptions::default().edge_port)]
    pub edge_port: u16,
    /// Envoy sends its own spans over OTLP/HTTP to this `host:port` (e.g. `jaeger:4318`).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub otlp: Option<(String, u16)>,
}

fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => port
            .parse::<u16>()
            .map(|port| (host.to_owned(), port))
            .map_err(|_| format!("`{port}` is not a port")),
        _ => Err(format!("`{text}` is not host:port")),
    }
}

pub fn envoy(args: &EnvoyArgs) -> ExitCode {
    let options = EnvoyOptions {
        edge_port: args.edge_port,
        otlp: args.otlp.clone(),
        ..EnvoyOptions::default()
    };
    let rendered = load_input(&args.config)
        .map_err(|e| e.to_string())
        .and_then(|resources| render(&resources, &options).map_err(|e| e.to_string()))
        .and_then(|config| config.to_yaml(&args.config).map_err(|e| e.to_string()));
    let text = match rendered {
        Ok(text) => text,
        Err(e) => {
            eprintln!("mesh envoy: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(out) = &args.out else {
        print!("{text}");
        return ExitCode::SUCCESS;
    };
    if args.check {
        return match std::fs::read_to_string(out) {
            Ok(current) if current == text => {
                println!("{} is current with {}", out.display(), args.config);
                ExitCode::SUCCESS
            }
            Ok(_) => {
                eprintln!(
                    "mesh envoy: {} is stale: {} renders differently now; re-render with docker/render-envoy.sh",
                    out.display(),
                    args.config
                );
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("mesh envoy: cannot read {}: {e}", out.display());
                ExitCode::from(1)
            }
        };
    }
    match std::fs::write(out, text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh envoy: cannot write {}: {e}", out.display());
            ExitCode::from(2)
        }
    }
}
