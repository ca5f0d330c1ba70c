//! Where a tensor's buffer lives.

use std::fmt;

/// The device of a tensor. Only the host CPU exists until the GPU issue adds CUDA
/// devices; the enum is non-exhaustive so that adding them is not a breaking change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Device {
    #[default]
    Cpu,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
        }
    }
}
