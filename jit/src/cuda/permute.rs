//! Axis permutations (`transpose`, `permute`) of f32 tensors on a GPU: the PTX kernel
//! of [`crate::ptx::render_permute`].

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
    let total = shape.numel();
    let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let what = (x.dims(), perm);
    let t = CudaMemory::new_f32(gpu, shape, |out| {
        gpu.launch_elementwise("tensorjit_permute", ptx::render_permute, &what, &[(buf, total)], (out, total), &dims)
    })?;
    Ok(Some(t))
}
