//! Problems with nothing to read on a GPU: an empty result (no launch at all), and an
//! empty operand whose result is one value repeated — a reduction over no elements (the
//! runtime's own value for it: 0, 1, ±∞, NaN for a float mean, the type's extremes for
//! integer max and min) and matmuls and convolutions (and their gradients) summing over
//! nothing (zeros). Each is a fill on the device, as a CUDA graph can capture it.

use tensorjit_runtime::buffer::Buffer;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ir::ValueType;
use tensorjit_runtime::ops::Op;
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend as rt;
use tensorjit_runtime::{DType, Tensor};

use super::backend::{CudaMemory, OpCall};
use super::typed::element_words;

/// `op`'s result when it has nothing to read (`Ok(None)`: it has).
pub(super) fn run(call: OpCall<'_>) -> Result<Option<Tensor>, Error> {
    let OpCall { gpu, op, x, dtype, shape } = call;
    if shape.numel() == 0 {
        return CudaMemory::new_typed(gpu, dtype, shape, |_| Ok(())).map(Some);
    }
    if !x.iter().any(|t| t.numel() == 0) {
        return Ok(None);
    }
    let Some(value) = constant_result(op, dtype)? else { return Ok(None) };
    super::moves::fill_with(gpu, element_words(&value), dtype, shape)
}

/// The one value of every element of `op`'s result (of `dtype`) when an operand is
/// empty and the result is not; `None` for ops whose result then still varies.
pub fn constant_result(op: &Op, dtype: DType) -> Result<Option<Buffer>, Error> {
    Ok(Some(match op {
        // The runtime's value of a reduction over nothing, from the runtime itself.
        Op::Reduce { op, .. } => {
            let nothing = Tensor::zeros([0], dtype);
            let reduce = Op::Reduce { op: *op, axes: [0].into_iter().collect(), keepdims: false };
            let one = rt::run_kernel(&reduce, &[&nothing], &ValueType { dtype, shape: Shape::scalar() })?;
            host_buffer(&one)?
        }
        Op::MatMul { .. } | Op::Conv2d(_) | Op::Conv2dBackpropInput { .. } | Op::Conv2dBackpropFilter { .. } => {
            host_buffer(&Tensor::zeros([1], dtype))?
        }
        _ => return Ok(None),
    }))
}

/// A host tensor's elements.
fn host_buffer(t: &Tensor) -> Result<Buffer, Error> {
    Ok(match t.dtype() {
        DType::F32 => Buffer::F32(t.to_vec()?),
        DType::F64 => Buffer::F64(t.to_vec()?),
        DType::I32 => Buffer::I32(t.to_vec()?),
        DType::I64 => Buffer::I64(t.to_vec()?),
        DType::Bool => Buffer::Bool(t.to_vec()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorjit_runtime::ops::ReduceOp;

    fn reduce(op: ReduceOp, dtype: DType) -> Buffer {
        let op = Op::Reduce { op, axes: [1].into_iter().collect(), keepdims: false };
        constant_result(&op, dtype).ok().flatten().expect("a reduction's result is constant")
    }

    #[test]
    fn empty_reductions_take_the_runtimes_values() {
        // The runtime reducing [3, 0] over its empty axis gives each of these.
        for (op, dtype) in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min]
            .into_iter()
            .flat_map(|op| [DType::F32, DType::F64, DType::I32, DType::I64].map(|d| (op, d)))
        {
            let x = Tensor::zeros([3, 0], dtype);
            let want = rt::run_kernel(
                &Op::Reduce { op, axes: [1].into_iter().collect(), keepdims: false },
                &[&x],
                &ValueType { dtype, shape: Shape::new(&[3]) },
            )
            .and_then(|t| host_buffer(&t))
            .expect("the runtime reduces over nothing");
            let one = reduce(op, dtype);
            let words = element_words(&one);
            let want_words = element_words(&want);
            assert_eq!(words, want_words, "{op:?} of {dtype}");
        }
        assert_eq!(reduce(ReduceOp::Max, DType::I64), Buffer::I64(vec![i64::MIN]));
        assert_eq!(reduce(ReduceOp::Min, DType::F32), Buffer::F32(vec![f32::INFINITY]));
        assert_eq!(reduce(ReduceOp::Prod, DType::I32), Buffer::I32(vec![1]));
        match reduce(ReduceOp::Mean, DType::F64) {
            Buffer::F64(v) => assert!(v[0].is_nan(), "a float mean of nothing is NaN"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn contractions_over_nothing_are_zeros_and_other_ops_are_not_constant() {
        let mm = Op::MatMul { transpose_a: false, transpose_b: false };
        assert_eq!(constant_result(&mm, DType::F64).ok().flatten(), Some(Buffer::F64(vec![0.0])));
        assert_eq!(constant_result(&Op::Concat { axis: 0 }, DType::F32).ok().flatten(), None);
    }
}
