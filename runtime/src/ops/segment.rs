//! Segment reductions (`tf.math.unsorted_segment_sum` / `_mean` / `_max` / `_min` /
//! `_prod`, `jax.ops.segment_sum`): the slices of a tensor reduced by segment id into a
//! fixed number of segments. Sums are built on the scatter-add that is gather's gradient, so
//! they trace, compile, run on GPUs and differentiate (a segment sum's gradient
//! gathers); max, min and product are scatters of their own (on a GPU too: one thread
//! per output element folds its segment's slices in the CPU's order).

use std::panic::Location;

use super::{apply, needs, Op};
use crate::error::OpError;
use crate::shape::UNKNOWN;
use crate::tensor::Tensor;

impl Tensor {
    fn numeric_or_raise_at(&self, op: &'static str, at: &Location<'_>) {
        if self.dtype() == crate::dtype::DType::Bool {
            needs(op, "a numeric tensor", self.dtype(), "; cast it first")
                .with_operands([(self.dtype(), self.shape())])
                .raise(at)
        }
    }

    /// Checks `segment_ids` against `self` (integer ids whose shape leads `self`'s, host
    /// ids below `num_segments`), raising at the caller's location.
    #[track_caller]
    fn check_segments(&self, op: &'static str, ids: &Tensor, num_segments: usize) {
        // Read here, not in the closure: the location of this #[track_caller] fn's caller.
        let at = Location::caller();
        let operands = [(self.dtype(), self.shape()), (ids.dtype(), ids.shape())];
        let fail = |e: OpError| -> ! { e.with_operands(operands).raise(at) };
        if !ids.dtype().is_int() {
            fail(needs(op, "integer segment ids", ids.dtype(), "; cast them (`.cast(DType::I64)`)"))
        }
        let leads = ids.rank() <= self.rank()
            && ids.dims().iter().zip(self.dims()).all(|(&i, &d)| i == d || i == UNKNOWN || d == UNKNOWN);
        if !leads {
            fail(OpError::new(
                op,
                format!(
                    "segment ids of shape {} must match the leading axes of data of shape {}",
                    ids.shape(),
                    self.shape()
                ),
            ))
        }
        if num_segments == UNKNOWN {
            fail(OpError::new(op, "num_segments must be a known size"))
        }
        if ids.is_symbolic() || ids.device() != crate::device::Device::Cpu {
            return;
        }
        let too_large = |i: i64| i >= num_segments as i64;
        let bad = match ids.dtype() {
            crate::dtype::DType::I32 => {
                ids.as_slice::<i32>().ok().and_then(|v| v.iter().map(|&i| i64::from(i)).find(|&i| too_large(i)))
            }
            _ => ids.as_slice::<i64>().ok().and_then(|v| v.iter().copied().find(|&i| too_large(i))),
        };
        if let Some(i) = bad {
            fail(OpError::new(
                op,
                format!("segment id {i} is out of range for {num_segments} segments (negative ids are dropped)"),
            ))
        }
    }

    /// Sums the slices of `self` that share a segment id into `num_segments` outputs
    /// (`tf.math.unsorted_segment_sum`): `segment_ids` has the shape of `self`'s leading
    /// axes, and the result has shape `[num_segments] + self.shape[ids.rank..]`.
    /// Segments no slice names are 0; a negative id drops its slice (TensorFlow); an id
    /// of `num_segments` or more is an error when the ids are host values (ids computed
    /// inside a traced function, or on a GPU, drop such slices instead). Slices are
    /// added in the order of their ids' positions, so the sum is deterministic.
    #[track_caller]
    pub fn unsorted_segment_sum(&self, segment_ids: &Tensor, num_segments: usize) -> Tensor {
        self.check_segments("unsorted_segment_sum", segment_ids, num_segments);
        apply(Op::ScatterAdd { axis: 0, size: num_segments }, &[self, segment_ids])
    }

