//! Reductions: sum, mean, prod, max, min over axes (with keepdims), argmax/argmin.
//! The summation order is canonical and documented in `kernels/reduce.rs`.

use std::panic::Location;

use super::{apply, needs, AxisList, Op};
use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::{norm_axis, Axes, Shape};
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    /// Float mean = sum / n; integer mean truncates toward zero (TensorFlow).
    Mean,
    Prod,
    /// NaN propagates; an empty reduction gives −∞ (the type's minimum for integers).
    Max,
    Min,
}

impl ReduceOp {
    /// Every variant (for parsers and exhaustive tests).
    pub const ALL: [ReduceOp; 5] = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min];

    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "reduce_sum",
            ReduceOp::Mean => "reduce_mean",
            ReduceOp::Prod => "reduce_prod",
            ReduceOp::Max => "reduce_max",
            ReduceOp::Min => "reduce_min",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgOp {
    ArgMax,
    ArgMin,
}

impl ArgOp {
    /// Every variant (for parsers and exhaustive tests).
    pub const ALL: [ArgOp; 2] = [ArgOp::ArgMax, ArgOp::ArgMin];

    pub fn name(self) -> &'static str {
        match self {
            ArgOp::ArgMax => "argmax",
            ArgOp::ArgMin => "argmin",
        }
    }
}

/// Normalises `axes` against `rank`: sorted, unique, non-negative.
pub(crate) fn normalize_axes(op: &'static str, axes: &Axes, rank: usize) -> Result<AxisList, OpError> {
    match axes {
        Axes::All => Ok((0..rank).collect()),
        Axes::List(list) => {
            let mut out = AxisList::new();
            for &a in list {
                let n = norm_axis(a, rank)
                    .ok_or_else(|| OpError::new(op, format!("axis {a} is out of range for a tensor of rank {rank}")))?;
                if out.contains(&n) {
                    return Err(OpError::new(op, format!("axis {a} is repeated in {list:?}")));
                }
                out.push(n);
            }
            out.sort_unstable();
            Ok(out)
        }
    }
}

pub(crate) fn reduced_shape(shape: &Shape, axes: &[usize], keepdims: bool) -> Shape {
    Shape::from_iter_dims(shape.iter().enumerate().filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
        (false, _) => Some(d),
        (true, true) => Some(1),
        (true, false) => None,
    }))
}

pub(crate) fn infer_reduce(
    op: ReduceOp,
    x: &Tensor,
    axes: &[usize],
    keepdims: bool,
) -> Result<(DType, Shape), OpError> {
    if x.dtype() == DType::Bool {
        return Err(needs(op.name(), "a numeric tensor", DType::Bool, "; cast it first (`.cast(DType::I32)`)"));
    }
    if let Some(&a) = axes.iter().find(|&&a| a >= x.rank()) {
        return Err(OpError::new(op.name(), format!("axis {a} is out of range for a tensor of rank {}", x.rank())));
    }
    Ok((x.dtype(), reduced_shape(x.shape(), axes, keepdims)))
}

pub(crate) fn infer_arg(op: ArgOp, x: &Tensor, axis: usize) -> Result<(DType, Shape), OpError> {
    if x.dtype() == DType::Bool {
        return Err(needs(op.name(), "a numeric tensor", DType::Bool, ""));
    }
    if axis >= x.rank() {
        return Err(OpError::new(op.name(), format!("axis {axis} is out of range for a tensor of rank {}", x.rank())));
    }
    if x.dims()[axis] == 0 {
        return Err(OpError::new(op.name(), format!("cannot take {} over axis {axis} of length 0", op.name())));
    }
    Ok((DType::I64, reduced_shape(x.shape(), &[axis], false)))
}

impl Tensor {
    #[track_caller]
    fn reduce(&self, op: ReduceOp, axes: Axes, keepdims: bool) -> Tensor {
        match normalize_axes(op.name(), &axes, self.rank()) {
            Ok(axes) => apply(Op::Reduce { op, axes, keepdims }, &[self]),
            Err(e) => e.with_operands([(self.dtype(), self.shape())]).raise(Location::caller()),
        }
    }
}

macro_rules! reduce_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        impl Tensor {$(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
                self.reduce(ReduceOp::$op, axes.into(), keepdims)
            }
        )*}
    };
}

reduce_methods! {
    /// Sum over `axes` (`Axes::All` / `None` for all, `[]` for none; negative axes count
    /// from the end), keeping reduced dims as 1 when `keepdims`.
    sum => Sum,
    /// Mean over `axes` (integer tensors truncate toward zero).
    mean => Mean,
    prod => Prod,
    /// Maximum over `axes` (NaN propagates).
    max => Max,
    min => Min,
}

