//! `SimpleRNN`, `LSTM` and `GRU` (Keras' layers), unrolled over the steps: a traced call is one
//! straight-line graph of the steps (the number of steps must be known when tracing,
//! as with Keras' `unroll=True`); the input projection of every step is one matmul.

use std::cell::OnceCell;

use tensorjit_runtime::shape::UNKNOWN;
use tensorjit_runtime::{DType, Tensor, Variable};

use super::draws::{Dist, Draws};
use crate::error::raise;
use crate::initializers::Initializer;
use crate::module::{fmt_spec, LayerCore, Module, ShapeSpec, Weights};
use crate::regularizers::Regularizer;

/// A recurrent state: the output `h` first (an LSTM's cell `c` after it).
type State = Vec<Tensor>;

/// What a recurrent layer's forward pass starts from (see [`Recurrent::prepare`]).
struct Prepared {
    kernel: Tensor,
    recurrent: Tensor,
    bias: Tensor,
    steps: usize,
    x: Tensor,
    mask: Option<Tensor>,
}

/// How [`Recurrent::unroll`] treats padded steps.
#[derive(Clone, Copy, Default)]
struct Masking<'a> {
    /// `[batch, steps]`, true for steps that hold data.
    mask: Option<&'a Tensor>,
    /// Outputs 0 at padded steps instead of the carried state.
    zero_output: bool,
}

/// Keep-or-drop factors of `like`'s shape: 1/(1 − rate) with probability 1 − rate, else 0
/// (from the runtime's random sequence, or keyed by the layer's seed and draw count).
#[track_caller]
fn dropout_mask(core: &LayerCore, draws: &Draws, like: &Tensor, rate: f64) -> Tensor {
    let u = draws.draw(core, like, like.dims(), Dist::Unit);
    Tensor::where_(&u.ge(rate), 1.0 / (1.0 - rate), 0.0)
}

/// What the recurrent layers share: their configuration, checks and unrolled loop.
#[derive(Clone)]
struct Recurrent {
    units: usize,
    return_sequences: bool,
    zero_output_for_mask: bool,
    go_backwards: bool,
    kernel_initializer: Initializer,
    recurrent_initializer: Initializer,
    /// The fraction of input features dropped while training (one mask per sequence).
    dropout: f64,
    /// The fraction of the previous output's units dropped before the recurrent product.
    recurrent_dropout: f64,
    /// Penalties on `kernel`, `recurrent_kernel` and `bias`.
    regularizers: [Option<Regularizer>; 3],
    /// Where the dropout masks come from.
    draws: Draws,
}

impl Recurrent {
    #[track_caller]
    fn new(kind: &str, units: usize) -> Recurrent {
        if units == 0 {
            raise(kind, "units must be positive")
        }
        Recurrent {
            units,
            return_sequences: false,
            zero_output_for_mask: false,
            go_backwards: false,
            kernel_initializer: Initializer::GlorotUniform,
            recurrent_initializer: Initializer::Orthogonal,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            regularizers: [None; 3],
            draws: Draws::default(),
        }
    }

    /// Creates `kernel [features, gates·units]`, `recurrent_kernel [units, gates·units]`
    /// and `bias` of `bias_dims` (zeros), with their regularizers.
    fn add_weights(&self, w: &mut Weights, features: usize, gates: usize, bias_dims: &[usize]) -> Variable {
        let (u, [k, r, b]) = (self.units, self.regularizers);
        w.add_regularized("kernel", &[features, gates * u], &self.kernel_initializer, k);
        w.add_regularized("recurrent_kernel", &[u, gates * u], &self.recurrent_initializer, r);
        w.add_regularized("bias", bias_dims, &Initializer::Zeros, b)
    }

    /// Sets regularizer `i` (0 kernel, 1 recurrent kernel, 2 bias) after checking it.
    #[track_caller]
    fn regularize(&mut self, kind: &str, i: usize, r: Regularizer) {
        let setter = ["kernel_regularizer", "recurrent_regularizer", "bias_regularizer"][i];
        self.regularizers[i] = Some(r.checked(&format!("{kind}.{setter}")));
    }

