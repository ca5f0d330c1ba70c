//! What can stand on the other side of a binary op: tensors, variables, Rust scalars.

use crate::dtype::{DType, Scalar};
use crate::error::OpError;
use crate::tensor::Tensor;

/// A value usable as an operand of a tensor op. Rust scalars take the dtype of the
/// tensor they meet (JAX's weak typing): `&x * 2.0` on an f32 tensor stays f32.
pub trait Operand {
    /// The operand as a tensor, given the dtype of the other operand.
    fn into_tensor(self, like: DType, op: &'static str) -> Result<Tensor, OpError>;
    /// The operand's own dtype and whether it is "strong" (a tensor) or "weak" (a Rust
    /// scalar, which adapts to the other side).
    fn natural_dtype(&self) -> (DType, bool);
}

impl Operand for Tensor {
    fn natural_dtype(&self) -> (DType, bool) {
        (self.dtype(), true)
    }
    #[inline]
    fn into_tensor(self, _: DType, _: &'static str) -> Result<Tensor, OpError> {
        Ok(self)
    }
}

impl Operand for &Tensor {
    fn natural_dtype(&self) -> (DType, bool) {
        (self.dtype(), true)
    }
    #[inline]
    fn into_tensor(self, _: DType, _: &'static str) -> Result<Tensor, OpError> {
        Ok(self.clone())
    }
}

pub(crate) fn scalar_operand(s: Scalar, like: DType, op: &'static str) -> Result<Tensor, OpError> {
    if !s.fits(like) {
        return Err(OpError::new(
            op,
            format!("the Rust scalar {s} cannot take the dtype {like} of the other operand; cast the tensor first"),
        ));
    }
    Ok(Tensor::scalar_of(s, like))
}

macro_rules! scalar_operand {
    ($($t:ty),*) => {$(
        impl Operand for $t {
            fn natural_dtype(&self) -> (DType, bool) {
                let d = match Scalar::from(*self) {
                    Scalar::Float(_) => DType::F32,
                    Scalar::Int(_) => DType::I32,
                    Scalar::Bool(_) => DType::Bool,
                };
                (d, false)
            }
            #[inline]
            fn into_tensor(self, like: DType, op: &'static str) -> Result<Tensor, OpError> {
                scalar_operand(Scalar::from(self), like, op)
            }
        }
    )*};
}
scalar_operand!(f32, f64, i32, i64, bool);
