//! Every input in `fuzz/regressions/upload_multipart/` and `fuzz/regressions/propagation_headers/`
//! (what those fuzz targets found, and hand-made hostile forms and headers) through the fuzz
//! targets' own code: a clear error or an ignored header, never a panic.

#[path = "../../fuzz/harness/propagation_headers.rs"]
mod propagation_headers;
#[path = "../../fuzz/harness/regressions.rs"]
mod regressions;
#[path = "../../fuzz/harness/upload_multipart.rs"]
mod upload_multipart;

#[test]
fn every_upload_multipart_regression_gets_its_expected_outcome() {
    regressions::check_dir(
        "fuzz/regressions/upload_multipart",
        upload_multipart::exercise,
    );
}

#[test]
fn every_propagation_headers_regression_gets_its_expected_outcome() {
    regressions::check_dir(
        "fuzz/regressions/propagation_headers",
        propagation_headers::exercise,
    );
}
