//! Loading the fixture sets under tests/fixtures.

use std::path::{Path, PathBuf};

use mesh_istio::load::load_path;
use mesh_istio::resources::Resource;

pub fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn good() -> Vec<Resource> {
    load_path(&dir("good")).expect("the good fixture loads")
}

/// The good set with `file`'s resources replacing those of the same kind/namespace/name (and
/// added when new) — each broken fixture is one defect on top of the good set.
pub fn good_with(file: &Path) -> Vec<Resource> {
    let overrides = load_path(file).unwrap_or_else(|e| panic!("{} loads: {e}", file.display()));
    let key = |r: &Resource| (r.kind.clone(), r.qualified_name());
    let mut resources: Vec<Resource> = good()
        .into_iter()
        .filter(|g| !overrides.iter().any(|o| key(o) == key(g)))
        .collect();
    resources.extend(overrides);
    resources
}

pub fn broken(name: &str) -> PathBuf {
    dir("broken").join(format!("{name}.yaml"))
}
