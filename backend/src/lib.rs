//! 3RVision backend: takes a photo upload, asks the ml tier what it shows, and turns the answer into
//! reduce / reuse / recycle / resell guidance from its own knowledge base.
#![forbid(unsafe_code)]

mod api;
pub mod assessment;
pub mod classifier;
pub mod config;
pub mod error;
pub mod knowledge;
mod metrics;

pub use api::build;
pub use config::Config;
