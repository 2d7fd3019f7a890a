//! Every input in `fuzz/regressions/photo_decode/` (what the `photo_decode` fuzz target found, and
//! hand-made hostile photos) through the fuzz target's own code: a clear error, never a panic.

#[path = "../../../fuzz/harness/photo_decode.rs"]
mod harness;
#[path = "../../../fuzz/harness/regressions.rs"]
mod regressions;

#[test]
fn every_photo_decode_regression_gets_its_expected_outcome() {
    regressions::check_dir("fuzz/regressions/photo_decode", harness::exercise);
}
