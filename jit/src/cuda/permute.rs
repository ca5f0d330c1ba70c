//! Axis permutations (`transpose`, `permute`) and broadcasts (`broadcast_to`) of tensors
//! of every dtype on a GPU: f32 ones through the kernel of [`crate::ptx::render_permute`],
//! others through the strided copy of `moves`. A walk with more runs than the kernel
//! takes (past [`ptx::PERMUTE_RANK`] after merging) runs as several launches
//! ([`ptx::permute_steps`], [`ptx::broadcast_steps`]).

use std::sync::Arc;

use tensorjit_runtime::error::Error;
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::{DType, Tensor};

use super::backend::{f32_of, CudaMemory};
use super::Gpu;
use crate::ptx;

/// `permute(x, perm)` of a tensor on `gpu` (`Ok(None)`: `x` is not on it, or `perm` is
/// not a permutation of its axes).
pub(super) fn permute(gpu: &Arc<Gpu>, perm: &[usize], x: &Tensor) -> Result<Option<Tensor>, Error> {
    if let Some(params) = ptx::permute_dims(x.dims(), perm) {
        let shape = Shape::from(perm.iter().map(|&a| x.dims()[a]).collect::<Vec<_>>());
        return gather(gpu, &params, x, &shape, &perm);
    }
    let Some(steps) = ptx::permute_steps(x.dims(), perm) else { return Ok(None) };
    let mut cur = x.clone();
    for step in &steps {
        let Some(params) = ptx::permute_dims(cur.dims(), step) else { return Ok(None) };
        let shape = Shape::from(step.iter().map(|&a| cur.dims()[a]).collect::<Vec<_>>());
        match gather(gpu, &params, &cur, &shape, &step)? {
            Some(t) => cur = t,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// `broadcast_to(x, shape)` of a tensor on `gpu` (`Ok(None)`: `x` is not on it, or does
/// not broadcast to `shape`).
pub(super) fn broadcast(gpu: &Arc<Gpu>, x: &Tensor, shape: &Shape) -> Result<Option<Tensor>, Error> {
    if let Some(params) = ptx::broadcast_dims(x.dims(), shape.dims()) {
        return gather(gpu, &params, x, shape, &"broadcast");
    }
    let Some(steps) = ptx::broadcast_steps(x.dims(), shape.dims()) else { return Ok(None) };
    let mut cur = x.clone();
    for step in steps {
        let Some(params) = ptx::broadcast_dims(cur.dims(), &step) else { return Ok(None) };
        match gather(gpu, &params, &cur, &Shape::from(step), &"broadcast")? {
            Some(t) => cur = t,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// One launch reading `x` along the walk `params` (the permute entry's `d`/`s`) into a
/// new tensor of `shape`.
fn gather(
    gpu: &Arc<Gpu>,
    params: &[u64; 2 * ptx::PERMUTE_RANK],
    x: &Tensor,
    shape: &Shape,
    how: &dyn std::fmt::Debug,
) -> Result<Option<Tensor>, Error> {
    if x.dtype() != DType::F32 {
        return super::moves::strided_copy(gpu, (0, params), x, shape, how);
    }
    let Some(buf) = f32_of(x) else { return Ok(None) };
    let total = shape.numel();
    let dims: Vec<usize> = params.iter().map(|&d| d as usize).collect();
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
/// rank `r` (in order), and the reduced axes' positions after it (a reduction over them
/// becomes one over trailing axes).
pub(super) fn axes_last(r: usize, axes: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let perm: Vec<usize> = (0..r).filter(|a| !axes.contains(a)).chain(axes.iter().copied()).collect();
    (perm, (r - axes.len()..r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_axes_move_last_in_order() {
        let (perm, tail) = axes_last(4, &[0, 2]);
        assert_eq!((perm, tail), (vec![1, 3, 0, 2], vec![2, 3]));
    }
}
