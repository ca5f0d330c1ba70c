//! Random draws on GPUs: stateless uniform f32 draws whose i64 counter lives on the GPU
//! (a seeded `Dropout`'s masks on a device model) run the PTX generator of
//! `ptx::render_stateless_uniform`, which reads the counter there — no copy to or from
//! the host, and a CUDA graph replays it with each call's counter. Other draws (normal
//! ones, unseeded ones, whose keys advance host state) are made on the host.

use std::sync::Arc;

use tensorjit_runtime::error::Error;
use tensorjit_runtime::ops::random::stateless_seed_part;
use tensorjit_runtime::ops::{Distribution, Op};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::{DType, Tensor};

use super::backend::words_of;
use super::typed::new_tensor;
use super::Gpu;
use crate::ptx;

/// Runs `op` on `gpu` when it is a stateless uniform f32 draw with its counter there.
pub(super) fn run(
    gpu: &Arc<Gpu>,
    op: &Op,
    x: &[&Tensor],
    dtype: DType,
    shape: &Shape,
) -> Result<Option<Tensor>, Error> {
    let Op::Random(p) = op else { return Ok(None) };
    let Distribution::Uniform { low, high } = p.dist else { return Ok(None) };
    let counter = match x {
        [c] if p.stateless && dtype == DType::F32 && c.dtype() == DType::I64 && c.numel() == 1 => c,
        _ => return Ok(None),
    };
    let Some(words) = words_of(counter) else { return Ok(None) };
    let n = shape.numel();
    let values = [stateless_seed_part(p.seed), low.to_bits(), (high - low).to_bits()].map(|v| v as usize);
    let name = "tensorjit_stateless_uniform";
    // The entry reads the counter's two words and writes n f32s.
    new_tensor(gpu, DType::F32, shape, |out| {
        gpu.launch_elementwise(name, &ptx::render_stateless_uniform, &p.dist, &[(words, 2)], (out, n, n), &values)
    })
}
