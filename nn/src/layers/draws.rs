//! Where a layer's random draws come from (Dropout's masks, the noise layers' noise, the
//! recurrent layers' dropout masks): the runtime's random sequence (repeatable after
//! `random::set_seed`), or, with a seed, stateless draws keyed by the seed and a call
//! counter the layer keeps in an i64 variable and advances on each draw, so that they
//! repeat run to run whatever else draws random numbers, eager or traced.

use std::sync::{Arc, OnceLock};

use tensorjit_runtime::{init_scope, random, Device, Tensor, Variable};

use crate::module::LayerCore;

/// A layer's source of random draws; clones (and clones of the layer) share the counter.
#[derive(Clone, Default)]
pub(crate) struct Draws {
    seed: Option<u64>,
    /// The call counter of a seeded source (created on the first draw, beside it).
    counter: Arc<OnceLock<Variable>>,
}

/// The distribution of one draw.
#[derive(Clone, Copy)]
pub(crate) enum Dist {
    /// Uniform on [0, 1).
    Unit,
    Normal {
        mean: f64,
        stddev: f64,
    },
}

impl Draws {
    /// Stateless draws keyed by `seed` and the call count.
    pub(crate) fn seeded(seed: u64) -> Draws {
        Draws { seed: Some(seed), counter: Arc::default() }
    }

    /// The number of seeded draws so far (`None` unseeded or before the first draw).
    pub(crate) fn calls(&self) -> Option<i64> {
        // The counter lives beside the layer's inputs (on a device model: on the device).
        self.counter.get().and_then(|v| v.read().to(Device::Cpu).ok()?.to_scalar::<i64>().ok())
    }

    /// A draw of `dims` from `dist` beside `x` (`x`'s shape must be known: draws are per
    /// element); errors name the layer.
    #[track_caller]
    pub(crate) fn draw(&self, core: &LayerCore, x: &Tensor, dims: &[usize], dist: Dist) -> Tensor {
        if !x.shape().is_fully_known() {
            core.incompatible(x, "a fully known shape while training (random draws are per element)");
        }
        let d = match self.seed {
            Some(seed) => {
                let counter = self.counter.get_or_init(|| {
                    let name = format!("{}/seed_counter", core.name);
                    // Beside `x`: on a GPU the draws are then made there (a draw reads its
                    // counter where it lives), and the counter advances there.
                    let device = x.device();
                    init_scope(|| Tensor::scalar(0i64).to(device))
                        .map(|zero| init_scope(|| Variable::with_trainable(zero, name, false)))
                        .unwrap_or_else(|e| core.incompatible(x, &format!("a draw counter on {device} ({e})")))
                });
                let c = counter.read();
                counter.assign_add(1i64);
                match dist {
                    Dist::Unit => random::stateless_uniform(dims, 0.0, 1.0, x.dtype(), seed, &c),
                    Dist::Normal { mean, stddev } => random::stateless_normal(dims, mean, stddev, x.dtype(), seed, &c),
                }
            }
            None => match dist {
                Dist::Unit => random::uniform(dims, 0.0, 1.0, x.dtype(), None),
                Dist::Normal { mean, stddev } => random::normal(dims, mean, stddev, x.dtype(), None),
            },
        };
        // A seeded draw is made beside its counter, on `x`'s device; an unseeded one on
        // the host, then copied beside `x` (inside a trace the device plan does it).
        d.to(x.device()).unwrap_or_else(|e| core.incompatible(x, &format!("random draws on its device ({e})")))
    }
}
