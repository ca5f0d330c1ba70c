//! Random draws on GPUs: uniform, normal and truncated normal f32 and f64 draws made by
//! the PTX generator of `ptx::render_random`, the CPU's bits. A stateless draw (a seeded
//! `Dropout`'s masks on a device model) reads its i64 counter where it lives — no copy
//! to or from the host, and a CUDA graph replays it with each call's counter. Any other
//! draw's key is resolved on the host when it executes (it advances the global sequence,
//! as on the CPU) and passed to the kernel; such a draw cannot be part of a CUDA graph
//! (the graph would replay one key forever), so a capture meeting one fails.

use tensorjit_runtime::error::Error;
use tensorjit_runtime::ops::random::{resolve_key, stateless_seed_part};
use tensorjit_runtime::ops::{Distribution, Op};
use tensorjit_runtime::{DType, Tensor};

use super::backend::{words_of, OpCall};
use super::typed::{new_tensor, words_for};
use super::CAPTURING;
use crate::ptx::{self, Draw, RandomKernel};

/// Runs `op` on `gpu` when it is a draw of f32 or f64 values (a stateless one with its
/// counter there).
pub(super) fn run(call: OpCall<'_>) -> Result<Option<Tensor>, Error> {
    let OpCall { gpu, op, x, dtype, shape } = call;
    let Op::Random(p) = op else { return Ok(None) };
    let (draw, a, b) = match p.dist {
        Distribution::Uniform { low, high } => (Draw::Uniform, low, high - low),
        Distribution::Normal { mean, stddev } => (Draw::Normal, mean, stddev),
        Distribution::TruncatedNormal { mean, stddev } => (Draw::TruncatedNormal, mean, stddev),
    };
    let f64 = match dtype {
        DType::F32 => false,
        DType::F64 => true,
        _ => return Ok(None),
    };
    let k = RandomKernel { draw, f64, from_counter: p.stateless };
    let (inputs, key_part) = if p.stateless {
        let counter = match x {
            [c] if c.dtype() == DType::I64 && c.numel() == 1 => c,
            _ => return Ok(None),
        };
        let Some(words) = words_of(counter) else { return Ok(None) };
        // The entry reads the counter's two words.
        (vec![(words, 2)], stateless_seed_part(p.seed))
    } else {
        if CAPTURING.with(std::cell::Cell::get) {
            return Err(gpu.err(format!(
                "{} takes a new key from the host on every call: a CUDA graph cannot replay it (give the draw a \
                 counter: the stateless draws)",
                op.name()
            )));
        }
        (vec![], resolve_key(p.seed))
    };
    let n = shape.numel();
    let values = [key_part, a.to_bits(), b.to_bits()].map(|v| v as usize);
    let name = format!("tensorjit_random_{draw:?}_{}_{}", if f64 { "f64" } else { "f32" }, p.stateless);
    let render = move |nm: &str| ptx::render_random(k, nm);
    new_tensor(gpu, dtype, shape, |out| {
        gpu.launch_elementwise(&name, &render, &k, &inputs, (out, n, words_for(dtype, n)), &values)
    })
}
