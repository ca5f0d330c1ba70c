//! Argsort along one axis of `[outer, n, inner]`: a stable sort of each line's
//! positions by value (ties keep their order, also when descending), NaN above +∞.

use rayon::prelude::*;

use super::par::CHUNK;
use crate::buffer::{alloc, Buffer};
use crate::dtype::Element;
use crate::shape::Shape;
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

/// The first `keep` positions of one line (`n` values `inner` apart from `x[start]`)
/// in sorted order, in `buf[..keep]`. The packed words are distinct, so a selection of
/// the `keep` smallest followed by a sort of them gives the full sort's first `keep`.
fn sort_line<T: SortKey>(
    x: &[T],
    start: usize,
    (n, inner, keep): (usize, usize, usize),
    descending: bool,
    buf: &mut Vec<T::Packed>,
) {
    buf.clear();
    buf.extend((0..n).map(|i| x[start + i * inner].pack(i, descending)));
    if keep < n {
        if keep == 0 {
            return;
        }
        buf.select_nth_unstable(keep - 1);
        buf.truncate(keep);
    }
    buf.sort_unstable();
}

/// Lines `[o, ·, c]` of `[outer, n, inner]` sorted into `[outer, keep, inner]`.
fn argsort_typed<T: SortKey>(
    x: &[T],
    (outer, n, inner): (usize, usize, usize),
    keep: usize,
    descending: bool,
) -> Vec<i64> {
    debug_assert!(n <= u32::MAX as usize, "refused by infer_argsort");
    let mut out = alloc::<i64>(outer * keep * inner);
    if out.is_empty() {
        return out;
    }
    // One task per block of `keep · inner` outputs (one outer index): its lines are the
    // inner columns, each written back with stride `inner`.
    let block = |(o, dst): (usize, &mut [i64])| {
        let mut line = Vec::with_capacity(n);
        for c in 0..inner {
            sort_line(x, o * n * inner + c, (n, inner, keep), descending, &mut line);
            for (k, &p) in line.iter().enumerate() {
                dst[k * inner + c] = T::position(p);
            }
        }
    };
    if outer * n * inner >= 2 * CHUNK && outer > 1 {
        out.par_chunks_mut(keep * inner).enumerate().for_each(block);
    } else {
        out.chunks_mut(keep * inner).enumerate().for_each(block);
    }
    out
}

/// `Op::Argsort`: the stable order of each line along `axis`, whole or its first
/// `keep` positions.
pub(crate) fn argsort(x: &Tensor, axis: usize, descending: bool, keep: Option<usize>) -> Tensor {
    let d = x.dims();
    let dims = (d[..axis].iter().product(), d[axis], d[axis + 1..].iter().product());
    let k = keep.unwrap_or(d[axis]);
    let out = match x.buffer() {
        Buffer::F32(v) => argsort_typed(v, dims, k, descending),
        Buffer::F64(v) => argsort_typed(v, dims, k, descending),
        Buffer::I32(v) => argsort_typed(v, dims, k, descending),
        Buffer::I64(v) => argsort_typed(v, dims, k, descending),
        Buffer::Bool(_) => unreachable!("rejected by infer_argsort"),
    };
    let mut shape = d.to_vec();
    shape[axis] = k;
    Tensor::from_buffer(Buffer::I64(out), Shape::from(shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_is_largest_and_ties_keep_their_order() {
        let x = Tensor::from_vec(vec![1.0f32, f32::NAN, -0.0, 0.0, -2.0, 1.0], [6]).unwrap();
        assert_eq!(argsort(&x, 0, false, None).to_vec::<i64>().unwrap(), [4, 2, 3, 0, 5, 1]);
        assert_eq!(argsort(&x, 0, true, None).to_vec::<i64>().unwrap(), [1, 0, 5, 2, 3, 4]);
        let cols = Tensor::from_vec(vec![3i32, 1, 1, 2, 2, 0], [3, 2]).unwrap();
        assert_eq!(argsort(&cols, 0, false, None).to_vec::<i64>().unwrap(), [1, 2, 2, 0, 0, 1]);
    }

    /// A kept prefix is the full sort's, for every `keep`, along inner and outer axes.
    #[test]
    fn kept_positions_are_the_full_sorts_first() {
        let v: Vec<f32> = (0..4 * 37 * 3).map(|i| ((i * 7919 % 61) as f32 - 30.0) * 0.5).collect();
        let x = Tensor::from_vec(v, [4, 37, 3]).unwrap();
        for descending in [false, true] {
            let full = argsort(&x, 1, descending, None).to_vec::<i64>().unwrap();
            for keep in [0, 1, 5, 36, 37] {
                let part = argsort(&x, 1, descending, Some(keep));
                assert_eq!(part.dims(), [4, keep, 3]);
                let got = part.to_vec::<i64>().unwrap();
                for o in 0..4 {
                    for k in 0..keep {
                        for c in 0..3 {
                            assert_eq!(got[(o * keep + k) * 3 + c], full[(o * 37 + k) * 3 + c], "keep {keep}");
                        }
                    }
                }
            }
        }
    }
}
