//! The op layer. Every op is described once here — kind + attributes (`Op`), dtype and
//! shape inference (`Op::infer`), eager kernel (`crate::kernels::run`) and gradient
//! (`crate::autodiff::grads`, written with public ops) — and every public tensor method
//! goes through the single dispatch path `apply`:
//!
//! 1. infer the output type; invalid input panics here with the op name, the operand
//!    types and the caller's location (`#[track_caller]` all the way up);
//! 2. while a trace is active, append a graph node instead of running the kernel (when
//!    an input is symbolic or the op is a random draw);
//! 3. run the eager kernel;
//! 4. record the op on every active `GradientTape`.
//!
//! Nothing else executes kernels. The set of `Op`s is small and closed (like tinygrad's
//! primitive ops); convenience ops (`softmax`, `stack`, `squeeze`, …) are compositions.

mod arrange;
mod clip;
pub mod control;
mod create;
mod depthwise;
mod einsum;
pub mod elementwise;
pub mod linalg;
pub mod nn;
mod operand;
mod operators;
pub mod random;
pub mod reduce;
mod scan;
mod segment;
pub mod shape;
mod sort;

use std::panic::Location;

use smallvec::SmallVec;

pub use operand::Operand;

use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::Shape;
use crate::tensor::Tensor;
use crate::{autodiff, device, trace};

pub use arrange::PadMode;
pub use elementwise::{BinaryOp, UnaryOp};
pub use nn::{Conv2dParams, Padding, PoolParams};
pub use random::{Distribution, RandomParams};
pub use reduce::{ArgOp, ReduceOp};
pub use scan::CumsumOptions;
pub use shape::SliceAxis;

/// Axis lists stored inline.
pub type AxisList = SmallVec<[usize; 4]>;

/// One primitive op: kind + attributes. Inputs are passed separately.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Unary(UnaryOp),
    Binary(BinaryOp),
    /// `where_(cond, a, b)`.
    Select,
    Cast(DType),
    Reduce {
        op: ReduceOp,
        axes: AxisList,
        keepdims: bool,
    },
    ArgReduce {
        op: ArgOp,
        axis: usize,
    },
    /// Running sums along `axis` (`tf.math.cumsum`): `exclusive` leaves each element out
    /// of its own sum, `reverse` sums from the end.
    Cumsum {
        axis: usize,
        exclusive: bool,
        reverse: bool,
    },
    /// Running products along `axis` (`tf.math.cumprod`), with `Cumsum`'s options.
    Cumprod {
        axis: usize,
        exclusive: bool,
        reverse: bool,
    },
    /// The positions that sort each line along `axis` (`tf.argsort`, stable: equal
    /// values keep their order; NaN sorts above +∞). An i64 tensor of the input's shape,
    /// or, with `keep`, of its first `keep` positions along `axis` (`top_k`'s: the lines
    /// are only partly sorted).
    Argsort {
        axis: usize,
        descending: bool,
        keep: Option<usize>,
    },
    MatMul {
        transpose_a: bool,
        transpose_b: bool,
    },
    Reshape(Shape),
    Permute(AxisList),
    BroadcastTo(Shape),
    Concat {
        axis: usize,
    },
    Slice(Vec<SliceAxis>),
    /// The gradient of `Slice`: scatters `dy` into zeros of the sliced input's shape.
    SliceGrad {
        input: Shape,
        slice: Vec<SliceAxis>,
    },
    /// `gather(params, indices)` along `axis`.
    Gather {
        axis: usize,
    },
    /// The gradient of `Gather`: `(updates, indices)` summed into zeros whose `axis`
    /// has length `size` (duplicate indices accumulate).
    ScatterAdd {
        axis: usize,
        size: usize,
    },
    /// `(updates, indices)`: the largest update per index along `axis` (length `size`),
    /// the dtype's lowest value where none lands (`unsorted_segment_max`).
    ScatterMax {
        axis: usize,
        size: usize,
    },
    /// The smallest update per index, the dtype's highest value where none lands.
    ScatterMin {
        axis: usize,
        size: usize,
    },
    /// `(updates, indices)`: the product of the updates per index along `axis` (length
    /// `size`), 1 where none lands (`unsorted_segment_prod`).
    ScatterProd {
        axis: usize,
        size: usize,
    },
    OneHot {
        depth: usize,
        dtype: DType,
    },
    Conv2d(Conv2dParams),
    /// `(dy, filter)` → gradient w.r.t. the conv input of shape `input`.
    Conv2dBackpropInput {
        params: Conv2dParams,
        input: Shape,
    },
    /// `(x, dy)` → gradient w.r.t. the filter of shape `filter`.
    Conv2dBackpropFilter {
        params: Conv2dParams,
        filter: Shape,
    },
    MaxPool2d(PoolParams),
    /// `(x, dy)` → gradient of max-pool w.r.t. `x` (first maximum of each window).
    MaxPool2dGrad(PoolParams),
    /// `(x, g)` with `g` of x's shape → `g` picked at each window's first maximum (the
    /// gradient of `MaxPool2dGrad` w.r.t. its `dy`).
    MaxPool2dGradGrad(PoolParams),
    AvgPool2d(PoolParams),
    /// `dy` → gradient of avg-pool w.r.t. an input of shape `input`.
    AvgPool2dGrad {
        params: PoolParams,
        input: Shape,
    },
    /// A random draw (no inputs). Stateful: the seed is resolved before dispatch.
    Random(RandomParams),
    /// Identity that blocks gradients (zero-copy).
    StopGradient,
    /// A tensor of the input's dtype and shape filled with `value` (`zeros_like` /
    /// `ones_like` of symbolic tensors, whose shape may be known only at run time).
    Fill {
        value: f64,
    },
}

