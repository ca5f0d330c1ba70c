//! conv2d (im2col + the shared GEMM, in `im2col`) and its two gradients; max/avg pooling
//! and theirs.
//! All accumulations run in a fixed sequential order (deterministic).

use crate::buffer::Buffer;
use crate::dtype::Element;
use crate::kernels::im2col;
use crate::kernels::linalg::GemmElem;
use crate::math::FloatMath;
use crate::ops::nn::{conv_window, window, Window};
use crate::ops::{Conv2dParams, PoolParams};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Visits every (output position, window cell inside the input) of `g`:
/// `f(out_index_without_channel, in_index_without_channel, cell_index)`.
fn for_window_cells(g: &Window, f: impl FnMut(usize, usize, usize)) {
    im2col::for_window_cells(g, 0..g.n * g.h.out * g.w.out, f);
}

fn typed<T: Element>(t: &Tensor) -> &[T] {
    t.data::<T>().unwrap_or(&[])
}

fn conv_typed<T: GemmElem>(x: &Tensor, f: &Tensor, p: &Conv2dParams, shape: &Shape) -> Vec<T> {
    let Ok(g) = conv_window(x.shape(), f.shape(), p) else { unreachable!("checked by infer_conv2d") };
    let mut out = crate::buffer::filled(T::default(), shape.numel());
    im2col::conv(typed::<T>(x), typed(f), &g, f.dims()[3], &mut out);
    out
}

fn backprop_input_typed<T: GemmElem + std::ops::Add<Output = T>>(
    dy: &Tensor,
    f: &Tensor,
    p: &Conv2dParams,
    input: &Shape,
) -> Vec<T> {
    let Ok(g) = conv_window(input, f.shape(), p) else { unreachable!("checked by infer") };
    let mut dx = crate::buffer::filled(T::default(), input.numel());
    im2col::backprop_input(typed(dy), typed(f), &g, f.dims()[3], &mut dx);
    dx
}

fn backprop_filter_typed<T: GemmElem + std::ops::Add<Output = T>>(
    x: &Tensor,
    dy: &Tensor,
    p: &Conv2dParams,
    filter: &Shape,
) -> Vec<T> {
    let Ok(g) = conv_window(x.shape(), filter, p) else { unreachable!("checked by infer") };
    let mut dw = vec![T::default(); filter.numel()];
    im2col::backprop_filter(typed::<T>(x), typed(dy), &g, filter[3], &mut dw);
    dw
}

macro_rules! float_dispatch {
    ($t:expr, $f:ident($($arg:expr),*)) => {
        match $t.buffer() {
            Buffer::F32(_) => Buffer::F32($f::<f32>($($arg),*)),
            Buffer::F64(_) => Buffer::F64($f::<f64>($($arg),*)),
            _ => unreachable!("float-only op; checked by infer"),
        }
    };
}

pub(crate) fn conv2d(x: &Tensor, f: &Tensor, p: &Conv2dParams, shape: Shape) -> Tensor {
    Tensor::from_buffer(float_dispatch!(x, conv_typed(x, f, p, &shape)), shape)
}

pub(crate) fn conv2d_backprop_input(dy: &Tensor, f: &Tensor, p: &Conv2dParams, shape: Shape) -> Tensor {
    Tensor::from_buffer(float_dispatch!(dy, backprop_input_typed(dy, f, p, &shape)), shape)
}

pub(crate) fn conv2d_backprop_filter(x: &Tensor, dy: &Tensor, p: &Conv2dParams, shape: Shape) -> Tensor {
    Tensor::from_buffer(float_dispatch!(x, backprop_filter_typed(x, dy, p, &shape)), shape)
}

fn pool_window(x: &Shape, p: &PoolParams) -> Window {
    match window("pool", x, p.ksize, p.strides, p.padding) {
        Ok(g) => g,
        Err(_) => unreachable!("checked by infer_pool"),
    }
}

/// Runs `f(one, image, block)` for each image of `g`, `dst` split into blocks of
/// `per_image` elements (`one`: the window of a single image), on the pool's threads
/// when `dst` is large. Each image's values are computed as in one pass over all.
fn per_image<T: Send>(g: &Window, per_image: usize, dst: &mut [T], f: impl Fn(&Window, usize, &mut [T]) + Sync) {
    let one = Window { n: 1, ..*g };
    if per_image == 0 {
        return;
    }
    if dst.len() < 2 * super::par::CHUNK {
        dst.chunks_mut(per_image).enumerate().for_each(|(i, d)| f(&one, i, d));
    } else {
        use rayon::prelude::*;
        dst.par_chunks_mut(per_image).enumerate().for_each(|(i, d)| f(&one, i, d));
    }
}

/// Elements of one image of the input, and of the output, of window `g`.
fn image_sizes(g: &Window) -> (usize, usize) {
    (g.h.input * g.w.input * g.c, g.h.out * g.w.out * g.c)
}

fn max_pool_typed<T: FloatMath>(x: &Tensor, p: &PoolParams, shape: &Shape) -> Vec<T> {
    let g = pool_window(x.shape(), p);
    let (xv, c) = (typed::<T>(x), g.c);
    let (xs, os) = image_sizes(&g);
    let mut out = crate::buffer::filled(T::NEG_INFINITY, shape.numel());
    per_image(&g, os, &mut out, |one, n, out| {
        let xv = &xv[n * xs..(n + 1) * xs];
        for_window_cells(one, |o, i, _| {
            for (d, &v) in out[o * c..(o + 1) * c].iter_mut().zip(&xv[i * c..(i + 1) * c]) {
                if v > *d || v.is_nan() {
                    *d = v;
                }
            }
        });
    });
    out
}

