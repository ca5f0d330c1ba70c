//! Layers without weights: Flatten, Dropout, ActivationLayer, Lambda.

use std::sync::Arc;

use tensorjit_runtime::{init_scope, DType, Shape, Tensor};

use super::draws::{Dist, Draws};
use super::{core_methods, no_weights, with_name};
use crate::activations::Activation;
use crate::module::{shape_spec, LayerCore, Module, ShapeSpec};

/// Flattens every axis but the batch axis (Keras' `Flatten`).
#[derive(Clone)]
pub struct Flatten {
    core: Arc<LayerCore>,
}

impl Flatten {
    pub fn new() -> Flatten {
        Flatten { core: LayerCore::new("Flatten") }
    }

    with_name!();
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::new()
    }
}

impl Module for Flatten {
    core_methods!();

    fn build(&self, scope: &str, _input: &[Option<usize>]) {
        self.core.build(scope, |_| {});
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        if x.rank() < 1 {
            self.core.incompatible(x, "a batch axis (rank >= 1)");
        }
        let rest: usize = x.dims()[1..].iter().product();
        x.reshape([-1, rest as i64])
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        let rest = input.iter().skip(1).try_fold(1usize, |acc, d| d.map(|d| acc * d));
        vec![input.first().copied().flatten(), rest]
    }
}

/// Sets a fraction `rate` of the inputs to zero while training and scales the rest by
/// 1 / (1 − rate) (Keras' `Dropout`); the identity at inference. A new mask on every
/// call, eager or traced. Unseeded, masks come from the runtime's random sequence
/// (repeatable after `random::set_seed`); with [`with_seed`](Self::with_seed) they are
/// stateless draws keyed by the seed and a per-layer call counter (an i64 variable the
/// layer advances), so they repeat run to run whatever else draws random numbers.
#[derive(Clone)]
pub struct Dropout {
    rate: f64,
    draws: Draws,
    core: Arc<LayerCore>,
}

impl Dropout {
    /// Dropout of `rate` in `[0, 1)`.
    #[track_caller]
    pub fn new(rate: f64) -> Dropout {
        let rate = super::checked_rate("Dropout", "rate", rate);
        Dropout { rate, draws: Draws::default(), core: LayerCore::new("Dropout") }
    }

    /// Masks keyed by `seed` and the layer's call count (Keras' `Dropout(seed=…)`).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.draws = Draws::seeded(seed);
        self
    }

    /// The number of seeded masks drawn so far (`None` for an unseeded layer or before
    /// the first training call).
    pub fn calls(&self) -> Option<i64> {
        self.draws.calls()
    }

    with_name!();
}

impl Module for Dropout {
    core_methods!();

    /// Acts on each step alone: the input's mask passes on.
    fn supports_masking(&self) -> bool {
        true
    }

    fn build(&self, scope: &str, _input: &[Option<usize>]) {
        self.core.build(scope, |_| {});
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, training: bool) -> Tensor {
        if !training || self.rate == 0.0 {
            return x.clone();
        }
        let u = self.draws.draw(&self.core, x, x.dims(), Dist::Unit);
        let keep = u.ge(self.rate);
        Tensor::where_(&keep, &(x / (1.0 - self.rate)), 0.0)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        input.to_vec()
    }
}

/// Applies an [`Activation`] (Keras' `Activation` layer).
#[derive(Clone)]
pub struct ActivationLayer {
    activation: Activation,
    core: Arc<LayerCore>,
}

impl ActivationLayer {
    pub fn new(activation: Activation) -> ActivationLayer {
        ActivationLayer { activation, core: LayerCore::new("Activation") }
    }

    with_name!();
}

impl Module for ActivationLayer {
    core_methods!();

    /// Acts on each step alone: the input's mask passes on.
    fn supports_masking(&self) -> bool {
        true
    }

    fn build(&self, scope: &str, _input: &[Option<usize>]) {
        self.core.build(scope, |_| {});
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        self.activation.apply(x)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        input.to_vec()
    }
}

/// Passes its input on unchanged and penalises it (Keras' `ActivityRegularization`):
/// `l1·Σ|x| + l2·Σx²` over the batch size, added to the loss by the model that calls it.
#[derive(Clone)]
pub struct ActivityRegularization {
    core: Arc<LayerCore>,
}

impl ActivityRegularization {
    /// The penalty `l1·Σ|x| + l2·Σx²` (factors finite and ≥ 0).
    #[track_caller]
    pub fn new(l1: f64, l2: f64) -> ActivityRegularization {
        let core = LayerCore::new("ActivityRegularization");
        ActivityRegularization { core: core.with_activity(crate::regularizers::Regularizer::L1L2 { l1, l2 }) }
    }

    with_name!();
}

impl Module for ActivityRegularization {
    core_methods!();
    no_weights!();

    fn supports_masking(&self) -> bool {
        true
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        x.clone()
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        input.to_vec()
    }
}

type LambdaFn = dyn Fn(&Tensor) -> Tensor + Send + Sync;

/// Wraps a function of tensors as a layer (Keras' `Lambda`).
#[derive(Clone)]
pub struct Lambda {
    f: Arc<LambdaFn>,
    core: Arc<LayerCore>,
}

impl Lambda {
    pub fn new(f: impl Fn(&Tensor) -> Tensor + Send + Sync + 'static) -> Lambda {
        Lambda { f: Arc::new(f), core: LayerCore::new("Lambda") }
    }

    with_name!();
}

impl Module for Lambda {
    core_methods!();

    fn build(&self, scope: &str, _input: &[Option<usize>]) {
        self.core.build(scope, |_| {});
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        (self.f)(x)
    }

    /// Found by running the function on a batch of one (outside any trace).
    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        let dims: Vec<usize> = input.iter().map(|d| d.unwrap_or(1)).collect();
        let out = init_scope(|| (self.f)(&Tensor::ones(Shape::new(&dims), DType::F32)));
        let mut s = shape_spec(&out);
        if let (Some(first), Some(b)) = (s.first_mut(), input.first()) {
            *first = *b;
        }
        s
    }
}
