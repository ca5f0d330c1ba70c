//! Running sums along one axis of `[outer, n, inner]`, in order (from the end when
//! reversed), with the sums' own addition (`reduce::Add`: floats round each step,
//! integers wrap); the rows of `inner` columns are summed as vectors.

use rayon::prelude::*;

use super::par::{simd, CHUNK};
use super::reduce::{Add, Monoid};
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

/// The running sums of one `[n, inner]` block into `out` (same layout).
fn scan_block<T: Element>(x: &[T], out: &mut [T], s: Scan)
where
    Add: Monoid<T>,
{
    let (_, n, inner) = s.dims;
    let mut acc = vec![T::default(); inner];
    for step in 0..n {
        let r = if s.reverse { n - 1 - step } else { step };
        let (src, dst) = (&x[r * inner..(r + 1) * inner], &mut out[r * inner..(r + 1) * inner]);
        simd(|| {
            if s.exclusive {
                for ((d, a), &v) in dst.iter_mut().zip(acc.iter_mut()).zip(src) {
                    *d = *a;
                    *a = Add.op(*a, v);
                }
            } else {
                for ((d, a), &v) in dst.iter_mut().zip(acc.iter_mut()).zip(src) {
                    *a = Add.op(*a, v);
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

/// The running sums of up to [`ROWS`] contiguous rows of length `n` (the axis last).
fn scan_rows<T: Element>(x: &[T], out: &mut [T], n: usize, s: Scan)
where
    Add: Monoid<T>,
{
    let rows = x.len() / n;
    let mut acc = [T::default(); ROWS];
    for step in 0..n {
        let i = if s.reverse { n - 1 - step } else { step };
        for (k, a) in acc.iter_mut().enumerate().take(rows) {
            let v = x[k * n + i];
            let before = *a;
            *a = Add.op(*a, v);
            out[k * n + i] = if s.exclusive { before } else { *a };
        }
    }
}

fn scan_typed<T: Element>(x: &[T], s: Scan) -> Vec<T>
where
    Add: Monoid<T>,
{
    let (outer, n, inner) = s.dims;
    let mut out = alloc::<T>(outer * n * inner);
    let (block, f): (usize, Part<T>) =
        if inner == 1 { (ROWS * n, |x, o, s| scan_rows(x, o, s.dims.1, s)) } else { (n * inner, scan_block) };
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

pub(crate) fn cumsum(x: &Tensor, axis: usize, exclusive: bool, reverse: bool) -> Tensor {
    let dims = x.dims();
    let s = Scan {
        dims: (dims[..axis].iter().product(), dims[axis], dims[axis + 1..].iter().product()),
        exclusive,
        reverse,
    };
    let buf = match x.buffer() {
        Buffer::F32(v) => Buffer::F32(scan_typed(v, s)),
        Buffer::F64(v) => Buffer::F64(scan_typed(v, s)),
        Buffer::I32(v) => Buffer::I32(scan_typed(v, s)),
        Buffer::I64(v) => Buffer::I64(scan_typed(v, s)),
        Buffer::Bool(_) => unreachable!("rejected by infer_cumsum"),
    };
    Tensor::from_buffer(buf, x.shape().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_four_variants_of_a_row() {
        let x = Tensor::from_vec(vec![1i32, 2, 3, 4], [4]).unwrap();
        let run = |exclusive, reverse| cumsum(&x, 0, exclusive, reverse).to_vec::<i32>().unwrap();
        assert_eq!(run(false, false), [1, 3, 6, 10]);
        assert_eq!(run(true, false), [0, 1, 3, 6]);
        assert_eq!(run(false, true), [10, 9, 7, 4]);
        assert_eq!(run(true, true), [9, 7, 4, 0]);
    }
}
