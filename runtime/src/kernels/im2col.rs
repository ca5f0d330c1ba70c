//! conv2d and its two gradients as GEMMs over im2col rows, a chunk of output positions
//! at a time: each chunk's rows are built in a buffer that stays in cache and multiplied
//! at once, and the chunks run on the pool's threads.
//!
//! The output and the input gradient have the bits of one product over all rows: a
//! row's value never depends on the other rows of its product ([`linalg`](super::linalg)'s
//! parts rely on the same), and no chunk is short enough to take the GEMM's few-rows
//! path (`SMALL_M`) unless the whole product is. The input gradient's scatter-add keeps
//! its order too: each image's cells are added in the order of its own positions,
//! chunks holding whole images. The filter gradient sums over the rows: fixed chunks'
//! partial products, added in chunk order, whatever the number of threads.

use std::ops::Range;

use rayon::prelude::*;

use crate::dtype::Element;
use crate::kernels::linalg::{Gemm, GemmElem, MatLayout, SMALL_M};
use crate::ops::nn::Window;

/// Output positions per chunk: a multiple of 8 (the GEMM's row parts) far above
/// `SMALL_M`.
const CHUNK_ROWS: usize = 128;

/// `0..m` in chunks of `unit·⌈CHUNK_ROWS / unit⌉` rows (whole multiples of `unit`), a
/// last chunk of at most `SMALL_M` rows merged into the one before it.
fn chunks(m: usize, unit: usize) -> Vec<Range<usize>> {
    let size = CHUNK_ROWS.div_ceil(unit) * unit;
    let mut out: Vec<Range<usize>> = (0..m).step_by(size.max(1)).map(|s| s..(s + size).min(m)).collect();
    if out.len() > 1 && out.last().is_some_and(|r| r.len() <= SMALL_M) {
        if let Some(last) = out.pop() {
            if let Some(prev) = out.last_mut() {
                prev.end = last.end;
            }
        }
    }
    out
}

/// `dst` split into the blocks of `ranges` (rows of `width` elements), each handed to
/// `f` with its range on the pool's threads.
fn for_chunks<T: Send>(
    ranges: &[Range<usize>],
    width: usize,
    dst: &mut [T],
    f: impl Fn(Range<usize>, &mut [T]) + Sync,
) {
    let mut blocks = Vec::with_capacity(ranges.len());
    let mut rest = dst;
    for r in ranges {
        let (block, tail) = rest.split_at_mut(r.len() * width);
        blocks.push((r.clone(), block));
        rest = tail;
    }
    blocks.into_par_iter().for_each(|(r, block)| f(r, block));
}

/// Visits the window cells that lie inside the input, for output positions `rows` (of
/// `N·OH·OW`) in order and each window row-major: `f(o, i, cell)` with `o` the output
/// position, `i` the input pixel (channels excluded) and `cell` the window cell.
pub(crate) fn for_window_cells(g: &Window, rows: Range<usize>, mut f: impl FnMut(usize, usize, usize)) {
    for o in rows {
        let ox = o % g.w.out;
        let oy = (o / g.w.out) % g.h.out;
        let n = o / (g.w.out * g.h.out);
        for ky in 0..g.h.kernel {
            let iy = (oy * g.h.stride + ky) as isize - g.h.pad_before as isize;
            if iy < 0 || iy >= g.h.input as isize {
                continue;
            }
            for kx in 0..g.w.kernel {
                let ix = (ox * g.w.stride + kx) as isize - g.w.pad_before as isize;
                if ix < 0 || ix >= g.w.input as isize {
                    continue;
                }
                f(o, (n * g.h.input + iy as usize) * g.w.input + ix as usize, ky * g.w.kernel + kx);
            }
        }
    }
}

/// Rows `rows` of the im2col matrix `[N·OH·OW, KH·KW·C]` into `cols`: each output
/// position's window, cell by cell (row-major), zeros where it overhangs the input.
pub(crate) fn im2col_rows<T: Element>(x: &[T], g: &Window, rows: Range<usize>, cols: &mut [T]) {
    let c = g.c;
    let kk = g.h.kernel * g.w.kernel * c;
    cols.fill(T::default());
    let first = rows.start;
    for_window_cells(g, rows, |o, i, cell| {
        cols[(o - first) * kk + cell * c..][..c].copy_from_slice(&x[i * c..(i + 1) * c]);
    });
}

/// Whether the im2col matrix is `x` itself (a 1×1 window, stride 1, no padding): its
/// rows are then read in place, not copied.
fn pointwise(g: &Window) -> bool {
    let same = |a: &crate::ops::nn::AxisGeom| a.kernel == 1 && a.stride == 1 && a.pad_before == 0 && a.out == a.input;
    same(&g.h) && same(&g.w)
}

