//! Helpers shared by the examples that read `examples/data`.

use std::path::{Path, PathBuf};

/// The data file: beside the sources, or under the working directory (a copied binary,
/// as `.ci/gpu-bundle` makes).
pub fn data_file(name: &str) -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data").join(name);
    if beside.exists() {
        beside
    } else {
        Path::new("examples/data").join(name)
    }
}
