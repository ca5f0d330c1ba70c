//! Axis permutations (`transpose`, `permute`) and broadcasts (`broadcast_to`) of f32
//! tensors on a GPU: the PTX kernel of [`crate::ptx::render_permute`].

use std::sync::Arc;

use cudarc::driver::CudaSlice;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::Tensor;

use super::backend::CudaMemory;
use super::Gpu;
use crate::ptx;

/// `permute(x, perm)` of an f32 tensor on `gpu` (`Ok(None)` beyond
/// [`ptx::PERMUTE_RANK`] axes).
pub(super) fn permute(
    gpu: &Arc<Gpu>,
    perm: &[usize],
    buf: &CudaSlice<f32>,
    x: &Tensor,
    shape: &Shape,
) -> Result<Option<Tensor>, Error> {
    let Some(dims) = ptx::permute_dims(x.dims(), perm) else { return Ok(None) };
    gather(gpu, &dims, (buf, x), shape, &perm)
}

/// `broadcast_to(x, shape)` of an f32 tensor on `gpu` (`Ok(None)` beyond
/// [`ptx::PERMUTE_RANK`] axes or when `x` does not broadcast to `shape`).
pub(super) fn broadcast(
    gpu: &Arc<Gpu>,
    buf: &CudaSlice<f32>,
    x: &Tensor,
    shape: &Shape,
) -> Result<Option<Tensor>, Error> {
    let Some(dims) = ptx::broadcast_dims(x.dims(), shape.dims()) else { return Ok(None) };
    gather(gpu, &dims, (buf, x), shape, &"broadcast")
}

/// Runs the permute entry with its `d`/`s` parameters `dims` on `x` (whose elements
/// `buf` holds) into a new tensor of `shape`.
fn gather(
    gpu: &Arc<Gpu>,
    dims: &[u64],
    (buf, x): (&CudaSlice<f32>, &Tensor),
    shape: &Shape,
    how: &dyn std::fmt::Debug,
) -> Result<Option<Tensor>, Error> {
    let total = shape.numel();
    let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let what = (x.dims(), how);
    // Every offset the kernel reads is below the input's element count: each axis reads
    // coordinate × stride, and the strides are the input's (0 where it repeats).
    let input = [(buf, x.numel())];
    let t = CudaMemory::new_f32(gpu, shape, |out| {
        gpu.launch_elementwise("tensorjit_permute", &ptx::render_permute, &what, &input, (out, total, total), &dims)
    })?;
    Ok(Some(t))
}
