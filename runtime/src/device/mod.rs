//! Where a tensor's buffer lives, and how ops reach the device that holds it.
//!
//! The runtime computes on the CPU itself; other devices are *device backends*
//! ([`DeviceBackend`]) installed at run time — the GPU backend lives in `tensorjit-jit`
//! (PTX through cudarc) and the `tensorjit` facade installs it. A tensor on a device
//! holds a [`DeviceMemory`]; every op goes through `run_op`, which checks that its
//! operands share one device ([`placement`]) and hands device operands to that device's
//! backend. Without a backend (or without a GPU) asking for a device is an `Err`.
//!
//! Placement rules (as in PyTorch): an op's operands must be on one device, except that
//! a rank-0 CPU tensor (a Rust scalar such as the `2.0` of `x * 2.0`) joins any device.
//! A traced function runs on the device of its tensor arguments.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::error::{Error, OpError};
use crate::ops::Op;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// The device of a tensor: the host CPU, or an NVIDIA GPU by ordinal (`cuda:0`).
/// Non-exhaustive so that adding devices is not a breaking change.
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

/// Parses `cpu`, `cuda` (device 0) and `cuda:N`, as `Display` writes them (command-line
/// flags such as the examples' `--device`).
impl std::str::FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Device, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device `{s}`: use cpu, cuda or cuda:N")),
        }
    }
}

/// The elements of one tensor on a device (dense, row-major, immutable once made).
/// Implemented by device backends; the runtime only asks what and where it is, and for
/// a host copy.
/// Unwind-safe so that tensors stay `UnwindSafe` (tests and users catch panics of ops).
pub trait DeviceMemory: Send + Sync + fmt::Debug + std::panic::RefUnwindSafe + std::panic::UnwindSafe {
    fn device(&self) -> Device;
    fn dtype(&self) -> DType;
    /// Number of elements.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies the elements to the host.
    fn to_host(&self) -> Result<Buffer, Error>;
    /// For the backend that made it, to reach its own type.
    fn as_any(&self) -> &dyn Any;
}

/// A device that runs ops on the tensors it holds.
pub trait DeviceBackend: Send + Sync {
    /// Copies host elements to `device` (`Err` when the device is not there, or cannot
    /// hold this dtype).
    fn upload(&self, device: Device, buf: &Buffer) -> Result<Arc<dyn DeviceMemory>, Error>;

    /// Runs `op` on `device`, producing a tensor of the inferred `dtype` and `shape`.
    /// Every operand is on `device` (rank-0 CPU operands were uploaded by the caller);
    /// `Op::Reshape` and `Op::StopGradient` never come here (they share the buffer).
    /// An op this device does not run is an `OpError` that says so.
    fn run(&self, device: Device, op: &Op, inputs: &[&Tensor], dtype: DType, shape: &Shape) -> Result<Tensor, OpError>;

    /// Waits until the device finished all work queued so far (for timing).
    fn synchronize(&self, device: Device) -> Result<(), Error>;
}

static CUDA: OnceLock<Arc<dyn DeviceBackend>> = OnceLock::new();

/// Installs the backend of `Device::Cuda` devices (the first installation wins;
/// returns whether this one did).
pub fn install_cuda_backend(backend: Arc<dyn DeviceBackend>) -> bool {
    CUDA.set(backend).is_ok()
}

/// The backend of `device`: `Err` saying how to get one when none is installed.
pub fn backend(device: Device) -> Result<&'static dyn DeviceBackend, Error> {
    match device {
        Device::Cpu => Err(Error::Internal("the CPU has no device backend".into())),
        Device::Cuda(_) => CUDA.get().map(|b| &**b).ok_or_else(|| Error::Device {
            device: device.to_string(),
            message: "no GPU backend is installed in this program: the `tensorjit` crate installs it \
                      (`tensorjit::init()`, or the first traced function); `tensorjit-runtime` alone runs on \
                      the CPU only"
                .into(),
        }),
    }
}

/// Waits for `device` to finish its queued work (a no-op on the CPU).
pub fn synchronize(device: Device) -> Result<(), Error> {
    match device {
        Device::Cpu => Ok(()),
        d => backend(d)?.synchronize(d),
    }
}

