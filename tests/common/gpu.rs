//! The GPU tests' checks: a GPU to run on (or a note that there is none), and results
//! that stay on it and agree with the CPU's.

use tensorjit::prelude::*;

use super::element_bytes;

/// The first GPU, or `None` (and a note that `what` did not run) on a machine with none.
pub fn first_gpu(what: &str) -> Option<Device> {
    tensorjit::init();
    if tensorjit::cuda_device_count() == 0 {
        eprintln!("no CUDA device on this machine: {what} not run");
        return None;
    }
    Some(Device::Cuda(0))
}

/// The GPU result `gpu` is on the GPU and holds `cpu`'s bytes (f32 NaNs: any NaN).
pub fn same(what: &str, gpu: &Tensor, cpu: &Tensor) {
    assert_eq!(gpu.device(), Device::Cuda(0), "{what}: the result stays on the GPU");
    assert_eq!((gpu.dtype(), gpu.dims()), (cpu.dtype(), cpu.dims()), "{what}");
    let host = gpu.to(Device::Cpu).expect("copies back");
    if cpu.dtype() == DType::F32 {
        // Equal bits, or both NaN: a NaN made by arithmetic (0/0) has the platform's bits.
        let (g, c) = (host.to_vec::<f32>().unwrap(), cpu.to_vec::<f32>().unwrap());
        let same_bits = g.iter().zip(&c).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
        assert!(same_bits, "{what}: GPU {host:?} vs CPU {cpu:?}");
        return;
    }
    if cpu.dtype() == DType::F64 {
        let (g, c) = (host.to_vec::<f64>().unwrap(), cpu.to_vec::<f64>().unwrap());
        let same_bits = g.iter().zip(&c).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
        assert!(same_bits, "{what}: GPU {host:?} vs CPU {cpu:?}");
        return;
    }
    assert_eq!(element_bytes(&host), element_bytes(cpu), "{what}: GPU {host:?} vs CPU {cpu:?}");
}

/// `gpu` (on the GPU) within `tol` of `cpu` relative to `scale` (f64 tensors).
pub fn close_f64(what: &str, gpu: &Tensor, cpu: &Tensor, tol: f64) {
    assert_eq!(gpu.device(), Device::Cuda(0), "{what}: the result stays on the GPU");
    let (g, c) = (gpu.to(Device::Cpu).unwrap().to_vec::<f64>().unwrap(), cpu.to_vec::<f64>().unwrap());
    assert_eq!(g.len(), c.len(), "{what}");
    for (a, b) in g.iter().zip(&c) {
        assert!((a - b).abs() <= tol * b.abs().max(1.0) || (a.is_nan() && b.is_nan()), "{what}: GPU {a} vs CPU {b}");
    }
}
