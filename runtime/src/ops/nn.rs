//! Neural-network ops: conv2d (NHWC input, HWIO filter), max/avg pooling, softmax and
//! log_softmax (compositions that subtract the row max, differentiated as wholes with
//! TensorFlow's gradients rather than op by op).

use std::panic::Location;
use std::rc::Rc;

use super::{apply, needs, Op};
use crate::autodiff;
use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::{dims_match, norm_axis, Shape, UNKNOWN};
use crate::tensor::Tensor;

/// TensorFlow's padding modes. SAME puts the odd extra pixel after (bottom/right).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    Same,
    Valid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    pub strides: [usize; 2],
    pub padding: Padding,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolParams {
    pub ksize: [usize; 2],
    pub strides: [usize; 2],
    pub padding: Padding,
}

/// Output size and leading padding of one spatial axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AxisGeom {
    pub input: usize,
    pub kernel: usize,
    pub stride: usize,
    pub out: usize,
    pub pad_before: usize,
}

pub(crate) fn axis_geom(input: usize, kernel: usize, stride: usize, padding: Padding) -> Option<AxisGeom> {
    if stride == 0 || kernel == 0 {
        return None;
    }
    let (out, pad_before) = match padding {
        Padding::Valid => {
            if input < kernel {
                return None;
            }
            ((input - kernel) / stride + 1, 0)
        }
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out.max(1) - 1) * stride + kernel).saturating_sub(input);
            (out, total / 2)
        }
    };
    Some(AxisGeom { input, kernel, stride, out, pad_before })
}

/// Geometry of a 2-D window op over an NHWC input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub n: usize,
    pub c: usize,
    pub h: AxisGeom,
    pub w: AxisGeom,
}

pub(crate) fn window(op: &'static str, x: &Shape, k: [usize; 2], s: [usize; 2], p: Padding) -> Result<Window, OpError> {
    if x.rank() != 4 {
        return Err(OpError::new(op, format!("needs an NHWC input of rank 4, got rank {}", x.rank())));
    }
    if x[1] == UNKNOWN || x[2] == UNKNOWN || x[3] == UNKNOWN {
        return Err(OpError::new(op, format!("needs a known height, width and channel count, got {x}")));
    }
    let bad = || OpError::new(op, format!("window {k:?} with strides {s:?} and {p:?} padding does not fit input {x}"));
    let h = axis_geom(x[1], k[0], s[0], p).ok_or_else(bad)?;
    let w = axis_geom(x[2], k[1], s[1], p).ok_or_else(bad)?;
    Ok(Window { n: x[0], c: x[3], h, w })
}

fn float_only(op: &'static str, d: DType) -> Result<(), OpError> {
    if d.is_float() {
        Ok(())
    } else {
        Err(needs(op, "float tensors", d, "; cast first"))
    }
}

pub(crate) fn conv_window(x: &Shape, f: &Shape, p: &Conv2dParams) -> Result<Window, OpError> {
    if f.rank() != 4 {
        return Err(OpError::new("conv2d", format!("needs an HWIO filter of rank 4, got {f}")));
    }
    if x.rank() == 4 && x[3] != f[2] {
        return Err(OpError::new("conv2d", format!("input has {} channels, the filter expects {}", x[3], f[2])));
    }
    window("conv2d", x, [f[0], f[1]], p.strides, p.padding)
}

pub(crate) fn infer_conv2d(x: &Tensor, f: &Tensor, p: &Conv2dParams) -> Result<(DType, Shape), OpError> {
    float_only("conv2d", x.dtype())?;
    if x.dtype() != f.dtype() {
        return Err(OpError::new("conv2d", format!("dtype mismatch: {} vs {}", x.dtype(), f.dtype())));
    }
    let g = conv_window(x.shape(), f.shape(), p)?;
    Ok((x.dtype(), Shape::new(&[g.n, g.h.out, g.w.out, f.dims()[3]])))
}

/// The input shape of a backprop op, its batch dim taken from the gradient when the
/// trace did not know it.
fn with_batch(input: &Shape, dy: &Tensor) -> Shape {
    let mut d = input.dims().to_vec();
    if d.first() == Some(&UNKNOWN) {
        d[0] = dy.dims().first().copied().unwrap_or(UNKNOWN);
    }
    Shape::from(d)
}

pub(crate) fn infer_conv2d_backprop_input(
    dy: &Tensor,
    f: &Tensor,
    p: &Conv2dParams,
    input: &Shape,
) -> Result<(DType, Shape), OpError> {
    let input = &with_batch(input, dy);
    let g = conv_window(input, f.shape(), p)?;
    if !dims_match(dy.dims(), &[g.n, g.h.out, g.w.out, f.dims()[3]]) {
        return Err(OpError::new(
            "conv2d_backprop_input",
            format!("gradient {} does not match the conv output", dy.shape()),
        ));
    }
    Ok((dy.dtype(), input.clone()))
}

