//! `LSTM` and `GRU` (Keras' layers), unrolled over the steps: a traced call is one
//! straight-line graph of the steps (the number of steps must be known when tracing,
//! as with Keras' `unroll=True`); the input projection of every step is one matmul.

use std::sync::Arc;

use tensorjit_runtime::shape::UNKNOWN;
use tensorjit_runtime::{Tensor, Variable};

use super::{core_methods, setters, with_name};
use crate::error::raise;
use crate::initializers::Initializer;
use crate::module::{fmt_spec, LayerCore, Module, ShapeSpec};

/// Long short-term memory over `[batch, steps, features]` (Keras' `LSTM` with its
/// defaults: tanh activation, sigmoid gates, `unit_forget_bias`). Weights, named as in
/// Keras: `kernel` `[features, 4·units]` (glorot_uniform), `recurrent_kernel`
/// `[units, 4·units]` (orthogonal), `bias` `[4·units]` (zeros, the forget gate's ones),
/// the gates in Keras' order i, f, c, o. Returns the last output `[batch, units]`, or
/// every step's `[batch, steps, units]` with `return_sequences`.
#[derive(Clone)]
pub struct LSTM {
    units: usize,
    return_sequences: bool,
    kernel_initializer: Initializer,
    recurrent_initializer: Initializer,
    core: Arc<LayerCore>,
}

impl LSTM {
    #[track_caller]
    pub fn new(units: usize) -> LSTM {
        if units == 0 {
            raise("LSTM", "units must be positive")
        }
        LSTM {
            units,
            return_sequences: false,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            core: LayerCore::new("LSTM"),
        }
    }

    setters! {
        return_sequences: bool,
        kernel_initializer: Initializer,
        recurrent_initializer: Initializer,
    }

    with_name!();

    /// `kernel`, `recurrent_kernel`, `bias`, once built.
    pub fn weights(&self) -> Vec<Variable> {
        self.core.weights()
    }
}

impl Module for LSTM {
    core_methods!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let (3, Some(&Some(features))) = (input.len(), input.last()) else {
            raise(
                &format!("LSTM '{}'", self.core.name),
                format!("needs inputs [batch, steps, features] with known features, got shape {}", fmt_spec(input)),
            )
        };
        let u = self.units;
        self.core.build(scope, |w| {
            w.add("kernel", &[features, 4 * u], &self.kernel_initializer, true);
            w.add("recurrent_kernel", &[u, 4 * u], &self.recurrent_initializer, true);
            let bias = w.add("bias", &[4 * u], &Initializer::Zeros, true);
            // unit_forget_bias: the forget gate starts open.
            let ones: Vec<f32> = (0..4 * u).map(|i| if (u..2 * u).contains(&i) { 1.0 } else { 0.0 }).collect();
            let value = Tensor::from_vec(ones, [4 * u]).unwrap_or_else(|_| unreachable!("4·units values"));
            bias.assign(value.to(bias.read().device()).unwrap_or_else(|e| raise("LSTM bias", e)));
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let (kernel, recurrent, bias) =
            (self.core.weight(0).read(), self.core.weight(1).read(), self.core.weight(2).read());
        let features = kernel.dims()[0];
        if x.rank() != 3 || x.dims()[2] != features {
            self.core.incompatible(x, &format!("[batch, steps, {features}]"));
        }
        let steps = x.dims()[1];
        if steps == UNKNOWN {
            self.core.incompatible(x, "a known number of steps (the layer unrolls over them)");
        }
        let u = self.units;
        // Every step's input projection in one matmul: [batch, steps, 4·units].
        let projected = x.matmul(&kernel) + &bias;
        let gate = |z: &Tensor, k: usize| z.narrow(-1, k * u, u);
        let mut h: Option<Tensor> = None;
        let mut c: Option<Tensor> = None;
        let mut outputs = Vec::with_capacity(if self.return_sequences { steps } else { 0 });
        for t in 0..steps {
            let xt = projected.narrow(1, t, 1).squeeze(&[1]);
            let z = match &h {
                Some(h) => xt + h.matmul(&recurrent),
                None => xt,
            };
            let (i, f, g, o) =
                (gate(&z, 0).sigmoid(), gate(&z, 1).sigmoid(), gate(&z, 2).tanh(), gate(&z, 3).sigmoid());
            let new_c = match &c {
                Some(c) => f * c + &i * &g,
                None => &i * &g,
            };
            let new_h = o * new_c.tanh();
            if self.return_sequences {
                outputs.push(new_h.clone());
            }
            h = Some(new_h);
            c = Some(new_c);
        }
        match (self.return_sequences, h) {
            (true, _) if steps > 0 => Tensor::stack(&outputs.iter().collect::<Vec<_>>(), 1),
            (false, Some(h)) => h,
            _ => self.core.incompatible(x, "at least one step"),
        }
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        match (input, self.return_sequences) {
            ([b, t, _], true) => vec![*b, *t, Some(self.units)],
            ([b, _, _], false) => vec![*b, Some(self.units)],
            _ => input.to_vec(),
        }
    }
}

/// Gated recurrent unit over `[batch, steps, features]` (Keras' `GRU` with its
/// defaults, `reset_after=True`): `kernel` `[features, 3·units]` (glorot_uniform),
/// `recurrent_kernel` `[units, 3·units]` (orthogonal), `bias` `[2, 3·units]` (zeros:
/// the input's and the recurrent projection's), the gates in Keras' order z, r, h:
/// `h = z·h₋₁ + (1 − z)·tanh(x_h + r·(h₋₁U_h + b_h))`. Unrolled like [`LSTM`].
#[derive(Clone)]
pub struct GRU {
    units: usize,
    return_sequences: bool,
    kernel_initializer: Initializer,
    recurrent_initializer: Initializer,
    core: Arc<LayerCore>,
}

impl GRU {
    #[track_caller]
    pub fn new(units: usize) -> GRU {
        if units == 0 {
            raise("GRU", "units must be positive")
        }
        GRU {
            units,
            return_sequences: false,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            core: LayerCore::new("GRU"),
        }
    }

