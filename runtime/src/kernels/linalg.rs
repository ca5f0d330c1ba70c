//! Matmul kernels. Floats go through `matrixmultiply` (one routine for eager code and
//! compiled code; chosen over the `gemm` crate by measurement, BENCHMARKS.md). Its
//! threads split the output rows, never the k loop, so every element is summed in the
//! same order whatever the thread count. f32 products with few rows (`m ≤ 16`, small-
//! batch inference) and a row-major right operand skip its packing of `b` — which there
//! costs more than the arithmetic — for a row-streaming kernel ([`small_m`]): each
//! output is summed over k in ascending order, column blocks split over threads.
//! Integers use a plain triple loop with wrapping arithmetic.

use crate::buffer::{alloc, Buffer};
use crate::dtype::Element;
use crate::kernels::elementwise::Int;
use crate::ops::linalg::matmul_dims;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Row/column strides of one (possibly transposed) row-major matrix.
#[derive(Clone, Copy)]
pub(crate) struct MatLayout {
    pub rs: isize,
    pub cs: isize,
}

impl MatLayout {
    /// Layout of the logical `rows × cols` matrix stored row-major as
    /// `[rows, cols]`, or as `[cols, rows]` when `transposed`.
    pub(crate) fn new(rows: usize, cols: usize, transposed: bool) -> MatLayout {
        if transposed {
            MatLayout { rs: 1, cs: rows as isize }
        } else {
            MatLayout { rs: cols as isize, cs: 1 }
        }
    }
}

/// One GEMM: `dst[m×n] = a[m×k] · b[k×n]` (dst row-major, overwritten).
pub(crate) struct Gemm<'a, T> {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a: &'a [T],
    pub la: MatLayout,
    pub b: &'a [T],
    pub lb: MatLayout,
}

pub(crate) trait GemmElem: Element {
    fn gemm(g: &Gemm<'_, Self>, dst: &mut [Self]);
}

macro_rules! float_gemm {
    ($($t:ty => $f:path),*) => {$(
        impl GemmElem for $t {
            fn gemm(g: &Gemm<'_, $t>, dst: &mut [$t]) {
                assert!(dst.len() >= g.m * g.n && g.a.len() >= g.m * g.k && g.b.len() >= g.k * g.n);
                if g.m * g.n == 0 {
                    return;
                }
                if g.k == 0 {
                    dst.iter_mut().for_each(|d| *d = 0.0);
                    return;
                }
                // SAFETY: the asserts above keep every access of the m×k, k×n and m×n
                // matrices (with the given strides) inside the slices; dst is exclusive.
                // beta = 0: dst is written, never read.
                unsafe {
                    $f(
                        g.m, g.k, g.n,
                        1.0,
                        g.a.as_ptr(), g.la.rs, g.la.cs,
                        g.b.as_ptr(), g.lb.rs, g.lb.cs,
                        0.0,
                        dst.as_mut_ptr(), g.n as isize, 1,
                    );
                }
            }
        }
    )*};
}
float_gemm!(f32 => sgemm, f64 => matrixmultiply::dgemm);

/// Rows at or below which f32 GEMMs use [`small_m`].
const SMALL_M: usize = 16;
/// Output columns per block of [`small_m`] (a block of dst stays in L1).
const SMALL_M_COLS: usize = 256;
/// Multiply-adds from which [`small_m`]'s blocks run in parallel: below, handing the
/// blocks to the pool costs more than it saves (a 784×512 layer on this 2-core VM:
/// m = 1 takes 28 µs on the caller and 85 µs through the pool; m = 10, 4M
/// multiply-adds, ~170 µs on the caller and 265 µs through the pool).
const SMALL_M_PARALLEL: usize = 1 << 24;

/// f32 GEMM: [`small_m`] for few rows and a row-major `b`, else matrixmultiply.
///
/// # Safety
/// As `matrixmultiply::sgemm`: the pointers and strides address m×k, k×n and m×n
/// matrices inside their allocations; `c` is exclusive.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    if m <= SMALL_M && csb == 1 && csc == 1 && rsc == n as isize && alpha == 1.0 && beta == 0.0 {
        // SAFETY: the caller's guarantee covers exactly these extents.
        let (dst, bs) = unsafe {
            (std::slice::from_raw_parts_mut(c, m * n), std::slice::from_raw_parts(b, (k - 1) * rsb as usize + n))
        };
        // A copy of a (at most 16 rows): contiguous, and shareable across threads.
        // SAFETY: (i, p) < (m, k) stays inside a, per the caller's guarantee.
        let av: Vec<f32> =
            (0..m * k).map(|x| unsafe { *a.offset((x / k) as isize * rsa + (x % k) as isize * csa) }).collect();
        small_m(SmallM { m, k, n, a: &av, b: bs, rsb: rsb as usize }, dst);
        return;
    }
    // SAFETY: forwarded unchanged.
    unsafe { matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
}

