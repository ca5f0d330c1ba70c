//! `MultiHeadAttention` (Keras' layer): projections, scores and the output written as
//! einsums, so a traced call is a few batched matmuls.

use std::sync::Arc;

use tensorjit_runtime::{DType, Tensor, Variable};

use super::{core_methods, regularizer_setters, setters, with_name, Dropout};
use crate::error::raise;
use crate::initializers::Initializer;
use crate::module::{LayerCore, Module, ShapeSpec};
use crate::regularizers::Regularizer;

/// Scaled dot-product attention over `num_heads` heads (Keras' `MultiHeadAttention`):
/// `query`, `key` and `value` are projected to `[batch, positions, heads, key_dim]`
/// (`value_dim` for the values), the scores `q·kᵀ/√key_dim` are masked and
/// softmax-normalised over the key positions, dropped out while training, and the
/// heads' weighted values are projected back to the query's last axis (or
/// [`output_dim`](Self::output_dim)). Weights, named as Keras names them: `query/kernel`
/// `[q_dim, heads, key_dim]`, `key/kernel`, `value/kernel`, `attention_output/kernel`
/// `[heads, value_dim, out]` (glorot_uniform), and their biases (zeros).
///
/// In a `Sequential` it attends from its input to itself; [`attend`](Self::attend)
/// takes separate query, value and key tensors and a mask.
#[derive(Clone)]
pub struct MultiHeadAttention {
    num_heads: usize,
    key_dim: usize,
    value_dim: Option<usize>,
    output_shape: Option<usize>,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    dropout: Option<Dropout>,
    causal: bool,
    kernel_regularizer: Option<Regularizer>,
    bias_regularizer: Option<Regularizer>,
    core: Arc<LayerCore>,
}

/// The Keras weights in creation order, by their index in the layer's core.
struct Projections<'a> {
    kernels: [&'a Variable; 4],
    biases: Option<[&'a Variable; 4]>,
}

impl MultiHeadAttention {
    /// `num_heads` heads of width `key_dim` (also the values' width unless
    /// [`value_dim`](Self::value_dim) is set); no dropout.
    #[track_caller]
    pub fn new(num_heads: usize, key_dim: usize) -> MultiHeadAttention {
        if num_heads == 0 || key_dim == 0 {
            raise("MultiHeadAttention", format!("num_heads ({num_heads}) and key_dim ({key_dim}) must be positive"))
        }
        MultiHeadAttention {
            num_heads,
            key_dim,
            value_dim: None,
            output_shape: None,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            dropout: None,
            causal: false,
            kernel_regularizer: None,
            bias_regularizer: None,
            core: LayerCore::new("MultiHeadAttention"),
        }
    }

    setters! {
        use_bias: bool,
        kernel_initializer: Initializer,
        bias_initializer: Initializer,
    }

    // On the four projections' kernels and biases alike, as in Keras.
    regularizer_setters!(kernel_regularizer, bias_regularizer);

    /// The width of each head's values (Keras' `value_dim`; default `key_dim`).
    pub fn value_dim(mut self, value_dim: usize) -> Self {
        self.value_dim = Some(value_dim);
        self
    }

    /// The size of the output's last axis (Keras' `output_shape`; default the query's).
    pub fn output_dim(mut self, size: usize) -> Self {
        self.output_shape = Some(size);
        self
    }

    /// Dropout of `rate` on the attention probabilities while training (Keras'
    /// `dropout`); `seed` makes the masks repeatable as [`Dropout::with_seed`] does.
    #[track_caller]
    pub fn dropout(mut self, rate: f64, seed: Option<u64>) -> Self {
        let d = Dropout::new(rate);
        self.dropout = Some(match seed {
            Some(s) => d.with_seed(s),
            None => d,
        });
        self
    }

    /// Each query position attends only to key positions at or before it (Keras'
    /// `use_causal_mask=True`, here a property of the layer so that it holds inside a
    /// `Sequential` too), combined with any mask given.
    pub fn causal(mut self, on: bool) -> Self {
        self.causal = on;
        self
    }

    with_name!();

    fn head_width(&self) -> usize {
        self.value_dim.unwrap_or(self.key_dim)
    }

    /// Creates the weights for query, key and value inputs with these last axes.
    #[track_caller]
    fn build_for(&self, scope: &str, (q_dim, k_dim, v_dim): (usize, usize, usize)) {
        let (h, kd, vd) = (self.num_heads, self.key_dim, self.head_width());
        let out = self.output_shape.unwrap_or(q_dim);
        self.core.build(scope, |w| {
            let shapes: [(&str, Vec<usize>, Vec<usize>); 4] = [
                ("query", vec![q_dim, h, kd], vec![h, kd]),
                ("key", vec![k_dim, h, kd], vec![h, kd]),
                ("value", vec![v_dim, h, vd], vec![h, vd]),
                ("attention_output", vec![h, vd, out], vec![out]),
            ];
            for (name, kernel, _) in &shapes {
                w.add_regularized(&format!("{name}/kernel"), kernel, &self.kernel_initializer, self.kernel_regularizer);
            }
            if self.use_bias {
                for (name, _, bias) in &shapes {
                    w.add_regularized(&format!("{name}/bias"), bias, &self.bias_initializer, self.bias_regularizer);
                }
            }
        });
    }

    fn projections(&self) -> Projections<'_> {
        let w = |i| self.core.weight(i);
        Projections { kernels: [w(0), w(1), w(2), w(3)], biases: self.use_bias.then(|| [w(4), w(5), w(6), w(7)]) }
    }

    /// Attention from `query` `[batch, T, q_dim]` to `value` `[batch, S, v_dim]`, with
    /// `key` (default `value`) `[batch, S, k_dim]`. `mask` `[batch, T, S]` (bool, or
    /// broadcastable to it) says which key positions each query position may attend
    /// to; the others get a score of −10⁹ before the softmax, as in Keras. Builds the
    /// layer on its first call. Returns `[batch, T, out]`.
    #[track_caller]
    pub fn attend(
        &self,
        query: &Tensor,
        value: &Tensor,
        key: Option<&Tensor>,
        mask: Option<&Tensor>,
        training: bool,
    ) -> Tensor {
        self.attend_with_scores(query, value, key, mask, training).0
    }

    /// [`attend`](Self::attend), also returning the attention probabilities
    /// `[batch, heads, T, S]` (Keras' `return_attention_scores=True`).
    #[track_caller]
    pub fn attend_with_scores(
        &self,
        query: &Tensor,
        value: &Tensor,
        key: Option<&Tensor>,
        mask: Option<&Tensor>,
        training: bool,
    ) -> (Tensor, Tensor) {
        let key = key.unwrap_or(value);
        let last = |t: &Tensor, what: &str| -> usize {
            match t.dims() {
                [_, _, d] if *d != tensorjit_runtime::shape::UNKNOWN => *d,
                _ => {
                    self.core.incompatible(t, &format!("{what} of shape [batch, positions, features], features known"))
                }
            }
        };
        let dims = (last(query, "a query"), last(key, "a key"), last(value, "a value"));
        if !self.is_built() {
            self.build_for("", dims);
        }
        if let Some(m) = mask {
            if m.dtype() != DType::Bool {
                self.core.incompatible(m, "a bool attention mask");
            }
        }
        let p = self.projections();
        let project = |x: &Tensor, i: usize| {
            let y = Tensor::einsum("btd,dhk->bthk", &[x, &p.kernels[i].read()]);
            match &p.biases {
                Some(b) => y + b[i].read(),
                None => y,
            }
        };
        let q = project(query, 0) * (1.0 / (self.key_dim as f64).sqrt());
        let (k, v) = (project(key, 1), project(value, 2));
        let scores = Tensor::einsum("bthk,bshk->bhts", &[&q, &k]);
        let mask = match (mask, self.causal) {
            (Some(m), true) => Some(m.logical_and(causal_mask(query, key))),
            (None, true) => Some(causal_mask(query, key)),
            (m, false) => m.cloned(),
        };
        let scores = match mask {
            Some(m) => {
                // [batch, T, S] → [batch, 1, T, S]: one mask for every head.
                let m = if m.rank() == 3 { m.expand_dims(1) } else { m };
                let adder = (m.cast(scores.dtype()) * -1.0 + 1.0) * -1e9;
                scores + adder
            }
            None => scores,
        };
        let probs = scores.softmax(-1);
        let dropped = match &self.dropout {
            Some(d) => d.call(&probs, training),
            None => probs.clone(),
        };
        let heads = Tensor::einsum("bhts,bshv->bthv", &[&dropped, &v]);
        let out = Tensor::einsum("bthv,hvo->bto", &[&heads, &p.kernels[3].read()]);
        let out = match &p.biases {
            Some(b) => out + b[3].read(),
            None => out,
        };
        (out, probs)
    }
}

