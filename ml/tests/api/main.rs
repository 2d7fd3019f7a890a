//! The ml service's integration tests: one binary, one module per concern.

mod bad_input;
mod concurrency;
mod fused;
mod golden;
mod helpers;
mod photos;
mod service;
mod spans;
