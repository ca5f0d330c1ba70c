//! Preprocessing inside the model: `Rescaling` (`x·scale + offset`) and `Normalization`
//! (feature-wise standardisation with statistics learned by `adapt`).

use std::sync::{Arc, Mutex};

use tensorjit_runtime::{DType, Device, Tensor, Variable};

use super::{core_methods, known_last_axis, no_weights, setters, with_name};
use crate::error::{raise, Error, Result};
use crate::initializers::Initializer;
use crate::module::{LayerCore, Module, ShapeSpec};

/// `x·scale + offset` (Keras' `Rescaling`: `Rescaling::new(1.0 / 255.0)` for pixels).
#[derive(Clone)]
pub struct Rescaling {
    scale: f64,
    offset: f64,
    core: Arc<LayerCore>,
}

impl Rescaling {
    pub fn new(scale: f64) -> Rescaling {
        Rescaling { scale, offset: 0.0, core: LayerCore::new("Rescaling") }
    }

    setters! {
        offset: f64,
    }

    with_name!();
}

impl Module for Rescaling {
    core_methods!();

    fn supports_masking(&self) -> bool {
        true
    }

    no_weights!();

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let x = if x.dtype().is_float() { x.clone() } else { x.cast(DType::F32) };
        &x * self.scale + self.offset
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        input.to_vec()
    }
}

/// Standardises each feature of the last axis (Keras' `Normalization`, `axis=-1`):
/// `(x − mean) / max(√variance, ε)`, or the inverse with [`invert`](Self::invert).
/// The statistics are non-trainable weights `mean` and `variance` `[features]`: learned
/// from data by [`adapt`](Self::adapt) (the mean and biased variance over every other
/// axis), or given by [`with_statistics`](Self::with_statistics).
#[derive(Clone)]
pub struct Normalization {
    invert: bool,
    /// Statistics waiting for the build (from `adapt` or `with_statistics` before it).
    pending: Arc<Mutex<Option<Statistics>>>,
    core: Arc<LayerCore>,
}

/// Per-feature means and variances.
type Statistics = (Vec<f32>, Vec<f32>);

/// Keras' epsilon: the smallest standard deviation divided by.
const EPSILON: f64 = 1e-7;

impl Normalization {
    /// A layer whose statistics come from [`adapt`](Self::adapt) (mean 0 and variance 1
    /// until then).
    pub fn new() -> Normalization {
        Normalization { invert: false, pending: Arc::new(Mutex::new(None)), core: LayerCore::new("Normalization") }
    }

    /// A layer with these per-feature statistics (Keras' `mean=`, `variance=`).
    #[track_caller]
    pub fn with_statistics(mean: &[f64], variance: &[f64]) -> Normalization {
        if mean.len() != variance.len() || variance.iter().any(|v| v.is_nan() || *v < 0.0) {
            raise(
                "Normalization",
                format!(
                    "needs one mean and one variance ≥ 0 per feature, got {} means and variances {variance:?}",
                    mean.len()
                ),
            )
        }
        let n = Normalization::new();
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect();
        *n.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some((f(mean), f(variance)));
        n
    }

    /// Maps standardised values back: `x·max(√variance, ε) + mean` (Keras' `invert=True`).
    pub fn invert(mut self, on: bool) -> Self {
        self.invert = on;
        self
    }

    with_name!();

    /// Learns the statistics of `data` (`[examples, …, features]`): each feature's mean
    /// and biased variance over every other axis (Keras' `adapt`). Before the build, the
    /// layer is built with them; after, its weights are assigned (a traced function sees
    /// the new values without retracing).
    pub fn adapt(&self, data: &Tensor) -> Result<()> {
        let invalid = |msg: String| Error::invalid("Normalization.adapt", msg);
        if data.rank() < 1 || data.dims().contains(&0) || data.is_symbolic() {
            return Err(invalid(format!("needs concrete data with a features axis, got {}", data.type_string())));
        }
        let features = data.dims()[data.rank() - 1];
        let rows = data.to(Device::Cpu)?.cast(DType::F64).reshape([-1, features as i64]);
        let mean = rows.mean(0, false);
        let variance = (&rows - &mean).square().mean(0, false);
        let (mean, variance) = (mean.cast(DType::F32).to_vec::<f32>()?, variance.cast(DType::F32).to_vec::<f32>()?);
        match self.core.weights().as_slice() {
            [m, v] => {
                if m.shape().dims() != [features] {
                    return Err(invalid(format!(
                        "the layer was built for {} features, the data has {features}",
                        m.shape().dims()[0]
                    )));
                }
                assign(m, mean)?;
                assign(v, variance)?;
            }
            _ => *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some((mean, variance)),
        }
        Ok(())
    }

    /// The learned mean and variance, once built.
    pub fn statistics(&self) -> Option<(Variable, Variable)> {
        match self.core.weights().as_slice() {
            [m, v] => Some((m.clone(), v.clone())),
            _ => None,
        }
    }
}

/// `v ← values`, on `v`'s device.
fn assign(v: &Variable, values: Vec<f32>) -> Result<()> {
    let n = values.len();
    v.assign(Tensor::from_vec(values, [n])?.to(v.read().device())?);
    Ok(())
}

impl Default for Normalization {
    fn default() -> Self {
        Normalization::new()
    }
}

impl Module for Normalization {
    core_methods!();

    fn supports_masking(&self) -> bool {
        true
    }

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner()).take();
        let c = match &pending {
            Some((mean, _)) => mean.len(),
            None => known_last_axis(&self.core, input),
        };
        self.core.build(scope, |w| {
            let mean = w.add("mean", &[c], &Initializer::Zeros, false);
            let variance = w.add("variance", &[c], &Initializer::Ones, false);
            if let Some((m, v)) = pending {
                assign(&mean, m).and_then(|_| assign(&variance, v)).unwrap_or_else(|e| raise("Normalization", e));
            }
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let [mean, variance] = [0, 1].map(|i| self.core.weight(i).read());
        let c = mean.dims()[0];
        if x.rank() < 1 || x.dims()[x.rank() - 1] != c {
            self.core.incompatible(x, &format!("a last axis of {c}"));
        }
        let x = if x.dtype() == mean.dtype() { x.clone() } else { x.cast(mean.dtype()) };
        let std = variance.sqrt().maximum(EPSILON);
        if self.invert {
            &x * &std + &mean
        } else {
            (&x - &mean) / &std
        }
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        input.to_vec()
    }
}
