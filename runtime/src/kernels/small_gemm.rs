//! Few-row f32 GEMM (`m ≤ 16` rows, row-major right operand): small-batch inference,
//! where packing `b` as matrixmultiply does costs more than the arithmetic.
//!
//! Every output is summed over k in ascending order from 0, one fused multiply-add at a
//! time (`acc = fma(a[i,p], b[p,j], acc)`), whichever path runs: the bits depend only on
//! the operands (a CPU without FMA units gets them from libm's `fmaf`, slowly). On
//! x86-64 the sums live in vector registers — a tile of up to 12 rows × 32 columns
//! (AVX-512) or 4 rows × 16 columns (AVX2 + FMA) — through a block of [`K_BLOCK`] steps
//! of k, loading each row of `b`'s strip once for every row of the tile, so the
//! arithmetic, not the loads and stores of partial sums, sets the pace; between blocks
//! the sums wait in the output, unchanged. The blocks are for the prefetchers: a
//! strip of `b` walked down all of k is a column of short pieces one row of `b` apart
//! (a new 4 KiB page every row or two), which they do not follow; within a block the
//! strips go left to right, so each of its rows of `b` is read front to back.
//! Elsewhere a portable loop adds four rows of `b` per pass over the output row.
//! Column blocks run in parallel only when the product is large (see [`PARALLEL`]).

/// One small-m product `dst[m×n] = a·b`.
pub(crate) struct SmallM<'a> {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// `a` as a contiguous m×k row-major copy.
    pub a: &'a [f32],
    /// `b` row-major with row stride `rsb`: at least `(k − 1)·rsb + n` elements.
    pub b: &'a [f32],
    pub rsb: usize,
}

/// Output columns per block (the unit of parallel work).
const BLOCK_COLS: usize = 256;
/// Steps of k per pass of the register tiles (see the module docs): few enough rows of
/// `b` to be followed as sequential streams, enough steps to amortise reloading the sums.
const K_BLOCK: usize = 32;
/// Multiply-adds from which blocks run in parallel: below, handing the blocks to the
/// pool costs more than it saves (waking a pool thread on the 2-core VM of
/// BENCHMARKS.md costs tens of µs; a 784×512 layer at m = 10 is 4M multiply-adds).
const PARALLEL: usize = 1 << 24;

/// `dst[m×n] = a·b` (see the module docs for the summation order).
pub(crate) fn small_m(g: SmallM<'_>, dst: &mut [f32]) {
    let SmallM { m, k, n, .. } = g;
    assert!(g.a.len() >= m * k && dst.len() >= m * n && (k == 0 || g.b.len() >= (k - 1) * g.rsb + n));
    let blocks: Vec<(usize, usize)> = (0..n).step_by(BLOCK_COLS).map(|c| (c, (c + BLOCK_COLS).min(n))).collect();
    if blocks.len() == 1 {
        let mut out = vec![0.0f32; m * n];
        block(&g, 0, n, &mut out);
        dst[..m * n].copy_from_slice(&out);
        return;
    }
    let run = |&(c0, c1): &(usize, usize)| {
        let mut out = vec![0.0f32; m * (c1 - c0)];
        block(&g, c0, c1, &mut out);
        (c0, out)
    };
    let parts: Vec<(usize, Vec<f32>)> = if m * k * n >= PARALLEL {
        use rayon::prelude::*;
        blocks.par_iter().map(run).collect()
    } else {
        blocks.iter().map(run).collect()
    };
    for (c0, out) in parts {
        let w = out.len() / m.max(1);
        for (i, r) in out.chunks_exact(w).enumerate() {
            dst[i * n + c0..i * n + c0 + w].copy_from_slice(r);
        }
    }
}

/// Columns `c0..c1` of the product into `out` (m × (c1 − c0), row-major, zeroed),
/// denormals flushed to zero as in every GEMM (`denormals`).
fn block(g: &SmallM<'_>, c0: usize, c1: usize, out: &mut [f32]) {
    super::denormals::flushing(|| block_ieee(g, c0, c1, out))
}

