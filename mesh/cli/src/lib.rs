//! The `mesh` command-line tool over the [`mesh_istio`] library.
//!
//! - [`cli`]: the commands (`check`, `route`, `demo`, `envoy`); `main.rs` only parses and calls
//!   [`cli::run`].
//! - [`envoy`]: renders (or checks) the docker compose lab's Envoy bootstrap.
//! - [`demo`]: sends real requests through a running frontend, tallies the `served_by` trails per
//!   hop and judges them against the config's probabilities (binomial 4σ or a fixed bound).
//!
//! tokio, reqwest and clap live here, so the library the lab links stays free of them.
#![forbid(unsafe_code)]

pub mod cli;
pub mod demo;
pub mod envoy;
