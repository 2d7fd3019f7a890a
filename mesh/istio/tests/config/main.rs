//! Integration tests for mesh-istio: the analyzer on good and broken fixtures and the routing
//! contract on the good fixture. The `mesh` binary's own tests are in mesh/cli.

mod analyzer;
mod fixtures;
mod oracle;
mod routing;
mod shipped;
