//! `Conv1D`, `MaxPool1D`, `AvgPool1D` on `[batch, steps, channels]` inputs: the 2-D
//! kernels over a height of 1, so they share their code, gradients and GPU kernels.

use std::sync::Arc;

use tensorjit_runtime::{Padding, Tensor, Variable};

use super::{core_methods, regularizer_setters, setters, with_name};
use crate::activations::Activation;
use crate::error::raise;
use crate::initializers::Initializer;
use crate::module::{fmt_spec, LayerCore, Module, ShapeSpec};
use crate::regularizers::Regularizer;

/// The output length of a window of `k` with stride `s` over `n` steps.
fn steps_out(n: Option<usize>, k: usize, s: usize, padding: Padding) -> Option<usize> {
    let n = n?;
    Some(match padding {
        Padding::Same => n.div_ceil(s),
        Padding::Valid if n >= k => (n - k) / s + 1,
        Padding::Valid => 0,
    })
}

/// `f` applied to `x` `[batch, steps, c]` seen as `[batch, 1, steps, c]`.
#[track_caller]
fn as_2d(x: &Tensor, f: impl FnOnce(&Tensor) -> Tensor) -> Tensor {
    f(&x.expand_dims(1)).squeeze(&[1])
}

/// 1-D convolution (Keras' `Conv1D`): kernel `[kernel_size, in, filters]`
/// (glorot_uniform), bias `[filters]` (zeros), inputs `[batch, steps, channels]`.
#[derive(Clone)]
pub struct Conv1D {
    filters: usize,
    kernel_size: usize,
    strides: usize,
    padding: Padding,
    activation: Activation,
    use_bias: bool,
    kernel_initializer: Initializer,
    kernel_regularizer: Option<Regularizer>,
    bias_regularizer: Option<Regularizer>,
    core: Arc<LayerCore>,
}

impl Conv1D {
    /// `filters` output channels, windows of `kernel_size` steps, stride 1, `valid`
    /// padding.
    pub fn new(filters: usize, kernel_size: usize) -> Conv1D {
        Conv1D {
            filters,
            kernel_size,
            strides: 1,
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            kernel_regularizer: None,
            bias_regularizer: None,
            core: LayerCore::new("Conv1D"),
        }
    }

    setters! {
        strides: usize,
        padding: Padding,
        activation: Activation,
        use_bias: bool,
        kernel_initializer: Initializer,
    }

    regularizer_setters!(kernel_regularizer, bias_regularizer);

    with_name!();

    /// The kernel, once built.
    pub fn kernel(&self) -> Option<Variable> {
        self.core.weights().first().cloned()
    }
}

impl Module for Conv1D {
    core_methods!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let (3, Some(&Some(cin))) = (input.len(), input.last()) else {
            raise(
                &format!("Conv1D '{}'", self.core.name),
                format!("needs inputs [batch, steps, channels] with known channels, got shape {}", fmt_spec(input)),
            )
        };
        self.core.build(scope, |w| {
            w.add_regularized(
                "kernel",
                &[self.kernel_size, cin, self.filters],
                &self.kernel_initializer,
                self.kernel_regularizer,
            );
            if self.use_bias {
                w.add_regularized("bias", &[self.filters], &Initializer::Zeros, self.bias_regularizer);
            }
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let kernel = self.core.weight(0).read();
        let cin = kernel.dims()[1];
        if x.rank() != 3 || x.dims()[2] != cin {
            self.core.incompatible(x, &format!("[batch, steps, channels] with {cin} channels"));
        }
        let k2 = kernel.expand_dims(0);
        let y = as_2d(x, |x| x.conv2d(&k2, [1, self.strides], self.padding));
        let y = if self.use_bias { &y + &self.core.weight(1).read() } else { y };
        self.activation.apply(&y)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        match input {
            [b, n, _] => vec![*b, steps_out(*n, self.kernel_size, self.strides, self.padding), Some(self.filters)],
            _ => input.to_vec(),
        }
    }
}

macro_rules! pool1d_layer {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $method:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            pool_size: usize,
            strides: usize,
            padding: Padding,
            core: Arc<LayerCore>,
        }

        impl $name {
            /// Windows of `pool_size` steps, strides equal to it, `valid` padding.
            pub fn new(pool_size: usize) -> $name {
                $name { pool_size, strides: pool_size, padding: Padding::Valid, core: LayerCore::new($kind) }
            }

            setters! {
                strides: usize,
                padding: Padding,
            }

            with_name!();
        }

        impl Module for $name {
            core_methods!();

            fn build(&self, scope: &str, _input: &[Option<usize>]) {
                self.core.build(scope, |_| {});
            }

            #[track_caller]
            fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
                if x.rank() != 3 {
                    self.core.incompatible(x, "[batch, steps, channels] (rank 3)");
                }
                as_2d(x, |x| x.$method([1, self.pool_size], [1, self.strides], self.padding))
            }

            fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
                match input {
                    [b, n, c] => vec![*b, steps_out(*n, self.pool_size, self.strides, self.padding), *c],
                    _ => input.to_vec(),
                }
            }
        }
    };
}

pool1d_layer!(
    /// Max pooling over windows of steps (Keras' `MaxPool1D`).
    MaxPool1D, "MaxPool1D", max_pool2d
);
pool1d_layer!(
    /// Average pooling over windows of steps (Keras' `AvgPool1D`).
    AvgPool1D, "AvgPool1D", avg_pool2d
);
