//! Reduction kernels and the canonical summation order.
//!
//! # Canonical order (sum and prod of floats)
//!
//! For each output, the reduced elements form a sequence `x[0..n]` (row-major order of
//! the reduced axes). Its sum is defined as:
//! 1. split the sequence into blocks of `BLOCK` = 4096 consecutive elements (the last
//!    may be shorter);
//! 2. in a block, eight lane accumulators, starting at 0: lane `j` adds the elements at
//!    positions ≡ j (mod 8) in increasing order; the block's value is
//!    `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`;
//! 3. the block values are combined by a pairwise tree: `pw(s) = s[0]` for one block,
//!    else `pw(s[..k/2]) + pw(s[k/2..])` (k blocks); no blocks gives 0.
//!
//! Product: the same with `*` and 1. Every layout (rows, columns) and every thread count
//! computes exactly this, so results are reproducible and the JIT can match them: threads
//! only ever split on block or output boundaries. Integer sums wrap (order-free); max/min
//! are order-free (NaN propagates).

use rayon::prelude::*;

use crate::buffer::{alloc, Buffer};
use crate::dtype::Element;
use crate::kernels::elementwise::Int;
use crate::kernels::par::{simd, CHUNK};
use crate::ops::{ArgOp, ReduceOp};
use crate::shape::Shape;
use crate::tensor::Tensor;

pub(crate) const BLOCK: usize = 4096;
const LANES: usize = 8;

/// The monoid of a canonical reduction.
pub(crate) trait Monoid<T>: Copy + Sync {
    const INIT: T;
    fn op(self, a: T, b: T) -> T;
}

