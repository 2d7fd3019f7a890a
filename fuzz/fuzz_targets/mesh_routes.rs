//! The `mesh_routes` fuzz target: see `fuzz/harness/mesh_routes.rs` (shared with the regression test).
#![no_main]

#[path = "../harness/mesh_routes.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::exercise(data);
});
