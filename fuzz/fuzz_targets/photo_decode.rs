//! The `photo_decode` fuzz target: see `fuzz/harness/photo_decode.rs` (shared with the regression test).
#![no_main]

#[path = "../harness/photo_decode.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::exercise(data);
});
