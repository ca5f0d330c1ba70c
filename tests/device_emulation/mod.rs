//! A host-emulated device backend for the device tests (tests/devices.rs,
//! tests/devices_training.rs), installed as `Device::Cuda`: its memory is host memory,
//! it records the name of every op it is handed and computes each with the CPU kernels
//! (so results must equal the CPU's bit for bit), and it counts copies to and from it.
//!
//! A test binary that uses it installs it before anything else can install the real
//! backend (every test calls `emulated()` first), so each such binary holds only tests
//! of the emulated device.
#![allow(dead_code)]

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tensorjit::buffer::Buffer;
use tensorjit::device::{install_cuda_backend, DeviceBackend, DeviceMemory};
use tensorjit::ir::ValueType;
use tensorjit::ops::Op;
use tensorjit::prelude::*;
use tensorjit::trace::backend::run_kernel;
use tensorjit::OpError;

thread_local! {
    /// Copies to and from the device made by this thread (each a synchronising round
    /// trip on a real GPU).
    static UPLOADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    static DOWNLOADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The ops this thread ran on the device (the tests of a binary run in parallel).
    static THREAD_OPS: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The ops this thread ran on the device while `f` ran.
pub fn ops_during(f: impl FnOnce()) -> Vec<&'static str> {
    let start = THREAD_OPS.with(|o| o.borrow().len());
    f();
    THREAD_OPS.with(|o| o.borrow()[start..].to_vec())
}

/// This thread's (uploads, downloads) so far.
pub fn copies() -> (usize, usize) {
    (UPLOADS.with(std::cell::Cell::get), DOWNLOADS.with(std::cell::Cell::get))
}

#[derive(Debug)]
pub struct HostMemory {
    device: Device,
    buf: Buffer,
}

impl DeviceMemory for HostMemory {
    fn device(&self) -> Device {
        self.device
    }
    fn dtype(&self) -> DType {
        self.buf.dtype()
    }
    fn len(&self) -> usize {
        self.buf.len()
    }
    fn to_host(&self) -> Result<Buffer, Error> {
        DOWNLOADS.with(|n| n.set(n.get() + 1));
        Ok(self.buf.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A device whose memory is host memory; it records the name of every op it runs.
#[derive(Default)]
pub struct Emulated {
    pub ops: Mutex<Vec<&'static str>>,
    pub uploads: AtomicUsize,
    /// The values of one-element f32 uploads, in order.
    pub scalars: Mutex<Vec<f32>>,
}

pub fn host_tensor(buf: Buffer, shape: &Shape) -> Tensor {
    match buf {
        Buffer::F32(v) => Tensor::from_vec(v, shape.clone()),
        Buffer::F64(v) => Tensor::from_vec(v, shape.clone()),
        Buffer::I32(v) => Tensor::from_vec(v, shape.clone()),
        Buffer::I64(v) => Tensor::from_vec(v, shape.clone()),
        Buffer::Bool(v) => Tensor::from_vec(v, shape.clone()),
    }
    .expect("the emulated device holds whole tensors")
}

pub fn host_buffer(t: &Tensor) -> Buffer {
    match t.dtype() {
        DType::F32 => Buffer::F32(t.to_vec().unwrap()),
        DType::F64 => Buffer::F64(t.to_vec().unwrap()),
        DType::I32 => Buffer::I32(t.to_vec().unwrap()),
        DType::I64 => Buffer::I64(t.to_vec().unwrap()),
        DType::Bool => Buffer::Bool(t.to_vec().unwrap()),
    }
}

impl DeviceBackend for Emulated {
    fn upload(&self, device: Device, buf: &Buffer) -> Result<Arc<dyn DeviceMemory>, Error> {
        if device != Device::Cuda(0) {
            return Err(Error::Device { device: device.to_string(), message: "no such device".into() });
        }
        self.uploads.fetch_add(1, Ordering::Relaxed);
        UPLOADS.with(|n| n.set(n.get() + 1));
        if let Buffer::F32(v) = buf {
            if v.len() == 1 {
                self.scalars.lock().unwrap().push(v[0]);
            }
        }
        Ok(Arc::new(HostMemory { device, buf: buf.clone() }))
    }

    fn run(&self, device: Device, op: &Op, x: &[&Tensor], dtype: DType, shape: &Shape) -> Result<Tensor, OpError> {
        self.ops.lock().unwrap().push(op.name());
        THREAD_OPS.with(|o| o.borrow_mut().push(op.name()));
        let mut host = Vec::new();
        for t in x {
            assert_eq!(t.device(), device, "{}: every operand reaches the backend on its device", op.name());
            let m = t.device_memory().expect("a device operand");
            let m = m.as_any().downcast_ref::<HostMemory>().expect("memory of this backend");
            host.push(host_tensor(m.buf.clone(), t.shape()));
        }
        let refs: Vec<&Tensor> = host.iter().collect();
        let out = match op {
            // A GPU does not read its indices back: out-of-range ones gather zeros.
            Op::Gather { axis } => crate::common::gather_or_zeros(refs[0], refs[1], *axis),
            _ => run_kernel(op, &refs, &ValueType { dtype, shape: shape.clone() })
                .map_err(|e| OpError::new(op.name(), e.to_string()))?,
        };
        assert_eq!(out.device(), Device::Cpu);
        let memory = Arc::new(HostMemory { device, buf: host_buffer(&out) });
        Ok(Tensor::from_device_memory(memory, shape.clone()).unwrap())
    }

    fn synchronize(&self, _: Device) -> Result<(), Error> {
        Ok(())
    }
}

static EMULATED: std::sync::OnceLock<Arc<Emulated>> = std::sync::OnceLock::new();

/// The emulated device, installed as the CUDA backend on first use.
pub fn emulated() -> Arc<Emulated> {
    EMULATED
        .get_or_init(|| {
            let b = Arc::new(Emulated::default());
            assert!(install_cuda_backend(b.clone()), "the emulated backend must be installed before the real one");
            b
        })
        .clone()
}

pub fn ran_on_device(e: &Emulated, op: &str) -> bool {
    e.ops.lock().unwrap().contains(&op)
}

pub const GPU: Device = Device::Cuda(0);

/// Held by the tests that depend on the global random state (`set_seed`, the unseeded
/// sequence, seeded draws keyed by the global seed): this binary's tests run in
/// parallel, and one test's `set_seed` would change another's draws.
pub fn random_state() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn count(e: &Emulated, op: &str) -> usize {
    e.ops.lock().unwrap().iter().filter(|o| **o == op).count()
}

pub fn on_gpu(ts: &[Tensor]) -> Vec<Tensor> {
    ts.iter().map(|t| t.to(GPU).unwrap()).collect()
}
