//! Integration tests for the `mesh` tool: the binary end to end, and the canary demo against a
//! stand-in frontend. The configs are mesh-istio's fixtures.

mod canary_demo;
mod command;
mod fixtures;