impl Tensor {
    /// Sum of all elements (a scalar).
    #[track_caller]
    pub fn sum_all(&self) -> Tensor {
        self.reduce(ReduceOp::Sum, Axes::All, false)
    }

    /// Mean of all elements (a scalar).
    #[track_caller]
    pub fn mean_all(&self) -> Tensor {
        self.reduce(ReduceOp::Mean, Axes::All, false)
    }

    #[track_caller]
    fn arg(&self, op: ArgOp, axis: i64) -> Tensor {
        match norm_axis(axis, self.rank()) {
            Some(a) => apply(Op::ArgReduce { op, axis: a }, &[self]),
            None => {
                OpError::new(op.name(), format!("axis {axis} is out of range for a tensor of rank {}", self.rank()))
                    .with_operands([(self.dtype(), self.shape())])
                    .raise(Location::caller())
            }
        }
    }

    #[track_caller]
    fn bool_or_raise(&self, op: &'static str) {
        if self.dtype() != DType::Bool {
            needs(op, "a bool tensor", self.dtype(), "; compare it first (`.ne(0.0)`)")
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
    }

    /// Variance over `axes` (`tf.math.reduce_variance`): the mean of the squared
    /// deviations from the mean (dividing by n). Float tensors only.
    #[track_caller]
    pub fn variance(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        self.float_or_raise("reduce_variance");
        let axes = axes.into();
        let mean = self.mean(axes.clone(), true);
        (self - &mean).square().mean(axes, keepdims)
    }

    /// Standard deviation over `axes` (`tf.math.reduce_std`): √variance. Float tensors only.
    #[track_caller]
    pub fn std(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        self.float_or_raise("reduce_std");
        self.variance(axes, keepdims).sqrt()
    }

    /// Euclidean norm over `axes`, √Σx² (`tf.norm`'s default). Float tensors only.
    #[track_caller]
    pub fn norm(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        self.float_or_raise("norm");
        self.square().sum(axes, keepdims).sqrt()
    }

    /// `x / √max(Σx², epsilon)` over `axes` (`tf.math.l2_normalize`; TensorFlow's
    /// epsilon is 1e-12). Float tensors only.
    #[track_caller]
    pub fn l2_normalize(&self, axes: impl Into<Axes>, epsilon: f64) -> Tensor {
        self.float_or_raise("l2_normalize");
        self * &self.square().sum(axes, true).maximum(epsilon).rsqrt()
    }

    /// Whether any element over `axes` is true (`tf.reduce_any`; false when empty).
    #[track_caller]
    pub fn any(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        self.bool_or_raise("reduce_any");
        // The max of an empty slice is i32::MIN: false.
        self.cast(DType::I32).max(axes, keepdims).gt(0)
    }

    /// Whether every element over `axes` is true (`tf.reduce_all`; true when empty).
    #[track_caller]
    pub fn all(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        self.bool_or_raise("reduce_all");
        // The min of an empty slice is i32::MAX: true.
        self.cast(DType::I32).min(axes, keepdims).gt(0)
    }

    /// log Σ exp(x) over `axes` (`tf.reduce_logsumexp`), computed as m + log Σ exp(x − m)
    /// with m the maximum (0 where that is not finite: a slice of −∞ gives −∞, one holding
    /// +∞ gives +∞), kept out of the gradient — which is then softmax(x), as TensorFlow's.
    /// Float tensors only.
    #[track_caller]
    pub fn logsumexp(&self, axes: impl Into<Axes>, keepdims: bool) -> Tensor {
        self.float_or_raise("reduce_logsumexp");
        let axes = axes.into();
        let max = self.max(axes.clone(), true);
        let finite = max.abs().lt(f64::INFINITY);
        let shift = max.select(&finite, 0.0).stop_gradient();
        let sum = (self - &shift).exp().sum(axes, keepdims);
        &sum.log() + &shift.reshape_to(sum.shape())
    }

    /// Index (i64) of the largest element along `axis`; ties → the first.
    #[track_caller]
    pub fn argmax(&self, axis: i64) -> Tensor {
        self.arg(ArgOp::ArgMax, axis)
    }

    /// Index (i64) of the smallest element along `axis`; ties → the first.
    #[track_caller]
    pub fn argmin(&self, axis: i64) -> Tensor {
        self.arg(ArgOp::ArgMin, axis)
    }
}
