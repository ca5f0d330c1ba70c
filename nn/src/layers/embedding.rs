//! `Embedding` (rows of a table looked up by integer ids) and `LayerNormalization`.

use std::sync::Arc;

use tensorjit_runtime::{DType, Tensor, Variable};

use super::{core_methods, known_last_axis, regularizer_setters, scale_and_shift, setters, with_name};
use crate::initializers::Initializer;
use crate::module::{LayerCore, Module, ShapeSpec};
use crate::regularizers::Regularizer;

/// Maps integer ids in `[0, input_dim)` to rows of a trainable `[input_dim, output_dim]`
/// table (Keras' `Embedding`; `uniform` = U(−0.05, 0.05) initial rows). Any input shape:
/// the output appends `output_dim`. Float ids are truncated to integers first (Keras casts
/// them); an id outside the table is an error naming it. The table's gradient sums the
/// rows' gradients over repeated ids.
///
/// With [`mask_zero`](Self::mask_zero), id 0 is padding: the output's mask is
/// `ids != 0`, which the layers after it (LSTM, GRU, attention, global average pooling,
/// the loss) use to skip the padded steps.
#[derive(Clone)]
pub struct Embedding {
    input_dim: usize,
    output_dim: usize,
    embeddings_initializer: Initializer,
    mask_zero: bool,
    embeddings_regularizer: Option<Regularizer>,
    core: Arc<LayerCore>,
}

impl Embedding {
    /// A table of `input_dim` rows of `output_dim` values.
    pub fn new(input_dim: usize, output_dim: usize) -> Embedding {
        Embedding {
            input_dim,
            output_dim,
            embeddings_initializer: Initializer::RandomUniform { low: -0.05, high: 0.05 },
            mask_zero: false,
            embeddings_regularizer: None,
            core: LayerCore::new("Embedding"),
        }
    }

    setters! {
        embeddings_initializer: Initializer,
        /// Id 0 marks padding (Keras' `mask_zero=True`): the output carries the mask
        /// `ids != 0`. Row 0 of the table still exists and is looked up.
        mask_zero: bool,
    }

    regularizer_setters!(embeddings_regularizer);

    with_name!();

    /// The table, once built.
    pub fn embeddings(&self) -> Option<Variable> {
        self.core.weights().first().cloned()
    }
}

impl Module for Embedding {
    core_methods!();

    #[track_caller]
    fn build(&self, scope: &str, _input: &[Option<usize>]) {
        let (rows, cols, init) = (self.input_dim, self.output_dim, &self.embeddings_initializer);
        self.core.build(scope, |w| {
            w.add_regularized("embeddings", &[rows, cols], init, self.embeddings_regularizer);
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let ids = match x.dtype() {
            DType::I32 | DType::I64 => x.clone(),
            DType::F32 | DType::F64 => x.cast(DType::I64),
            DType::Bool => self.core.incompatible(x, "integer (or float) ids"),
        };
        self.core.weight(0).read().gather(&ids, 0)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, x: &Tensor, mask: Option<&Tensor>) -> Option<Tensor> {
        if self.mask_zero {
            Some(x.ne(0.0))
        } else {
            mask.cloned()
        }
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        let mut out = input.to_vec();
        out.push(Some(self.output_dim));
        out
    }
}

/// Normalises each sample over its last axis (Keras' `LayerNormalization`, `axis=-1`):
/// `(x − mean) / √(variance + epsilon) · gamma + beta`, the biased variance, the same in
/// training and inference. Weights: gamma (ones), beta (zeros), both `[last axis]`.
#[derive(Clone)]
pub struct LayerNormalization {
    epsilon: f64,
    core: Arc<LayerCore>,
}

impl LayerNormalization {
    /// Epsilon 0.001 (Keras' default).
    pub fn new() -> LayerNormalization {
        LayerNormalization { epsilon: 1e-3, core: LayerCore::new("LayerNormalization") }
    }

    setters! {
        epsilon: f64,
    }

    with_name!();
}

impl Default for LayerNormalization {
    fn default() -> Self {
        LayerNormalization::new()
    }
}

impl Module for LayerNormalization {
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
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let [gamma, beta] = [0, 1].map(|i| self.core.weight(i));
        let c = gamma.shape().dims()[0];
        if x.rank() < 1 || x.dims()[x.rank() - 1] != c {
            self.core.incompatible(x, &format!("a last axis of {c}"));
        }
        let mean = x.mean(-1, true);
        let centred = x - &mean;
        let var = centred.square().mean(-1, true);
        scale_and_shift(&centred, &var, self.epsilon, gamma, beta)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        input.to_vec()
    }
}
