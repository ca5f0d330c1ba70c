//! Parallel and SIMD helpers shared by the kernels.
//!
//! Large buffers are split into fixed chunks of `CHUNK` elements handed to rayon; the
//! chunking never changes results (elementwise) or is part of the canonical order
//! (reductions, see `reduce.rs`), so outputs do not depend on the thread count.
//! Inner loops are compiled for baseline x86-64, AVX2 + FMA and (elementwise loops)
//! AVX-512 + FMA, picked at run time. rustc never contracts `a*b+c` into an FMA, so
//! every version gives the same bits; the explicit `mul_add`s of the transcendentals
//! (`math`) become one instruction where FMA is enabled and a call of libm's `fmaf` (the
//! same bits, slowly) where it is not.

use rayon::prelude::*;

/// Elements per parallel chunk; buffers shorter than two chunks run on the caller.
pub(crate) const CHUNK: usize = 1 << 15;

/// Runs `body` with the widest SIMD the CPU has enabled for the loops inlined into it.
#[inline(always)]
pub(crate) fn simd<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { avx2(body) };
        }
    }
    body()
}

/// [`simd`] with AVX-512 first, for elementwise loops (maps, broadcasts,
/// transcendentals), where 16 lanes pay; reductions and the GEMM stay on [`simd`] (their
/// loops measured slower at 512 bits). Each lane computes the same IEEE operations
/// whatever the width, so the bits do not change.
#[inline(always)]
pub(crate) fn simd_wide<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn avx512<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
            return unsafe { avx512(body) };
        }
    }
    simd(body)
}

/// A loop for [`run_wide`]: `run` must be `#[inline(always)]`, and so must everything its
/// per-element code calls.
pub(crate) trait WideLoop {
    fn run(&mut self);
}

/// [`simd_wide`] for loops whose per-element code is too large for the compiler to
/// inline a closure holding it into the AVX-512 function (`erf`, `pow`: outside it every
/// `mul_add` is a libm call, 5–8× slower): the loop is a type whose `run` is always
/// inlined into a function compiled for AVX-512 + FMA, AVX2 + FMA or the baseline.
pub(crate) fn run_wide<L: WideLoop>(l: &mut L) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,fma")]
        unsafe fn wide<L: WideLoop>(l: &mut L) {
            l.run()
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn narrow<L: WideLoop>(l: &mut L) {
            l.run()
        }
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
            return unsafe { wide(l) };
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { narrow(l) };
        }
    }
    l.run()
}

/// Calls `f(offset, chunk)` over `out` in fixed chunks, in parallel when `out` is large.
#[inline]
pub(crate) fn for_chunks<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    if out.len() < 2 * CHUNK {
        f(0, out)
    } else {
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, c)| f(i * CHUNK, c));
    }
}

/// `out[i] = f(a[i])`.
#[inline(always)]
pub(crate) fn map1<A: Copy + Sync, O: Send>(a: &[A], out: &mut [O], f: impl Fn(A) -> O + Sync + Copy) {
    for_chunks(out, |off, o| {
        let a = &a[off..off + o.len()];
        simd_wide(|| {
            for (o, &a) in o.iter_mut().zip(a) {
                *o = f(a);
            }
        })
    });
}

/// `out[i] = f(a[i], b[i])`.
#[inline(always)]
pub(crate) fn map2<A: Copy + Sync, B: Copy + Sync, O: Send>(
    a: &[A],
    b: &[B],
    out: &mut [O],
    f: impl Fn(A, B) -> O + Sync + Copy,
) {
    for_chunks(out, |off, o| {
        let a = &a[off..off + o.len()];
        let b = &b[off..off + o.len()];
        simd_wide(|| {
            for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                *o = f(a, b);
            }
        })
    });
}
