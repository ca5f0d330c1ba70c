//! NumPy broadcasting for n-ary elementwise kernels.
//!
//! The output index space is collapsed to as few dims as possible (size-1 dims dropped,
//! neighbours merged when every input walks them contiguously or not at all), then
//! walked row by row: each row is the last collapsed dim, along which every input has
//! stride 0 (broadcast) or 1 (contiguous), so the inner loop is a plain slice loop.

use rayon::prelude::*;
use smallvec::SmallVec;

use super::par::CHUNK;
use crate::shape::Shape;

type Dims = SmallVec<[usize; 6]>;

pub(crate) struct Bcast<const N: usize> {
    dims: Dims,
    strides: [Dims; N],
}

impl<const N: usize> Bcast<N> {
    pub(crate) fn new(out: &Shape, ins: [&Shape; N]) -> Bcast<N> {
        let r = out.rank();
        let mut dims = Dims::new();
        let mut strides: [Dims; N] = std::array::from_fn(|_| Dims::new());
        let in_strides: [SmallVec<[usize; 4]>; N] = std::array::from_fn(|k| ins[k].strides());
        for i in 0..r {
            if out[i] == 1 {
                continue;
            }
            dims.push(out[i]);
            for k in 0..N {
                let s = ins[k];
                let st = if i + s.rank() < r || s[i + s.rank() - r] == 1 { 0 } else { in_strides[k][i + s.rank() - r] };
                strides[k].push(st);
            }
        }
        // Merge neighbours walked the same way by every input.
        let mut j = dims.len();
        while j > 1 {
            j -= 1;
            if (0..N).all(|k| strides[k][j - 1] == strides[k][j] * dims[j]) {
                dims[j - 1] *= dims[j];
                dims.remove(j);
                for s in strides.iter_mut() {
                    s.remove(j - 1);
                }
            }
        }
        if dims.is_empty() {
            dims.push(1);
            for s in strides.iter_mut() {
                s.push(0);
            }
        }
        Bcast { dims, strides }
    }

    /// Length of a row and each input's stride (0 or 1) along it.
    pub(crate) fn inner(&self) -> (usize, [usize; N]) {
        let last = self.dims.len() - 1;
        (self.dims[last], std::array::from_fn(|k| self.strides[k][last]))
    }

    /// Offset of each input at the start of output row `row`.
    pub(crate) fn row_offsets(&self, mut row: usize) -> [usize; N] {
        let mut off = [0; N];
        for d in (0..self.dims.len() - 1).rev() {
            let i = row % self.dims[d];
            row /= self.dims[d];
            for (k, o) in off.iter_mut().enumerate() {
                *o += i * self.strides[k][d];
            }
        }
        off
    }

    /// Calls `f(out_row, input_offsets)` for every row, in parallel for large outputs.
    pub(crate) fn for_rows<O: Send>(&self, out: &mut [O], f: impl Fn(&mut [O], [usize; N]) + Sync) {
        let (n, _) = self.inner();
        if out.is_empty() {
            return;
        }
        let rows_per_task = (CHUNK / n).max(1);
        let run = |first_row: usize, block: &mut [O]| {
            for (r, row) in block.chunks_mut(n).enumerate() {
                f(row, self.row_offsets(first_row + r));
            }
        };
        if out.len() < 2 * CHUNK {
            run(0, out);
        } else {
            out.par_chunks_mut(rows_per_task * n).enumerate().for_each(|(t, block)| run(t * rows_per_task, block));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_and_walks() {
        let b = Bcast::new(&Shape::new(&[2, 3, 4]), [&Shape::new(&[2, 3, 4]), &Shape::new(&[4])]);
        assert_eq!(b.dims.as_slice(), &[6, 4]);
        assert_eq!(b.inner(), (4, [1, 1]));
        assert_eq!(b.row_offsets(5), [20, 0]);
        let b = Bcast::new(&Shape::new(&[2, 3]), [&Shape::new(&[2, 1]), &Shape::new(&[1, 3])]);
        assert_eq!(b.inner(), (3, [0, 1]));
        assert_eq!(b.row_offsets(1), [1, 0]);
        let b = Bcast::new(&Shape::new(&[]), [&Shape::new(&[]), &Shape::new(&[1])]);
        assert_eq!(b.inner(), (1, [0, 0]));
    }
}