    /// The weights (`kernel`, `recurrent_kernel`, `bias`), the number of steps, and the
    /// input and mask in the order the layer reads the steps (reversed with
    /// `go_backwards`).
    #[track_caller]
    fn prepare(&self, core: &LayerCore, x: &Tensor, mask: Option<&Tensor>) -> Prepared {
        let (kernel, recurrent, bias) = (core.weight(0).read(), core.weight(1).read(), core.weight(2).read());
        let steps = Recurrent::steps(core, x, kernel.dims()[0]);
        let x = if self.go_backwards { x.reverse(&[1]) } else { x.clone() };
        Prepared { kernel, recurrent, bias, steps, x, mask: self.oriented_mask(mask) }
    }

    fn oriented_mask(&self, mask: Option<&Tensor>) -> Option<Tensor> {
        mask.map(|m| if self.go_backwards { m.reverse(&[1]) } else { m.clone() })
    }

    /// An initial state checked against the layer: `len` tensors `[batch, units]` of
    /// `x`'s dtype and batch.
    #[track_caller]
    fn check_state(&self, core: &LayerCore, state: &[Tensor], len: usize, x: &Tensor) -> State {
        let fits = |t: &Tensor| {
            let batch = x.dims().first().copied().unwrap_or(UNKNOWN);
            t.rank() == 2
                && t.dims()[1] == self.units
                && (t.dims()[0] == batch || t.dims()[0] == UNKNOWN || batch == UNKNOWN)
                && t.dtype() == x.dtype()
        };
        if state.len() != len || !state.iter().all(fits) {
            let got: Vec<String> = state.iter().map(Tensor::type_string).collect();
            raise(
                &format!("{} '{}'", core.kind, core.name),
                format!(
                    "an initial state is {len} tensor(s) {}[batch, {}] for inputs {}, got [{}]",
                    x.dtype(),
                    self.units,
                    x.type_string(),
                    got.join(", ")
                ),
            )
        }
        state.to_vec()
    }

    /// The loop every recurrent layer runs: the input oriented, dropped out and projected
    /// by the kernel for all steps in one matmul (plus the bias `split` makes of the
    /// layer's, which also gives the cell its own constants), then per step
    /// `cell(constants, x_t, state, h·recurrent_kernel)` with the product absent for the
    /// zero state (and taken of the dropped-out `h` while training).
    #[track_caller]
    fn run_cells<C>(
        &self,
        core: &LayerCore,
        (x, mask, initial): (&Tensor, Option<&Tensor>, Option<State>),
        training: bool,
        split: impl FnOnce(&Tensor) -> (Tensor, C),
        mut cell: impl FnMut(&C, Tensor, Option<&[Tensor]>, Option<Tensor>) -> State,
    ) -> (Tensor, State) {
        let Prepared { kernel, recurrent, bias, steps, x, mask } = self.prepare(core, x, mask);
        let (input_bias, constants) = split(&bias);
        let projected = self.drop_inputs(core, &x, training).matmul(&kernel) + &input_bias;
        let recurrent_mask = OnceCell::new();
        let masking = Masking { mask: mask.as_ref(), zero_output: self.zero_output_for_mask };
        self.unroll(core, steps, (masking, initial), |t, state| {
            let xt = projected.narrow(1, t, 1).squeeze(&[1]);
            let hr = state.map(|s| self.drop_recurrent(core, &s[0], &recurrent_mask, training).matmul(&recurrent));
            cell(&constants, xt, state, hr)
        })
    }

    /// Checks a dropout rate for the builders.
    #[track_caller]
    fn rate(kind: &str, what: &str, rate: f64) -> f64 {
        crate::layers::checked_rate(kind, what, rate)
    }

    /// `x` `[batch, steps, features]` with the input dropout applied while training: one
    /// mask `[batch, 1, features]` for every step, as Keras draws it.
    #[track_caller]
    fn drop_inputs(&self, core: &LayerCore, x: &Tensor, training: bool) -> Tensor {
        if !training || self.dropout == 0.0 {
            return x.clone();
        }
        x * &dropout_mask(core, &self.draws, &x.narrow(1, 0, 1), self.dropout)
    }

    /// The previous output as the recurrent product reads it: with recurrent dropout
    /// while training, times one mask drawn on the first step that has an output and
    /// kept for the others.
    #[track_caller]
    fn drop_recurrent(&self, core: &LayerCore, h: &Tensor, mask: &OnceCell<Tensor>, training: bool) -> Tensor {
        if !training || self.recurrent_dropout == 0.0 {
            return h.clone();
        }
        h * mask.get_or_init(|| dropout_mask(core, &self.draws, h, self.recurrent_dropout))
    }

