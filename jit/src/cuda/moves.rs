//! Data movement on GPUs for tensors of every dtype the kernels hold (f32, i32, i64,
//! bool): permutes and broadcasts of non-f32 tensors, slices (negative steps too) and
//! their gradients, concatenations, and scatters (add, max, min, product) — the kernels of
//! `ptx::moves`, launched on the tensors' word buffers.

use std::sync::Arc;

use cudarc::driver::CudaSlice;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ops::{Op, SliceAxis};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::{DType, Tensor};

use super::backend::{words_of, OpCall};
use super::typed::{fill_words, new_tensor, words_for};
use super::Gpu;
use crate::ptx::{self, Elem, ScatterFold};

/// Runs `op` on `gpu` when it is a data movement this module takes (`Ok(None)`: it is
/// not, or not for these operands).
pub(super) fn run(call: OpCall<'_>) -> Result<Option<Tensor>, Error> {
    let OpCall { gpu, op, x, dtype, shape } = call;
    let plan = match op {
        Op::Slice(axes) => match ptx::slice_dims(x[0].dims(), &starts(axes), shape.dims()) {
            Some(plan) => Some(plan),
            None => return slice_in_steps(gpu, axes, x[0], shape),
        },
        Op::SliceGrad { input, slice } => {
            let Some((base, dims)) = ptx::slice_dims(input.dims(), &starts(slice), x[0].dims()) else {
                return slice_grad_in_steps(gpu, (input, slice), x[0], shape);
            };
            return scatter_slice(gpu, x[0], (base, dims), dtype, shape);
        }
        Op::Concat { axis } => return concat(gpu, x, *axis, dtype, shape),
        Op::ScatterAdd { axis, size } => return scatter(gpu, ScatterFold::Add, x, (*axis, *size), shape),
        Op::ScatterMax { axis, size } => return scatter(gpu, ScatterFold::Max, x, (*axis, *size), shape),
        Op::ScatterMin { axis, size } => return scatter(gpu, ScatterFold::Min, x, (*axis, *size), shape),
        Op::ScatterProd { axis, size } => return scatter(gpu, ScatterFold::Prod, x, (*axis, *size), shape),
        // f32 fills are single-op kernels of the f32 path.
        Op::Fill { value } if dtype != DType::F32 => return fill(gpu, *value, dtype, shape),
        _ => return Ok(None),
    };
    let Some((base, dims)) = plan else { return Ok(None) };
    strided_copy(gpu, (base, &dims), x[0], shape, &op)
}

/// A new tensor of `shape` whose elements are `x`'s read along a walk (the strided
/// entry's base offset and `d`/`s` parameters): slices, and the permutes and broadcasts
/// of dtypes other than f32. `Ok(None)`: `x` is not on the GPU.
pub(super) fn strided_copy(
    gpu: &Arc<Gpu>,
    (base, dims): (u64, &[u64; 2 * ptx::PERMUTE_RANK]),
    x: &Tensor,
    shape: &Shape,
    how: &dyn std::fmt::Debug,
) -> Result<Option<Tensor>, Error> {
    let dtype = x.dtype();
    let elem = Elem::of(dtype);
    let Some(input) = words_of(x) else { return Ok(None) };
    let total = shape.numel();
    let name = format!("tensorjit_strided_{elem:?}");
    let render = move |n: &str| ptx::render_strided(elem, false, n);
    // Every offset read lies inside x: each axis walks coordinates within x's extent
    // (a slice's start + i·step stays in range; repeated axes have stride 0).
    let ins = [(input, words_for(dtype, x.numel()))];
    let values = params(base, dims);
    let what = (x.dims(), how);
    new_tensor(gpu, dtype, shape, |out| {
        gpu.launch_elementwise(&name, &render, &what, &ins, (out, total, words_for(dtype, total)), &values)
    })
}

/// A tensor of `dtype` and `shape` filled with `value` — any dtype, f64 included: the
/// fill writes the packed value's words ([`fill_words`]).
fn fill(gpu: &Arc<Gpu>, value: f64, dtype: DType, shape: &Shape) -> Result<Option<Tensor>, Error> {
    fill_with(gpu, fill_words(value, dtype), dtype, shape)
}

/// A tensor of `dtype` and `shape` whose every element is the packed element `lo`, `hi`
/// ([`super::typed::element_words`]).
pub(super) fn fill_with(
    gpu: &Arc<Gpu>,
    [lo, hi]: [u32; 2],
    dtype: DType,
    shape: &Shape,
) -> Result<Option<Tensor>, Error> {
    let total = words_for(dtype, shape.numel());
    let render = |n: &str| ptx::render_fill_words(n);
    new_tensor(gpu, dtype, shape, |out| {
        gpu.launch_elementwise(
            "tensorjit_fill_words",
            &render,
            &dtype,
            &[],
            (out, total, total),
            &[lo as usize, hi as usize],
        )
    })
}

