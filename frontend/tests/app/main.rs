//! The frontend over real HTTP, with the backend replaced by a recording test double.

mod analyze;
mod backend_failures;
mod harness;
mod pages;
mod propagation;