/// `[T, S]`: whether query position `i` may attend key position `j` (`j ≤ i`): the lower
/// triangle, for sequence lengths known only when the function runs.
fn causal_mask(query: &Tensor, key: &Tensor) -> Tensor {
    // Ones of each sequence's length (any shape: a sum keeps the axis).
    let steps = |x: &Tensor| Tensor::ones_like(&x.sum(vec![0i64, 2], false));
    (steps(query).expand_dims(1) * steps(key).expand_dims(0)).tril(0).ne(0.0)
}

impl Module for MultiHeadAttention {
    core_methods!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        match input {
            [_, _, Some(d)] => self.build_for(scope, (*d, *d, *d)),
            _ => raise(
                &format!("MultiHeadAttention '{}'", self.core.name),
                format!(
                    "needs inputs of shape [batch, positions, features] with features known, got {}",
                    crate::module::fmt_spec(input)
                ),
            ),
        }
    }

    /// Self-attention: the input is query, key and value.
    #[track_caller]
    fn forward(&self, x: &Tensor, training: bool) -> Tensor {
        self.attend(x, x, None, None, training)
    }

    /// The query's mask passes on (one output per query position).
    fn supports_masking(&self) -> bool {
        true
    }

    /// Self-attention over padded sequences: no position attends to a padded one
    /// (Keras' mask from `query_mask & value_mask`).
    #[track_caller]
    fn forward_masked(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> Tensor {
        match mask {
            Some(m) => {
                let pairs = m.expand_dims(2).logical_and(m.expand_dims(1));
                self.attend(x, x, None, Some(&pairs), training)
            }
            None => self.attend(x, x, None, None, training),
        }
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        let mut s = input.to_vec();
        if let (Some(last), Some(out)) = (s.last_mut(), self.output_shape) {
            *last = Some(out);
        }
        s
    }
}
