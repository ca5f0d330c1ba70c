//! `BatchNormalization` with moving statistics it updates itself.

use std::sync::Arc;

use tensorjit_runtime::Tensor;

use super::{core_methods, known_last_axis, scale_and_shift, setters, with_name};
use crate::initializers::Initializer;
use crate::module::{LayerCore, Module, ShapeSpec};

/// Normalises the last axis (Keras' `BatchNormalization`): in training, with the batch's
/// mean and (biased) variance over every other axis, and it moves its moving statistics
/// toward them — `moving = moving·momentum + batch·(1 − momentum)` — by assigning its
/// own variables, in eager and traced mode alike; at inference, with the moving
/// statistics. Weights: gamma (ones), beta (zeros) trainable; moving_mean (zeros),
/// moving_variance (ones) not.
#[derive(Clone)]
pub struct BatchNormalization {
    momentum: f64,
    epsilon: f64,
    core: Arc<LayerCore>,
}

impl BatchNormalization {
    /// Momentum 0.99, epsilon 0.001 (Keras' defaults).
    pub fn new() -> BatchNormalization {
        BatchNormalization { momentum: 0.99, epsilon: 1e-3, core: LayerCore::new("BatchNormalization") }
    }

    setters! {
        momentum: f64,
        epsilon: f64,
    }

    with_name!();

    /// The moving mean, once built.
    pub fn moving_mean(&self) -> Option<tensorjit_runtime::Variable> {
        self.core.weights().get(2).cloned()
    }

    /// The moving variance, once built.
    pub fn moving_variance(&self) -> Option<tensorjit_runtime::Variable> {
        self.core.weights().get(3).cloned()
    }
}

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization::new()
    }
}

impl Module for BatchNormalization {
    core_methods!();

    /// Acts on each step alone: the input's mask passes on.
    fn supports_masking(&self) -> bool {
        true
    }

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let c = known_last_axis(&self.core, input);
        self.core.build(scope, |w| {
            w.add("gamma", &[c], &Initializer::Ones, true);
            w.add("beta", &[c], &Initializer::Zeros, true);
            w.add("moving_mean", &[c], &Initializer::Zeros, false);
            w.add("moving_variance", &[c], &Initializer::Ones, false);
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, training: bool) -> Tensor {
        let [gamma, beta, moving_mean, moving_var] = [0, 1, 2, 3].map(|i| self.core.weight(i));
        let c = gamma.shape().dims()[0];
        if x.rank() < 2 || x.dims()[x.rank() - 1] != c {
            self.core.incompatible(x, &format!("rank >= 2 with last axis {c}"));
        }
        let (mean, var) = if training {
            let axes: Vec<i64> = (0..x.rank() as i64 - 1).collect();
            let mean = x.mean(axes.clone(), false);
            let var = (x - &mean).square().mean(axes, false);
            let m = self.momentum;
            moving_mean.assign(&moving_mean.read() * m + &mean * (1.0 - m));
            moving_var.assign(&moving_var.read() * m + &var * (1.0 - m));
            (mean, var)
        } else {
            (moving_mean.read(), moving_var.read())
        };
        scale_and_shift(&(x - &mean), &var, self.epsilon, gamma, beta)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        input.to_vec()
    }
}
