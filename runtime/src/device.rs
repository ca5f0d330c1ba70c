//! Where a tensor's buffer lives.

use std::fmt;

/// The device of a tensor: the host CPU, or an NVIDIA GPU by ordinal (`cuda:0`). Tensors
/// live on the CPU; GPUs run the PTX kernels of `tensorjit_jit::cuda` (non-exhaustive so
/// that adding devices is not a breaking change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}