    setters! {
        return_sequences: bool,
        kernel_initializer: Initializer,
        recurrent_initializer: Initializer,
    }

    with_name!();

    /// `kernel`, `recurrent_kernel`, `bias`, once built.
    pub fn weights(&self) -> Vec<Variable> {
        self.core.weights()
    }
}

impl Module for GRU {
    core_methods!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let (3, Some(&Some(features))) = (input.len(), input.last()) else {
            raise(
                &format!("GRU '{}'", self.core.name),
                format!("needs inputs [batch, steps, features] with known features, got shape {}", fmt_spec(input)),
            )
        };
        let u = self.units;
        self.core.build(scope, |w| {
            w.add("kernel", &[features, 3 * u], &self.kernel_initializer, true);
            w.add("recurrent_kernel", &[u, 3 * u], &self.recurrent_initializer, true);
            w.add("bias", &[2, 3 * u], &Initializer::Zeros, true);
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let (kernel, recurrent, bias) =
            (self.core.weight(0).read(), self.core.weight(1).read(), self.core.weight(2).read());
        let features = kernel.dims()[0];
        if x.rank() != 3 || x.dims()[2] != features {
            self.core.incompatible(x, &format!("[batch, steps, {features}]"));
        }
        let steps = x.dims()[1];
        if steps == UNKNOWN || steps == 0 {
            self.core.incompatible(x, "a known, non-zero number of steps (the layer unrolls over them)");
        }
        let u = self.units;
        let (input_bias, recurrent_bias) = (bias.narrow(0, 0, 1).squeeze(&[0]), bias.narrow(0, 1, 1).squeeze(&[0]));
        let projected = x.matmul(&kernel) + &input_bias;
        let gate = |z: &Tensor, k: usize| z.narrow(-1, k * u, u);
        let mut h: Option<Tensor> = None;
        let mut outputs = Vec::with_capacity(if self.return_sequences { steps } else { 0 });
        for t in 0..steps {
            let xt = projected.narrow(1, t, 1).squeeze(&[1]);
            // The recurrent projection of a zero state is its bias alone.
            let rt = match &h {
                Some(h) => h.matmul(&recurrent) + &recurrent_bias,
                None => Tensor::zeros_like(&xt) + &recurrent_bias,
            };
            let z = (gate(&xt, 0) + gate(&rt, 0)).sigmoid();
            let r = (gate(&xt, 1) + gate(&rt, 1)).sigmoid();
            let candidate = (gate(&xt, 2) + r * gate(&rt, 2)).tanh();
            let new_h = match &h {
                Some(h) => &z * h + (z * -1.0 + 1.0) * candidate,
                None => (z * -1.0 + 1.0) * candidate,
            };
            if self.return_sequences {
                outputs.push(new_h.clone());
            }
            h = Some(new_h);
        }
        match (self.return_sequences, h) {
            (true, _) => Tensor::stack(&outputs.iter().collect::<Vec<_>>(), 1),
            (false, Some(h)) => h,
            (false, None) => unreachable!("steps > 0 was checked"),
        }
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        match (input, self.return_sequences) {
            ([b, t, _], true) => vec![*b, *t, Some(self.units)],
            ([b, _, _], false) => vec![*b, Some(self.units)],
            _ => input.to_vec(),
        }
    }
}
