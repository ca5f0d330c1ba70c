//! Matmul kernels. Floats go through `matrixmultiply` (one routine for eager code and
//! compiled code; chosen over the `gemm` crate by measurement, BENCHMARKS.md), called
//! single-threaded on ranges of columns (or of rows, for narrow products), one per
//! thread of the rayon pool (the library's only pool: matrixmultiply's own threads, a
//! second pool on the same cores, cost more in hand-offs than they gained). A range is a
//! GEMM over all of k, never a piece of the k loop, so every element is summed in the
//! same order whatever the thread count.
//! f32 products with few rows (`m ≤ 16`, small-
//! batch inference) and a row-major right operand skip its packing of `b` — which there
//! costs more than the arithmetic — for a row-streaming kernel ([`small_m`]): each
//! output is summed over k in ascending order, one fused multiply-add a step, column
//! blocks split over threads.
//! Integers use a plain triple loop with wrapping arithmetic.

use rayon::prelude::*;

use super::denormals::flushing;
use super::small_gemm::{small_m, SmallM};
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

impl GemmElem for f32 {
    fn gemm(g: &Gemm<'_, f32>, dst: &mut [f32]) {
        float_gemm(g, dst)
    }
}

impl GemmElem for f64 {
    fn gemm(g: &Gemm<'_, f64>, dst: &mut [f64]) {
        float_gemm(g, dst)
    }
}

/// Rows at or below which f32 GEMMs use [`small_m`].
pub(crate) const SMALL_M: usize = 16;

/// The float types matrixmultiply multiplies.
trait MmFloat: Element + Sync {
    /// `dst = a·b` by a routine of its own when it has one for `g` (f32: [`small_m`],
    /// for few rows and a row-major `b`); false when it has none.
    fn special(_g: &Gemm<'_, Self>, _dst: &mut [Self]) -> bool {
        false
    }

    /// One single-threaded matrixmultiply call on `r`.
    ///
    /// # Safety
    /// As `matrixmultiply::sgemm`: `r` addresses its matrices inside their allocations,
    /// `r.c` exclusively.
    unsafe fn mm(r: Raw<Self>);
}

impl MmFloat for f32 {
    fn special(g: &Gemm<'_, f32>, dst: &mut [f32]) -> bool {
        if g.m > SMALL_M || g.lb.cs != 1 {
            return false;
        }
        // A copy of a (at most 16 rows): contiguous, and shareable across threads.
        let mut av = Vec::with_capacity(g.m * g.k);
        for i in 0..g.m {
            let row = i as isize * g.la.rs;
            if g.la.cs == 1 {
                av.extend_from_slice(&g.a[row as usize..][..g.k]);
            } else {
                av.extend((0..g.k).map(|p| g.a[(row + p as isize * g.la.cs) as usize]));
            }
        }
        let b = &g.b[..(g.k - 1) * g.lb.rs as usize + g.n];
        small_m(SmallM { m: g.m, k: g.k, n: g.n, a: &av, b, rsb: g.lb.rs as usize }, dst);
        true
    }

    unsafe fn mm(r: Raw<f32>) {
        let (la, lb) = (r.la, r.lb);
        // SAFETY: forwarded (the caller's guarantee).
        unsafe { matrixmultiply::sgemm(r.m, r.k, r.n, 1.0, r.a, la.rs, la.cs, r.b, lb.rs, lb.cs, 0.0, r.c, r.rsc, 1) }
    }
}

impl MmFloat for f64 {
    unsafe fn mm(r: Raw<f64>) {
        let (la, lb) = (r.la, r.lb);
        // SAFETY: forwarded (the caller's guarantee).
        unsafe { matrixmultiply::dgemm(r.m, r.k, r.n, 1.0, r.a, la.rs, la.cs, r.b, lb.rs, lb.cs, 0.0, r.c, r.rsc, 1) }
    }
}

/// One matrixmultiply call: `c = a·b` (`a` m×k, `b` k×n, `c` m×n row-major with row
/// stride `rsc`), as addresses.
#[derive(Clone, Copy)]
struct Raw<T> {
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    la: MatLayout,
    b: *const T,
    lb: MatLayout,
    c: *mut T,
    rsc: isize,
}

