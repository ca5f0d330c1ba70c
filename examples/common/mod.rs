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

/// `--device D` (cpu, cuda, cuda:N) from the command line; the CPU by default.
#[allow(dead_code)] // Not every example that shares this module takes a device.
pub fn device_flag() -> Result<tensorjit::Device, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--device") {
        Some(i) => args.get(i + 1).ok_or("--device needs a value: cpu, cuda or cuda:N")?.parse(),
        None => Ok(tensorjit::Device::Cpu),
    }
}
