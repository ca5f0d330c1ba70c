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
float_gemm!(f32 => sgemm, f64 => dgemm);

/// f64 GEMM: matrixmultiply, its columns split over the pool's threads.
///
/// # Safety
/// As [`sgemm`].
#[allow(clippy::too_many_arguments)]
unsafe fn dgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f64,
    a: *const f64,
    rsa: isize,
    csa: isize,
    b: *const f64,
    rsb: isize,
    csb: isize,
    beta: f64,
    c: *mut f64,
    rsc: isize,
    csc: isize,
) {
    let (a, b, c) = (a as usize, b as usize, c as usize);
    let call = |p: Part| {
        let (a, b, c) = (a as *const f64, b as *const f64, c as *mut f64);
        // SAFETY: as in `sgemm`: disjoint parts inside the caller's extents.
        unsafe {
            let (r0, c0) = (p.r0 as isize, p.c0 as isize);
            let (a, b, c) = (a.offset(r0 * rsa), b.offset(c0 * csb), c.offset(r0 * rsc + c0 * csc));
            matrixmultiply::dgemm(p.rows, k, p.cols, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    };
    in_parts(m, k, n, &call);
}

/// Rows at or below which f32 GEMMs use [`small_m`].
const SMALL_M: usize = 16;

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
        let mut av = Vec::with_capacity(m * k);
        for i in 0..m {
            // SAFETY: (i, p) < (m, k) stays inside a, per the caller's guarantee.
            av.extend((0..k).map(|p| unsafe { *a.offset(i as isize * rsa + p as isize * csa) }));
        }
        small_m(SmallM { m, k, n, a: &av, b: bs, rsb: rsb as usize }, dst);
        return;
    }
    // Addresses as integers: the calls run on the pool's threads.
    let (a, b, c) = (a as usize, b as usize, c as usize);
    let call = |p: Part| {
        let (a, b, c) = (a as *const f32, b as *const f32, c as *mut f32);
        // SAFETY: the part's rows of a, columns of b and block of c lie inside the
        // caller's extents; different parts write disjoint blocks of c.
        unsafe {
            let (r0, c0) = (p.r0 as isize, p.c0 as isize);
            let (a, b, c) = (a.offset(r0 * rsa), b.offset(c0 * csb), c.offset(r0 * rsc + c0 * csc));
            matrixmultiply::sgemm(p.rows, k, p.cols, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    };
    in_parts(m, k, n, &call);
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
