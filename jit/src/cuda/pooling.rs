//! Max and average pooling on a GPU and their gradients: the PTX window kernels of
//! [`crate::ptx::render_max_pool`] and its kin (the CPU's semantics: first maximum,
//! NaN wins, averages over the cells inside the input, gradients gathered in the
//! CPU's order).

use std::sync::Arc;

use cudarc::driver::CudaSlice;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ops::Op;
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend::pool2d_geometry;
use tensorjit_runtime::{DType, Tensor};

use super::backend::CudaMemory;
use super::typed::words_for;
use super::Gpu;
use crate::ptx::{self, Elem};

/// An entry's name and renderer, its inputs with the elements each must hold, and its
/// parameters after `total`.
type Launch<'a> = (&'static str, fn(Elem, &str) -> String, Vec<(&'a CudaSlice<f32>, usize)>, &'a [usize]);

/// `MaxPool2d` / `AvgPool2d` (inputs `[x]`), `MaxPool2dGrad` (inputs `[x, dy]`),
/// `MaxPool2dGradGrad` (inputs `[x, g]`) or `AvgPool2dGrad` (inputs `[dy]`) of f32 or
/// f64 tensors (their word buffers `bufs`) on `gpu` into a new tensor of `dtype` and
/// `shape`; `Ok(None)` for other ops and dtypes.
pub(super) fn pool(
    gpu: &Arc<Gpu>,
    op: &Op,
    x: &[&Tensor],
    bufs: &[&CudaSlice<f32>],
    (dtype, shape): (DType, &Shape),
) -> Result<Option<Tensor>, Error> {
    let Some(elem) = super::conv::float_elem(dtype) else { return Ok(None) };
    let g = match op {
        Op::MaxPool2d(p) | Op::MaxPool2dGrad(p) | Op::MaxPool2dGradGrad(p) | Op::AvgPool2d(p) => {
            pool2d_geometry(x[0].shape(), p)?
        }
        Op::AvgPool2dGrad { params, input } => pool2d_geometry(input, params)?,
        _ => return Ok(None),
    };
    let words = |n: usize| words_for(dtype, n);
    let (inputs, outputs) = (words(g.n * g.h * g.w * g.c), words(g.n * g.out_h * g.out_w * g.c));
    let total = shape.numel();
    // Entries over outputs (the pools) and over inputs (their gradients) read these.
    let over_outputs =
        [g.c, g.out_w, g.out_h * g.out_w, g.h, g.w, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left];
    let over_inputs = [g.c, g.w, g.h, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h, g.out_w];
    let (name, render, ins, dims): Launch<'_> = match op {
        Op::MaxPool2d(_) => ("tensorjit_max_pool", ptx::render_max_pool, vec![(bufs[0], inputs)], &over_outputs),
        Op::AvgPool2d(_) => ("tensorjit_avg_pool", ptx::render_avg_pool, vec![(bufs[0], inputs)], &over_outputs),
        Op::MaxPool2dGradGrad(_) => (
            "tensorjit_max_pool_grad_grad",
            ptx::render_max_pool_grad_grad,
            vec![(bufs[0], inputs), (bufs[1], inputs)],
            &over_outputs,
        ),
        Op::MaxPool2dGrad(_) => (
            "tensorjit_max_pool_grad",
            ptx::render_max_pool_grad,
            vec![(bufs[0], inputs), (bufs[1], outputs)],
            &over_inputs,
        ),
        _ => ("tensorjit_avg_pool_grad", ptx::render_avg_pool_grad, vec![(bufs[0], outputs)], &over_inputs),
    };
    let name = format!("{name}_{elem:?}");
    let t = CudaMemory::new_typed(gpu, dtype, shape, |out| {
        gpu.launch_elementwise(&name, &|n: &str| render(elem, n), &g, &ins, (out, total, words(total)), dims)
    })?;
    Ok(Some(t))
}
