//! Running sums and products along one axis of `[outer, n, inner]`, in order (from the
//! end when reversed), with the reductions' own operations (`reduce::Add` and
//! `reduce::Mul`: floats round each step, integers wrap); the rows of `inner` columns
//! are scanned as vectors.

use rayon::prelude::*;

use super::par::{simd, CHUNK};
use super::reduce::{Add, Monoid, Mul};
use crate::buffer::{alloc, Buffer};
use crate::dtype::Element;
use crate::tensor::Tensor;

/// Which running sums: along the middle of `[outer, n, inner]`, exclusive, reversed.
#[derive(Clone, Copy)]
pub(crate) struct Scan {
    pub dims: (usize, usize, usize),
    pub exclusive: bool,
    pub reverse: bool,
}

/// The running sums (products) of one `[n, inner]` block into `out` (same layout).
fn scan_block<T: Element, M: Monoid<T> + Default>(x: &[T], out: &mut [T], s: Scan) {
    let m = M::default();
    let (_, n, inner) = s.dims;
    let mut acc = vec![M::INIT; inner];
    for step in 0..n {
        let r = if s.reverse { n - 1 - step } else { step };
        let (src, dst) = (&x[r * inner..(r + 1) * inner], &mut out[r * inner..(r + 1) * inner]);
        simd(|| {
            if s.exclusive {
                for ((d, a), &v) in dst.iter_mut().zip(acc.iter_mut()).zip(src) {
                    *d = *a;
                    *a = m.op(*a, v);
                }
            } else {
                for ((d, a), &v) in dst.iter_mut().zip(acc.iter_mut()).zip(src) {
                    *a = m.op(*a, v);
                    *d = *a;
                }
            }
        });
    }
}

/// The scan of one task's share of the data.
type Part<T> = fn(&[T], &mut [T], Scan);

/// Rows summed together when the axis is the last one: each row's sum is a chain of
/// dependent additions, so several rows advance side by side.
const ROWS: usize = 8;

/// The running sums (products) of up to [`ROWS`] contiguous rows of length `n` (the
/// axis last).
fn scan_rows<T: Element, M: Monoid<T> + Default>(x: &[T], out: &mut [T], s: Scan) {
    let (m, n) = (M::default(), s.dims.1);
    let rows = x.len() / n;
    let mut acc = [M::INIT; ROWS];
    for step in 0..n {
        let i = if s.reverse { n - 1 - step } else { step };
        for (k, a) in acc.iter_mut().enumerate().take(rows) {
            let v = x[k * n + i];
            let before = *a;
            *a = m.op(*a, v);
            out[k * n + i] = if s.exclusive { before } else { *a };
        }
    }
}

fn scan_typed<T: Element, M: Monoid<T> + Default>(x: &[T], s: Scan) -> Vec<T> {
    let (outer, n, inner) = s.dims;
    let mut out = alloc::<T>(outer * n * inner);
    let (block, f): (usize, Part<T>) =
        if inner == 1 { (ROWS * n, scan_rows::<T, M>) } else { (n * inner, scan_block::<T, M>) };
    if block == 0 {
        return out;
    }
    if out.len() >= 2 * CHUNK && out.len() > block {
        out.par_chunks_mut(block).zip(x.par_chunks(block)).for_each(|(o, x)| f(x, o, s));
    } else {
        out.chunks_mut(block).zip(x.chunks(block)).for_each(|(o, x)| f(x, o, s));
    }
    out
}

/// `Op::Cumsum` (`product` false) and `Op::Cumprod` (true).
pub(crate) fn scan(x: &Tensor, axis: usize, (exclusive, reverse): (bool, bool), product: bool) -> Tensor {
    let dims = x.dims();
    let s = Scan {
        dims: (dims[..axis].iter().product(), dims[axis], dims[axis + 1..].iter().product()),
        exclusive,
        reverse,
    };
    macro_rules! typed {
        ($v:expr) => {
            if product {
                scan_typed::<_, Mul>($v, s)
            } else {
                scan_typed::<_, Add>($v, s)
            }
        };
    }
    let buf = match x.buffer() {
        Buffer::F32(v) => Buffer::F32(typed!(v)),
        Buffer::F64(v) => Buffer::F64(typed!(v)),
        Buffer::I32(v) => Buffer::I32(typed!(v)),
        Buffer::I64(v) => Buffer::I64(typed!(v)),
        Buffer::Bool(_) => unreachable!("rejected by the shape inference"),
    };
    Tensor::from_buffer(buf, x.shape().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_four_variants_of_a_row() {
        let x = Tensor::from_vec(vec![1i32, 2, 3, 4], [4]).unwrap();
        let run = |exclusive, reverse, product| scan(&x, 0, (exclusive, reverse), product).to_vec::<i32>().unwrap();
        assert_eq!(run(false, false, false), [1, 3, 6, 10]);
        assert_eq!(run(true, false, false), [0, 1, 3, 6]);
        assert_eq!(run(false, true, false), [10, 9, 7, 4]);
        assert_eq!(run(true, true, false), [9, 7, 4, 0]);
        assert_eq!(run(false, false, true), [1, 2, 6, 24]);
        assert_eq!(run(true, false, true), [1, 1, 2, 6]);
        assert_eq!(run(false, true, true), [24, 24, 12, 4]);
        assert_eq!(run(true, true, true), [24, 12, 4, 1]);
    }
}
