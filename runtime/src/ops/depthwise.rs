//! Depthwise 2-D convolution (`tf.nn.depthwise_conv2d`), built from primitive ops: the
//! padded input's strided window slices, each times its filter tap, summed. The taps
//! are added in row-major window order, so eager and traced runs (whose kernels fuse
//! the products and sums) give the same bits; gradients come from the primitives'.

use std::panic::Location;

use super::nn::{window, Padding};
use super::shape::SliceArg;
use super::PadMode;
use crate::error::OpError;
use crate::shape::UNKNOWN;
use crate::tensor::Tensor;

impl Tensor {
    /// Depthwise 2-D convolution of an NHWC input (`tf.nn.depthwise_conv2d`, Keras'
    /// `DepthwiseConv2D`): each input channel `c` is convolved with its own filters
    /// `filter[.., .., c, j]`, giving output channel `c·m + j`. The filter is
    /// `[kh, kw, channels, m]` (`m`, the depth multiplier); padding and output sizes are
    /// [`conv2d`](Tensor::conv2d)'s. Spatial sizes and channels must be known (inside a
    /// trace too); the batch may not be.
    #[track_caller]
    pub fn depthwise_conv2d(&self, filter: &Tensor, strides: [usize; 2], padding: Padding) -> Tensor {
        let at = Location::caller();
        let fail = |msg: String| -> ! {
            OpError::new("depthwise_conv2d", msg)
                .with_operands([(self.dtype(), self.shape()), (filter.dtype(), filter.shape())])
                .raise(at)
        };
        let (x, f) = (self.dims(), filter.dims());
        if !self.dtype().is_float() || self.dtype() != filter.dtype() {
            fail(format!("needs float tensors of one dtype, got {} and {}", self.dtype(), filter.dtype()))
        }
        if x.len() != 4 || f.len() != 4 || f.contains(&UNKNOWN) {
            fail("needs an NHWC input and a known [kh, kw, channels, multiplier] filter, both of rank 4".into())
        }
        if x[3] != f[2] {
            fail(format!("the input has {} channels, the filter expects {}", x[3], f[2]))
        }
        let g = match window("depthwise_conv2d", self.shape(), [f[0], f[1]], strides, padding) {
            Ok(g) => g,
            Err(e) => fail(e.to_string()),
        };
        let (c, m) = (f[2], f[3]);
        if g.h.out == 0 || g.w.out == 0 {
            fail("the output would be empty".into())
        }
        // Pad so that every window lies inside: (out − 1)·s + k cells from the first.
        let after =
            |a: &super::nn::AxisGeom| ((a.out - 1) * a.stride + a.kernel).saturating_sub(a.input + a.pad_before);
        let pads = [(0, 0), (g.h.pad_before, after(&g.h)), (g.w.pad_before, after(&g.w)), (0, 0)];
        let padded =
            if pads.iter().any(|&(a, b)| a + b > 0) { self.pad(&pads, PadMode::Constant(0.0)) } else { self.clone() };
        let taps = |start: usize, a: &super::nn::AxisGeom| {
            let stop = start + (a.out - 1) * a.stride + 1;
            SliceArg::new(Some(start as i64), Some(stop as i64), a.stride as i64)
        };
        let mut sum: Option<Tensor> = None;
        for u in 0..f[0] {
            for v in 0..f[1] {
                let patch = padded.slice(&[SliceArg::full(), taps(u, &g.h), taps(v, &g.w), SliceArg::full()]);
                let one = |i: usize| SliceArg::new(Some(i as i64), Some(i as i64 + 1), 1);
                let tap = filter.slice(&[one(u), one(v), SliceArg::full(), SliceArg::full()]);
                let term = if m == 1 {
                    patch * tap.reshape([c as i64])
                } else {
                    patch.expand_dims(-1) * tap.reshape([c as i64, m as i64])
                };
                sum = Some(match sum {
                    Some(s) => s + term,
                    None => term,
                });
            }
        }
        let Some(y) = sum else { fail("the window is empty".into()) };
        if m == 1 {
            y
        } else {
            y.reshape([-1, g.h.out as i64, g.w.out as i64, (c * m) as i64])
        }
    }
}
