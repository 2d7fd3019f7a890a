//! The `upload_multipart` fuzz target: see `fuzz/harness/upload_multipart.rs` (shared with the regression test).
#![no_main]

#[path = "../harness/upload_multipart.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::exercise(data);
});
