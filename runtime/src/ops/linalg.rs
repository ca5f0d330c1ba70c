//! Matrix multiplication (2-D and batched with broadcast batch dims, transpose flags).

use super::{apply, needs, Op};
use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::{Shape, UNKNOWN};
use crate::tensor::Tensor;

/// `(batch, m, k, n)` of a matmul, with the broadcast batch shape.
pub(crate) struct MatmulDims {
    pub batch: Shape,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

pub(crate) fn matmul_dims(a: &Shape, b: &Shape, ta: bool, tb: bool) -> Result<MatmulDims, OpError> {
    if a.rank() < 2 || b.rank() < 2 {
        return Err(OpError::new("matmul", "both operands need rank >= 2 (use reshape or expand_dims for vectors)"));
    }
    let (ra, rb) = (a.rank(), b.rank());
    let (m, ka) = if ta { (a[ra - 1], a[ra - 2]) } else { (a[ra - 2], a[ra - 1]) };
    let (kb, n) = if tb { (b[rb - 1], b[rb - 2]) } else { (b[rb - 2], b[rb - 1]) };
    if ka != kb && ka != UNKNOWN && kb != UNKNOWN {
        return Err(OpError::new(
            "matmul",
            format!("inner dimensions differ: {ka} vs {kb} (transpose_a={ta}, transpose_b={tb})"),
        ));
    }
    let batch = Shape::broadcast(&Shape::new(&a[..ra - 2]), &Shape::new(&b[..rb - 2]))
        .ok_or_else(|| OpError::new("matmul", "batch dimensions cannot be broadcast together"))?;
    Ok(MatmulDims { batch, m, k: if ka == UNKNOWN { kb } else { ka }, n })
}

pub(crate) fn infer_matmul(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<(DType, Shape), OpError> {
    if a.dtype() != b.dtype() {
        return Err(OpError::new(
            "matmul",
            format!("dtype mismatch: {} vs {}; cast one operand", a.dtype(), b.dtype()),
        ));
    }
    if a.dtype() == DType::Bool {
        return Err(needs("matmul", "numeric tensors", DType::Bool, ""));
    }
    let d = matmul_dims(a.shape(), b.shape(), ta, tb)?;
    let mut s = d.batch.clone();
    s.push(d.m);
    s.push(d.n);
    Ok((a.dtype(), s))
}

impl Tensor {
    /// Matrix product over the last two axes; leading axes are batch axes and broadcast.
    #[track_caller]
    pub fn matmul(&self, rhs: &Tensor) -> Tensor {
        self.matmul_t(rhs, false, false)
    }

    /// `op(self) @ op(rhs)` where `op` transposes the last two axes when its flag is set
    /// (no transposed copy is made).
    #[track_caller]
    pub fn matmul_t(&self, rhs: &Tensor, transpose_a: bool, transpose_b: bool) -> Tensor {
        apply(Op::MatMul { transpose_a, transpose_b }, &[self, rhs])
    }
}
