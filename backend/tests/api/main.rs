//! The backend's integration tests: one binary, one module per concern.

mod analyze;
mod assessment;
mod categories;
mod helpers;
mod knowledge;
mod photos;
