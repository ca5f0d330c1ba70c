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
    Ok(cached_scalar(s, like))
}

/// Rust scalars become rank-0 constant tensors. Programs reuse a handful of constants
/// (`2.0`, `1.0`, `0.5` in a loop), so the last few are kept per thread: a hit costs a
/// compare and a clone instead of two allocations. Constants are immutable and never
/// tracked by tapes, so sharing one between uses is unobservable.
fn cached_scalar(s: Scalar, like: DType) -> Tensor {
    const SLOTS: usize = 8;
    type Slot = Option<(DType, u64, Tensor)>;
    thread_local! {
        static CACHE: std::cell::RefCell<([Slot; SLOTS], usize)> = const { std::cell::RefCell::new(([const { None }; SLOTS], 0)) };
    }
    let key = match s {
        Scalar::Float(v) => v.to_bits(),
        Scalar::Int(v) => v as u64,
        Scalar::Bool(b) => b as u64,
    };
    let fresh = || Tensor::scalar_of(s, like);
    CACHE
        .try_with(|c| {
            let mut c = c.borrow_mut();
            if let Some((_, _, t)) = c.0.iter().flatten().find(|(d, k, _)| *d == like && *k == key) {
                return t.clone();
            }
            let t = fresh();
            let i = c.1;
            c.0[i] = Some((like, key, t.clone()));
            c.1 = (i + 1) % SLOTS;
            t
        })
        .unwrap_or_else(|_| fresh())
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
