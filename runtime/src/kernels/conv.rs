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

/// Visits every (output position, window cell inside the input):
/// `f(out_index_without_channel, in_index_without_channel, cell_index)`.
fn for_window_cells(g: &Window, mut f: impl FnMut(usize, usize, usize)) {
    for n in 0..g.n {
        for oy in 0..g.h.out {
            for ox in 0..g.w.out {
                let o = (n * g.h.out + oy) * g.w.out + ox;
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
                        let i = (n * g.h.input + iy as usize) * g.w.input + ix as usize;
                        f(o, i, ky * g.w.kernel + kx);
                    }
                }
            }
        }
    }
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

fn max_pool_typed<T: FloatMath>(x: &Tensor, p: &PoolParams, shape: &Shape) -> Vec<T> {
    let g = pool_window(x.shape(), p);
    let (xv, c) = (typed::<T>(x), g.c);
    let mut out = crate::buffer::filled(T::NEG_INFINITY, shape.numel());
    for_window_cells(&g, |o, i, _| {
        for ch in 0..c {
            let v = xv[i * c + ch];
            let d = &mut out[o * c + ch];
            if v > *d || v.is_nan() {
                *d = v;
            }
        }
    });
    out
}

/// Flat input index of the first maximum of each (output, channel) window, in
/// row-major window order (`usize::MAX` for an empty window).
fn first_argmax<T: FloatMath>(xv: &[T], g: &Window) -> Vec<usize> {
    let c = g.c;
    let outs = g.n * g.h.out * g.w.out;
    let mut arg = vec![usize::MAX; outs * c];
    let mut best = vec![T::NEG_INFINITY; outs * c];
    for_window_cells(g, |o, i, _| {
        for ch in 0..c {
            let v = xv[i * c + ch];
            let k = o * c + ch;
            if arg[k] == usize::MAX || v > best[k] || (v.is_nan() && !best[k].is_nan()) {
                best[k] = v;
                arg[k] = i * c + ch;
            }
        }
    });
    arg
}

fn max_pool_grad_typed<T: FloatMath>(x: &Tensor, dy: &Tensor, p: &PoolParams, _: &Shape) -> Vec<T> {
    let g = pool_window(x.shape(), p);
    let (xv, dyv) = (typed::<T>(x), typed::<T>(dy));
    let mut dx = crate::buffer::filled(T::ZERO, xv.len());
    for (k, &a) in first_argmax(xv, &g).iter().enumerate() {
        if a != usize::MAX {
            dx[a] = dx[a] + dyv[k];
        }
    }
    dx
}

fn max_pool_grad_grad_typed<T: FloatMath>(x: &Tensor, gx: &Tensor, p: &PoolParams, _: &Shape) -> Vec<T> {
    let g = pool_window(x.shape(), p);
    let (xv, gv) = (typed::<T>(x), typed::<T>(gx));
    first_argmax(xv, &g).iter().map(|&a| if a == usize::MAX { T::ZERO } else { gv[a] }).collect()
}

fn avg_counts(g: &Window) -> Vec<usize> {
    let mut counts = vec![0usize; g.n * g.h.out * g.w.out];
    for_window_cells(g, |o, _, _| counts[o] += 1);
    counts
}

fn avg_pool_typed<T: FloatMath>(x: &Tensor, p: &PoolParams, shape: &Shape) -> Vec<T> {
    let g = pool_window(x.shape(), p);
    let (xv, c) = (typed::<T>(x), g.c);
    let mut out = crate::buffer::filled(T::ZERO, shape.numel());
    for_window_cells(&g, |o, i, _| {
        for ch in 0..c {
            out[o * c + ch] = out[o * c + ch] + xv[i * c + ch];
        }
    });
    for (o, &n) in avg_counts(&g).iter().enumerate() {
        let n = T::from_f64(n as f64);
        out[o * c..(o + 1) * c].iter_mut().for_each(|v| *v = *v / n);
    }
    out
}

fn avg_pool_grad_typed<T: FloatMath>(dy: &Tensor, p: &PoolParams, input: &Shape) -> Vec<T> {
    let g = pool_window(input, p);
    let (dyv, c) = (typed::<T>(dy), g.c);
    let counts = avg_counts(&g);
    let mut dx = crate::buffer::filled(T::ZERO, input.numel());
    for_window_cells(&g, |o, i, _| {
        let n = T::from_f64(counts[o] as f64);
        for ch in 0..c {
            dx[i * c + ch] = dx[i * c + ch] + dyv[o * c + ch] / n;
        }
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