/// One small-m product (see [`small_m`]).
struct SmallM<'a> {
    m: usize,
    k: usize,
    n: usize,
    /// `a` as a contiguous m×k row-major copy.
    a: &'a [f32],
    b: &'a [f32],
    rsb: usize,
}

/// `dst[m×n] = a·b` with `b` row-major (row stride `rsb`): for each block of columns,
/// `dst[i, block] += a[i,p]·b[p, block]` for p ascending — one pass over `b`, each
/// output summed in k order from 0. Blocks run in parallel when the product is large;
/// every element's sum is the same whatever the split.
fn small_m(g: SmallM<'_>, dst: &mut [f32]) {
    let SmallM { m, k, n, a: av, b, rsb } = g;
    let block = |c0: usize, c1: usize, out: &mut [Vec<f32>]| {
        // The loops live in an `#[inline(always)]` function: a closure this large is not
        // inlined into `simd`'s AVX2 copy by itself, and would run at baseline width.
        super::par::simd(|| small_m_block(SmallM { m, k, n, a: av, b, rsb }, c0, c1, out))
    };
    let blocks: Vec<(usize, usize)> = (0..n).step_by(SMALL_M_COLS).map(|c| (c, (c + SMALL_M_COLS).min(n))).collect();
    let run = |&(c0, c1): &(usize, usize)| {
        let mut out = vec![vec![0.0f32; c1 - c0]; m];
        block(c0, c1, &mut out);
        (c0, out)
    };
    let parts: Vec<(usize, Vec<Vec<f32>>)> = if m * k * n >= SMALL_M_PARALLEL && blocks.len() > 1 {
        use rayon::prelude::*;
        blocks.par_iter().map(run).collect()
    } else {
        blocks.iter().map(run).collect()
    };
    for (c0, rows) in parts {
        for (i, r) in rows.into_iter().enumerate() {
            dst[i * n + c0..i * n + c0 + r.len()].copy_from_slice(&r);
        }
    }
}

/// One column block `c0..c1` of [`small_m`] into `out` (m rows of the block).
#[inline(always)]
fn small_m_block(g: SmallM<'_>, c0: usize, c1: usize, out: &mut [Vec<f32>]) {
    let SmallM { k, a: av, b, rsb, .. } = g;
    // Four rows of b per pass: each output gets its four products added in k
    // order, `(((d + x0·y0) + x1·y1) + x2·y2) + x3·y3` — the same sums as one row
    // at a time, with a quarter of the loads and stores of the output row.
    let w = c1 - c0;
    let mut p = 0;
    while p + 4 <= k {
        let row_of = |q: usize| &b[q * rsb + c0..q * rsb + c1];
        let (b0, b1, b2, b3) = (row_of(p), row_of(p + 1), row_of(p + 2), row_of(p + 3));
        for (i, row) in out.iter_mut().enumerate() {
            let x = &av[i * k + p..i * k + p + 4];
            let (x0, x1, x2, x3) = (x[0], x[1], x[2], x[3]);
            let row = &mut row[..w];
            for j in 0..w {
                row[j] = (((row[j] + x0 * b0[j]) + x1 * b1[j]) + x2 * b2[j]) + x3 * b3[j];
            }
        }
        p += 4;
    }
    for p in p..k {
        let brow = &b[p * rsb + c0..p * rsb + c1];
        for (i, row) in out.iter_mut().enumerate() {
            let x = av[i * k + p];
            for (d, &y) in row.iter_mut().zip(brow) {
                *d += x * y;
            }
        }
    }
}