pub(crate) fn infer_conv2d_backprop_filter(
    x: &Tensor,
    dy: &Tensor,
    p: &Conv2dParams,
    filter: &Shape,
) -> Result<(DType, Shape), OpError> {
    let g = conv_window(x.shape(), filter, p)?;
    if !dims_match(dy.dims(), &[g.n, g.h.out, g.w.out, filter[3]]) {
        return Err(OpError::new(
            "conv2d_backprop_filter",
            format!("gradient {} does not match the conv output", dy.shape()),
        ));
    }
    Ok((dy.dtype(), filter.clone()))
}

pub(crate) fn infer_pool(op: &'static str, x: &Tensor, p: &PoolParams) -> Result<(DType, Shape), OpError> {
    float_only(op, x.dtype())?;
    let g = window(op, x.shape(), p.ksize, p.strides, p.padding)?;
    Ok((x.dtype(), Shape::new(&[g.n, g.h.out, g.w.out, g.c])))
}

pub(crate) fn infer_max_pool_grad(x: &Tensor, dy: &Tensor, p: &PoolParams) -> Result<(DType, Shape), OpError> {
    let (_, out) = infer_pool("max_pool2d_grad", x, p)?;
    if !dims_match(dy.dims(), &out) {
        return Err(OpError::new(
            "max_pool2d_grad",
            format!("gradient {} does not match the pool output {out}", dy.shape()),
        ));
    }
    Ok((x.dtype(), x.shape().clone()))
}

pub(crate) fn infer_max_pool_grad_grad(x: &Tensor, g: &Tensor, p: &PoolParams) -> Result<(DType, Shape), OpError> {
    let (_, out) = infer_pool("max_pool2d_grad_grad", x, p)?;
    if !dims_match(g.dims(), x.dims()) {
        return Err(OpError::new(
            "max_pool2d_grad_grad",
            format!("gradient {} does not match the input {}", g.shape(), x.shape()),
        ));
    }
    Ok((x.dtype(), out))
}

pub(crate) fn infer_avg_pool_grad(dy: &Tensor, p: &PoolParams, input: &Shape) -> Result<(DType, Shape), OpError> {
    let input = &with_batch(input, dy);
    let g = window("avg_pool2d_grad", input, p.ksize, p.strides, p.padding)?;
    if !dims_match(dy.dims(), &[g.n, g.h.out, g.w.out, g.c]) {
        return Err(OpError::new("avg_pool2d_grad", format!("gradient {} does not match the pool output", dy.shape())));
    }
    Ok((dy.dtype(), input.clone()))
}

impl Tensor {
    /// 2-D convolution of an NHWC input with an HWIO filter (TensorFlow's `conv2d`,
    /// cross-correlation, no dilation).
    #[track_caller]
    pub fn conv2d(&self, filter: &Tensor, strides: [usize; 2], padding: Padding) -> Tensor {
        apply(Op::Conv2d(Conv2dParams { strides, padding }), &[self, filter])
    }

    /// The transposed 2-D convolution of an NHWC input (`tf.nn.conv2d_transpose`, the
    /// gradient of `conv2d` w.r.t. its input; Keras' `Conv2DTranspose`): each input pixel
    /// scatters `filter[.., .., :, c]` times its channel `c` into an output
    /// `strides` times larger. The filter is `[kh, kw, out_channels, in_channels]`; the
    /// output's spatial size is Keras' — `(n − 1)·s + k` with `Valid`, `n·s` with `Same`.
    /// Spatial sizes must be known (inside a trace too); the batch may not be.
    #[track_caller]
    pub fn conv2d_transpose(&self, filter: &Tensor, strides: [usize; 2], padding: Padding) -> Tensor {
        let (x, f, at) = (self.dims(), filter.dims(), Location::caller());
        let fail = |msg: String| -> ! {
            OpError::new("conv2d_transpose", msg)
                .with_operands([(self.dtype(), self.shape()), (filter.dtype(), filter.shape())])
                .raise(at)
        };
        if x.len() != 4 || f.len() != 4 {
            fail("needs an NHWC input and a [kh, kw, out_channels, in_channels] filter, both of rank 4".into())
        }
        if x[1] == UNKNOWN || x[2] == UNKNOWN || x[3] == UNKNOWN || f.contains(&UNKNOWN) {
            fail("needs known spatial sizes, channels and filter dims".into())
        }
        if x[3] != f[3] {
            fail(format!("the input has {} channels, the filter's last axis expects {}", x[3], f[3]))
        }
        if strides.contains(&0) || f[0] == 0 || f[1] == 0 {
            fail(format!("strides {strides:?} and the window {}x{} must be positive", f[0], f[1]))
        }
        let size = |n: usize, k: usize, s: usize| match padding {
            Padding::Valid if n == 0 => 0,
            Padding::Valid => (n - 1) * s + k,
            Padding::Same => n * s,
        };
        let input = Shape::new(&[x[0], size(x[1], f[0], strides[0]), size(x[2], f[1], strides[1]), f[2]]);
        apply(Op::Conv2dBackpropInput { params: Conv2dParams { strides, padding }, input }, &[self, filter])
    }

