//! Regularising noise, active while training only (the identity at inference):
//! `GaussianNoise`, `GaussianDropout`, `SpatialDropout1D/2D`. A new draw on every call,
//! eager or traced: from the runtime's random sequence (repeatable after
//! `random::set_seed`), or, with `with_seed`, keyed by the seed and the layer's call
//! count, as `Dropout`'s masks.

use std::sync::Arc;

use tensorjit_runtime::Tensor;

use super::draws::{Dist, Draws};
use super::{checked_rate, core_methods, no_weights, with_name};
use crate::error::raise;
use crate::module::{LayerCore, Module, ShapeSpec};

/// One noise layer: its parameter, the noise it applies while training.
macro_rules! noise_layer {
    ($(#[$doc:meta])* $name:ident, $param:ident, $check:ident, |$s:ident, $x:ident| $apply:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            $param: f64,
            draws: Draws,
            core: Arc<LayerCore>,
        }

        impl $name {
            #[track_caller]
            pub fn new($param: f64) -> $name {
                let $param = $check(stringify!($name), $param);
                $name { $param, draws: Draws::default(), core: LayerCore::new(stringify!($name)) }
            }

            /// Draws keyed by `seed` and the layer's call count (Keras' `seed=…`): the
            /// same noise run to run, whatever else draws random numbers.
            pub fn with_seed(mut self, seed: u64) -> Self {
                self.draws = Draws::seeded(seed);
                self
            }

            with_name!();
        }

        impl Module for $name {
            core_methods!();

            /// Acts on each element alone: the input's mask passes on.
            fn supports_masking(&self) -> bool {
                true
            }

            no_weights!();

            #[track_caller]
            fn forward(&self, x: &Tensor, training: bool) -> Tensor {
                if !training || self.$param == 0.0 {
                    return x.clone();
                }
                let ($s, $x) = (self, x);
                $apply
            }

            fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
                input.to_vec()
            }
        }
    };
}

/// A dropout rate in `[0, 1)`.
#[track_caller]
fn check_rate(kind: &str, rate: f64) -> f64 {
    checked_rate(kind, "rate", rate)
}

/// A factor that must be finite and ≥ 0.
#[track_caller]
fn check_stddev(kind: &str, stddev: f64) -> f64 {
    if !(stddev.is_finite() && stddev >= 0.0) {
        raise(kind, format!("stddev must be finite and ≥ 0, got {stddev}"))
    }
    stddev
}

noise_layer!(
    /// Adds `N(0, stddev²)` noise while training (Keras' `GaussianNoise`).
    GaussianNoise, stddev, check_stddev,
    |s, x| x + &s.draws.draw(&s.core, x, x.dims(), Dist::Normal { mean: 0.0, stddev: s.stddev })
);

noise_layer!(
    /// Multiplies by `N(1, rate/(1 − rate))` noise while training (Keras'
    /// `GaussianDropout`: the same mean and variance as dropout's scaled mask).
    GaussianDropout, rate, check_rate,
    |s, x| {
        let stddev = (s.rate / (1.0 - s.rate)).sqrt();
        x * &s.draws.draw(&s.core, x, x.dims(), Dist::Normal { mean: 1.0, stddev })
    }
);

/// Drops whole channels: one keep-or-drop per example and channel, shared by every step
/// (or pixel), the kept ones scaled by 1/(1 − rate).
#[track_caller]
fn drop_channels(core: &LayerCore, draws: &Draws, x: &Tensor, rate: f64, rank: usize) -> Tensor {
    if x.rank() != rank {
        core.incompatible(x, &format!("rank {rank} (batch, spatial axes, channels)"));
    }
    let mut dims = vec![1; rank];
    dims[0] = x.dims()[0];
    dims[rank - 1] = x.dims()[rank - 1];
    let keep = draws.draw(core, x, &dims, Dist::Unit).ge(rate);
    Tensor::where_(&keep, &(x / (1.0 - rate)), 0.0)
}

noise_layer!(
    /// Dropout of whole feature maps of `[batch, steps, channels]` inputs (Keras'
    /// `SpatialDropout1D`): neighbouring steps are correlated, so dropping single
    /// elements regularises little.
    SpatialDropout1D, rate, check_rate,
    |s, x| drop_channels(&s.core, &s.draws, x, s.rate, 3)
);

noise_layer!(
    /// Dropout of whole feature maps of NHWC inputs (Keras' `SpatialDropout2D`).
    SpatialDropout2D, rate, check_rate,
    |s, x| drop_channels(&s.core, &s.draws, x, s.rate, 4)
);