macro_rules! int_gemm {
    ($($t:ty),*) => {$(
        impl GemmElem for $t {
            fn gemm(g: &Gemm<'_, $t>, dst: &mut [$t]) {
                for i in 0..g.m {
                    for j in 0..g.n {
                        let mut acc: $t = 0;
                        for p in 0..g.k {
                            let x = g.a[(i as isize * g.la.rs + p as isize * g.la.cs) as usize];
                            let y = g.b[(p as isize * g.lb.rs + j as isize * g.lb.cs) as usize];
                            acc = acc.wadd(x.wmul(y));
                        }
                        dst[i * g.n + j] = acc;
                    }
                }
            }
        }
    )*};
}
int_gemm!(i32, i64);

/// Flat offset of batch index `i` (of `batch`) in an operand whose batch dims are
/// `own` (right-aligned, broadcasting size-1 dims).
fn batch_offset(batch: &Shape, own: &[usize], mut i: usize, mat: usize) -> usize {
    let mut off = 0;
    let mut stride = mat;
    for d in (0..batch.rank()).rev() {
        let idx = i % batch[d];
        i /= batch[d];
        let k = d as isize - (batch.rank() as isize - own.len() as isize);
        if k >= 0 {
            let od = own[k as usize];
            if od != 1 {
                off += idx * stride;
            }
            stride *= od;
        }
    }
    off
}

fn matmul_typed<T: GemmElem>(a: &Tensor, b: &Tensor, ta: bool, tb: bool, out: &Shape) -> Vec<T> {
    let Ok(d) = matmul_dims(a.shape(), b.shape(), ta, tb) else { unreachable!("checked by infer_matmul") };
    let (av, bv) = (a.data::<T>().unwrap_or(&[]), b.data::<T>().unwrap_or(&[]));
    let mut dst = alloc::<T>(out.numel());
    let (ma, mb, mo) = (d.m * d.k, d.k * d.n, d.m * d.n);
    let (ba, bb) = (&a.dims()[..a.rank() - 2], &b.dims()[..b.rank() - 2]);
    for i in 0..d.batch.numel() {
        let (oa, ob) = (batch_offset(&d.batch, ba, i, ma), batch_offset(&d.batch, bb, i, mb));
        let g = Gemm {
            m: d.m,
            k: d.k,
            n: d.n,
            a: &av[oa..oa + ma],
            la: MatLayout::new(d.m, d.k, ta),
            b: &bv[ob..ob + mb],
            lb: MatLayout::new(d.k, d.n, tb),
        };
        T::gemm(&g, &mut dst[i * mo..(i + 1) * mo]);
    }
    dst
}

pub(crate) fn matmul(a: &Tensor, b: &Tensor, ta: bool, tb: bool, shape: Shape) -> Tensor {
    let buf = match a.buffer() {
        Buffer::F32(_) => Buffer::F32(matmul_typed(a, b, ta, tb, &shape)),
        Buffer::F64(_) => Buffer::F64(matmul_typed(a, b, ta, tb, &shape)),
        Buffer::I32(_) => Buffer::I32(matmul_typed(a, b, ta, tb, &shape)),
        Buffer::I64(_) => Buffer::I64(matmul_typed(a, b, ta, tb, &shape)),
        Buffer::Bool(_) => unreachable!("rejected by infer_matmul"),
    };
    Tensor::from_buffer(buf, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s = crate::random::splitmix64(s);
                (s >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
            })
            .collect()
    }

    /// Few-row products give, bit for bit, the plain loop that sums each output over k
    /// in ascending order (column blocks, parallel or not, keep that order).
    #[test]
    fn small_m_sums_every_output_in_k_order() {
        let shapes = [(1, 7, 5), (3, 50, 32), (10, 784, 512), (16, 33, 300), (4, 3, 97), (2, 1, 1)];
        for (t, &(m, k, n)) in shapes.iter().enumerate() {
            let (a, b) = (data(2 * t as u64, m * k), data(2 * t as u64 + 1, k * n));
            let mut got = vec![0.0; m * n];
            small_m(SmallM { m, k, n, a: &a, b: &b, rsb: n }, &mut got);
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0.0f32;
                    for p in 0..k {
                        acc += a[i * k + p] * b[p * n + j];
                    }
                    assert_eq!(got[i * n + j].to_bits(), acc.to_bits(), "({m},{k},{n}) at {i},{j}");
                }
            }
        }
    }
}
