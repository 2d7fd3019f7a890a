#![forbid(unsafe_code)]
//! 3RVision's web tier: an upload form and a result page, rendered on the server by Leptos
//! components and served by axum. The photo goes to the backend through the mesh client, so the
//! routing (`x-canary`), request id and trace headers follow it to every tier.

pub mod analysis;
pub mod app;
pub mod backend_client;
pub mod config;
pub mod error;
pub mod routes;
pub mod startup;
pub mod upload;

pub use config::Config;
pub use startup::build;
