//! mesh-istio's fixture sets (tests/fixtures beside the library).

use std::path::{Path, PathBuf};

pub fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../istio/tests/fixtures")
        .join(name)
}

pub fn broken(name: &str) -> PathBuf {
    dir("broken").join(format!("{name}.yaml"))
}
