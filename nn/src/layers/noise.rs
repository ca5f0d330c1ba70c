//! Regularising noise, active while training only (the identity at inference):
//! `GaussianNoise`, `GaussianDropout`, `SpatialDropout1D/2D`. Draws come from the
//! runtime's random sequence (repeatable after `random::set_seed`), a new draw on every
//! call, eager or traced, as `Dropout`'s unseeded masks.

use std::sync::Arc;

use tensorjit_runtime::{random, Tensor};

use super::{checked_rate, core_methods, no_weights, with_name};
use crate::error::raise;
use crate::module::{LayerCore, Module, ShapeSpec};

/// A draw of `dims` beside `x` (uniform on [0, 1), or normal with this mean and
/// standard deviation); `x`'s shape must be known.
#[track_caller]
fn draw(core: &LayerCore, x: &Tensor, dims: &[usize], normal: Option<(f64, f64)>) -> Tensor {
    if !x.shape().is_fully_known() {
        core.incompatible(x, "a fully known shape while training (the noise is drawn per element)");
    }
    let d = match normal {
        Some((mean, std)) => random::normal(dims, mean, std, x.dtype(), None),
        None => random::uniform(dims, 0.0, 1.0, x.dtype(), None),
    };
    d.to(x.device()).unwrap_or_else(|e| core.incompatible(x, &format!("noise on its device ({e})")))
}

/// One noise layer: its parameter, the noise it applies while training.
macro_rules! noise_layer {
    ($(#[$doc:meta])* $name:ident, $param:ident, $check:ident, |$s:ident, $x:ident| $apply:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            $param: f64,
            core: Arc<LayerCore>,
        }

        impl $name {
            #[track_caller]
            pub fn new($param: f64) -> $name {
                $name { $param: $check(stringify!($name), $param), core: LayerCore::new(stringify!($name)) }
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
    |s, x| x + &draw(&s.core, x, x.dims(), Some((0.0, s.stddev)))
);

noise_layer!(
    /// Multiplies by `N(1, rate/(1 − rate))` noise while training (Keras'
    /// `GaussianDropout`: the same mean and variance as dropout's scaled mask).
    GaussianDropout, rate, check_rate,
    |s, x| x * &draw(&s.core, x, x.dims(), Some((1.0, (s.rate / (1.0 - s.rate)).sqrt())))
);

/// Drops whole channels: one keep-or-drop per example and channel, shared by every step
/// (or pixel), the kept ones scaled by 1/(1 − rate).
#[track_caller]
fn drop_channels(core: &LayerCore, x: &Tensor, rate: f64, rank: usize) -> Tensor {
    if x.rank() != rank {
        core.incompatible(x, &format!("rank {rank} (batch, spatial axes, channels)"));
    }
    let mut dims = vec![1; rank];
    dims[0] = x.dims()[0];
    dims[rank - 1] = x.dims()[rank - 1];
    let keep = draw(core, x, &dims, None).ge(rate);
    Tensor::where_(&keep, &(x / (1.0 - rate)), 0.0)
}

noise_layer!(
    /// Dropout of whole feature maps of `[batch, steps, channels]` inputs (Keras'
    /// `SpatialDropout1D`): neighbouring steps are correlated, so dropping single
    /// elements regularises little.
    SpatialDropout1D, rate, check_rate,
    |s, x| drop_channels(&s.core, x, s.rate, 3)
);

noise_layer!(
    /// Dropout of whole feature maps of NHWC inputs (Keras' `SpatialDropout2D`).
    SpatialDropout2D, rate, check_rate,
    |s, x| drop_channels(&s.core, x, s.rate, 4)
);