macro_rules! monoid {
    ($name:ident, $t:ty, $init:expr, |$a:ident, $b:ident| $e:expr) => {
        impl Monoid<$t> for $name {
            const INIT: $t = $init;
            #[inline(always)]
            fn op(self, $a: $t, $b: $t) -> $t {
                $e
            }
        }
    };
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Add;
#[derive(Clone, Copy, Default)]
pub(crate) struct Mul;
monoid!(Add, f32, 0.0, |a, b| a + b);
monoid!(Add, f64, 0.0, |a, b| a + b);
monoid!(Add, i32, 0, |a, b| a.wrapping_add(b));
monoid!(Add, i64, 0, |a, b| a.wrapping_add(b));
monoid!(Mul, f32, 1.0, |a, b| a * b);
monoid!(Mul, f64, 1.0, |a, b| a * b);
monoid!(Mul, i32, 1, |a, b| a.wrapping_mul(b));
monoid!(Mul, i64, 1, |a, b| a.wrapping_mul(b));

/// Max and min as monoids: lanes and blocks give the sequential fold's *value*;
/// [`settle`] then picks the element the fold itself would have returned.
#[derive(Clone, Copy)]
pub(crate) struct Max;
#[derive(Clone, Copy)]
pub(crate) struct Min;
monoid!(Max, f32, f32::NEG_INFINITY, |a, b| max_nan(a, b));
monoid!(Max, f64, f64::NEG_INFINITY, |a, b| max_nan(a, b));
monoid!(Max, i32, i32::MIN, |a, b| a.max(b));
monoid!(Max, i64, i64::MIN, |a, b| a.max(b));
monoid!(Min, f32, f32::INFINITY, |a, b| min_nan(a, b));
monoid!(Min, f64, f64::INFINITY, |a, b| min_nan(a, b));
monoid!(Min, i32, i32::MAX, |a, b| a.min(b));
monoid!(Min, i64, i64::MAX, |a, b| a.min(b));

/// The result of folding `x` in order with `max_nan`/`min_nan`, given `r`, the same
/// reduction computed in any order. The two agree except in which of several equal
/// values is returned, which shows only in the bits of NaNs and signed zeros: the
/// fold ends on the last NaN when there is one, and else keeps the first zero (the
/// first of equal values, ±0 being equal). Integers pass through unchanged.
#[allow(clippy::eq_op)]
fn settle<T: Element>(x: &[T], r: T) -> T {
    if r != r {
        x.iter().rev().copied().find(|v| v != v).unwrap_or(r)
    } else if r == T::default() {
        x.iter().copied().find(|&v| v == r).unwrap_or(r)
    } else {
        r
    }
}

/// Max or min of `[outer, n, inner]` over the middle axis, exactly as the in-order fold.
fn extremum_middle<T: Element, M: Monoid<T>>(m: M, x: &[T], (outer, n, inner): (usize, usize, usize)) -> Vec<T> {
    if inner != 1 {
        // Columns: one in-order fold per column, vectorised across the row.
        return fold_middle(x, (outer, n, inner), M::INIT, |a, b| m.op(a, b));
    }
    let mut out = reduce_middle(m, x, outer, n, 1);
    for (o, r) in out.iter_mut().enumerate() {
        *r = settle(&x[o * n..(o + 1) * n], *r);
    }
    out
}

#[inline(always)]
fn combine_lanes<T: Copy, M: Monoid<T>>(m: M, l: &[T; LANES]) -> T {
    m.op(m.op(m.op(l[0], l[4]), m.op(l[2], l[6])), m.op(m.op(l[1], l[5]), m.op(l[3], l[7])))
}

/// Canonical value of one contiguous block (≤ BLOCK elements).
#[inline(always)]
fn block_contig<T: Copy, M: Monoid<T>>(m: M, x: &[T]) -> T {
    let mut acc = [M::INIT; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for j in 0..LANES {
            acc[j] = m.op(acc[j], c[j]);
        }
    }
    for (j, &v) in chunks.remainder().iter().enumerate() {
        acc[j] = m.op(acc[j], v);
    }
    combine_lanes(m, &acc)
}

pub(crate) fn pairwise<T: Copy, M: Monoid<T>>(m: M, s: &[T]) -> T {
    match s.len() {
        0 => M::INIT,
        1 => s[0],
        k => m.op(pairwise(m, &s[..k / 2]), pairwise(m, &s[k / 2..])),
    }
}

/// Canonical reduction of a contiguous sequence (blocks in parallel when long).
pub(crate) fn reduce_contig<T: Copy + Send + Sync, M: Monoid<T>>(m: M, x: &[T]) -> T {
    if x.len() <= BLOCK {
        return simd(|| block_contig(m, x));
    }
    let blocks: Vec<T> = if x.len() >= 2 * CHUNK {
        x.par_chunks(BLOCK).map(|b| simd(|| block_contig(m, b))).collect()
    } else {
        simd(|| x.chunks(BLOCK).map(|b| block_contig(m, b)).collect())
    };
    pairwise(m, &blocks)
}

/// Canonical reduction along the middle axis of `[outer, n, inner]` into `[outer, inner]`,
/// vectorised across the `inner` columns (each column gets exactly the canonical order).
fn reduce_columns<T: Copy + Send + Sync, M: Monoid<T>>(m: M, x: &[T], n: usize, inner: usize, out: &mut [T]) {
    const TILE: usize = 64;
    let column_tile = |o: usize, j0: usize, dst: &mut [T]| {
        let w = dst.len();
        let nblocks = n.div_ceil(BLOCK);
        let mut partial: Vec<[T; TILE]> = Vec::with_capacity(nblocks);
        for b in 0..nblocks {
            let mut acc = [[M::INIT; TILE]; LANES];
            for r in b * BLOCK..((b + 1) * BLOCK).min(n) {
                let row = &x[(o * n + r) * inner + j0..][..w];
                let lane = &mut acc[r % LANES];
                for (a, &v) in lane.iter_mut().zip(row) {
                    *a = m.op(*a, v);
                }
            }
            let mut p = [M::INIT; TILE];
            for (c, pc) in p.iter_mut().enumerate().take(w) {
                *pc = combine_lanes(m, &std::array::from_fn(|l| acc[l][c]));
            }
            partial.push(p);
        }
        for (c, d) in dst.iter_mut().enumerate() {
            let col: Vec<T> = partial.iter().map(|p| p[c]).collect();
            *d = pairwise(m, &col);
        }
    };
    let per_outer = |o: usize, dst: &mut [T]| {
        for (t, tile) in dst.chunks_mut(TILE).enumerate() {
            simd(|| column_tile(o, t * TILE, tile));
        }
    };
    if x.len() >= 2 * CHUNK && out.len() >= inner {
        out.par_chunks_mut(inner).enumerate().for_each(|(o, d)| per_outer(o, d));
    } else {
        for (o, d) in out.chunks_mut(inner).enumerate() {
            per_outer(o, d);
        }
    }
}

/// Canonical reduction of `[outer, n, inner]` over the middle axis.
pub(crate) fn reduce_middle<T: Element, M: Monoid<T>>(m: M, x: &[T], outer: usize, n: usize, inner: usize) -> Vec<T> {
    let mut out = alloc::<T>(outer * inner);
    if inner == 1 {
        if outer >= 2 && x.len() >= 2 * CHUNK {
            out.par_iter_mut().enumerate().for_each(|(o, d)| *d = reduce_contig(m, &x[o * n..(o + 1) * n]));
        } else {
            for (o, d) in out.iter_mut().enumerate() {
                *d = reduce_contig(m, &x[o * n..(o + 1) * n]);
            }
        }
    } else if !out.is_empty() {
        reduce_columns(m, x, n, inner, &mut out);
    }
    out
}

/// Order-free reductions (max/min) of `[outer, n, inner]` over the middle axis: each
/// column folded in order, vectorised across the row (AVX2 where the CPU has it; on
/// 1024 × 1024 f32 it runs at the memory's speed, which threads did not raise).
fn fold_middle<T: Element>(
    x: &[T],
    (outer, n, inner): (usize, usize, usize),
    init: T,
    f: impl Fn(T, T) -> T + Sync + Copy,
) -> Vec<T> {
    let mut out = vec![init; outer * inner];
    // Columns `c0..c0 + dst.len()` of block `o`.
    let fold = |o: usize, c0: usize, dst: &mut [T]| {
        simd(|| {
            for r in 0..n {
                let row = &x[(o * n + r) * inner + c0..][..dst.len()];
                for (d, &v) in dst.iter_mut().zip(row) {
                    *d = f(*d, v);
                }
            }
        })
    };
    out.chunks_mut(inner.max(1)).enumerate().for_each(|(o, dst)| fold(o, 0, dst));
    out
}

/// Splits `shape` around the (sorted) reduced axes into `(outer, n, inner)` when the
/// reduced axes are one contiguous run (after dropping size-1 dims); `None` otherwise.
fn as_middle(shape: &Shape, axes: &[usize]) -> Option<(usize, usize, usize)> {
    // Inline: this runs on every reduction, most of them of small rank.
    let rel: smallvec::SmallVec<[usize; 8]> = (0..shape.rank()).filter(|&i| shape[i] != 1).collect();
    let red: smallvec::SmallVec<[usize; 8]> = rel.iter().copied().filter(|i| axes.contains(i)).collect();
    let prod = |it: &mut dyn Iterator<Item = usize>| it.map(|i| shape[i]).product::<usize>();
    if red.is_empty() {
        return Some((shape.numel(), 1, 1));
    }
    let (first, last) = (red[0], red[red.len() - 1]);
    let contiguous = rel.iter().filter(|&&i| i >= first && i <= last).all(|i| axes.contains(i));
    contiguous.then(|| {
        (
            prod(&mut rel.iter().copied().filter(|&i| i < first)),
            prod(&mut red.iter().copied()),
            prod(&mut rel.iter().copied().filter(|&i| i > last)),
        )
    })
}

pub(crate) fn reduce(op: ReduceOp, x: &Tensor, axes: &[usize], out_shape: Shape) -> Tensor {
    let (x, dims) = match as_middle(x.shape(), axes) {
        Some(dims) => (x.clone(), dims),
        None => {
            // Bring the reduced axes last (one copy), keeping their relative order, so
            // the sequence order stays row-major over the reduced axes.
            let kept: Vec<usize> = (0..x.rank()).filter(|i| !axes.contains(i)).collect();
            let perm: Vec<usize> = kept.iter().chain(axes.iter()).copied().collect();
            let t = super::shape::permute(x, &perm);
            let last: Vec<usize> = (kept.len()..x.rank()).collect();
            let dims = as_middle(t.shape(), &last).unwrap_or((1, t.numel(), 1));
            (t, dims)
        }
    };
    let buf = match x.buffer() {
        Buffer::F32(v) => Buffer::F32(reduce_typed_float(op, v, dims)),
        Buffer::F64(v) => Buffer::F64(reduce_typed_float(op, v, dims)),
        Buffer::I32(v) => Buffer::I32(reduce_typed_int(op, v, dims)),
        Buffer::I64(v) => Buffer::I64(reduce_typed_int(op, v, dims)),
        Buffer::Bool(_) => unreachable!("rejected by infer_reduce"),
    };
    Tensor::from_buffer(buf, out_shape)
}

fn reduce_typed_float<T>(op: ReduceOp, v: &[T], (outer, n, inner): (usize, usize, usize)) -> Vec<T>
where
    T: crate::math::FloatMath,
    Add: Monoid<T>,
    Mul: Monoid<T>,
    Max: Monoid<T>,
    Min: Monoid<T>,
{
    match op {
        ReduceOp::Sum => reduce_middle(Add, v, outer, n, inner),
        ReduceOp::Mean => {
            let count = T::from_f64(n as f64);
            let mut s = reduce_middle(Add, v, outer, n, inner);
            s.iter_mut().for_each(|x| *x = *x / count);
            s
        }
        ReduceOp::Prod => reduce_middle(Mul, v, outer, n, inner),
        ReduceOp::Max => extremum_middle(Max, v, (outer, n, inner)),
        ReduceOp::Min => extremum_middle(Min, v, (outer, n, inner)),
    }
}

/// `[outer, n, inner]` of reducing `shape` over `axes` without a transposing copy
/// (what [`reduce`] does then), or `None`.
pub(crate) fn reduce_dims(shape: &Shape, axes: &[usize]) -> Option<(usize, usize, usize)> {
    as_middle(shape, axes)
}

/// [`reduce`] of f32 data laid out as `dims` (from [`reduce_dims`]) into `out`.
pub(crate) fn reduce_f32_into(op: ReduceOp, x: &[f32], dims: (usize, usize, usize), out: &mut [f32]) {
    out.copy_from_slice(&reduce_typed_float(op, x, dims));
}

/// The reduction of a whole f32 sequence (`outer = inner = 1`): exactly what
/// [`reduce`] computes for it, without allocating (compiled loops call it per trip).
pub(crate) fn reduce_all_f32(op: ReduceOp, x: &[f32]) -> f32 {
    match op {
        ReduceOp::Sum => reduce_contig(Add, x),
        ReduceOp::Mean => reduce_contig(Add, x) / (x.len() as f64 as f32),
        ReduceOp::Prod => reduce_contig(Mul, x),
        ReduceOp::Max => settle(x, reduce_contig(Max, x)),
        ReduceOp::Min => settle(x, reduce_contig(Min, x)),
    }
}

/// The running maximum of a float reduction: NaN, once met, propagates.
#[inline(always)]
#[allow(clippy::eq_op)]
fn max_nan<T: PartialOrd + Copy>(a: T, b: T) -> T {
    if b > a || b != b {
        b
    } else {
        a
    }
}

/// The running minimum of a float reduction: NaN, once met, propagates.
#[inline(always)]
#[allow(clippy::eq_op)]
fn min_nan<T: PartialOrd + Copy>(a: T, b: T) -> T {
    if b < a || b != b {
        b
    } else {
        a
    }
}

fn reduce_typed_int<T>(op: ReduceOp, v: &[T], (outer, n, inner): (usize, usize, usize)) -> Vec<T>
where
    T: Int,
    Add: Monoid<T>,
    Mul: Monoid<T>,
    Max: Monoid<T>,
    Min: Monoid<T>,
{
    match op {
        ReduceOp::Sum => reduce_middle(Add, v, outer, n, inner),
        ReduceOp::Mean => {
            let mut s = reduce_middle(Add, v, outer, n, inner);
            s.iter_mut().for_each(|x| *x = x.truncdiv(T::from_usize(n)));
            s
        }
        ReduceOp::Prod => reduce_middle(Mul, v, outer, n, inner),
        ReduceOp::Max => extremum_middle(Max, v, (outer, n, inner)),
        ReduceOp::Min => extremum_middle(Min, v, (outer, n, inner)),
    }
}

/// The index of the first extreme element of one row: a NaN when there is one (the
/// first), else the first element equal to the row's max/min (±0 being equal).
#[allow(clippy::eq_op)]
fn arg_row<T: Element, M: Monoid<T>>(m: M, row: &[T]) -> i64 {
    let r = reduce_contig(m, row);
    let hit = if r != r { row.iter().position(|v| v != v) } else { row.iter().position(|&v| v == r) };
    hit.unwrap_or(0) as i64
}

/// Index along the middle axis of `[outer, n, inner]` of each column's first extreme
/// element: the column-wise form of [`arg_row`], one in-order pass over the rows.
#[allow(clippy::eq_op)]
fn arg_columns<T: Element>(v: &[T], (outer, n, inner): (usize, usize, usize), max: bool) -> Vec<i64> {
    let mut out = vec![0i64; outer * inner];
    for (o, idx) in out.chunks_mut(inner).enumerate() {
        let block = &v[o * n * inner..(o + 1) * n * inner];
        let mut best: Vec<T> = block[..inner].to_vec();
        for (r, row) in block.chunks_exact(inner).enumerate().skip(1) {
            for ((b, i), &c) in best.iter_mut().zip(idx.iter_mut()).zip(row) {
                // Strictly better (ties keep the first); the first NaN wins.
                let better = if max { c > *b } else { c < *b };
                if *b == *b && (better || c != c) {
                    *b = c;
                    *i = r as i64;
                }
            }
        }
    }
    out
}

pub(crate) fn arg_reduce(op: ArgOp, x: &Tensor, axis: usize, out_shape: Shape) -> Tensor {
    let outer: usize = x.dims()[..axis].iter().product();
    let n = x.dims()[axis];
    let inner: usize = x.dims()[axis + 1..].iter().product();
    fn go<T: Element>(v: &[T], (outer, n, inner): (usize, usize, usize), max: bool) -> Vec<i64>
    where
        Max: Monoid<T>,
        Min: Monoid<T>,
    {
        // `infer_arg` rejects an empty axis.
        if inner != 1 {
            return arg_columns(v, (outer, n, inner), max);
        }
        let mut out = alloc::<i64>(outer);
        let row =
            |o: usize| if max { arg_row(Max, &v[o * n..(o + 1) * n]) } else { arg_row(Min, &v[o * n..(o + 1) * n]) };
        if outer >= 2 && v.len() >= 2 * CHUNK {
            out.par_iter_mut().enumerate().for_each(|(o, d)| *d = row(o));
        } else {
            out.iter_mut().enumerate().for_each(|(o, d)| *d = row(o));
        }
        out
    }
    let d = (outer, n, inner);
    let max = op == ArgOp::ArgMax;
    let v = match x.buffer() {
        Buffer::F32(v) => go(v, d, max),
        Buffer::F64(v) => go(v, d, max),
        Buffer::I32(v) => go(v, d, max),
        Buffer::I64(v) => go(v, d, max),
        Buffer::Bool(_) => unreachable!("rejected by infer_arg"),
    };
    Tensor::from_buffer(Buffer::I64(v), out_shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical order written out literally, for any access pattern.
    fn canonical_sum(x: &[f32]) -> f32 {
        let blocks: Vec<f32> = x
            .chunks(BLOCK)
            .map(|b| {
                let mut l = [0f32; 8];
                for (i, v) in b.iter().enumerate() {
                    l[i % 8] += v;
                }
                ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
            })
            .collect();
        fn pw(s: &[f32]) -> f32 {
            match s.len() {
                0 => 0.0,
                1 => s[0],
                k => pw(&s[..k / 2]) + pw(&s[k / 2..]),
            }
        }
        pw(&blocks)
    }

    fn data(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * 1e3f32.powf((i % 7) as f32 / 3.0)).collect()
    }

    #[test]
    fn rows_and_columns_follow_the_canonical_order() {
        for &(outer, n, inner) in &[(1, 100_003, 1), (3, 5000, 1), (2, 9000, 3), (1, 4097, 70), (4, 7, 130)] {
            let x = data(outer * n * inner);
            let got = reduce_middle(Add, &x, outer, n, inner);
            for o in 0..outer {
                for j in 0..inner {
                    let seq: Vec<f32> = (0..n).map(|r| x[(o * n + r) * inner + j]).collect();
                    assert_eq!(
                        got[o * inner + j].to_bits(),
                        canonical_sum(&seq).to_bits(),
                        "({outer},{n},{inner}) at {o},{j}"
                    );
                }
            }
        }
    }

    #[test]
    fn independent_of_thread_count() {
        let x = data(3_000_017);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| reduce_contig(Add, &x));
        let many = rayon::ThreadPoolBuilder::new().num_threads(5).build().unwrap().install(|| reduce_contig(Add, &x));
        assert_eq!(one.to_bits(), many.to_bits());
        assert_eq!(one.to_bits(), canonical_sum(&x).to_bits());
    }

    #[test]
    fn middle_split() {
        let s = Shape::new(&[2, 3, 4, 5]);
        assert_eq!(as_middle(&s, &[1, 2]), Some((2, 12, 5)));
        assert_eq!(as_middle(&s, &[0, 2]), None);
        assert_eq!(as_middle(&Shape::new(&[2, 1, 4]), &[0, 2]), Some((1, 8, 1)));
    }
}
