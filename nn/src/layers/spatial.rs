//! Weightless layers that grow, pad or crop the spatial axes, for decoders, GAN
//! generators and U-Nets (with `Conv2DTranspose`): `UpSampling1D/2D` (nearest
//! neighbour), `ZeroPadding1D/2D` and `Cropping1D/2D`.

use std::sync::Arc;

use tensorjit_runtime::shape::UNKNOWN;
use tensorjit_runtime::{PadMode, Tensor};

use super::{core_methods, no_weights, with_name};
use crate::module::{LayerCore, Module, ShapeSpec};

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

            no_weights!();

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
