//! Running sums (`tf.math.cumsum`): a primitive op, since no composition of the others
//! computes them in linear time.

use super::{apply, needs, Op};
use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// The options of [`Tensor::cumsum_with`] (TensorFlow's `exclusive` and `reverse`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CumsumOptions {
    /// Leave each element out of its own sum: `[a, b, c]` → `[0, a, a + b]`.
    pub exclusive: bool,
    /// Sum from the end: `[a, b, c]` → `[a + b + c, b + c, c]`.
    pub reverse: bool,
}

pub(crate) fn infer_cumsum(x: &Tensor, axis: usize) -> Result<(DType, Shape), OpError> {
    if x.dtype() == DType::Bool {
        return Err(needs("cumsum", "a numeric tensor", DType::Bool, "; cast it first (`.cast(DType::I32)`)"));
    }
    if axis >= x.rank() {
        return Err(OpError::new("cumsum", format!("axis {axis} is out of range for a tensor of rank {}", x.rank())));
    }
    Ok((x.dtype(), x.shape().clone()))
}

impl Tensor {
    /// Running sums along `axis`: `[a, b, c]` → `[a, a + b, a + b + c]`
    /// (`tf.math.cumsum`). Floats add in order along the axis; integers wrap.
    #[track_caller]
    pub fn cumsum(&self, axis: i64) -> Tensor {
        self.cumsum_with(axis, CumsumOptions::default())
    }

    /// [`cumsum`](Tensor::cumsum) with TensorFlow's `exclusive` and `reverse` options.
    #[track_caller]
    pub fn cumsum_with(&self, axis: i64, options: CumsumOptions) -> Tensor {
        let a = self.axis_or_raise("cumsum", axis);
        let CumsumOptions { exclusive, reverse } = options;
        apply(Op::Cumsum { axis: a, exclusive, reverse }, &[self])
    }
}
