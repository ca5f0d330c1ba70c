//! Counter-based random kernels (see `ops/random.rs` for the seeding scheme).

use crate::buffer::Buffer;
use crate::dtype::DType;
use crate::math::{cos_f64, log_f64};
use crate::ops::random::{resolve_key, splitmix64, stateless_key};
use crate::ops::{Distribution, RandomParams};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Uniform in [0, 1) with 53 random bits.
#[inline]
fn unit(key: u64, i: u64) -> f64 {
    (splitmix64(key ^ splitmix64(i)) >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// A standard normal from the pair of counters (2i, 2i+1) of `key` (Box–Muller with
/// tensorjit's own log/cos, so the values are the same on every platform).
fn std_normal(key: u64, i: u64) -> f64 {
    let u1 = 1.0 - unit(key, 2 * i); // (0, 1]
    let u2 = unit(key, 2 * i + 1);
    (-2.0 * log_f64(u1)).sqrt() * cos_f64(std::f64::consts::TAU * u2)
}

pub(crate) fn random(p: &RandomParams, counter: Option<&Tensor>, shape: Shape) -> Tensor {
    let n = shape.numel();
    let key = match counter.and_then(|c| c.to_scalar::<i64>().ok()) {
        Some(c) if p.stateless => stateless_key(p.seed, c),
        _ => resolve_key(p.seed),
    };
    crate::buffer::ensure_allocatable::<f64>(n);
    let vals: Vec<f64> = (0..n as u64)
        .map(|i| match p.dist {
            Distribution::Uniform { low, high } => low + (high - low) * unit(key, i),
            Distribution::Normal { mean, stddev } => mean + stddev * std_normal(key, i),
            Distribution::TruncatedNormal { mean, stddev } => {
                let mut attempt = 0u64;
                loop {
                    let z = std_normal(splitmix64(key ^ attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15)), i);
                    if z.abs() <= 2.0 || attempt == 1000 {
                        break mean + stddev * z.clamp(-2.0, 2.0);
                    }
                    attempt += 1;
                }
            }
        })
        .collect();
    let buf = match p.dtype {
        DType::F32 => Buffer::F32(vals.iter().map(|&v| v as f32).collect()),
        _ => Buffer::F64(vals),
    };
    Tensor::from_buffer(buf, shape)
}
