//! Argsort along one axis of `[outer, n, inner]`: a stable sort of each line's
//! positions by value (ties keep their order, also when descending), NaN above +∞.

use rayon::prelude::*;

use super::par::CHUNK;
use crate::buffer::{alloc, Buffer};
use crate::dtype::Element;
use crate::tensor::Tensor;

/// A value as an unsigned integer in the documented order (NaN above +∞, one key for
/// every NaN, −0 and +0 equal), packed with its position below it: sorting the packed
/// words sorts by value, then by position — a stable order from an unstable sort of
/// distinct words.
trait SortKey: Element {
    type Packed: Ord + Copy + Send;
    /// `self` at position `i`, the key inverted when `descending`.
    fn pack(self, i: usize, descending: bool) -> Self::Packed;
    fn position(p: Self::Packed) -> i64;
}

macro_rules! sort_key {
    ($t:ty, $bits:ty, $packed:ty, $width:expr, |$v:ident| $key:expr) => {
        impl SortKey for $t {
            type Packed = $packed;
            #[inline]
            fn pack(self, i: usize, descending: bool) -> $packed {
                let $v = self;
                let key: $bits = $key;
                let key = if descending { !key } else { key };
                (key as $packed) << $width | i as $packed
            }
            #[inline]
            fn position(p: $packed) -> i64 {
                (p & ((1 << $width) - 1)) as i64
            }
        }
    };
}

/// The order-preserving map of an IEEE float's bits: negatives flipped, positives
/// above them.
macro_rules! float_bits {
    ($v:ident, $t:ty, $sign:expr) => {{
        let canonical = if $v.is_nan() {
            <$t>::NAN
        } else if $v == 0.0 {
            0.0
        } else {
            $v
        };
        let b = canonical.to_bits();
        if b & $sign != 0 {
            !b
        } else {
            b | $sign
        }
    }};
}

sort_key!(f32, u32, u64, 32, |v| float_bits!(v, f32, 1 << 31));
sort_key!(i32, u32, u64, 32, |v| (v as u32) ^ (1 << 31));
sort_key!(f64, u64, u128, 64, |v| float_bits!(v, f64, 1 << 63));
sort_key!(i64, u64, u128, 64, |v| (v as u64) ^ (1 << 63));

/// The positions of one line (`n` values `inner` apart from `x[start]`) in sorted order.
fn sort_line<T: SortKey>(
    x: &[T],
    start: usize,
    (n, inner): (usize, usize),
    descending: bool,
    buf: &mut Vec<T::Packed>,
) {
    buf.clear();
    buf.extend((0..n).map(|i| x[start + i * inner].pack(i, descending)));
    buf.sort_unstable();
}

fn argsort_typed<T: SortKey>(x: &[T], (outer, n, inner): (usize, usize, usize), descending: bool) -> Vec<i64> {
    debug_assert!(n <= u32::MAX as usize, "refused by infer_argsort");
    let mut out = alloc::<i64>(outer * n * inner);
    if out.is_empty() {
        return out;
    }
    // One task per block of `n · inner` (one outer index): its lines are the inner
    // columns, each written back with stride `inner`.
    let block = |(o, dst): (usize, &mut [i64])| {
        let mut line = Vec::with_capacity(n);
        for c in 0..inner {
            sort_line(x, o * n * inner + c, (n, inner), descending, &mut line);
            for (k, &p) in line.iter().enumerate() {
                dst[k * inner + c] = T::position(p);
            }
        }
    };
    if out.len() >= 2 * CHUNK && outer > 1 {
        out.par_chunks_mut(n * inner).enumerate().for_each(block);
    } else {
        out.chunks_mut(n * inner).enumerate().for_each(block);
    }
    out
}

pub(crate) fn argsort(x: &Tensor, axis: usize, descending: bool) -> Tensor {
    let d = x.dims();
    let dims = (d[..axis].iter().product(), d[axis], d[axis + 1..].iter().product());
    let out = match x.buffer() {
        Buffer::F32(v) => argsort_typed(v, dims, descending),
        Buffer::F64(v) => argsort_typed(v, dims, descending),
        Buffer::I32(v) => argsort_typed(v, dims, descending),
        Buffer::I64(v) => argsort_typed(v, dims, descending),
        Buffer::Bool(_) => unreachable!("rejected by infer_argsort"),
    };
    Tensor::from_buffer(Buffer::I64(out), x.shape().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_is_largest_and_ties_keep_their_order() {
        let x = Tensor::from_vec(vec![1.0f32, f32::NAN, -0.0, 0.0, -2.0, 1.0], [6]).unwrap();
        assert_eq!(argsort(&x, 0, false).to_vec::<i64>().unwrap(), [4, 2, 3, 0, 5, 1]);
        assert_eq!(argsort(&x, 0, true).to_vec::<i64>().unwrap(), [1, 0, 5, 2, 3, 4]);
        let cols = Tensor::from_vec(vec![3i32, 1, 1, 2, 2, 0], [3, 2]).unwrap();
        assert_eq!(argsort(&cols, 0, false).to_vec::<i64>().unwrap(), [1, 2, 2, 0, 0, 1]);
    }
}
