//! `Dense`: `activation(x · kernel + bias)`.

use std::sync::Arc;

use tensorjit_runtime::{Tensor, Variable};

use super::{core_methods, known_last_axis, regularizer_setters, setters, with_name};
use crate::activations::Activation;
use crate::initializers::Initializer;
use crate::module::{LayerCore, Module, ShapeSpec};
use crate::regularizers::Regularizer;

/// A densely connected layer on the last axis (Keras' `Dense`): kernel `[in, units]`
/// (glorot_uniform), bias `[units]` (zeros).
#[derive(Clone)]
pub struct Dense {
    units: usize,
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    kernel_regularizer: Option<Regularizer>,
    bias_regularizer: Option<Regularizer>,
    core: Arc<LayerCore>,
}

impl Dense {
    /// A layer with `units` outputs, no activation.
    pub fn new(units: usize) -> Dense {
        Dense {
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            core: LayerCore::new("Dense"),
        }
    }

    setters! {
        activation: Activation,
        use_bias: bool,
        kernel_initializer: Initializer,
        bias_initializer: Initializer,
    }

    regularizer_setters!(kernel_regularizer, bias_regularizer);

    with_name!();

    /// The kernel, once built.
    pub fn kernel(&self) -> Option<Variable> {
        self.core.weights().first().cloned()
    }

    /// The bias, once built (and when the layer has one).
    pub fn bias(&self) -> Option<Variable> {
        self.core.weights().get(1).cloned()
    }
}

impl Module for Dense {
    core_methods!();

    /// Acts on each step alone: the input's mask passes on.
    fn supports_masking(&self) -> bool {
        true
    }

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let fan_in = known_last_axis(&self.core, input);
        self.core.build(scope, |w| {
            w.add_regularized("kernel", &[fan_in, self.units], &self.kernel_initializer, self.kernel_regularizer);
            if self.use_bias {
                w.add_regularized("bias", &[self.units], &self.bias_initializer, self.bias_regularizer);
            }
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let kernel = self.core.weight(0).read();
        let fan_in = kernel.dims()[0];
        if x.rank() < 2 || x.dims()[x.rank() - 1] != fan_in {
            self.core.incompatible(x, &format!("rank >= 2 with last axis {fan_in}"));
        }
        // Leading axes are batch axes of the matmul, which runs one GEMM over all their
        // rows when they share the kernel: no reshape, so any of them may be unknown.
        let y = x.matmul(&kernel);
        let y = if self.use_bias { &y + &self.core.weight(1).read() } else { y };
        self.activation.apply(&y)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        let mut s = input.to_vec();
        if let Some(last) = s.last_mut() {
            *last = Some(self.units);
        }
        s
    }
}