// SAFETY: a `Raw` is only dereferenced by `MmFloat::mm` under its callers' guarantees;
// the parts of one product run on the pool's threads and write disjoint blocks of `c`.
unsafe impl<T: Sync> Send for Raw<T> {}
unsafe impl<T: Sync> Sync for Raw<T> {}

impl<T> Raw<T> {
    /// The call for part `p` of the product.
    fn part(self, p: Part) -> Raw<T> {
        let (r0, c0) = (p.r0 as isize, p.c0 as isize);
        Raw {
            m: p.rows,
            n: p.cols,
            a: self.a.wrapping_offset(r0 * self.la.rs),
            b: self.b.wrapping_offset(c0 * self.lb.cs),
            c: self.c.wrapping_offset(r0 * self.rsc + c0),
            ..self
        }
    }
}

/// `dst = a·b` for floats: [`MmFloat::special`], else matrixmultiply in parts over the
/// pool's threads ([`in_parts`]).
fn float_gemm<T: MmFloat>(g: &Gemm<'_, T>, dst: &mut [T]) {
    assert!(dst.len() >= g.m * g.n && g.a.len() >= g.m * g.k && g.b.len() >= g.k * g.n);
    if g.m * g.n == 0 {
        return;
    }
    if g.k == 0 {
        dst[..g.m * g.n].iter_mut().for_each(|d| *d = T::default());
        return;
    }
    if T::special(g, dst) {
        return;
    }
    let r = Raw {
        m: g.m,
        k: g.k,
        n: g.n,
        a: g.a.as_ptr(),
        la: g.la,
        b: g.b.as_ptr(),
        lb: g.lb,
        c: dst.as_mut_ptr(),
        rsc: g.n as isize,
    };
    // SAFETY: the assert above keeps every access of the m×k, k×n and m×n matrices
    // (with the given strides) inside the slices; dst is exclusive, and each part is
    // a block of it the others do not touch. beta = 0: dst is written, never read.
    // Each part on its own thread flushes denormals (`denormals`).
    in_parts(g.m, g.k, g.n, &|p| flushing(|| unsafe { T::mm(r.part(p)) }));
}

/// Products from which [`in_parts`] splits the work over the pool's threads.
const PARALLEL_GEMM: usize = 1 << 20;

/// One part of a product: rows `r0..r0 + rows` × columns `c0..c0 + cols`.
#[derive(Clone, Copy)]
struct Part {
    r0: usize,
    rows: usize,
    c0: usize,
    cols: usize,
}

/// Runs `call(part)` over the m×n output: whole for small products, else one part per
/// thread of the rayon pool — ranges of columns (multiples of 16), or of rows when there
/// are too few columns. A part is a GEMM of its own over all of k, so each output is
/// summed exactly as in one call, whatever the number of threads.
fn in_parts(m: usize, k: usize, n: usize, call: &(dyn Fn(Part) + Sync)) {
    let threads = rayon::current_num_threads();
    let whole = Part { r0: 0, rows: m, c0: 0, cols: n };
    if threads < 2 || m * k * n < PARALLEL_GEMM {
        return call(whole);
    }
    let (len, unit) = if n >= 32 * threads { (n, 16) } else { (m, 8) };
    if len < 2 * unit {
        return call(whole);
    }
    let step = len.div_ceil(threads).next_multiple_of(unit);
    let part = |at: usize| {
        let w = step.min(len - at);
        if len == n {
            Part { c0: at, cols: w, ..whole }
        } else {
            Part { r0: at, rows: w, ..whole }
        }
    };
    rayon::scope(|s| {
        for at in (step..len).step_by(step) {
            s.spawn(move |_| call(part(at)));
        }
        call(part(0));
    });
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
    let batches = d.batch.numel();
    if batches > 1 && !ta && ba.iter().product::<usize>() == batches && bb.iter().all(|&x| x == 1) {
        // One `b` for every batch of a row-major `a`: the batches' rows are one
        // [batches·m, k] matrix, so one GEMM (`x[b, t, d] @ w[d, e]`, a Dense layer
        // over a sequence).
        let rows = batches * d.m;
        let g = Gemm {
            m: rows,
            k: d.k,
            n: d.n,
            a: &av[..rows * d.k],
            la: MatLayout::new(rows, d.k, false),
            b: &bv[..mb],
            lb: MatLayout::new(d.k, d.n, tb),
        };
        T::gemm(&g, &mut dst);
        return dst;
    }
    if mo == 0 {
        return dst;
    }
    let one = |(i, out): (usize, &mut [T])| {
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
        T::gemm(&g, out);
    };
    // Many small products (attention's per-head scores): tasks of several products
    // each. Each product is the same GEMM call either way, so the bits do not change.
    let work = d.m * d.k * d.n;
    if batches > 1 && work < PARALLEL_GEMM && batches * work >= PARALLEL_BATCHES {
        let per_task = (PARALLEL_TASK / work.max(1)).max(1);
        dst.par_chunks_mut(mo).enumerate().with_min_len(per_task).for_each(one);
    } else {
        dst.chunks_mut(mo).enumerate().for_each(one);
    }
    dst
}