/// Rows `rows` of the im2col matrix: in place for a pointwise window, else built in
/// `buf`.
fn rows_of<'a, T: Element>(x: &'a [T], g: &Window, rows: Range<usize>, buf: &'a mut Vec<T>) -> &'a [T] {
    let k = g.h.kernel * g.w.kernel * g.c;
    if pointwise(g) {
        return &x[rows.start * k..rows.end * k];
    }
    // Every element is written by `im2col_rows` (zeros first).
    *buf = crate::buffer::alloc(rows.len() * k);
    im2col_rows(x, g, rows, buf);
    buf
}

/// `out[m×n] = im2col(x)·f` (f is `[k, n]`, row-major), chunk by chunk.
pub(crate) fn conv<T: GemmElem>(x: &[T], f: &[T], g: &Window, n: usize, out: &mut [T]) {
    let k = g.h.kernel * g.w.kernel * g.c;
    let m = g.n * g.h.out * g.w.out;
    for_chunks(&chunks(m, 8), n, out, |rows, dst| {
        let len = rows.len();
        let mut buf = Vec::new();
        let cols = rows_of(x, g, rows, &mut buf);
        let gm =
            Gemm { m: len, k, n, a: cols, la: MatLayout::new(len, k, false), b: f, lb: MatLayout::new(k, n, false) };
        T::gemm(&gm, dst);
    });
}

/// Output positions per partial sum of the filter gradient (a multiple of 8).
const FILTER_CHUNK: usize = 1024;

/// The filter gradient `dW[k×n] = im2col(x)ᵀ·dy`: one partial product per chunk of
/// `FILTER_CHUNK` positions (on the pool's threads, each chunk's rows built in cache),
/// the partials then added in chunk order, so the bits do not depend on the threads.
pub(crate) fn backprop_filter<T: GemmElem + std::ops::Add<Output = T>>(
    x: &[T],
    dy: &[T],
    g: &Window,
    n: usize,
    dw: &mut [T],
) {
    let k = g.h.kernel * g.w.kernel * g.c;
    let m = g.n * g.h.out * g.w.out;
    let ranges: Vec<Range<usize>> = (0..m).step_by(FILTER_CHUNK).map(|s| s..(s + FILTER_CHUNK).min(m)).collect();
    let partials: Vec<Vec<T>> = ranges
        .into_par_iter()
        .map(|rows| {
            let len = rows.len();
            let b = &dy[rows.start * n..rows.end * n];
            let mut buf = Vec::new();
            let cols = rows_of(x, g, rows, &mut buf);
            let mut part = crate::buffer::filled(T::default(), k * n);
            let gm = Gemm {
                m: k,
                k: len,
                n,
                a: cols,
                la: MatLayout::new(k, len, true),
                b,
                lb: MatLayout::new(len, n, false),
            };
            T::gemm(&gm, &mut part);
            part
        })
        .collect();
    dw.iter_mut().for_each(|d| *d = T::default());
    for part in &partials {
        for (d, &p) in dw.iter_mut().zip(part) {
            *d = *d + p;
        }
    }
}

/// `dx` (the input's shape) from `dy[m×n]` and the filter `f[k×n]`: each chunk of whole
/// images computes its rows of `dy·fᵀ` and scatter-adds them into its images' cells.
pub(crate) fn backprop_input<T: GemmElem + std::ops::Add<Output = T>>(
    dy: &[T],
    f: &[T],
    g: &Window,
    n: usize,
    dx: &mut [T],
) {
    let k = g.h.kernel * g.w.kernel * g.c;
    let per_image = g.h.out * g.w.out;
    let image_cells = g.h.input * g.w.input * g.c;
    if per_image == 0 || image_cells == 0 {
        return;
    }
    // Chunks of whole images: their cells are theirs alone.
    let images = chunks(g.n * per_image, per_image);
    let image_ranges: Vec<Range<usize>> = images.iter().map(|r| r.start / per_image..r.end / per_image).collect();
    for_chunks(&image_ranges, image_cells, dx, |imgs, block| {
        let rows = imgs.start * per_image..imgs.end * per_image;
        let len = rows.len();
        let mut dcols = crate::buffer::filled(T::default(), len * k);
        let gm = Gemm {
            m: len,
            k: n,
            n: k,
            a: &dy[rows.start * n..rows.end * n],
            la: MatLayout::new(len, n, false),
            b: f,
            lb: MatLayout::new(n, k, true),
        };
        T::gemm(&gm, &mut dcols);
        col2im_add(&dcols, g, rows, imgs.start, block);
    });
}

