//! Random tensors: uniform, normal, truncated_normal, glorot_uniform.
//!
//! Generation is counter-based (splitmix64 of a per-draw key and the element index), so
//! a draw is reproducible across runs and independent of the number of threads.
//! Seeds follow TensorFlow's two-level scheme: a global seed (`set_seed`, default 0) and
//! an optional per-draw seed. With an explicit seed the draw is a pure function of
//! (global seed, seed, shape, dtype); without one, each draw takes the next value of a
//! counter that `set_seed` resets, so a program's sequence of draws repeats run to run.

use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{apply, needs, Op};
use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::Shape;
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    Uniform {
        low: f64,
        high: f64,
    },
    Normal {
        mean: f64,
        stddev: f64,
    },
    /// Normal, redrawn while more than two standard deviations from the mean.
    TruncatedNormal {
        mean: f64,
        stddev: f64,
    },
}

impl Distribution {
    pub fn name(&self) -> &'static str {
        match self {
            Distribution::Uniform { .. } => "random_uniform",
            Distribution::Normal { .. } => "random_normal",
            Distribution::TruncatedNormal { .. } => "truncated_normal",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RandomParams {
    pub dist: Distribution,
    pub shape: Shape,
    pub dtype: DType,
    /// The draw's own seed. The key is resolved when the draw executes (eagerly, or on
    /// every call of a traced function), so unseeded draws advance the global sequence
    /// in both modes alike.
    pub seed: Option<u64>,
    /// A stateless draw: the op has one input, an i64 scalar counter, and the values
    /// are a pure function of (seed, counter) — independent of the global seed and
    /// sequence (TensorFlow's `stateless_*`).
    pub stateless: bool,
}

pub(crate) fn infer_random(p: &RandomParams, inputs: &[&Tensor]) -> Result<(DType, Shape), OpError> {
    if !p.dtype.is_float() {
        return Err(needs(p.dist.name(), "a float dtype", p.dtype, ""));
    }
    if p.stateless && (inputs.len() != 1 || inputs[0].dtype() != DType::I64 || inputs[0].rank() != 0) {
        let got: Vec<String> = inputs.iter().map(|t| t.type_string()).collect();
        return Err(OpError::new(
            p.dist.name(),
            format!("a stateless draw takes one i64 scalar counter, got [{}]", got.join(", ")),
        ));
    }
    Ok((p.dtype, p.shape.clone()))
}

static GLOBAL_SEED: AtomicU64 = AtomicU64::new(0);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Sets the global seed and restarts the sequence of unseeded draws.
pub fn set_seed(seed: u64) {
    GLOBAL_SEED.store(seed, Ordering::SeqCst);
    COUNTER.store(0, Ordering::SeqCst);
}

/// The global seed.
pub fn global_seed() -> u64 {
    GLOBAL_SEED.load(Ordering::SeqCst)
}

/// One splitmix64 step (the finaliser), a bijection of u64: the mixing function behind
/// every random draw, also used by host-side generators (dataset shuffles).
#[inline(always)]
pub fn splitmix64(z: u64) -> u64 {
    let z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of a stateless draw: a pure function of its seed and counter,
/// `splitmix64(stateless_seed_part(seed) ^ splitmix64(counter))`.
pub(crate) fn stateless_key(seed: Option<u64>, counter: i64) -> u64 {
    splitmix64(stateless_seed_part(seed) ^ splitmix64(counter as u64))
}

/// The seed's share of a stateless draw's key (device kernels, which read the counter
/// where it lives, combine it with the counter as `stateless_key` does).
pub fn stateless_seed_part(seed: Option<u64>) -> u64 {
    splitmix64(seed.unwrap_or(0) ^ 0x5EED_5EED_0000_0003)
}

/// The key of a draw that is not stateless, resolved when it executes: from the global
/// seed and the op's seed, or — unseeded — the next value of the global sequence (each
/// call advances it). Public for device backends that make the values themselves.
pub fn resolve_key(seed: Option<u64>) -> u64 {
    let g = splitmix64(global_seed());
    match seed {
        Some(s) => splitmix64(g ^ splitmix64(s)),
        None => splitmix64(g ^ splitmix64(COUNTER.fetch_add(1, Ordering::SeqCst)) ^ 0xA5A5_A5A5_0000_0001),
    }
}

#[track_caller]
fn draw(dist: Distribution, shape: Shape, dtype: DType, seed: Option<u64>) -> Tensor {
    let valid = match dist {
        Distribution::Uniform { low, high } => low.is_finite() && high.is_finite() && low <= high,
        Distribution::Normal { mean, stddev } | Distribution::TruncatedNormal { mean, stddev } => {
            mean.is_finite() && stddev.is_finite() && stddev >= 0.0
        }
    };
    if !valid {
        OpError::new(dist.name(), format!("invalid parameters {dist:?}")).raise(Location::caller())
    }
    apply(Op::Random(RandomParams { dist, shape, dtype, seed, stateless: false }), &[])
}

/// A stateless draw of `dist`: a pure function of `seed` and the i64 scalar `counter`
/// (a tensor, so a traced function can advance it through a variable).
#[track_caller]
fn draw_stateless(dist: Distribution, shape: Shape, dtype: DType, seed: u64, counter: &Tensor) -> Tensor {
    apply(Op::Random(RandomParams { dist, shape, dtype, seed: Some(seed), stateless: true }), &[counter])
}

/// Uniform in `[low, high)` as a pure function of `seed` and the i64 scalar `counter`
/// (TensorFlow's `stateless_uniform`): the same (seed, counter) gives the same values
/// eagerly and traced, whatever else draws random numbers. Layers keep the counter in a
/// variable and advance it per call (Dropout's seeded masks).
#[track_caller]
pub fn stateless_uniform(
    shape: impl Into<Shape>,
    low: f64,
    high: f64,
    dtype: DType,
    seed: u64,
    counter: &Tensor,
) -> Tensor {
    if !(low.is_finite() && high.is_finite() && low <= high) {
        OpError::new("random_uniform", format!("invalid bounds [{low}, {high})")).raise(Location::caller())
    }
    draw_stateless(Distribution::Uniform { low, high }, shape.into(), dtype, seed, counter)
}

/// Normal as a pure function of `seed` and the i64 scalar `counter` (see
/// [`stateless_uniform`]).
#[track_caller]
pub fn stateless_normal(
    shape: impl Into<Shape>,
    mean: f64,
    stddev: f64,
    dtype: DType,
    seed: u64,
    counter: &Tensor,
) -> Tensor {
    if !(mean.is_finite() && stddev.is_finite() && stddev >= 0.0) {
        OpError::new("random_normal", format!("invalid mean {mean} / stddev {stddev}")).raise(Location::caller())
    }
    draw_stateless(Distribution::Normal { mean, stddev }, shape.into(), dtype, seed, counter)
}

/// Uniform in `[low, high)`.
#[track_caller]
pub fn uniform(shape: impl Into<Shape>, low: f64, high: f64, dtype: DType, seed: Option<u64>) -> Tensor {
    draw(Distribution::Uniform { low, high }, shape.into(), dtype, seed)
}

/// Normal with the given mean and standard deviation (Box–Muller).
#[track_caller]
pub fn normal(shape: impl Into<Shape>, mean: f64, stddev: f64, dtype: DType, seed: Option<u64>) -> Tensor {
    draw(Distribution::Normal { mean, stddev }, shape.into(), dtype, seed)
}

/// Normal truncated to two standard deviations (values beyond are redrawn).
#[track_caller]
pub fn truncated_normal(shape: impl Into<Shape>, mean: f64, stddev: f64, dtype: DType, seed: Option<u64>) -> Tensor {
    draw(Distribution::TruncatedNormal { mean, stddev }, shape.into(), dtype, seed)
}

/// Fan-in and fan-out as Keras computes them: `[in, out]` for dense kernels,
/// `[h, w, in, out]` (receptive field × channels) for conv kernels.
pub fn fans(shape: &Shape) -> (usize, usize) {
    match shape.rank() {
        0 => (1, 1),
        1 => (shape[0], shape[0]),
        2 => (shape[0], shape[1]),
        r => {
            let rf: usize = shape[..r - 2].iter().product();
            (shape[r - 2] * rf, shape[r - 1] * rf)
        }
    }
}

/// Glorot (Xavier) uniform: uniform in ±√(6 / (fan_in + fan_out)).
#[track_caller]
pub fn glorot_uniform(shape: impl Into<Shape>, dtype: DType, seed: Option<u64>) -> Tensor {
    let shape = shape.into();
    let (fi, fo) = fans(&shape);
    let limit = (6.0 / (fi + fo).max(1) as f64).sqrt();
    uniform(shape, -limit, limit, dtype, seed)
}