    /// Max pooling over NHWC windows (padding cells count as −∞).
    #[track_caller]
    pub fn max_pool2d(&self, ksize: [usize; 2], strides: [usize; 2], padding: Padding) -> Tensor {
        apply(Op::MaxPool2d(PoolParams { ksize, strides, padding }), &[self])
    }

    /// Average pooling over NHWC windows (divides by the number of real cells).
    #[track_caller]
    pub fn avg_pool2d(&self, ksize: [usize; 2], strides: [usize; 2], padding: Padding) -> Tensor {
        apply(Op::AvgPool2d(PoolParams { ksize, strides, padding }), &[self])
    }

    /// x where x > 0, `alpha`·x elsewhere (`tf.nn.leaky_relu`; its gradient at 0 is
    /// `alpha`, as TensorFlow's). Float tensors only.
    #[track_caller]
    pub fn leaky_relu(&self, alpha: f64) -> Tensor {
        self.float_or_raise("leaky_relu");
        Tensor::where_(&self.gt(0.0), self, &(self * alpha))
    }

    /// A copy that gradients do not flow through (`tf.stop_gradient`). Zero-copy.
    #[track_caller]
    pub fn stop_gradient(&self) -> Tensor {
        apply(Op::StopGradient, &[self])
    }

    #[track_caller]
    fn check_softmax_axis(&self, op: &'static str, axis: i64) {
        if norm_axis(axis, self.rank()).is_none() {
            OpError::new(op, format!("axis {axis} is out of range for rank {}", self.rank()))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
    }

    fn shifted(&self, axis: i64) -> Tensor {
        self - &self.max(axis, true).stop_gradient()
    }

    /// softmax along `axis`: exp(x − max) / Σ exp(x − max). Its gradient is
    /// TensorFlow's, (g − Σ g·y)·y: four ops, not the composition's nine.
    #[track_caller]
    pub fn softmax(&self, axis: i64) -> Tensor {
        self.check_softmax_axis("softmax", axis);
        let forward = || {
            let e = self.shifted(axis).exp();
            let s = e.sum(axis, true);
            &e / &s
        };
        with_gradient(self, forward, move |g, y| &(g - &(g * y).sum(axis, true)) * y)
    }

    /// log_softmax along `axis`: (x − max) − log Σ exp(x − max). Its gradient is
    /// TensorFlow's, g − exp(y)·Σ g: four ops, not the composition's six.
    #[track_caller]
    pub fn log_softmax(&self, axis: i64) -> Tensor {
        self.check_softmax_axis("log_softmax", axis);
        let forward = || {
            let z = self.shifted(axis);
            let lse = z.exp().sum(axis, true).log();
            &z - &lse
        };
        with_gradient(self, forward, move |g, y| g - &(y.exp() * g.sum(axis, true)))
    }
}

/// `forward()` (a composition of ops on `x`) with `backward(g, y)` as its gradient: the
/// composition runs with the tapes paused and is recorded as one step, so a backward
/// pass runs `backward`'s ops (public ops: a tape that records them differentiates
/// again) instead of the composition's op-by-op gradients.
fn with_gradient(
    x: &Tensor,
    forward: impl FnOnce() -> Tensor,
    backward: impl Fn(&Tensor, &Tensor) -> Tensor + 'static,
) -> Tensor {
    if !autodiff::any_tracked(std::slice::from_ref(x)) {
        return forward();
    }
    let y = {
        let _paused = autodiff::pause();
        forward()
    };
    let out = y.clone();
    let rule = move |gy: &[Option<Tensor>], _: &[bool]| vec![gy.first().cloned().flatten().map(|g| backward(&g, &out))];
    autodiff::record_custom(std::slice::from_ref(x), std::slice::from_ref(&y), Rc::new(rule));
    y
}