    /// The mean of the slices of each segment (`tf.math.unsorted_segment_mean`): the
    /// [`unsorted_segment_sum`](Tensor::unsorted_segment_sum) divided by the number of
    /// slices in the segment; segments no slice names are 0. Float tensors only.
    #[track_caller]
    pub fn unsorted_segment_mean(&self, segment_ids: &Tensor, num_segments: usize) -> Tensor {
        self.float_or_raise("unsorted_segment_mean");
        self.check_segments("unsorted_segment_mean", segment_ids, num_segments);
        let sums = apply(Op::ScatterAdd { axis: 0, size: num_segments }, &[self, segment_ids]);
        let ones = Tensor::fill_like(&segment_ids.cast(self.dtype()), 1.0);
        let counts = apply(Op::ScatterAdd { axis: 0, size: num_segments }, &[&ones, segment_ids]).maximum(1.0);
        let mut dims: Vec<i64> = vec![num_segments as i64];
        dims.extend(std::iter::repeat_n(1, sums.rank() - 1));
        sums / counts.reshape(dims)
    }

    /// The largest slice value of each segment, element by element
    /// (`tf.math.unsorted_segment_max`): segments no slice names hold the dtype's lowest
    /// value (`f32::MIN`, `i64::MIN`, …), as in TensorFlow; a NaN wins. Ids as in
    /// [`unsorted_segment_sum`](Tensor::unsorted_segment_sum). The gradient goes to the
    /// slices equal to their segment's maximum, shared equally among ties.
    #[track_caller]
    pub fn unsorted_segment_max(&self, segment_ids: &Tensor, num_segments: usize) -> Tensor {
        self.numeric_or_raise_at("unsorted_segment_max", Location::caller());
        self.check_segments("unsorted_segment_max", segment_ids, num_segments);
        apply(Op::ScatterMax { axis: 0, size: num_segments }, &[self, segment_ids])
    }

    /// The product of the slices of each segment, element by element
    /// (`tf.math.unsorted_segment_prod`, `jax.ops.segment_prod`), multiplied in the order
    /// of their ids' positions; segments no slice names are 1; integers wrap. Ids as in
    /// [`unsorted_segment_sum`](Tensor::unsorted_segment_sum). The gradient is
    /// TensorFlow's, exact where slices hold zeros.
    #[track_caller]
    pub fn unsorted_segment_prod(&self, segment_ids: &Tensor, num_segments: usize) -> Tensor {
        self.numeric_or_raise_at("unsorted_segment_prod", Location::caller());
        self.check_segments("unsorted_segment_prod", segment_ids, num_segments);
        apply(Op::ScatterProd { axis: 0, size: num_segments }, &[self, segment_ids])
    }

    /// The smallest slice value of each segment (`tf.math.unsorted_segment_min`); empty
    /// segments hold the dtype's highest value. As [`unsorted_segment_max`](Tensor::unsorted_segment_max) otherwise.
    #[track_caller]
    pub fn unsorted_segment_min(&self, segment_ids: &Tensor, num_segments: usize) -> Tensor {
        self.numeric_or_raise_at("unsorted_segment_min", Location::caller());
        self.check_segments("unsorted_segment_min", segment_ids, num_segments);
        apply(Op::ScatterMin { axis: 0, size: num_segments }, &[self, segment_ids])
    }
}

#[cfg(test)]
mod tests {
    use crate::tensor::Tensor;

    #[test]
    fn the_documented_behaviour() {
        let data = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0], [5]).unwrap();
        let ids = Tensor::from_vec(vec![2i64, 0, 2, -1, 0], [5]).unwrap();
        assert_eq!(data.unsorted_segment_sum(&ids, 4).to_vec::<f32>().unwrap(), [7.0, 0.0, 4.0, 0.0]);
        assert_eq!(data.unsorted_segment_mean(&ids, 4).to_vec::<f32>().unwrap(), [3.5, 0.0, 2.0, 0.0]);
        assert_eq!(data.unsorted_segment_max(&ids, 4).to_vec::<f32>().unwrap(), [5.0, f32::MIN, 3.0, f32::MIN]);
        assert_eq!(data.unsorted_segment_min(&ids, 4).to_vec::<f32>().unwrap(), [2.0, f32::MAX, 1.0, f32::MAX]);
        assert_eq!(data.unsorted_segment_prod(&ids, 4).to_vec::<f32>().unwrap(), [10.0, 1.0, 3.0, 1.0]);
    }
}
