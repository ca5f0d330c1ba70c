//! Layers that grow, pad or crop the spatial axes, for decoders, GAN generators and
//! U-Nets: `Conv2DTranspose`, `UpSampling1D/2D` (nearest neighbour), `ZeroPadding1D/2D`
//! and `Cropping1D/2D`.

use std::sync::Arc;

use tensorjit_runtime::shape::UNKNOWN;
use tensorjit_runtime::{PadMode, Padding, Tensor, Variable};

use super::{core_methods, regularizer_setters, setters, with_name};
use crate::activations::Activation;
use crate::error::raise;
use crate::initializers::Initializer;
use crate::module::{fmt_spec, LayerCore, Module, ShapeSpec};
use crate::regularizers::Regularizer;

/// The output length of a transposed convolution (Keras' `deconv_output_length`).
fn transposed_len(n: Option<usize>, k: usize, s: usize, padding: Padding) -> Option<usize> {
    let n = n?;
    Some(match padding {
        Padding::Valid if n == 0 => 0,
        Padding::Valid => (n - 1) * s + k,
        Padding::Same => n * s,
    })
}

/// Transposed 2-D convolution (Keras' `Conv2DTranspose`, sometimes called
/// deconvolution): kernel `[kh, kw, filters, in]` (glorot_uniform), bias `[filters]`
/// (zeros), NHWC inputs; the spatial size grows to `(n − 1)·s + k` (`valid`) or `n·s`
/// (`same`).
#[derive(Clone)]
pub struct Conv2DTranspose {
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

impl Conv2DTranspose {
    /// `filters` output channels, a `kernel_size` window, stride 1, `valid` padding.
    pub fn new(filters: usize, kernel_size: [usize; 2]) -> Conv2DTranspose {
        Conv2DTranspose {
            filters,
            kernel_size,
            strides: [1, 1],
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            kernel_regularizer: None,
            bias_regularizer: None,
            core: LayerCore::new("Conv2DTranspose"),
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

impl Module for Conv2DTranspose {
    core_methods!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let (4, Some(&Some(cin))) = (input.len(), input.last()) else {
            raise(
                &format!("Conv2DTranspose '{}'", self.core.name),
                format!("needs NHWC inputs (rank 4) with known channels, got shape {}", fmt_spec(input)),
            )
        };
        let [kh, kw] = self.kernel_size;
        self.core.build(scope, |w| {
            let dims = [kh, kw, self.filters, cin];
            w.add_regularized("kernel", &dims, &self.kernel_initializer, self.kernel_regularizer);
            if self.use_bias {
                w.add_regularized("bias", &[self.filters], &Initializer::Zeros, self.bias_regularizer);
            }
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let kernel = self.core.weight(0).read();
        let cin = kernel.dims()[3];
        if x.rank() != 4 || x.dims()[3] != cin {
            self.core.incompatible(x, &format!("NHWC (rank 4) with {cin} channels"));
        }
        let y = x.conv2d_transpose(&kernel, self.strides, self.padding);
        let y = if self.use_bias { &y + &self.core.weight(1).read() } else { y };
        self.activation.apply(&y)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        if input.len() != 4 {
            return input.to_vec();
        }
        let (k, s, p) = (self.kernel_size, self.strides, self.padding);
        vec![
            input[0],
            transposed_len(input[1], k[0], s[0], p),
            transposed_len(input[2], k[1], s[1], p),
            Some(self.filters),
        ]
    }
}

/// What a weightless spatial layer does to each of its `R` spatial axes (axes 1..=R of
/// an input of rank R + 2).
#[derive(Clone, Copy, Debug)]
enum Resize<const R: usize> {
    /// Each step repeated this many times (nearest-neighbour upsampling).
    Repeat([usize; R]),
    /// Zeros added before and after.
    Pad([(usize, usize); R]),
    /// Steps taken off the start and the end (at least one step stays, as Keras asks).
    Crop([(usize, usize); R]),
}

impl<const R: usize> Resize<R> {
    fn len(self, axis: usize, n: usize) -> Option<usize> {
        match self {
            Resize::Repeat(s) => Some(n * s[axis]),
            Resize::Pad(p) => Some(n + p[axis].0 + p[axis].1),
            Resize::Crop(c) => n.checked_sub(c[axis].0 + c[axis].1).filter(|&m| m > 0),
        }
    }
}

/// One weightless resizing layer per Keras class.
macro_rules! resize_layer {
    ($(#[$doc:meta])* $name:ident, $rank:literal, $param:ty, $variant:ident, $what:literal, $axes:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            resize: Resize<$rank>,
            core: Arc<LayerCore>,
        }

        impl $name {
            #[doc = concat!("A layer with these ", $what, " per spatial axis.")]
            pub fn new(value: $param) -> $name {
                let axes: fn($param) -> _ = $axes;
                $name { resize: Resize::$variant(axes(value)), core: LayerCore::new(stringify!($name)) }
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
                if x.rank() != $rank + 2 {
                    self.core.incompatible(x, &format!("rank {} (batch, spatial axes, channels)", $rank + 2));
                }
                let mut y = x.clone();
                for axis in 0..$rank {
                    let n = x.dims()[axis + 1];
                    if n == UNKNOWN {
                        self.core.incompatible(x, "known spatial sizes (inside a trace too)");
                    }
                    if let (None, Resize::Crop(c)) = (self.resize.len(axis, n), self.resize) {
                        let (a, b) = c[axis];
                        let need = format!("more than {a} + {b} steps on axis {} to crop them", axis + 1);
                        self.core.incompatible(x, &need);
                    }
                    y = match self.resize {
                        Resize::Repeat(s) => y.repeat(s[axis], axis as i64 + 1),
                        Resize::Pad(p) => {
                            let mut pads = vec![(0, 0); $rank + 2];
                            pads[axis + 1] = p[axis];
                            y.pad(&pads, PadMode::Constant(0.0))
                        }
                        Resize::Crop(c) => y.narrow(axis as i64 + 1, c[axis].0, n - c[axis].0 - c[axis].1),
                    };
                }
                y
            }

            fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
                let mut s = input.to_vec();
                if s.len() == $rank + 2 {
                    for axis in 0..$rank {
                        s[axis + 1] = s[axis + 1].and_then(|n| self.resize.len(axis, n));
                    }
                }
                s
            }
        }
    };
}

resize_layer!(
    /// Repeats each step `size` times (Keras' `UpSampling1D`): `[b, t, c]` → `[b, t·size, c]`.
    UpSampling1D, 1, usize, Repeat, "repeats", |v| [v]
);
resize_layer!(
    /// Repeats each row and column (Keras' `UpSampling2D` with nearest-neighbour
    /// interpolation): `[b, h, w, c]` → `[b, h·s₀, w·s₁, c]`.
    UpSampling2D, 2, [usize; 2], Repeat, "repeats", |v| v
);
resize_layer!(
    /// Zeros before and after the steps (Keras' `ZeroPadding1D((left, right))`).
    ZeroPadding1D, 1, (usize, usize), Pad, "(before, after) paddings", |v| [v]
);
resize_layer!(
    /// Zero rows and columns around the image (Keras'
    /// `ZeroPadding2D(((top, bottom), (left, right)))`).
    ZeroPadding2D, 2, [(usize, usize); 2], Pad, "(before, after) paddings", |v| v
);
resize_layer!(
    /// Steps taken off the start and end (Keras' `Cropping1D((start, end))`).
    Cropping1D, 1, (usize, usize), Crop, "(start, end) crops", |v| [v]
);
resize_layer!(
    /// Rows and columns taken off the borders (Keras'
    /// `Cropping2D(((top, bottom), (left, right)))`).
    Cropping2D, 2, [(usize, usize); 2], Crop, "(start, end) crops", |v| v
);
