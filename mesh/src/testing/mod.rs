//! Helpers for the workspace's tests, behind the `test-util` feature.

mod otlp_receiver;

pub use otlp_receiver::{OtlpReceiver, ReceivedSpan};
