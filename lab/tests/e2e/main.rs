//! End-to-end tests of the whole lab in one process: real frontend, backend and ml replicas (the
//! real model), real hops routing by the real mesh files, ports picked by the OS.

mod failures;
mod faults;
mod overload;
mod routing;
mod shutdown;
mod support;
mod trace_export;
mod tracing_chain;
