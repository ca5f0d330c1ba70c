//! Max pooling on a GPU and its gradient: the PTX window kernels of
//! [`crate::ptx::render_max_pool`] and [`crate::ptx::render_max_pool_grad`] (the
//! CPU's semantics: first maximum, NaN wins, gradient gathered in the CPU's order).

use std::sync::Arc;

use cudarc::driver::CudaSlice;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ops::Op;
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend::pool2d_geometry;
use tensorjit_runtime::Tensor;

use super::backend::CudaMemory;
use super::Gpu;
use crate::ptx;

/// `MaxPool2d` (inputs `[x]`) or `MaxPool2dGrad` (inputs `[x, dy]`) of f32 tensors on
/// `gpu` into a new tensor of `shape`; `Ok(None)` for other ops.
pub(super) fn max_pool(
    gpu: &Arc<Gpu>,
    op: &Op,
    x: &[&Tensor],
    bufs: &[&CudaSlice<f32>],
    shape: &Shape,
) -> Result<Option<Tensor>, Error> {
    let (Op::MaxPool2d(p) | Op::MaxPool2dGrad(p)) = op else { return Ok(None) };
    let g = pool2d_geometry(x[0].shape(), p)?;
    let (inputs, outputs) = (g.n * g.h * g.w * g.c, g.n * g.out_h * g.out_w * g.c);
    let total = shape.numel();
    let mut out = gpu.alloc_f32(total)?;
    let done = if let Op::MaxPool2d(_) = op {
        let dims =
            [g.c, g.out_w, g.out_h * g.out_w, g.h, g.w, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left];
        gpu.launch_elementwise(
            "tensorjit_max_pool",
            ptx::render_max_pool,
            &g,
            &[(bufs[0], inputs)],
            (&mut out, total),
            &dims,
        )
    } else {
        let dims = [g.c, g.w, g.h, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h, g.out_w];
        let ins = [(bufs[0], inputs), (bufs[1], outputs)];
        gpu.launch_elementwise("tensorjit_max_pool_grad", ptx::render_max_pool_grad, &g, &ins, (&mut out, total), &dims)
    };
    if let Err(e) = done {
        gpu.recycle_f32(out);
        return Err(e);
    }
    Ok(Some(Tensor::from_device_memory(CudaMemory::f32(gpu.clone(), out, total), shape.clone())?))
}
