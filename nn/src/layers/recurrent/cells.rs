//! The three recurrent layers: each one's weights and cell math; the loop, masks,
//! dropout and states are [`Recurrent`]'s.

use std::sync::Arc;

use tensorjit_runtime::{Tensor, Variable};

use super::{Recurrent, RecurrentLayer, State};
use crate::activations::Activation;
use crate::error::raise;
use crate::initializers::Initializer;
use crate::layers::{core_methods, with_name};
use crate::module::{LayerCore, Module, ShapeSpec};
use crate::regularizers::Regularizer;

/// Long short-term memory over `[batch, steps, features]` (Keras' `LSTM` with its
/// defaults: tanh activation, sigmoid gates, `unit_forget_bias`). Weights, named as in
/// Keras: `kernel` `[features, 4·units]` (glorot_uniform), `recurrent_kernel`
/// `[units, 4·units]` (orthogonal), `bias` `[4·units]` (zeros, the forget gate's ones),
/// the gates in Keras' order i, f, c, o. Returns the last output `[batch, units]`, or
/// every step's `[batch, steps, units]` with `return_sequences`.
#[derive(Clone)]
pub struct LSTM {
    cfg: Recurrent,
    core: Arc<LayerCore>,
}

impl LSTM {
    #[track_caller]
    pub fn new(units: usize) -> LSTM {
        LSTM { cfg: Recurrent::new("LSTM", units), core: LayerCore::new("LSTM") }
    }

    /// The outputs and the final state, from `initial` (zeros if `None`).
    #[track_caller]
    fn run(&self, x: &Tensor, mask: Option<&Tensor>, initial: Option<State>, training: bool) -> (Tensor, State) {
        let u = self.cfg.units;
        let gate = |z: &Tensor, k: usize| z.narrow(-1, k * u, u);
        let inputs = (x, mask, initial);
        self.cfg.run_cells(
            &self.core,
            inputs,
            training,
            |bias| (bias.clone(), ()),
            |_, xt, state, hr| {
                // A zero state adds nothing: the first step skips its products.
                let z = match hr {
                    Some(hr) => xt + hr,
                    None => xt,
                };
                let (i, f, g, o) =
                    (gate(&z, 0).sigmoid(), gate(&z, 1).sigmoid(), gate(&z, 2).tanh(), gate(&z, 3).sigmoid());
                let c = match state {
                    Some([_, c]) => f * c + &i * &g,
                    _ => &i * &g,
                };
                vec![o * c.tanh(), c]
            },
        )
    }
}

recurrent_layer!(LSTM, 2);

impl Module for LSTM {
    recurrent_module!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let features = Recurrent::features(&self.core, input);
        let u = self.cfg.units;
        self.core.build(scope, |w| {
            let bias = self.cfg.add_weights(w, features, 4, &[4 * u]);
            // unit_forget_bias: the forget gate starts open.
            let ones: Vec<f32> = (0..4 * u).map(|i| if (u..2 * u).contains(&i) { 1.0 } else { 0.0 }).collect();
            let value = Tensor::from_vec(ones, [4 * u]).unwrap_or_else(|_| unreachable!("4·units values"));
            bias.assign(value.to(bias.read().device()).unwrap_or_else(|e| raise("LSTM bias", e)));
        });
    }
}

/// Gated recurrent unit over `[batch, steps, features]` (Keras' `GRU` with its
/// defaults, `reset_after=True`): `kernel` `[features, 3·units]` (glorot_uniform),
/// `recurrent_kernel` `[units, 3·units]` (orthogonal), `bias` `[2, 3·units]` (zeros:
/// the input's and the recurrent projection's), the gates in Keras' order z, r, h:
/// `h = z·h₋₁ + (1 − z)·tanh(x_h + r·(h₋₁U_h + b_h))`. Unrolled like [`LSTM`].
#[derive(Clone)]
pub struct GRU {
    cfg: Recurrent,
    core: Arc<LayerCore>,
}

impl GRU {
    #[track_caller]
    pub fn new(units: usize) -> GRU {
        GRU { cfg: Recurrent::new("GRU", units), core: LayerCore::new("GRU") }
    }

    /// The outputs and the final state, from `initial` (zeros if `None`).
    #[track_caller]
    fn run(&self, x: &Tensor, mask: Option<&Tensor>, initial: Option<State>, training: bool) -> (Tensor, State) {
        let u = self.cfg.units;
        let gate = |z: &Tensor, k: usize| z.narrow(-1, k * u, u);
        // The bias's rows: the input projection's and the recurrent projection's.
        let split = |bias: &Tensor| (bias.narrow(0, 0, 1).squeeze(&[0]), bias.narrow(0, 1, 1).squeeze(&[0]));
        let inputs = (x, mask, initial);
        self.cfg.run_cells(&self.core, inputs, training, split, |recurrent_bias, xt, state, hr| {
            let h = state.map(|s| &s[0]);
            // The recurrent projection of a zero state is its bias alone.
            let rt = match hr {
                Some(hr) => hr + recurrent_bias,
                None => Tensor::zeros_like(&xt) + recurrent_bias,
            };
            let z = (gate(&xt, 0) + gate(&rt, 0)).sigmoid();
            let r = (gate(&xt, 1) + gate(&rt, 1)).sigmoid();
            let candidate = (gate(&xt, 2) + r * gate(&rt, 2)).tanh();
            vec![match h {
                Some(h) => &z * h + (z * -1.0 + 1.0) * candidate,
                None => (z * -1.0 + 1.0) * candidate,
            }]
        })
    }
}

recurrent_layer!(GRU, 1);

impl Module for GRU {
    recurrent_module!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let features = Recurrent::features(&self.core, input);
        let u = self.cfg.units;
        self.core.build(scope, |w| {
            self.cfg.add_weights(w, features, 3, &[2, 3 * u]);
        });
    }
}

/// A fully connected recurrence over `[batch, steps, features]` (Keras' `SimpleRNN`):
/// `h = activation(x·kernel + h₋₁·recurrent_kernel + bias)`, tanh by default. Weights:
/// `kernel` `[features, units]` (glorot_uniform), `recurrent_kernel` `[units, units]`
/// (orthogonal), `bias` `[units]` (zeros). Unrolled like [`LSTM`].
#[derive(Clone)]
pub struct SimpleRNN {
    cfg: Recurrent,
    activation: Activation,
    core: Arc<LayerCore>,
}

impl SimpleRNN {
    #[track_caller]
    pub fn new(units: usize) -> SimpleRNN {
        SimpleRNN {
            cfg: Recurrent::new("SimpleRNN", units),
            activation: Activation::Tanh,
            core: LayerCore::new("SimpleRNN"),
        }
    }

    /// The outputs and the final state, from `initial` (zeros if `None`).
    #[track_caller]
    fn run(&self, x: &Tensor, mask: Option<&Tensor>, initial: Option<State>, training: bool) -> (Tensor, State) {
        let inputs = (x, mask, initial);
        self.cfg.run_cells(
            &self.core,
            inputs,
            training,
            |bias| (bias.clone(), ()),
            |_, xt, _, hr| {
                let z = match hr {
                    Some(hr) => xt + hr,
                    None => xt,
                };
                vec![self.activation.apply(&z)]
            },
        )
    }

    /// The activation of each step (tanh unless set).
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
}

recurrent_layer!(SimpleRNN, 1);

impl Module for SimpleRNN {
    recurrent_module!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let features = Recurrent::features(&self.core, input);
        let u = self.cfg.units;
        self.core.build(scope, |w| {
            self.cfg.add_weights(w, features, 1, &[u]);
        });
    }
}
