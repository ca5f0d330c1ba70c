//! Reductions of i32, i64 and f64 GPU tensors (`reduce_sum`/`mean`/`prod`/`max`/`min`):
//! the passes of [`ptx::render_split_reduce`] (exact on integers whatever the split).
//! Reduced axes that are not one run are permuted to the end first (the `moves`
//! permute).

use std::sync::Arc;

use cudarc::driver::CudaSlice;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ops::ReduceOp;
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::Tensor;

use super::backend::words_of;
use super::typed::{new_tensor, words_for};
use super::Gpu;
use crate::ptx::{self, Elem, RowReduce};

/// `op` over `axes` of the i32, i64 or f64 tensor `x` into a new tensor of `shape` on
/// `gpu` (`Ok(None)`: another dtype).
pub(super) fn run(
    gpu: &Arc<Gpu>,
    op: ReduceOp,
    axes: &[usize],
    x: &Tensor,
    shape: &Shape,
) -> Result<Option<Tensor>, Error> {
    let dtype = x.dtype();
    let (elem @ (Elem::I32 | Elem::I64 | Elem::F64), Some(input)) = (Elem::of(dtype), words_of(x)) else {
        return Ok(None);
    };
    let mut axes = axes.to_vec();
    axes.sort_unstable();
    axes.dedup();
    let dims = x.dims();
    let one_run = axes.windows(2).all(|w| w[1] == w[0] + 1);
    if !one_run {
        let (perm, tail) = super::permute::axes_last(dims.len(), &axes);
        let Some(moved) = super::permute::permute(gpu, &perm, x)? else { return Ok(None) };
        return run(gpu, op, &tail, &moved, shape);
    }
    let (outer, count, inner) = match (axes.first(), axes.last()) {
        (Some(&first), Some(&last)) => {
            (dims[..first].iter().product(), dims[first..=last].iter().product(), dims[last + 1..].iter().product())
        }
        // No axes: every element is its own line.
        _ => (x.numel(), 1, 1),
    };
    let kind = match op {
        ReduceOp::Sum | ReduceOp::Mean => RowReduce::Sum,
        ReduceOp::Prod => RowReduce::Prod,
        ReduceOp::Max => RowReduce::Max,
        ReduceOp::Min => RowReduce::Min,
    };
    let passes = ptx::split_reduce_passes(count, outer * inner);
    let job = Job { gpu, kind, elem, lines: (outer, inner), mean: (op == ReduceOp::Mean, count) };
    new_tensor(gpu, dtype, shape, |out| job.passes((input, words_for(dtype, x.numel())), count, &passes, out))
}

/// One split reduction's launches (i32, i64 or f64).
struct Job<'a> {
    gpu: &'a Arc<Gpu>,
    kind: RowReduce,
    elem: Elem,
    /// `outer` and `inner` of the `[outer, count, inner]` view.
    lines: (usize, usize),
    /// Whether the last pass divides by the original count, and that count.
    mean: (bool, usize),
}

impl Job<'_> {
    /// The passes `plan` (partials per line, the last 1) over `input` (lines of `count`
    /// elements, and the words it must hold), the last one into `out`.
    fn passes(
        &self,
        input: (&CudaSlice<f32>, usize),
        count: usize,
        plan: &[usize],
        out: &mut CudaSlice<f32>,
    ) -> Result<(), Error> {
        let Some((&parts, rest)) = plan.split_first() else { return Ok(()) };
        let (outer, inner) = self.lines;
        let total = outer * parts * inner;
        let (elem, kind) = (self.elem, self.kind);
        let name = format!("tensorjit_split_reduce_{kind:?}_{elem:?}");
        let render = move |n: &str| ptx::render_split_reduce(kind, elem, n);
        let mean = usize::from(self.mean.0 && rest.is_empty());
        let launch = |o: &mut CudaSlice<f32>| {
            // Every element read is below the input's count: partial p < parts ≤ count
            // walks its line's elements below count, and lines are within outer × inner.
            self.gpu.launch_elementwise(
                &name,
                &render,
                &kind,
                &[input],
                (o, total, words_for(elem.dtype(), total)),
                &[count, inner, parts, mean, self.mean.1],
            )
        };
        if rest.is_empty() {
            return launch(out);
        }
        let words = words_for(elem.dtype(), total);
        self.gpu.with_scratch(words, |partials| {
            launch(partials)?;
            self.passes((partials, words), parts, rest, out)
        })
    }
}
