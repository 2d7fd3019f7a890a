//! The `mesh` command-line tool over the [`mesh_istio`] library.
//!
//! - [`cli`]: the commands (`check`, `route`, `demo`); `main.rs` only parses and calls [`cli::run`].
//! - [`demo`]: sends real requests through a running frontend, tallies the `served_by` trails per
//!   hop and judges them against the config's probabilities (binomial 4σ or a fixed bound).
//!
//! tokio, reqwest and clap live here, so the library the lab links stays free of them.
#![forbid(unsafe_code)]

pub mod cli;
pub mod demo;