/// Multiply-adds of a batched matmul from which its small products run in parallel:
/// below it, waking the pool's threads costs more than they save (attention_digits'
/// training steps, whose weight gradients are 32 products of 8K multiply-adds, ran
/// 1.6× slower per epoch with 2^18 here).
const PARALLEL_BATCHES: usize = 1 << 20;

/// The least multiply-adds of one parallel task (products grouped to reach it).
const PARALLEL_TASK: usize = 1 << 16;

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

/// `out[m×n] = op(a)·op(b)` for one f32 matrix pair (`op` transposes when asked): the
/// very GEMM call a 2-D eager matmul makes, so the same bits.
pub(crate) fn matmul_f32_into(d: crate::trace::backend::MatMulF32, a: &[f32], b: &[f32], out: &mut [f32]) {
    let g = Gemm {
        m: d.m,
        k: d.k,
        n: d.n,
        a,
        la: MatLayout::new(d.m, d.k, d.transpose_a),
        b,
        lb: MatLayout::new(d.k, d.n, d.transpose_b),
    };
    <f32 as GemmElem>::gemm(&g, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data<T: From<f32>>(seed: u64, n: usize) -> Vec<T> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s = crate::random::splitmix64(s);
                T::from((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
            })
            .collect()
    }

    /// `dst = a·b` (a transposed when `ta`) in a pool of `threads` threads.
    fn product<T: GemmElem + From<f32> + Send>(threads: usize, (m, k, n): (usize, usize, usize), ta: bool) -> Vec<T> {
        let (a, b) = (data::<T>(1, m * k), data::<T>(2, k * n));
        let g = Gemm { m, k, n, a: &a, la: MatLayout::new(m, k, ta), b: &b, lb: MatLayout::new(k, n, false) };
        let mut dst = vec![T::default(); m * n];
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool");
        pool.install(|| T::gemm(&g, &mut dst));
        dst
    }

    /// The parts of a product over the pool's threads (columns of a wide product, rows of
    /// a narrow one, either operand layout) sum every output exactly as one call does:
    /// the same bits for 1, 2, 3 and 5 threads, in f32 and f64.
    #[test]
    fn gemm_parts_give_one_calls_bits_for_every_thread_count() {
        for (shape, ta) in [((96, 150, 520), false), ((700, 90, 24), true), ((130, 64, 200), false)] {
            assert!(shape.0 * shape.1 * shape.2 >= PARALLEL_GEMM, "{shape:?} is split");
            let one32: Vec<f32> = product(1, shape, ta);
            let one64: Vec<f64> = product(1, shape, ta);
            for threads in [2, 3, 5] {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&product(threads, shape, ta)), bits(&one32), "f32 {shape:?}, {threads} threads");
                let many: Vec<f64> = product(threads, shape, ta);
                assert!(many.iter().zip(&one64).all(|(x, y)| x.to_bits() == y.to_bits()), "f64 {shape:?}, {threads}");
            }
        }
    }
}
