//! The `propagation_headers` fuzz target: see `fuzz/harness/propagation_headers.rs` (shared with the regression test).
#![no_main]

#[path = "../harness/propagation_headers.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::exercise(data);
});
