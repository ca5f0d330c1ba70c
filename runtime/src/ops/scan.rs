//! Running sums and products (`tf.math.cumsum`, `tf.math.cumprod`): primitive ops, since
//! no composition of the others computes them in linear time. The gradient of a running
//! product is exact where the input has zeros (`autodiff::scan`).

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

pub(crate) fn infer_scan(op: &'static str, x: &Tensor, axis: usize) -> Result<(DType, Shape), OpError> {
    if x.dtype() == DType::Bool {
        return Err(needs(op, "a numeric tensor", DType::Bool, "; cast it first (`.cast(DType::I32)`)"));
    }
    if axis >= x.rank() {
        return Err(OpError::new(op, format!("axis {axis} is out of range for a tensor of rank {}", x.rank())));
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

    /// Running products along `axis`: `[a, b, c]` → `[a, a·b, a·b·c]`
    /// (`tf.math.cumprod`, `jnp.cumprod`). Floats multiply in order along the axis
    /// (each product rounded); integers wrap. Its gradient is exact also where the input
    /// holds zeros (TensorFlow's divides by the input there).
    #[track_caller]
    pub fn cumprod(&self, axis: i64) -> Tensor {
        self.cumprod_with(axis, CumsumOptions::default())
    }

    /// [`cumprod`](Tensor::cumprod) with the `exclusive` (`[1, a, a·b]`) and `reverse`
    /// (`[a·b·c, b·c, c]`) options of [`CumsumOptions`].
    #[track_caller]
    pub fn cumprod_with(&self, axis: i64, options: CumsumOptions) -> Tensor {
        let a = self.axis_or_raise("cumprod", axis);
        let CumsumOptions { exclusive, reverse } = options;
        apply(Op::Cumprod { axis: a, exclusive, reverse }, &[self])
    }
}
