//! `DepthwiseConv2D` and `SeparableConv2D` (Keras'; MobileNet's and Xception's blocks)
//! on NHWC inputs, over the runtime's `depthwise_conv2d`.

use std::sync::Arc;

use tensorjit_runtime::{Padding, Tensor, Variable};

use super::conv::{out_len, spatial_output};
use super::{core_methods, regularizer_setters, setters, with_name};
use crate::activations::Activation;
use crate::error::raise;
use crate::initializers::Initializer;
use crate::module::{fmt_spec, LayerCore, Module, ShapeSpec};
use crate::regularizers::Regularizer;

/// The depthwise step both layers share, and what follows it (bias, activation).
#[derive(Clone)]
struct Depthwise {
    kernel_size: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    depth_multiplier: usize,
    activation: Activation,
    use_bias: bool,
    depthwise_initializer: Initializer,
    depthwise_regularizer: Option<Regularizer>,
    bias_regularizer: Option<Regularizer>,
}

impl Depthwise {
    fn new(kernel_size: [usize; 2]) -> Depthwise {
        Depthwise {
            kernel_size,
            strides: [1, 1],
            padding: Padding::Valid,
            depth_multiplier: 1,
            activation: Activation::Linear,
            use_bias: true,
            depthwise_initializer: Initializer::GlorotUniform,
            depthwise_regularizer: None,
            bias_regularizer: None,
        }
    }

    fn kernel_dims(&self, cin: usize) -> [usize; 4] {
        [self.kernel_size[0], self.kernel_size[1], cin, self.depth_multiplier]
    }

    fn output_shape(&self, input: &[Option<usize>], channels: Option<usize>) -> ShapeSpec {
        spatial_output(out_len, input, self.kernel_size, self.strides, self.padding, channels)
    }
}

/// The input channels of an NHWC input shape, or the error naming the layer.
#[track_caller]
fn channels(core: &LayerCore, input: &[Option<usize>]) -> usize {
    match (input.len(), input.last()) {
        (4, Some(&Some(c))) => c,
        _ => raise(
            &format!("{} '{}'", core.kind, core.name),
            format!("needs NHWC inputs (rank 4) with known channels, got shape {}", fmt_spec(input)),
        ),
    }
}

/// The depthwise convolution of `x` by the layer's first weight, after checking `x`.
#[track_caller]
fn depthwise_step(core: &LayerCore, d: &Depthwise, x: &Tensor) -> Tensor {
    let kernel = core.weight(0).read();
    let cin = kernel.dims()[2];
    if x.rank() != 4 || x.dims()[3] != cin {
        core.incompatible(x, &format!("NHWC (rank 4) with {cin} channels"));
    }
    x.depthwise_conv2d(&kernel, d.strides, d.padding)
}

/// The builder methods of the depthwise step, on a layer with fields `d` and `core`.
macro_rules! depthwise_setters {
    () => {
        setters! {
            in d;
            /// The stride of the depthwise step.
            strides: [usize; 2],
            /// The padding of the depthwise step.
            padding: Padding,
            /// The activation after the bias.
            activation: Activation,
            use_bias: bool,
            depthwise_initializer: Initializer,
        }

        regularizer_setters!(in d; depthwise_regularizer, bias_regularizer);

        /// Depthwise output channels per input channel (Keras' `depth_multiplier`).
        #[track_caller]
        pub fn depth_multiplier(mut self, m: usize) -> Self {
            if m == 0 {
                raise(&format!("{} '{}'", self.core.kind, self.core.name), "depth_multiplier must be at least 1")
            }
            self.d.depth_multiplier = m;
            self
        }

        with_name!();
    };
}

/// A depthwise 2-D convolution (Keras' `DepthwiseConv2D`): each input channel convolved
/// with its own `depth_multiplier` filters; kernel `[kh, kw, in, depth_multiplier]`
/// (glorot_uniform), bias `[in·depth_multiplier]` (zeros).
#[derive(Clone)]
pub struct DepthwiseConv2D {
    d: Depthwise,
    core: Arc<LayerCore>,
}

impl DepthwiseConv2D {
    /// A `kernel_size` window, stride 1, `valid` padding, depth multiplier 1.
    pub fn new(kernel_size: [usize; 2]) -> DepthwiseConv2D {
        DepthwiseConv2D { d: Depthwise::new(kernel_size), core: LayerCore::new("DepthwiseConv2D") }
    }

    depthwise_setters!();

    /// The kernel `[kh, kw, in, depth_multiplier]`, once built.
    pub fn kernel(&self) -> Option<Variable> {
        self.core.weights().first().cloned()
    }
}

impl Module for DepthwiseConv2D {
    core_methods!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let cin = channels(&self.core, input);
        let d = &self.d;
        self.core.build(scope, |w| {
            w.add_regularized("kernel", &d.kernel_dims(cin), &d.depthwise_initializer, d.depthwise_regularizer);
            if d.use_bias {
                w.add_regularized("bias", &[cin * d.depth_multiplier], &Initializer::Zeros, d.bias_regularizer);
            }
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let y = depthwise_step(&self.core, &self.d, x);
        let y = if self.d.use_bias { &y + &self.core.weight(1).read() } else { y };
        self.d.activation.apply(&y)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        let c = input.last().copied().flatten().map(|c| c * self.d.depth_multiplier);
        self.d.output_shape(input, c)
    }
}

/// A depthwise-separable 2-D convolution (Keras' `SeparableConv2D`): a depthwise
/// convolution (kernel `[kh, kw, in, depth_multiplier]`), then a pointwise 1×1
/// convolution to `filters` channels (kernel `[1, 1, in·depth_multiplier, filters]`),
/// both glorot_uniform, then the bias `[filters]` (zeros) and the activation.
#[derive(Clone)]
pub struct SeparableConv2D {
    filters: usize,
    d: Depthwise,
    pointwise_initializer: Initializer,
    pointwise_regularizer: Option<Regularizer>,
    core: Arc<LayerCore>,
}

impl SeparableConv2D {
    /// `filters` output channels, a `kernel_size` window, stride 1, `valid` padding,
    /// depth multiplier 1.
    pub fn new(filters: usize, kernel_size: [usize; 2]) -> SeparableConv2D {
        SeparableConv2D {
            filters,
            d: Depthwise::new(kernel_size),
            pointwise_initializer: Initializer::GlorotUniform,
            pointwise_regularizer: None,
            core: LayerCore::new("SeparableConv2D"),
        }
    }

    depthwise_setters!();

    setters! {
        pointwise_initializer: Initializer,
    }

    regularizer_setters!(pointwise_regularizer);
}

impl Module for SeparableConv2D {
    core_methods!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let cin = channels(&self.core, input);
        let d = &self.d;
        self.core.build(scope, |w| {
            w.add_regularized(
                "depthwise_kernel",
                &d.kernel_dims(cin),
                &d.depthwise_initializer,
                d.depthwise_regularizer,
            );
            let pointwise = [1, 1, cin * d.depth_multiplier, self.filters];
            w.add_regularized("pointwise_kernel", &pointwise, &self.pointwise_initializer, self.pointwise_regularizer);
            if d.use_bias {
                w.add_regularized("bias", &[self.filters], &Initializer::Zeros, d.bias_regularizer);
            }
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let y = depthwise_step(&self.core, &self.d, x);
        let y = y.conv2d(&self.core.weight(1).read(), [1, 1], Padding::Valid);
        let y = if self.d.use_bias { &y + &self.core.weight(2).read() } else { y };
        self.d.activation.apply(&y)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        self.d.output_shape(input, Some(self.filters))
    }
}