impl Op {
    /// The op's name as users see it in messages (`add`, `matmul`, `reduce_sum`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Select => "where",
            Op::Cast(_) => "cast",
            Op::Reduce { op, .. } => op.name(),
            Op::ArgReduce { op, .. } => op.name(),
            Op::Cumsum { .. } => "cumsum",
            Op::Cumprod { .. } => "cumprod",
            Op::Argsort { .. } => "argsort",
            Op::MatMul { .. } => "matmul",
            Op::Reshape(_) => "reshape",
            Op::Permute(_) => "transpose",
            Op::BroadcastTo(_) => "broadcast_to",
            Op::Concat { .. } => "concat",
            Op::Slice(_) => "slice",
            Op::SliceGrad { .. } => "slice_grad",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::ScatterMax { .. } => "scatter_max",
            Op::ScatterMin { .. } => "scatter_min",
            Op::ScatterProd { .. } => "scatter_prod",
            Op::OneHot { .. } => "one_hot",
            Op::Conv2d(_) => "conv2d",
            Op::Conv2dBackpropInput { .. } => "conv2d_backprop_input",
            Op::Conv2dBackpropFilter { .. } => "conv2d_backprop_filter",
            Op::MaxPool2d(_) => "max_pool2d",
            Op::MaxPool2dGrad(_) => "max_pool2d_grad",
            Op::MaxPool2dGradGrad(_) => "max_pool2d_grad_grad",
            Op::AvgPool2d(_) => "avg_pool2d",
            Op::AvgPool2dGrad { .. } => "avg_pool2d_grad",
            Op::Random(p) => p.dist.name(),
            Op::StopGradient => "stop_gradient",
            Op::Fill { .. } => "fill_like",
        }
    }

    /// Output dtype and shape for these inputs, or what is wrong with them.
    pub fn infer(&self, inputs: &[&Tensor]) -> Result<(DType, Shape), OpError> {
        match self {
            Op::Unary(u) => elementwise::infer_unary(*u, inputs[0]),
            Op::Binary(b) => elementwise::infer_binary(*b, inputs[0], inputs[1]),
            Op::Select => elementwise::infer_select(inputs[0], inputs[1], inputs[2]),
            Op::Cast(d) => Ok((*d, inputs[0].shape().clone())),
            Op::Reduce { op, axes, keepdims } => reduce::infer_reduce(*op, inputs[0], axes, *keepdims),
            Op::ArgReduce { op, axis } => reduce::infer_arg(*op, inputs[0], *axis),
            Op::Cumsum { axis, .. } => scan::infer_scan("cumsum", inputs[0], *axis),
            Op::Cumprod { axis, .. } => scan::infer_scan("cumprod", inputs[0], *axis),
            Op::Argsort { axis, keep, .. } => sort::infer_argsort(inputs[0], *axis, *keep),
            Op::MatMul { transpose_a, transpose_b } => {
                linalg::infer_matmul(inputs[0], inputs[1], *transpose_a, *transpose_b)
            }
            Op::Reshape(s) => shape::infer_reshape(inputs[0], s),
            Op::Permute(p) => shape::infer_permute(inputs[0], p),
            Op::BroadcastTo(s) => shape::infer_broadcast_to(inputs[0], s),
            Op::Concat { axis } => shape::infer_concat(inputs, *axis),
            Op::Slice(s) => shape::infer_slice(inputs[0], s),
            Op::SliceGrad { input, slice } => shape::infer_slice_grad(inputs[0], input, slice),
            Op::Gather { axis } => shape::infer_gather(inputs[0], inputs[1], *axis),
            Op::ScatterProd { .. } if inputs[0].dtype() == DType::Bool => {
                Err(needs("scatter_prod", "a numeric tensor", DType::Bool, "; cast it first"))
            }
            Op::ScatterAdd { axis, size }
            | Op::ScatterMax { axis, size }
            | Op::ScatterMin { axis, size }
            | Op::ScatterProd { axis, size } => shape::infer_scatter_add(inputs[0], inputs[1], *axis, *size),
            Op::OneHot { depth, dtype } => shape::infer_one_hot(inputs[0], *depth, *dtype),
            Op::Conv2d(p) => nn::infer_conv2d(inputs[0], inputs[1], p),
            Op::Conv2dBackpropInput { params, input } => {
                nn::infer_conv2d_backprop_input(inputs[0], inputs[1], params, input)
            }
            Op::Conv2dBackpropFilter { params, filter } => {
                nn::infer_conv2d_backprop_filter(inputs[0], inputs[1], params, filter)
            }
            Op::MaxPool2d(p) | Op::AvgPool2d(p) => nn::infer_pool(self.name(), inputs[0], p),
            Op::MaxPool2dGrad(p) => nn::infer_max_pool_grad(inputs[0], inputs[1], p),
            Op::MaxPool2dGradGrad(p) => nn::infer_max_pool_grad_grad(inputs[0], inputs[1], p),
            Op::AvgPool2dGrad { params, input } => nn::infer_avg_pool_grad(inputs[0], params, input),
            Op::Random(p) => random::infer_random(p, inputs),
            Op::StopGradient | Op::Fill { .. } => Ok((inputs[0].dtype(), inputs[0].shape().clone())),
        }
    }
}