/// Adds the im2col-shaped `dcols` (rows `rows`) into `dx`, the cells of the images from
/// `first_image` on, in the order of the rows and of each row's window cells.
fn col2im_add<T: Element + std::ops::Add<Output = T>>(
    dcols: &[T],
    g: &Window,
    rows: Range<usize>,
    first_image: usize,
    dx: &mut [T],
) {
    let c = g.c;
    let kk = g.h.kernel * g.w.kernel * c;
    let (first, skipped) = (rows.start, first_image * g.h.input * g.w.input);
    for_window_cells(g, rows, |o, i, cell| {
        let src = &dcols[(o - first) * kk + cell * c..][..c];
        for (d, &s) in dx[(i - skipped) * c..][..c].iter_mut().zip(src) {
            *d = *d + s;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::nn::{window, Padding};
    use crate::shape::Shape;

    /// The reference: the whole im2col matrix, one product, and the scatter-add over all
    /// positions in order.
    fn reference(x: &[f32], f: &[f32], dy: &[f32], g: &Window, n: usize) -> (Vec<f32>, Vec<f32>) {
        let k = g.h.kernel * g.w.kernel * g.c;
        let m = g.n * g.h.out * g.w.out;
        let mut cols = vec![0.0; m * k];
        im2col_rows(x, g, 0..m, &mut cols);
        let mut out = vec![0.0; m * n];
        let gm = Gemm { m, k, n, a: &cols, la: MatLayout::new(m, k, false), b: f, lb: MatLayout::new(k, n, false) };
        f32::gemm(&gm, &mut out);
        let mut dcols = vec![0.0; m * k];
        let gm = Gemm { m, k: n, n: k, a: dy, la: MatLayout::new(m, n, false), b: f, lb: MatLayout::new(n, k, true) };
        f32::gemm(&gm, &mut dcols);
        let mut dx = vec![0.0; x.len()];
        col2im_add(&dcols, g, 0..m, 0, &mut dx);
        (out, dx)
    }

    fn values(seed: u64, len: usize) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Chunks of any size (a tail of 1 to 16 rows merged, images of 1 to 49 positions,
    /// products below and above the parallel threshold) give the reference's bits.
    #[test]
    fn chunked_products_give_the_bits_of_one_product() {
        let cases = [
            ([1, 3, 3, 2], [2, 2, 2, 3], [1, 1], Padding::Valid),
            ([3, 7, 7, 3], [3, 3, 3, 5], [1, 1], Padding::Same),
            ([5, 9, 11, 4], [3, 2, 4, 7], [2, 1], Padding::Same),
            ([2, 40, 36, 8], [3, 3, 8, 40], [1, 1], Padding::Same),
            ([17, 5, 5, 1], [5, 5, 1, 3], [1, 1], Padding::Valid),
            ([9, 12, 12, 16], [1, 1, 16, 70], [3, 3], Padding::Valid),
            // Pointwise windows: the rows read in place.
            ([4, 6, 5, 8], [1, 1, 8, 12], [1, 1], Padding::Valid),
            ([3, 7, 9, 5], [1, 1, 5, 3], [1, 1], Padding::Same),
        ];
        for (i, (xs, fs, st, pad)) in cases.into_iter().enumerate() {
            let g = window("conv2d", &Shape::new(&xs), [fs[0], fs[1]], st, pad).unwrap();
            let x = values(i as u64 * 3 + 1, xs.iter().product());
            let f = values(i as u64 * 3 + 2, fs.iter().product());
            let m = g.n * g.h.out * g.w.out;
            let dy = values(i as u64 * 3 + 3, m * fs[3]);
            let (want_out, want_dx) = reference(&x, &f, &dy, &g, fs[3]);
            let mut out = vec![0.0; m * fs[3]];
            conv(&x, &f, &g, fs[3], &mut out);
            let mut dx = vec![0.0; x.len()];
            backprop_input(&dy, &f, &g, fs[3], &mut dx);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out), bits(&want_out), "conv {xs:?} {fs:?}");
            assert_eq!(bits(&dx), bits(&want_dx), "backprop_input {xs:?} {fs:?}");
            // The filter gradient against an f64 sum over positions, and the same bits
            // on 1, 2 and 3 threads.
            let k = fs[0] * fs[1] * xs[3];
            let mut cols = vec![0.0; m * k];
            im2col_rows(&x, &g, 0..m, &mut cols);
            let want: Vec<f64> = (0..k * fs[3])
                .map(|e| {
                    (0..m).map(|o| f64::from(cols[o * k + e / fs[3]]) * f64::from(dy[o * fs[3] + e % fs[3]])).sum()
                })
                .collect();
            let filter_grad = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool");
                let mut dw = vec![0.0f32; k * fs[3]];
                pool.install(|| backprop_filter(&x, &dy, &g, fs[3], &mut dw));
                dw
            };
            let dw = filter_grad(2);
            for (got, want) in dw.iter().zip(&want) {
                assert!((f64::from(*got) - want).abs() <= 1e-4 * want.abs().max(1.0), "{got} vs {want}");
            }
            for threads in [1, 3] {
                assert_eq!(bits(&filter_grad(threads)), bits(&dw), "filter gradient on {threads} threads");
            }
        }
    }

    #[test]
    fn chunks_cover_the_rows_in_whole_units() {
        for m in [0, 1, 16, 17, 128, 129, 144, 145, 1000] {
            let c = chunks(m, 8);
            assert_eq!(c.iter().map(|r| r.len()).sum::<usize>(), m);
            assert!(c.len() < 2 || c.iter().all(|r| r.len() > SMALL_M), "{m}: {c:?}");
        }
        let c = chunks(10 * 49, 49);
        assert!(c.iter().all(|r| r.start % 49 == 0 && r.end % 49 == 0), "{c:?}");
    }
}
