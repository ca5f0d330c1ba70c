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

/// The permutation that moves `axes` (in order) after the other axes of a tensor of
/// `dims` (in order), the permuted dims, and the reduced axes' positions after it (a
/// reduction over them becomes one over trailing axes).
pub(super) fn axes_last(dims: &[usize], axes: &[usize]) -> (Vec<usize>, Shape, Vec<usize>) {
    let r = dims.len();
    let perm: Vec<usize> = (0..r).filter(|a| !axes.contains(a)).chain(axes.iter().copied()).collect();
    let moved = Shape::from(perm.iter().map(|&a| dims[a]).collect::<Vec<_>>());
    (perm, moved, (r - axes.len()..r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_axes_move_last_in_order() {
        let (perm, dims, tail) = axes_last(&[2, 3, 4, 5], &[0, 2]);
        assert_eq!((perm, dims, tail), (vec![1, 3, 0, 2], Shape::new(&[3, 5, 2, 4]), vec![2, 3]));
    }
}
