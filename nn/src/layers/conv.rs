//! `Conv2D`, `Conv2DTranspose`, `MaxPool2D`, `AvgPool2D` on NHWC inputs.

use std::sync::Arc;

use tensorjit_runtime::{Padding, Tensor, Variable};

use super::{core_methods, regularizer_setters, setters, with_name};
use crate::activations::Activation;
use crate::error::raise;
use crate::initializers::Initializer;
use crate::module::{fmt_spec, LayerCore, Module, ShapeSpec};
use crate::regularizers::Regularizer;

/// The output length of a window of `k` with stride `s` over `n` cells.
pub(super) fn out_len(n: Option<usize>, k: usize, s: usize, padding: Padding) -> Option<usize> {
    let n = n?;
    match padding {
        Padding::Same => Some(n.div_ceil(s)),
        Padding::Valid => Some(if n >= k { (n - k) / s + 1 } else { 0 }),
    }
}

/// The output length of a transposed convolution (Keras' `deconv_output_length`).
fn transposed_len(n: Option<usize>, k: usize, s: usize, padding: Padding) -> Option<usize> {
    let n = n?;
    Some(match padding {
        Padding::Valid if n == 0 => 0,
        Padding::Valid => (n - 1) * s + k,
        Padding::Same => n * s,
    })
}

/// The NHWC output shape, `len` giving each spatial axis' output length.
pub(super) fn spatial_output(
    len: fn(Option<usize>, usize, usize, Padding) -> Option<usize>,
    input: &[Option<usize>],
    k: [usize; 2],
    s: [usize; 2],
    p: Padding,
    c: Option<usize>,
) -> ShapeSpec {
    if input.len() != 4 {
        return input.to_vec();
    }
    vec![input[0], len(input[1], k[0], s[0], p), len(input[2], k[1], s[1], p), c]
}

/// A 2-D convolution layer: its builders and `Module` impl. `transposed` layers keep
/// the kernel `[kh, kw, filters, in]` and run `conv2d_transpose`; the others keep
/// `[kh, kw, in, filters]` and run `conv2d`.
macro_rules! conv2d_layer {
    ($(#[$doc:meta])* $name:ident, transposed = $transposed:literal, $op:ident, $len:path) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            filters: usize,
            kernel_size: [usize; 2],
            strides: [usize; 2],
            padding: Padding,
            activation: Activation,
            use_bias: bool,
            kernel_initializer: Initializer,
            kernel_regularizer: Option<Regularizer>,
            bias_regularizer: Option<Regularizer>,
            core: Arc<LayerCore>,
        }

        impl $name {
            /// `filters` output channels, a `kernel_size` window, stride 1, `valid` padding.
            pub fn new(filters: usize, kernel_size: [usize; 2]) -> $name {
                $name {
                    filters,
                    kernel_size,
                    strides: [1, 1],
                    padding: Padding::Valid,
                    activation: Activation::Linear,
                    use_bias: true,
                    kernel_initializer: Initializer::GlorotUniform,
                    kernel_regularizer: None,
                    bias_regularizer: None,
                    core: LayerCore::new(stringify!($name)),
                }
            }

            setters! {
                strides: [usize; 2],
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

        impl Module for $name {
            core_methods!();

            #[track_caller]
            fn build(&self, scope: &str, input: &[Option<usize>]) {
                let (4, Some(&Some(cin))) = (input.len(), input.last()) else {
                    raise(
                        &format!("{} '{}'", stringify!($name), self.core.name),
                        format!("needs NHWC inputs (rank 4) with known channels, got shape {}", fmt_spec(input)),
                    )
                };
                let [kh, kw] = self.kernel_size;
                let dims = if $transposed { [kh, kw, self.filters, cin] } else { [kh, kw, cin, self.filters] };
                self.core.build(scope, |w| {
                    w.add_regularized("kernel", &dims, &self.kernel_initializer, self.kernel_regularizer);
                    if self.use_bias {
                        w.add_regularized("bias", &[self.filters], &Initializer::Zeros, self.bias_regularizer);
                    }
                });
            }

            #[track_caller]
            fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
                let kernel = self.core.weight(0).read();
                let cin = kernel.dims()[if $transposed { 3 } else { 2 }];
                if x.rank() != 4 || x.dims()[3] != cin {
                    self.core.incompatible(x, &format!("NHWC (rank 4) with {cin} channels"));
                }
                let y = x.$op(&kernel, self.strides, self.padding);
                let y = if self.use_bias { &y + &self.core.weight(1).read() } else { y };
                self.activation.apply(&y)
            }

            fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
                spatial_output($len, input, self.kernel_size, self.strides, self.padding, Some(self.filters))
            }
        }
    };
}

conv2d_layer!(
    /// 2-D convolution (Keras' `Conv2D`): kernel `[kh, kw, in, filters]` (glorot_uniform),
    /// bias `[filters]` (zeros), NHWC inputs.
    Conv2D, transposed = false, conv2d, out_len
);

conv2d_layer!(
    /// Transposed 2-D convolution (Keras' `Conv2DTranspose`, sometimes called
    /// deconvolution): kernel `[kh, kw, filters, in]` (glorot_uniform), bias `[filters]`
    /// (zeros), NHWC inputs; the spatial size grows to `(n − 1)·s + k` (`valid`) or `n·s`
    /// (`same`).
    Conv2DTranspose, transposed = true, conv2d_transpose, transposed_len
);

macro_rules! pool_layer {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $method:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            pool_size: [usize; 2],
            strides: [usize; 2],
            padding: Padding,
            core: Arc<LayerCore>,
        }

        impl $name {
            /// Windows of `pool_size`, strides equal to it, `valid` padding.
            pub fn new(pool_size: [usize; 2]) -> $name {
                $name { pool_size, strides: pool_size, padding: Padding::Valid, core: LayerCore::new($kind) }
            }

            setters! {
                strides: [usize; 2],
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
                if x.rank() != 4 {
                    self.core.incompatible(x, "NHWC (rank 4)");
                }
                x.$method(self.pool_size, self.strides, self.padding)
            }

            fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
                let c = input.last().copied().flatten();
                spatial_output(out_len, input, self.pool_size, self.strides, self.padding, c)
            }
        }
    };
}

pool_layer!(
    /// Max pooling over NHWC windows (Keras' `MaxPool2D`).
    MaxPool2D, "MaxPool2D", max_pool2d
);
pool_layer!(
    /// Average pooling over NHWC windows (Keras' `AvgPool2D`).
    AvgPool2D, "AvgPool2D", avg_pool2d
);
