//! The ml tier of 3RVision: decodes an uploaded photo, preprocesses it exactly as the model
//! manifest says, and classifies it with EfficientNet-Lite on tract.
#![forbid(unsafe_code)]

pub mod api;
pub mod classifier;
pub mod config;
pub mod error;
pub mod fused;
pub mod manifest;
pub mod metrics;
pub mod pool;
pub mod preprocess;
pub mod startup;

pub use config::Config;
/// Uploaded bytes → upright RGB pixels; its own crate so the fuzz targets build it without tract.
pub use ml_photo as photo;
pub use startup::build;
