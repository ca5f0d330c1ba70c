//! The runtime's f32 transcendentals on the GPU, bit for bit: the PTX kernels run the
//! CPU's algorithms (`jit/src/lower/math.rs`), so every input — not a sample of nice
//! ones — must give the CPU's bits.

use crate::common::gpu::first_gpu;
use tensorjit::prelude::*;

/// `exp`, `log`, `sigmoid`, `softplus` and `tanh` of every 127th f32 bit pattern (33.8
/// M: every binade of both signs, subnormals, infinities, NaNs), eager on the GPU: the
/// CPU's bits (any NaN for NaN) — the same fused multiply-adds on both. `tanh` and
/// `sigmoid` divide without the general division's range check (`ptx::division`); this
/// is the hardware check that their quotients are still `div.rn`'s.
#[test]
fn the_exponential_family_and_log_give_the_cpus_bits_for_every_127th_float() {
    let Some(gpu) = first_gpu("the exponential family's bit-for-bit check") else { return };
    let offset = 1 + (std::process::id() % 126); // a fresh subset of bit patterns each run
    let x: Vec<f32> = (0..u32::MAX / 127).map(|i| f32::from_bits(i * 127 + offset)).collect();
    let n = x.len();
    let cpu_x = Tensor::from_vec(x.clone(), [n]).unwrap();
    let gpu_x = cpu_x.to(gpu).unwrap();
    type UnaryFn = fn(&Tensor) -> Tensor;
    let ops: [(&str, UnaryFn); 5] = [
        ("exp", Tensor::exp),
        ("log", Tensor::log),
        ("sigmoid", Tensor::sigmoid),
        ("softplus", Tensor::softplus),
        ("tanh", Tensor::tanh),
    ];
    for (name, op) in ops {
        let on_gpu = op(&gpu_x).to(Device::Cpu).unwrap().to_vec::<f32>().unwrap();
        let on_cpu = op(&cpu_x).to_vec::<f32>().unwrap();
        let wrong =
            on_gpu.iter().zip(&on_cpu).position(|(g, c)| g.to_bits() != c.to_bits() && !(g.is_nan() && c.is_nan()));
        if let Some(i) = wrong {
            let count = on_gpu
                .iter()
                .zip(&on_cpu)
                .filter(|(g, c)| g.to_bits() != c.to_bits() && !(g.is_nan() && c.is_nan()))
                .count();
            panic!(
                "{name}: {count} of {n} results differ; first at x = {:e} ({:#010x}): GPU {:e} ({:#010x}), CPU {:e} ({:#010x})",
                x[i], x[i].to_bits(), on_gpu[i], on_gpu[i].to_bits(), on_cpu[i], on_cpu[i].to_bits()
            );
        }
    }
}
