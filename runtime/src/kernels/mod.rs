//! Eager CPU kernels, one file per op family. Only `crate::ops::apply` calls [`run`].

pub(crate) mod bcast;
pub(crate) mod conv;
pub(crate) mod denormals;
pub(crate) mod elementwise;
pub(crate) mod im2col;
pub(crate) mod linalg;
pub(crate) mod par;
pub(crate) mod random;
pub(crate) mod reduce;
pub(crate) mod scan;
pub(crate) mod shape;
pub(crate) mod small_gemm;
pub(crate) mod sort;

use crate::dtype::DType;
use crate::ops::Op;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Runs the eager kernel of `op` on inputs already validated by `Op::infer`, producing
/// a tensor of the inferred `dtype` and `shape`.
pub(crate) fn run(op: &Op, x: &[&Tensor], dtype: DType, shape: Shape) -> Tensor {
    match op {
        Op::Unary(u) => elementwise::unary(*u, x[0], shape),
        Op::Binary(b) => elementwise::binary(*b, x[0], x[1], shape),
        Op::Select => elementwise::select(x[0], x[1], x[2], shape),
        Op::Cast(d) => elementwise::cast(x[0], *d, shape),
        Op::Reduce { op, axes, .. } => reduce::reduce(*op, x[0], axes, shape),
        Op::ArgReduce { op, axis } => reduce::arg_reduce(*op, x[0], *axis, shape),
        Op::Cumsum { axis, exclusive, reverse } => scan::scan(x[0], *axis, (*exclusive, *reverse), false),
        Op::Cumprod { axis, exclusive, reverse } => scan::scan(x[0], *axis, (*exclusive, *reverse), true),
        Op::Argsort { axis, descending, keep } => sort::argsort(x[0], *axis, *descending, *keep),
        Op::MatMul { transpose_a, transpose_b } => linalg::matmul(x[0], x[1], *transpose_a, *transpose_b, shape),
        Op::Reshape(_) | Op::StopGradient => x[0].view_as(shape),
        Op::Permute(p) => shape::permute(x[0], p),
        Op::BroadcastTo(_) => shape::broadcast_to(x[0], shape),
        Op::Concat { axis } => shape::concat(x, *axis, shape),
        Op::Slice(s) => shape::slice(x[0], s, shape),
        Op::SliceGrad { slice, .. } => shape::slice_grad(x[0], shape, slice),
        Op::Gather { axis } => shape::gather(x[0], x[1], *axis, shape),
        Op::ScatterAdd { axis, size } => shape::scatter_add(x[0], x[1], *axis, *size, shape),
        Op::ScatterMax { axis, size } => shape::scatter_extreme(x[0], x[1], (*axis, *size), true, shape),
        Op::ScatterMin { axis, size } => shape::scatter_extreme(x[0], x[1], (*axis, *size), false, shape),
        Op::ScatterProd { axis, size } => shape::scatter_prod(x[0], x[1], *axis, *size, shape),
        Op::OneHot { depth, .. } => shape::one_hot(x[0], *depth, dtype, shape),
        Op::Conv2d(p) => conv::conv2d(x[0], x[1], p, shape),
        Op::Conv2dBackpropInput { params, .. } => conv::conv2d_backprop_input(x[0], x[1], params, shape),
        Op::Conv2dBackpropFilter { params, .. } => conv::conv2d_backprop_filter(x[0], x[1], params, shape),
        Op::MaxPool2d(p) => conv::max_pool(x[0], p, shape),
        Op::MaxPool2dGrad(p) => conv::max_pool_grad(x[0], x[1], p, shape),
        Op::MaxPool2dGradGrad(p) => conv::max_pool_grad_grad(x[0], x[1], p, shape),
        Op::AvgPool2d(p) => conv::avg_pool(x[0], p, shape),
        Op::AvgPool2dGrad { params, .. } => conv::avg_pool_grad(x[0], params, shape),
        Op::Random(p) => random::random(p, x.first().copied(), shape),
        Op::Fill { value } => Tensor::full(shape, *value, dtype),
    }
}
