//! Sorting: `argsort` is a primitive op (its result is integer, so it has no gradient);
//! `sort`, `top_k` and `take_along_axis` are built from it and from a flat `gather`, so
//! their values differentiate (the gradient scatters back to the positions taken).

use std::panic::Location;

use super::{needs, Op};
use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::{Shape, UNKNOWN};
use crate::tensor::Tensor;

pub(crate) fn infer_argsort(x: &Tensor, axis: usize, keep: Option<usize>) -> Result<(DType, Shape), OpError> {
    if x.dtype() == DType::Bool {
        return Err(needs("argsort", "a numeric tensor", DType::Bool, "; cast it first (`.cast(DType::I32)`)"));
    }
    if axis >= x.rank() {
        return Err(OpError::new("argsort", format!("axis {axis} is out of range for a tensor of rank {}", x.rank())));
    }
    if x.dims()[axis] != UNKNOWN && x.dims()[axis] > u32::MAX as usize {
        return Err(OpError::new("argsort", format!("axis {axis} is longer than 2^32 elements")));
    }
    let Some(k) = keep else { return Ok((DType::I64, x.shape().clone())) };
    let n = x.dims()[axis];
    if n == UNKNOWN || k > n {
        let len = if n == UNKNOWN { "unknown length".to_string() } else { format!("length {n}") };
        return Err(OpError::new("argsort", format!("cannot keep {k} positions of axis {axis} of {len}")));
    }
    let mut dims = x.dims().to_vec();
    dims[axis] = k;
    Ok((DType::I64, Shape::from(dims)))
}

impl Tensor {
    /// The positions that sort each line along `axis` (`tf.argsort` with
    /// `stable=True`): equal values keep their order, also when `descending`; NaN sorts
    /// above +∞ and −0 equals +0. An i64 tensor of `self`'s shape.
    #[track_caller]
    pub fn argsort(&self, axis: i64, descending: bool) -> Tensor {
        let a = self.axis_or_raise("argsort", axis);
        super::apply(Op::Argsort { axis: a, descending, keep: None }, &[self])
    }

    /// The values sorted along `axis` (`tf.sort`; the order of
    /// [`argsort`](Tensor::argsort)). Differentiable: the gradient goes back to each
    /// value's position.
    #[track_caller]
    pub fn sort(&self, axis: i64, descending: bool) -> Tensor {
        let order = self.argsort(axis, descending);
        let a = self.axis_or_raise("sort", axis);
        let n = self.known_dim_or_raise("sort", a);
        // Positions from argsort are in range: no check of them on the host.
        self.gather_along(&order, a, n)
    }

    /// The `k` largest values of each last-axis line and their positions, largest first
    /// (`tf.math.top_k` with `sorted=True`; of equal values the first position comes
    /// first; NaN counts as the largest). The values differentiate; the positions are
    /// i64. Only the `k` kept are sorted: a selection finds them first.
    #[track_caller]
    pub fn top_k(&self, k: usize) -> (Tensor, Tensor) {
        if self.rank() == 0 {
            OpError::new("top_k", "needs a tensor of rank >= 1")
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
        let last = self.rank() - 1;
        let n = self.known_dim_or_raise("top_k", last);
        if k > n {
            OpError::new("top_k", format!("k = {k} is larger than the last axis ({n})"))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
        let positions = super::apply(Op::Argsort { axis: last, descending: true, keep: Some(k) }, &[self]);
        (self.gather_along(&positions, last, n), positions)
    }

    /// `out[.., j, ..] = self[.., indices[.., j, ..], ..]` along `axis`
    /// (`np.take_along_axis`, `tf.gather(.., batch_dims=rank-1)`): `indices` has
    /// `self`'s rank and, but for `axis`, its dims; each index is in `[0, n)`, checked
    /// when the indices are host values. Differentiable in `self`.
    #[track_caller]
    pub fn take_along_axis(&self, indices: &Tensor, axis: i64) -> Tensor {
        let at = Location::caller();
        let fail = |msg: String| -> ! {
            OpError::new("take_along_axis", msg)
                .with_operands([(self.dtype(), self.shape()), (indices.dtype(), indices.shape())])
                .raise(at)
        };
        let a = self.axis_or_raise("take_along_axis", axis);
        if !indices.dtype().is_int() {
            fail(format!("needs integer indices, got {}", indices.dtype()))
        }
        let same = |x: usize, y: usize| x == y || x == UNKNOWN || y == UNKNOWN;
        let fits = indices.rank() == self.rank()
            && (0..self.rank()).all(|i| i == a || same(self.dims()[i], indices.dims()[i]));
        if !fits {
            fail(format!("indices of shape {} must match {} on every axis but {a}", indices.shape(), self.shape()))
        }
        let n = self.known_dim_or_raise("take_along_axis", a);
        if indices.dims().iter().filter(|&&d| d == UNKNOWN).count() > 1 {
            fail("the indices may have at most one axis of unknown size".into())
        }
        let idx = indices.cast(DType::I64);
        if !idx.is_symbolic() && idx.device() == crate::device::Device::Cpu {
            if let Some(bad) = idx.as_slice::<i64>().ok().and_then(|v| v.iter().find(|&&i| !(0..n as i64).contains(&i)))
            {
                fail(format!("index {bad} is out of range for axis {a} of length {n}"))
            }
        }
        self.gather_along(&idx, a, n)
    }

    /// [`take_along_axis`](Tensor::take_along_axis) of i64 indices already checked,
    /// along axis `a` of length `n`.
    #[track_caller]
    fn gather_along(&self, indices: &Tensor, a: usize, n: usize) -> Tensor {
        // The axis last, every line flattened into one vector: line r's element i is at
        // r·n + i, and the rows' offsets r·n come from an exclusive count of the lines.
        let rank = self.rank() as i64;
        let perm: Vec<i64> = (0..rank).filter(|&i| i != a as i64).chain([a as i64]).collect();
        let moved = |t: &Tensor| if a as i64 == rank - 1 { t.clone() } else { t.permute(&perm) };
        let (x, idx) = (moved(self), moved(indices));
        let lines = Tensor::fill_like(&idx.sum(-1, true), 1.0);
        let first = lines.flatten().cumsum_with(0, super::CumsumOptions { exclusive: true, reverse: false });
        let offsets = first.reshape_to(lines.shape()) * n as i64;
        let taken = x.flatten().gather(&(&idx + &offsets).flatten(), 0).reshape_to(idx.shape());
        if a as i64 == rank - 1 {
            return taken;
        }
        let mut back = vec![0i64; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            back[p as usize] = i as i64;
        }
        taken.permute(&back)
    }
}