fn block_ieee(g: &SmallM<'_>, c0: usize, c1: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F is present; `small_m`'s assert and c1 ≤ n keep every
            // access in bounds, and out holds m × (c1 − c0).
            return unsafe { x86::block_avx512(g, c0, c1, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: as above, with AVX2 and FMA.
            return unsafe { x86::block_avx2(g, c0, c1, out) };
        }
    }
    portable(g, c0, c1, out)
}

/// Row tiles `(first row, rows)` covering `0..m` with at most `max` rows each, as even
/// as possible (m = 10, max 8 → 5 + 5).
fn row_tiles(m: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let tiles = m.div_ceil(max);
    let (base, extra) = (m / tiles.max(1), m % tiles.max(1));
    (0..tiles).scan(0, move |i0, t| {
        let rows = base + usize::from(t < extra);
        let tile = (*i0, rows);
        *i0 += rows;
        Some(tile)
    })
}

/// The portable path: four rows of b per pass over each output row,
/// `fma(x3, y3, fma(x2, y2, fma(x1, y1, fma(x0, y0, d))))` — the same sums as one row at a
/// time.
fn portable(g: &SmallM<'_>, c0: usize, c1: usize, out: &mut [f32]) {
    let SmallM { k, a, b, rsb, .. } = *g;
    let w = c1 - c0;
    if w == 0 {
        return;
    }
    let row_of = |q: usize| &b[q * rsb + c0..q * rsb + c1];
    let mut p = 0;
    while p + 4 <= k {
        let (b0, b1, b2, b3) = (row_of(p), row_of(p + 1), row_of(p + 2), row_of(p + 3));
        for (i, row) in out.chunks_exact_mut(w).enumerate() {
            let x = &a[i * k + p..i * k + p + 4];
            for j in 0..w {
                let d = x[0].mul_add(b0[j], row[j]);
                row[j] = x[3].mul_add(b3[j], x[2].mul_add(b2[j], x[1].mul_add(b1[j], d)));
            }
        }
        p += 4;
    }
    for p in p..k {
        let brow = row_of(p);
        for (i, row) in out.chunks_exact_mut(w).enumerate() {
            let x = a[i * k + p];
            for (d, &y) in row.iter_mut().zip(brow) {
                *d = x.mul_add(y, *d);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{row_tiles, SmallM, K_BLOCK};
    use std::arch::x86_64::*;

    /// One register tile: rows `i0..i0 + R` × columns `j..j + cols` of the block, whose
    /// first column is `c0` of the product.
    #[derive(Clone, Copy)]
    struct Tile {
        i0: usize,
        c0: usize,
        j: usize,
        cols: usize,
        /// Width of the block (`out`'s row length).
        w: usize,
    }

    /// Calls `$tile::<R>` for R = `$r` among the listed sizes.
    macro_rules! dispatch {
        ($tile:ident, $r:expr, ($($n:literal)*), $args:tt) => {
            match $r {
                $($n => $tile::<$n> $args,)*
                _ => unreachable!("row tiles are at most the largest listed size"),
            }
        };
    }

    /// [`super::block`] on AVX-512: tiles of ≤ 12 rows × 32 columns (24 accumulators of
    /// the 32 registers), k in blocks of [`K_BLOCK`].
    ///
    /// # Safety
    /// AVX-512F is present; `c1 ≤ g.n`, `g` satisfies `small_m`'s assert and `out`
    /// holds `g.m × (c1 − c0)` elements.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block_avx512(g: &SmallM<'_>, c0: usize, c1: usize, out: &mut [f32]) {
        let w = c1 - c0;
        for p0 in (0..g.k).step_by(K_BLOCK) {
            let ks = p0..(p0 + K_BLOCK).min(g.k);
            for j in (0..w).step_by(32) {
                for (i0, r) in row_tiles(g.m, 12) {
                    let t = Tile { i0, c0, j, cols: (w - j).min(32), w };
                    // SAFETY: forwarded (the tile lies inside the block).
                    unsafe { dispatch!(tile512, r, (1 2 3 4 5 6 7 8 9 10 11 12), (g, t, ks.clone(), out)) }
                }
            }
        }
    }

    /// Lanes `0..n` of a 16-lane mask.
    fn mask16(n: usize) -> __mmask16 {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// Adds the products of k steps `ks` to the tile's sums in `out`.
    ///
    /// # Safety
    /// As [`block_avx512`], with `t` inside the block, `R` rows from `t.i0` in `a` and
    /// `ks` within `0..g.k`.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile512<const R: usize>(g: &SmallM<'_>, t: Tile, ks: std::ops::Range<usize>, out: &mut [f32]) {
        let (lo, hi) = (mask16(t.cols), mask16(t.cols.saturating_sub(16)));
        let (mut s0, mut s1) = ([_mm512_setzero_ps(); R], [_mm512_setzero_ps(); R]);
        for r in 0..R {
            let o = out[(t.i0 + r) * t.w + t.j..].as_ptr();
            // SAFETY: as for the stores below (masked lanes are not read).
            unsafe {
                s0[r] = _mm512_maskz_loadu_ps(lo, o);
                s1[r] = _mm512_maskz_loadu_ps(hi, o.wrapping_add(16));
            }
        }
        let a = &g.a[t.i0 * g.k..(t.i0 + R) * g.k];
        let col = t.c0 + t.j;
        for p in ks {
            let bp = g.b[p * g.rsb + col..].as_ptr();
            // SAFETY: lanes beyond `cols` are masked off (never read, cannot fault);
            // the rest lie in b's row p (col + cols ≤ n). `wrapping_add` keeps the
            // address arithmetic defined when the high half is wholly masked.
            let (y0, y1) = unsafe { (_mm512_maskz_loadu_ps(lo, bp), _mm512_maskz_loadu_ps(hi, bp.wrapping_add(16))) };
            for r in 0..R {
                let x = _mm512_set1_ps(a[r * g.k + p]);
                s0[r] = _mm512_fmadd_ps(x, y0, s0[r]);
                s1[r] = _mm512_fmadd_ps(x, y1, s1[r]);
            }
        }
        for r in 0..R {
            let o = out[(t.i0 + r) * t.w + t.j..].as_mut_ptr();
            // SAFETY: as for the loads, inside row i0 + r of the block.
            unsafe {
                _mm512_mask_storeu_ps(o, lo, s0[r]);
                _mm512_mask_storeu_ps(o.wrapping_add(16), hi, s1[r]);
            }
        }
    }

    /// [`super::block`] on AVX2 + FMA: tiles of ≤ 4 rows × 16 columns (16 registers), k
    /// in blocks of [`K_BLOCK`].
    ///
    /// # Safety
    /// As [`block_avx512`], with AVX2 and FMA present.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_avx2(g: &SmallM<'_>, c0: usize, c1: usize, out: &mut [f32]) {
        let w = c1 - c0;
        for p0 in (0..g.k).step_by(K_BLOCK) {
            let ks = p0..(p0 + K_BLOCK).min(g.k);
            for j in (0..w).step_by(16) {
                for (i0, r) in row_tiles(g.m, 4) {
                    let t = Tile { i0, c0, j, cols: (w - j).min(16), w };
                    // SAFETY: forwarded (the tile lies inside the block).
                    unsafe { dispatch!(tile256, r, (1 2 3 4), (g, t, ks.clone(), out)) }
                }
            }
        }
    }

    /// Lanes `0..n` of an 8-lane mask (sign bits set).
    #[target_feature(enable = "avx2")]
    fn mask8(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }

    /// Adds the products of k steps `ks` to the tile's sums in `out`.
    ///
    /// # Safety
    /// As [`block_avx2`], with `t` inside the block, `R` rows from `t.i0` in `a` and
    /// `ks` within `0..g.k`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile256<const R: usize>(g: &SmallM<'_>, t: Tile, ks: std::ops::Range<usize>, out: &mut [f32]) {
        let (lo, hi) = (mask8(t.cols), mask8(t.cols.saturating_sub(8)));
        let (mut s0, mut s1) = ([_mm256_setzero_ps(); R], [_mm256_setzero_ps(); R]);
        for r in 0..R {
            let o = out[(t.i0 + r) * t.w + t.j..].as_ptr();
            // SAFETY: as for the stores below (masked lanes are not read).
            unsafe {
                s0[r] = _mm256_maskload_ps(o, lo);
                s1[r] = _mm256_maskload_ps(o.wrapping_add(8), hi);
            }
        }
        let a = &g.a[t.i0 * g.k..(t.i0 + R) * g.k];
        let col = t.c0 + t.j;
        for p in ks {
            let bp = g.b[p * g.rsb + col..].as_ptr();
            // SAFETY: as in `tile512` (masked lanes are not read).
            let (y0, y1) = unsafe { (_mm256_maskload_ps(bp, lo), _mm256_maskload_ps(bp.wrapping_add(8), hi)) };
            for r in 0..R {
                let x = _mm256_set1_ps(a[r * g.k + p]);
                s0[r] = _mm256_fmadd_ps(x, y0, s0[r]);
                s1[r] = _mm256_fmadd_ps(x, y1, s1[r]);
            }
        }
        for r in 0..R {
            let o = out[(t.i0 + r) * t.w + t.j..].as_mut_ptr();
            // SAFETY: as for the loads, inside row i0 + r of the block.
            unsafe {
                _mm256_maskstore_ps(o, lo, s0[r]);
                _mm256_maskstore_ps(o.wrapping_add(8), hi, s1[r]);
            }
        }
    }
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

    type Path = fn(&SmallM<'_>, usize, usize, &mut [f32]);

    /// Every path this CPU can run, by name.
    fn paths() -> Vec<(&'static str, Path)> {
        let mut v: Vec<(&'static str, Path)> = vec![("portable", portable), ("dispatched", block)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY (of the call): the feature was just detected; `check` passes
                // in-bounds blocks.
                v.push(("avx512", |g, c0, c1, o| unsafe { x86::block_avx512(g, c0, c1, o) }));
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                v.push(("avx2", |g, c0, c1, o| unsafe { x86::block_avx2(g, c0, c1, o) }));
            }
        }
        v
    }

    /// Few-row products give, bit for bit, the plain loop that sums each output over k
    /// in ascending order — on every path, for row counts that fill and split the
    /// register tiles, ragged column tails, a row stride wider than n, and through
    /// `small_m`'s column blocks.
    #[test]
    fn small_m_sums_every_output_in_k_order() {
        let shapes =
            [(1, 7, 5), (3, 50, 32), (10, 784, 512), (16, 33, 300), (4, 3, 97), (2, 1, 1), (9, 20, 47), (13, 5, 17)];
        for (t, &(m, k, n)) in shapes.iter().enumerate() {
            let rsb = if t % 2 == 0 { n } else { n + 3 };
            let (a, b) = (data(2 * t as u64, m * k), data(2 * t as u64 + 1, (k - 1) * rsb + n));
            let expect = |i: usize, j: usize| {
                let mut acc = 0.0f32;
                for p in 0..k {
                    acc = a[i * k + p].mul_add(b[p * rsb + j], acc);
                }
                acc
            };
            let g = SmallM { m, k, n, a: &a, b: &b, rsb };
            for (name, path) in paths() {
                // Two blocks: columns 0..c and c..n (the second starts mid-product).
                let c = n / 3;
                for (c0, c1) in [(0, c), (c, n)] {
                    let mut out = vec![0.0f32; m * (c1 - c0)];
                    path(&g, c0, c1, &mut out);
                    for i in 0..m {
                        for j in c0..c1 {
                            let got = out[i * (c1 - c0) + j - c0];
                            assert_eq!(got.to_bits(), expect(i, j).to_bits(), "{name} ({m},{k},{n}) at {i},{j}");
                        }
                    }
                }
            }
            let mut got = vec![f32::NAN; m * n];
            small_m(SmallM { m, k, n, a: &a, b: &b, rsb }, &mut got);
            for i in 0..m {
                for j in 0..n {
                    assert_eq!(got[i * n + j].to_bits(), expect(i, j).to_bits(), "small_m ({m},{k},{n}) at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn row_tiles_cover_every_row_once_evenly() {
        for m in 1..=16 {
            for max in [4, 12] {
                let tiles: Vec<_> = row_tiles(m, max).collect();
                assert_eq!(tiles.iter().map(|t| t.1).sum::<usize>(), m);
                assert!(tiles.iter().all(|&(_, r)| r >= 1 && r <= max), "{m} {max}: {tiles:?}");
                assert!(tiles.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0 && w[0].1.abs_diff(w[1].1) <= 1));
                assert_eq!(tiles.len(), m.div_ceil(max));
            }
        }
    }
}