/// The device an op with these operands runs on: the operands' one device, a rank-0
/// CPU operand joining any. Operands on two devices are an error naming both.
pub fn placement(op: &'static str, inputs: &[&Tensor]) -> Result<Device, OpError> {
    let mut at: Option<Device> = None;
    for t in inputs {
        let d = t.device();
        if d == Device::Cpu && t.rank() == 0 && !t.is_symbolic() {
            continue;
        }
        match at {
            None => at = Some(d),
            Some(a) if a == d => {}
            Some(a) => {
                return Err(OpError::new(
                    op,
                    format!(
                        "operands on two devices, {a} and {d}; move one with `.to(device)` (only rank-0 CPU \
                         tensors join an op on another device)"
                    ),
                ))
            }
        }
    }
    Ok(at.unwrap_or(Device::Cpu))
}

/// Runs `op` on concrete `inputs` wherever they live: the CPU's eager kernel, or the
/// device backend of their device. The single executor of ops (eager dispatch, the
/// interpreter and the JIT's fallback steps all come here).
pub(crate) fn run_op(op: &Op, inputs: &[&Tensor], dtype: DType, shape: Shape) -> Result<Tensor, OpError> {
    run_op_on(placement(op.name(), inputs)?, op, inputs, dtype, shape)
}

/// [`run_op`] with the placement already made.
#[inline]
pub(crate) fn run_op_on(
    device: Device,
    op: &Op,
    inputs: &[&Tensor],
    dtype: DType,
    shape: Shape,
) -> Result<Tensor, OpError> {
    if device == Device::Cpu {
        if let Op::Gather { axis } = op {
            crate::kernels::shape::check_gather_indices(inputs[0], inputs[1], *axis)?;
        }
        return Ok(crate::kernels::run(op, inputs, dtype, shape));
    }
    if matches!(op, Op::Reshape(_) | Op::StopGradient) {
        return Ok(inputs[0].view_as(shape));
    }
    let b = backend(device).map_err(|e| OpError::new(op.name(), e.to_string()))?;
    // Rank-0 CPU operands (Rust scalars) are copied over (once per value: `upload`);
    // the others are on `device` already, where `to` is a clone.
    let ins = inputs
        .iter()
        .map(|t| t.to(device))
        .collect::<Result<smallvec::SmallVec<[Tensor; 4]>, _>>()
        .map_err(|e| OpError::new(op.name(), e.to_string()))?;
    let ins: smallvec::SmallVec<[&Tensor; 4]> = ins.iter().collect();
    b.run(device, op, &ins, dtype, &shape)
}

/// One-element host buffers already copied to a device, by device, dtype and bits (up
/// to [`SCALARS_KEPT`]): eager loops pass the same few Rust scalars to every step, and
/// a copy to a GPU per op would be a host-to-device transfer per op. Device memory is
/// immutable once made, so one copy serves every tensor that holds that value.
type ScalarCache = Mutex<HashMap<(Device, DType, u64), Arc<dyn DeviceMemory>>>;
static SCALARS: OnceLock<ScalarCache> = OnceLock::new();
const SCALARS_KEPT: usize = 256;

/// Host elements copied to `device` (the one copy of a single value, see [`SCALARS`]).
pub(crate) fn upload(device: Device, buf: &Buffer) -> Result<Arc<dyn DeviceMemory>, Error> {
    let bits = match buf {
        Buffer::F32(v) if v.len() == 1 => u64::from(v[0].to_bits()),
        Buffer::F64(v) if v.len() == 1 => v[0].to_bits(),
        Buffer::I32(v) if v.len() == 1 => v[0] as u32 as u64,
        Buffer::I64(v) if v.len() == 1 => v[0] as u64,
        Buffer::Bool(v) if v.len() == 1 => u64::from(v[0]),
        _ => return backend(device)?.upload(device, buf),
    };
    let key = (device, buf.dtype(), bits);
    let cache = SCALARS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(m) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(m.clone());
    }
    let m = backend(device)?.upload(device, buf)?;
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= SCALARS_KEPT {
        cache.clear();
    }
    cache.insert(key, m.clone());
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::Device;

    #[test]
    fn devices_parse_as_they_print() {
        for d in [Device::Cpu, Device::Cuda(0), Device::Cuda(3)] {
            assert_eq!(d.to_string().parse::<Device>(), Ok(d));
        }
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(0)));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", ""] {
            let e = bad.parse::<Device>().err().unwrap_or_default();
            assert!(e.contains(&format!("`{bad}`")) && e.contains("cuda:N"), "{e}");
        }
    }
}