/// The single dispatch path (see the module docs). Panics with the op, the operands and
/// the caller's location when the inputs are invalid.
#[track_caller]
#[inline]
pub(crate) fn apply(op: Op, inputs: &[&Tensor]) -> Tensor {
    match try_apply(op, inputs) {
        Ok(t) => t,
        Err(e) => e.raise(Location::caller()),
    }
}

/// [`apply`] that returns the error instead of panicking.
#[inline]
pub(crate) fn try_apply(op: Op, inputs: &[&Tensor]) -> Result<Tensor, OpError> {
    let (dtype, shape) = match op.infer(inputs) {
        Ok(t) => t,
        Err(e) => return Err(e.with_operands(inputs.iter().map(|t| (t.dtype(), t.shape())))),
    };
    let with_operands = |e: OpError| e.with_operands(inputs.iter().map(|t| (t.dtype(), t.shape())));
    // Operands on two devices are refused here, traced or not.
    let at = device::placement(op.name(), inputs).map_err(with_operands)?;
    let out = if trace::is_tracing() {
        match trace::record_op(&op, inputs, dtype, &shape) {
            Ok(Some(t)) => t,
            Ok(None) => device::run_op_on(at, &op, inputs, dtype, shape).map_err(with_operands)?,
            Err(e) => return Err(with_operands(e)),
        }
    } else if inputs.iter().any(|t| t.is_symbolic()) {
        return Err(with_operands(trace::escaped(op.name())));
    } else {
        device::run_op_on(at, &op, inputs, dtype, shape).map_err(with_operands)?
    };
    if autodiff::recording() {
        autodiff::record(op, inputs, &out);
    }
    Ok(out)
}

/// An `OpError` for dtype requirements: "exp needs a float tensor (f32 or f64), got i32".
pub(crate) fn needs(op: &'static str, what: &str, got: DType, fix: &str) -> OpError {
    OpError::new(op, format!("needs {what}, got {got}{fix}"))
}

/// Argument checks of the composite ops, raised at the caller's location.
impl Tensor {
    /// `axis` normalised against this tensor's rank (negative counts from the end).
    #[track_caller]
    pub(crate) fn axis_or_raise(&self, op: &'static str, axis: i64) -> usize {
        // Not in a closure: `Location::caller()` must be read in this #[track_caller] fn.
        match crate::shape::norm_axis(axis, self.rank()) {
            Some(a) => a,
            None => OpError::new(op, format!("axis {axis} is out of range for rank {}", self.rank()))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller()),
        }
    }

    #[track_caller]
    pub(crate) fn float_or_raise(&self, op: &'static str) {
        if !self.dtype().is_float() {
            needs(op, "a float tensor", self.dtype(), "; cast it first (`.cast(DType::F32)`)")
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
    }
}