    /// The inputs' feature count, which the weights need.
    #[track_caller]
    fn features(core: &LayerCore, input: &[Option<usize>]) -> usize {
        match input {
            [_, _, Some(f)] => *f,
            _ => raise(
                &format!("{} '{}'", core.kind, core.name),
                format!("needs inputs [batch, steps, features] with known features, got shape {}", fmt_spec(input)),
            ),
        }
    }

    /// The number of steps of `x`, checked against the kernel's feature count.
    #[track_caller]
    fn steps(core: &LayerCore, x: &Tensor, features: usize) -> usize {
        if x.rank() != 3 || x.dims()[2] != features {
            core.incompatible(x, &format!("[batch, steps, {features}]"));
        }
        match x.dims()[1] {
            UNKNOWN | 0 => core.incompatible(x, "a known, non-zero number of steps (the layer unrolls over them)"),
            n => n,
        }
    }

    /// Runs `step(t, previous state)` for every step (`None`: the zero state) and
    /// returns the last output, or all of them stacked along axis 1. With a `mask`
    /// `[batch, steps]`, a padded step keeps each example's previous state (Keras'
    /// masking), and its output is that state's `h`, or 0 with `zero_output`.
    #[track_caller]
    fn unroll(
        &self,
        core: &LayerCore,
        steps: usize,
        (masking, initial): (Masking<'_>, Option<State>),
        mut step: impl FnMut(usize, Option<&[Tensor]>) -> State,
    ) -> (Tensor, State) {
        if let Some(m) = masking.mask {
            if m.dtype() != DType::Bool || m.rank() != 2 {
                core.incompatible(m, "a bool mask [batch, steps]");
            }
        }
        let mut state: Option<State> = initial;
        let mut outputs: Vec<Tensor> = Vec::with_capacity(steps);
        for t in 0..steps {
            let new = step(t, state.as_deref());
            let (new, out) = match masking.mask {
                None => {
                    let h = new[0].clone();
                    (new, h)
                }
                Some(m) => {
                    let keep = m.narrow(1, t, 1);
                    let kept: State = match &state {
                        Some(old) => new.iter().zip(old).map(|(n, o)| n.select(&keep, o)).collect(),
                        None => new.iter().map(|n| n.select(&keep, 0.0)).collect(),
                    };
                    let out = if masking.zero_output { new[0].select(&keep, 0.0) } else { kept[0].clone() };
                    (kept, out)
                }
            };
            outputs.push(out);
            state = Some(new);
        }
        let last = state.unwrap_or_else(|| unreachable!("steps > 0 was checked"));
        if self.return_sequences {
            (Tensor::stack(&outputs.iter().collect::<Vec<_>>(), 1), last)
        } else {
            (outputs.pop().unwrap_or_else(|| unreachable!("steps > 0 was checked")), last)
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

/// A recurrent layer that makes an unbuilt twin of itself: the same configuration, its
/// own weights (what [`Bidirectional::of`](super::Bidirectional::of) runs each way).
pub trait RecurrentLayer: Module + Clone + 'static {
    /// A copy named `name`, configured alike, whose weights are its own (made on its
    /// first call).
    fn twin(&self, name: &str) -> Self;

    /// Whether it reads the steps from the last to the first (`go_backwards`).
    fn goes_backwards(&self) -> bool;
}

/// The `Module` methods the recurrent layers share: they use a mask, and pass it on
/// with their sequences (a last output has no steps left to mask).
macro_rules! recurrent_module {
    () => {
        core_methods!();

        #[track_caller]
        fn forward(&self, x: &Tensor, training: bool) -> Tensor {
            self.forward_masked(x, None, training)
        }

        #[track_caller]
        fn forward_masked(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> Tensor {
            self.run(x, mask, None, training).0
        }

        fn supports_masking(&self) -> bool {
            true
        }

        /// With `go_backwards` the sequence comes out reversed, and so does its mask.
        fn compute_mask(&self, _x: &Tensor, mask: Option<&Tensor>) -> Option<Tensor> {
            let mask = mask.filter(|_| self.cfg.return_sequences);
            self.cfg.oriented_mask(mask)
        }

        fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
            self.cfg.output_shape(input)
        }
    };
}

/// The builders and accessors the recurrent layers share.
macro_rules! recurrent_layer {
    ($name:ident, $state_len:literal) => {
        impl $name {
            /// Runs the layer from `initial_state` and returns its output with its final
            /// state (Keras' `initial_state=` and `return_state=True`; an encoder's final
            /// state starts a decoder). The state is `[h]`, or `[h, c]` for an LSTM, each
            /// `[batch, units]`; `None` starts from zeros. With a `mask`, padded steps keep
            /// the state. Builds the layer on its first call.
            #[track_caller]
            pub fn call_with_state(
                &self,
                x: &Tensor,
                mask: Option<&Tensor>,
                initial_state: Option<&[Tensor]>,
                training: bool,
            ) -> (Tensor, Vec<Tensor>) {
                if !self.is_built() {
                    self.build("", &crate::module::shape_spec(x));
                }
                let initial = initial_state.map(|s| self.cfg.check_state(&self.core, s, $state_len, x));
                self.run(x, mask, initial, training)
            }

            /// Every step's output `[batch, steps, units]` instead of the last one's.
            pub fn return_sequences(mut self, on: bool) -> Self {
                self.cfg.return_sequences = on;
                self
            }

            /// With a mask, outputs 0 at padded steps instead of repeating the last
            /// state's output (Keras' `zero_output_for_mask`; `Bidirectional` always does).
            pub fn zero_output_for_mask(mut self, on: bool) -> Self {
                self.cfg.zero_output_for_mask = on;
                self
            }

            /// Reads the steps from the last to the first, and returns the sequence in
            /// that order (Keras' `go_backwards`).
            pub fn go_backwards(mut self, on: bool) -> Self {
                self.cfg.go_backwards = on;
                self
            }

            /// Drops this fraction of the input features while training (Keras'
            /// `dropout`): one mask per sequence, the same at every step.
            #[track_caller]
            pub fn dropout(mut self, rate: f64) -> Self {
                self.cfg.dropout = Recurrent::rate(stringify!($name), "dropout", rate);
                self
            }

            /// Drops this fraction of the previous output's units before the recurrent
            /// product while training (Keras' `recurrent_dropout`), one mask per sequence.
            #[track_caller]
            pub fn recurrent_dropout(mut self, rate: f64) -> Self {
                self.cfg.recurrent_dropout = Recurrent::rate(stringify!($name), "recurrent_dropout", rate);
                self
            }

            /// Dropout masks keyed by `seed` and the layer's draw count (Keras' `seed=…`):
            /// the same masks run to run, whatever else draws random numbers.
            pub fn with_seed(mut self, seed: u64) -> Self {
                self.cfg.draws = $crate::layers::draws::Draws::seeded(seed);
                self
            }

            pub fn kernel_initializer(mut self, init: Initializer) -> Self {
                self.cfg.kernel_initializer = init;
                self
            }

            pub fn recurrent_initializer(mut self, init: Initializer) -> Self {
                self.cfg.recurrent_initializer = init;
                self
            }

            /// A penalty on `kernel` (Keras' `kernel_regularizer`), added to the loss by `fit`.
            #[track_caller]
            pub fn kernel_regularizer(mut self, r: Regularizer) -> Self {
                self.cfg.regularize(stringify!($name), 0, r);
                self
            }

            /// A penalty on `recurrent_kernel` (Keras' `recurrent_regularizer`).
            #[track_caller]
            pub fn recurrent_regularizer(mut self, r: Regularizer) -> Self {
                self.cfg.regularize(stringify!($name), 1, r);
                self
            }

            /// A penalty on `bias` (Keras' `bias_regularizer`).
            #[track_caller]
            pub fn bias_regularizer(mut self, r: Regularizer) -> Self {
                self.cfg.regularize(stringify!($name), 2, r);
                self
            }

            with_name!();

            /// `kernel`, `recurrent_kernel`, `bias`, once built.
            pub fn weights(&self) -> Vec<Variable> {
                self.core.weights()
            }
        }

        impl RecurrentLayer for $name {
            fn twin(&self, name: &str) -> Self {
                $name { core: LayerCore::named(stringify!($name), name), ..self.clone() }
            }

            fn goes_backwards(&self) -> bool {
                self.cfg.go_backwards
            }
        }
    };
}

// The layers, after the macros they use (macro_rules scope is textual).
mod cells;

pub use cells::{SimpleRNN, GRU, LSTM};