/// The slices a slice whose walk keeps more runs than one launch takes is made of
/// ([`ptx::slice_steps`]: each takes some axes, the others whole), and the dims after
/// each, starting with `dims`.
fn slice_parts(dims: &[usize], axes: &[SliceAxis], out: &[usize]) -> Option<(Vec<Vec<SliceAxis>>, Vec<Shape>)> {
    let steps = ptx::slice_steps(dims, &starts(axes), out)?;
    let mut shapes = vec![Shape::from(dims.to_vec())];
    let mut parts = Vec::with_capacity(steps.len());
    for taken in steps {
        let cur = shapes.last()?.dims().to_vec();
        let part: Vec<SliceAxis> = (0..cur.len())
            .map(|k| if taken.contains(&k) { axes[k] } else { SliceAxis { start: 0, step: 1, len: cur[k] } })
            .collect();
        shapes.push(Shape::from(part.iter().map(|a| a.len).collect::<Vec<_>>()));
        parts.push(part);
    }
    Some((parts, shapes))
}

/// A slice in several launches ([`slice_parts`]).
fn slice_in_steps(gpu: &Arc<Gpu>, axes: &[SliceAxis], x: &Tensor, shape: &Shape) -> Result<Option<Tensor>, Error> {
    let Some((parts, shapes)) = slice_parts(x.dims(), axes, shape.dims()) else { return Ok(None) };
    let mut cur = x.clone();
    for (part, out) in parts.into_iter().zip(&shapes[1..]) {
        match run(OpCall { gpu, op: &Op::Slice(part), x: &[&cur], dtype: x.dtype(), shape: out })? {
            Some(t) => cur = t,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// A slice's gradient in several launches: the gradients of [`slice_parts`]' slices,
/// last first.
fn slice_grad_in_steps(
    gpu: &Arc<Gpu>,
    (input, axes): (&Shape, &[SliceAxis]),
    dy: &Tensor,
    shape: &Shape,
) -> Result<Option<Tensor>, Error> {
    let Some((parts, shapes)) = slice_parts(input.dims(), axes, dy.dims()) else { return Ok(None) };
    let mut cur = dy.clone();
    for (part, into) in parts.into_iter().zip(&shapes).rev() {
        let op = Op::SliceGrad { input: into.clone(), slice: part };
        match run(OpCall { gpu, op: &op, x: &[&cur], dtype: dy.dtype(), shape: into })? {
            Some(t) => cur = t,
            None => return Ok(None),
        }
    }
    debug_assert_eq!(cur.shape(), shape);
    Ok(Some(cur))
}

/// Each axis' `(start, step)`.
fn starts(axes: &[SliceAxis]) -> Vec<(usize, i64)> {
    axes.iter().map(|a| (a.start, a.step)).collect()
}

/// The strided entry's parameters after `total`: the base, then dims and strides.
fn params(base: u64, dims: &[u64]) -> Vec<usize> {
    std::iter::once(base).chain(dims.iter().copied()).map(|v| v as usize).collect()
}

impl Gpu {
    /// Sets every byte of `b` to zero (queued on the stream).
    fn zero(&self, b: &mut CudaSlice<f32>) -> Result<(), Error> {
        let _gate = self.enter();
        self.stream.memset_zeros(b).map_err(|e| self.err(e))
    }
}

/// The gradient of a slice: zeros of the input's `shape` with `dy` scattered into the
/// sliced positions.
fn scatter_slice(
    gpu: &Arc<Gpu>,
    dy: &Tensor,
    (base, dims): (u64, [u64; 2 * ptx::PERMUTE_RANK]),
    dtype: DType,
    shape: &Shape,
) -> Result<Option<Tensor>, Error> {
    let (elem, Some(input)) = (Elem::of(dtype), words_of(dy)) else { return Ok(None) };
    let name = format!("tensorjit_strided_scatter_{elem:?}");
    let render = move |n: &str| ptx::render_strided(elem, true, n);
    let ins = [(input, words_for(dtype, dy.numel()))];
    let values = params(base, &dims);
    new_tensor(gpu, dtype, shape, |out| {
        gpu.zero(out)?;
        // Every offset written lies inside the output: the slice's positions in the
        // input's shape, which the output has.
        gpu.launch_elementwise(
            &name,
            &render,
            &"slice gradient",
            &ins,
            (out, dy.numel(), words_for(dtype, shape.numel())),
            &values,
        )
    })
}

/// `concat(x, axis)`: one launch per part, each writing its rows of every output row.
fn concat(gpu: &Arc<Gpu>, x: &[&Tensor], axis: usize, dtype: DType, shape: &Shape) -> Result<Option<Tensor>, Error> {
    let elem = Elem::of(dtype);
    let Some(parts) = x.iter().map(|t| words_of(t)).collect::<Option<Vec<_>>>() else { return Ok(None) };
    let wide: usize = shape.dims()[axis..].iter().product();
    let name = format!("tensorjit_concat_{elem:?}");
    let render = move |n: &str| ptx::render_concat_part(elem, n);
    new_tensor(gpu, dtype, shape, |out| {
        let room = words_for(dtype, shape.numel());
        let mut at = 0;
        for (t, words) in x.iter().zip(parts) {
            let w: usize = t.dims()[axis..].iter().product();
            let inner: usize = t.dims()[axis + 1..].iter().product();
            let ins = [(words, words_for(dtype, t.numel()))];
            // The part's rows land inside the output's: at + w ≤ wide, and the part has
            // as many rows as the output.
            gpu.launch_elementwise(&name, &render, &"concat", &ins, (out, t.numel(), room), &[w, wide, at])?;
            at += t.dims()[axis] * inner;
        }
        Ok(())
    })
}

/// `scatter_add`, `scatter_max`, `scatter_min` or `scatter_prod` (`fold`) of `updates`
/// by `indices` along `axis` into `size` slots: f32, f64, i32 or i64 updates (bools too
/// for max and min), i32 or i64 indices.
fn scatter(
    gpu: &Arc<Gpu>,
    fold: ScatterFold,
    x: &[&Tensor],
    (axis, size): (usize, usize),
    shape: &Shape,
) -> Result<Option<Tensor>, Error> {
    let (upd, idx) = (x[0], x[1]);
    let (value, index) = match (Elem::of(upd.dtype()), Elem::of(idx.dtype())) {
        (Elem::Bool, _) if matches!(fold, ScatterFold::Add | ScatterFold::Prod) => return Ok(None),
        (v, i @ (Elem::I32 | Elem::I64)) => (v, i),
        _ => return Ok(None),
    };
    let (Some(u), Some(i)) = (words_of(upd), words_of(idx)) else { return Ok(None) };
    let inner: usize = upd.dims()[axis + idx.rank()..].iter().product();
    let name = format!("tensorjit_scatter_{fold:?}_{value:?}_{index:?}");
    let render = move |n: &str| ptx::render_scatter(fold, value, index, n);
    // Reads: updates at (o·k + j)·inner + x < outer·k·inner, indices j < k.
    let dtype = upd.dtype();
    let ins = [(u, words_for(dtype, upd.numel())), (i, words_for(idx.dtype(), idx.numel()))];
    new_tensor(gpu, dtype, shape, |out| {
        gpu.launch_elementwise(
            &name,
            &render,
            &fold,
            &ins,
            (out, shape.numel(), words_for(dtype, shape.numel())),
            &[size, idx.numel(), inner],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorjit_runtime::ir::ValueType;
    use tensorjit_runtime::trace::backend::run_kernel;

    fn host(op: &Op, x: &Tensor, shape: &Shape) -> Tensor {
        run_kernel(op, &[x], &ValueType { dtype: x.dtype(), shape: shape.clone() }).expect("the runtime runs it")
    }

    /// The parts of a slice too long for one walk, applied in turn by the runtime, give
    /// the slice; their gradients, last first, give the slice's gradient.
    #[test]
    fn slice_parts_compose_to_the_slice_and_its_gradient() {
        let dims = [3, 4, 3, 4, 3, 4, 3, 4];
        let n: usize = dims.iter().product();
        let x = Tensor::from_vec((0..n).map(|i| ((i * 7919) % 1013) as f32 - 500.0).collect::<Vec<_>>(), dims.to_vec())
            .expect("a tensor");
        let axes: Vec<SliceAxis> = (0..8)
            .map(|k| match k % 3 {
                0 => SliceAxis { start: 1, step: 1, len: dims[k] - 1 },
                1 => SliceAxis { start: dims[k] - 1, step: -2, len: dims[k] / 2 },
                _ => SliceAxis { start: 0, step: 1, len: 2 },
            })
            .collect();
        let out = Shape::from(axes.iter().map(|a| a.len).collect::<Vec<_>>());
        assert!(ptx::slice_dims(&dims, &starts(&axes), out.dims()).is_none(), "more runs than one launch");
        let (parts, shapes) = slice_parts(&dims, &axes, out.dims()).expect("parts");
        assert!(parts.len() > 1);
        let mut cur = x.clone();
        for (part, shape) in parts.iter().zip(&shapes[1..]) {
            assert!(ptx::slice_dims(cur.dims(), &starts(part), shape.dims()).is_some(), "each part is one launch");
            cur = host(&Op::Slice(part.clone()), &cur, shape);
        }
        let want = host(&Op::Slice(axes.clone()), &x, &out);
        assert_eq!(cur.to_vec::<f32>().ok(), want.to_vec::<f32>().ok());
        // The gradient: dy scattered back part by part.
        let dy = Tensor::from_vec((0..out.numel()).map(|i| i as f32 * 0.25 + 1.0).collect::<Vec<_>>(), out.clone())
            .expect("a tensor");
        let mut g = dy.clone();
        for (part, into) in parts.into_iter().zip(&shapes).rev() {
            g = host(&Op::SliceGrad { input: into.clone(), slice: part }, &g, into);
        }
        let want = host(&Op::SliceGrad { input: x.shape().clone(), slice: axes }, &dy, x.shape());
        assert_eq!(g.to_vec::<f32>().ok(), want.to_vec::<f32>().ok());
    }
}