/// Index in `xv` (one image) of the first maximum of each (output, channel) window, in
/// row-major window order (`usize::MAX` for an empty window).
fn first_argmax<T: FloatMath>(xv: &[T], g: &Window) -> Vec<usize> {
    let c = g.c;
    let outs = g.n * g.h.out * g.w.out;
    let mut arg = vec![usize::MAX; outs * c];
    let mut best = vec![T::NEG_INFINITY; outs * c];
    for_window_cells(g, |o, i, _| {
        let cells = arg[o * c..(o + 1) * c].iter_mut().zip(&mut best[o * c..(o + 1) * c]);
        for (ch, ((a, b), &v)) in cells.zip(&xv[i * c..(i + 1) * c]).enumerate() {
            if *a == usize::MAX || v > *b || (v.is_nan() && !b.is_nan()) {
                *b = v;
                *a = i * c + ch;
            }
        }
    });
    arg
}

fn max_pool_grad_typed<T: FloatMath>(x: &Tensor, dy: &Tensor, p: &PoolParams, _: &Shape) -> Vec<T> {
    let g = pool_window(x.shape(), p);
    let (xv, dyv) = (typed::<T>(x), typed::<T>(dy));
    let (xs, os) = image_sizes(&g);
    let mut dx = crate::buffer::filled(T::ZERO, xv.len());
    per_image(&g, xs, &mut dx, |one, n, dx| {
        let dyv = &dyv[n * os..(n + 1) * os];
        for (k, &a) in first_argmax(&xv[n * xs..(n + 1) * xs], one).iter().enumerate() {
            if a != usize::MAX {
                dx[a] = dx[a] + dyv[k];
            }
        }
    });
    dx
}

fn max_pool_grad_grad_typed<T: FloatMath>(x: &Tensor, gx: &Tensor, p: &PoolParams, shape: &Shape) -> Vec<T> {
    let g = pool_window(x.shape(), p);
    let (xv, gv) = (typed::<T>(x), typed::<T>(gx));
    let (xs, os) = image_sizes(&g);
    let mut out = crate::buffer::filled(T::ZERO, shape.numel());
    per_image(&g, os, &mut out, |one, n, out| {
        let (xv, gv) = (&xv[n * xs..(n + 1) * xs], &gv[n * xs..(n + 1) * xs]);
        for (o, &a) in out.iter_mut().zip(&first_argmax(xv, one)) {
            *o = if a == usize::MAX { T::ZERO } else { gv[a] };
        }
    });
    out
}

fn avg_counts(g: &Window) -> Vec<usize> {
    let mut counts = vec![0usize; g.n * g.h.out * g.w.out];
    for_window_cells(g, |o, _, _| counts[o] += 1);
    counts
}

fn avg_pool_typed<T: FloatMath>(x: &Tensor, p: &PoolParams, shape: &Shape) -> Vec<T> {
    let g = pool_window(x.shape(), p);
    let (xv, c) = (typed::<T>(x), g.c);
    let (xs, os) = image_sizes(&g);
    let mut out = crate::buffer::filled(T::ZERO, shape.numel());
    per_image(&g, os, &mut out, |one, n, out| {
        let xv = &xv[n * xs..(n + 1) * xs];
        for_window_cells(one, |o, i, _| {
            for (d, &v) in out[o * c..(o + 1) * c].iter_mut().zip(&xv[i * c..(i + 1) * c]) {
                *d = *d + v;
            }
        });
        for (o, &count) in avg_counts(one).iter().enumerate() {
            let count = T::from_f64(count as f64);
            out[o * c..(o + 1) * c].iter_mut().for_each(|v| *v = *v / count);
        }
    });
    out
}

fn avg_pool_grad_typed<T: FloatMath>(dy: &Tensor, p: &PoolParams, input: &Shape) -> Vec<T> {
    let g = pool_window(input, p);
    let (dyv, c) = (typed::<T>(dy), g.c);
    let (xs, os) = image_sizes(&g);
    let mut dx = crate::buffer::filled(T::ZERO, input.numel());
    per_image(&g, xs, &mut dx, |one, n, dx| {
        let dyv = &dyv[n * os..(n + 1) * os];
        let counts = avg_counts(one);
        for_window_cells(one, |o, i, _| {
            let count = T::from_f64(counts[o] as f64);
            for (d, &g) in dx[i * c..(i + 1) * c].iter_mut().zip(&dyv[o * c..(o + 1) * c]) {
                *d = *d + g / count;
            }
        });
    });
    dx
}

pub(crate) fn max_pool(x: &Tensor, p: &PoolParams, shape: Shape) -> Tensor {
    Tensor::from_buffer(float_dispatch!(x, max_pool_typed(x, p, &shape)), shape)
}

pub(crate) fn max_pool_grad(x: &Tensor, dy: &Tensor, p: &PoolParams, shape: Shape) -> Tensor {
    Tensor::from_buffer(float_dispatch!(x, max_pool_grad_typed(x, dy, p, &shape)), shape)
}

pub(crate) fn max_pool_grad_grad(x: &Tensor, gx: &Tensor, p: &PoolParams, shape: Shape) -> Tensor {
    Tensor::from_buffer(float_dispatch!(x, max_pool_grad_grad_typed(x, gx, p, &shape)), shape)
}

pub(crate) fn avg_pool(x: &Tensor, p: &PoolParams, shape: Shape) -> Tensor {
    Tensor::from_buffer(float_dispatch!(x, avg_pool_typed(x, p, &shape)), shape)
}

pub(crate) fn avg_pool_grad(dy: &Tensor, p: &PoolParams, shape: Shape) -> Tensor {
    Tensor::from_buffer(float_dispatch!(dy, avg_pool_grad_typed(dy, p, &shape)), shape)
}
