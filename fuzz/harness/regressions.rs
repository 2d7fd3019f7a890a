// Runs every input of one `fuzz/regressions/<target>/` directory through that target's harness,
// for the regression tests of the crates under fuzzing (each includes this file and the harness).
//
// Every input `<name>` has a `<name>.expect` beside it: lines (blank ones and `#` comments aside)
// that must each appear in what the harness answers, e.g. the error message naming what is wrong.
// A panic, a missing expectation or an empty directory fails the test.

use std::path::{Path, PathBuf};

/// Checks every input of `dir` (relative to the repository root) with `exercise`.
pub fn check_dir(dir: &str, exercise: fn(&[u8]) -> String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("fuzz/harness").is_dir())
        .expect("the repository root (with fuzz/harness) above the crate")
        .to_path_buf();
    let dir = root.join(dir);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_none_or(|ext| ext != "expect"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} holds no inputs", dir.display());
    let mut failures = Vec::new();
    for input in &inputs {
        let name = input.file_name().unwrap_or_default().to_string_lossy();
        let expect_path = input.with_file_name(format!("{name}.expect"));
        let Ok(expect) = std::fs::read_to_string(&expect_path) else {
            failures.push(format!("{name}: no {name}.expect beside it"));
            continue;
        };
        let bytes = std::fs::read(input).expect("a regression input");
        let outcome = match std::panic::catch_unwind(|| exercise(&bytes)) {
            Ok(outcome) => outcome,
            Err(_) => {
                failures.push(format!("{name}: panicked (message above)"));
                continue;
            }
        };
        for wanted in expect
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            if !outcome.contains(wanted) {
                failures.push(format!(
                    "{name}: expected `{wanted}` in the outcome, got:\n{outcome}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} inputs in {}:\n{}",
        failures.len(),
        inputs.len(),
        dir.display(),
        failures.join("\n")
    );
}
