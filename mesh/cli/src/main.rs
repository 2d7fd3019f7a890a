//! `mesh`: check, evaluate and demo the mesh's Istio routing. See the crate docs and README.
#![forbid(unsafe_code)]

use clap::Parser;
use mesh_cli::cli::{Cli, run};

fn main() -> std::process::ExitCode {
    run(Cli::parse())
}
