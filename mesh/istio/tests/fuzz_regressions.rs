//! Every input in `fuzz/regressions/mesh_routes/` (what the `mesh_routes` fuzz target found, and
//! hand-made hostile resources) through the fuzz target's own code: a clear error naming the file
//! and field, never a panic.

#[path = "../../../fuzz/harness/mesh_routes.rs"]
mod harness;
#[path = "../../../fuzz/harness/regressions.rs"]
mod regressions;

#[test]
fn every_mesh_routes_regression_gets_its_expected_outcome() {
    regressions::check_dir("fuzz/regressions/mesh_routes", harness::exercise);
}
