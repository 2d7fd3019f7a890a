//! Integration tests for mesh-istio: the analyzer on good and broken fixtures, the routing
//! contract on the good fixture, and the `mesh` binary end to end.

mod analyzer;
mod canary_demo;
mod command;
mod fixtures;
mod routing;
