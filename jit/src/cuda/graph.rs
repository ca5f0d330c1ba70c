//! A concrete function replayed as a CUDA graph: one launch for all of its kernels,
//! GEMMs and copies, instead of one host call each.
//!
//! A graph replays fixed addresses, so the function gets a memory plan of its own on
//! the device: its arguments and the variables it reads are copied into buffers the
//! graph owns, every intermediate keeps the buffer it had when the graph was captured,
//! and results and assigned values are copied out of the graph's buffers into fresh
//! ones (a result the caller holds is never overwritten by a later replay).
//!
//! Capture, done once per concrete function (its second call):
//! 1. a priming run on copies of the arguments and of the variables (assignments go to
//!    stand-in variables), with every freed buffer held back, then returned to the pool:
//!    the pool now holds a buffer for every allocation of a run that reuses none;
//! 2. the captured run, again on stand-ins, with freed buffers held back (the graph owns
//!    them) and allocations served from the pool only (a new allocation would be a node
//!    of the graph).
//!
//! A function whose run does anything a graph cannot hold (a host read for control
//! flow, a host fallback, an upload) fails its capture with an `Err`; the caller then
//! runs it step by step for good. While one thread captures, the GPU's other callers
//! wait ([`Gpu::enter`]), so no other work lands in the graph.

use std::sync::Arc;

use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{CudaGraph, CudaSlice};
use smallvec::SmallVec;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::trace::backend::{self as rt, Outputs};
use tensorjit_runtime::{Tensor, Variable};

use super::backend::{words_of, CudaMemory};
use super::{Gpu, CAPTURING};

/// What one captured run of a concrete function needs to be replayed.
pub(crate) struct Recorded {
    /// Owned through the mutex of its holder (graphs are not thread-safe).
    graph: CudaGraph,
    /// The graph's copies of the arguments, then of the variables read.
    inputs: Vec<Tensor>,
    variables: Vec<Tensor>,
    /// The stand-in variables after the captured run: a value other than the input copy
    /// is the buffer the graph writes the variable's new value into.
    stand_ins: Vec<Variable>,
    /// The buffers the graph writes the results into.
    results: Outputs,
    /// Intermediates: buffers the graph writes and reads, owned by it.
    _intermediates: Vec<CudaSlice<f32>>,
    gpu: Arc<Gpu>,
}

// SAFETY: the graph's handles are used only through `&mut Recorded` or under the mutex
// the device plan keeps it in (the CUDA driver requires calls on one graph object to be
// serialised, not made from one thread); the buffers and tensors are Send already.
unsafe impl Send for Recorded {}

/// Runs a plan on the given arguments and variables (`Layout::run` of a device plan).
pub(crate) type RunPlan<'a> = dyn Fn(&[&Tensor], &[&Variable]) -> Result<Outputs, Error> + 'a;

/// The device words of `t` (any dtype the GPU holds).
fn slice<'t>(gpu: &Gpu, t: &'t Tensor, what: &str) -> Result<&'t CudaSlice<f32>, Error> {
    words_of(t).ok_or_else(|| gpu.err(format!("a CUDA graph needs tensors on this GPU; {what} is {}", t.type_string())))
}

/// A copy of `t` in a buffer of its own, as a tensor of `t`'s dtype and shape.
fn copy(gpu: &Arc<Gpu>, t: &Tensor, what: &str) -> Result<Tensor, Error> {
    let b = gpu.copy_of(slice(gpu, t, what)?)?;
    Tensor::from_device_memory(CudaMemory::typed(gpu.clone(), b, t.dtype(), t.numel()), t.shape().clone())
}

fn stand_ins(values: &[Tensor], vars: &[&Variable]) -> Vec<Variable> {
    values.iter().zip(vars).map(|(t, v)| Variable::with_trainable(t.clone(), v.name(), false)).collect()
}

/// Buffers freed while it lives are withheld from the pool; `finish` hands them over,
/// dropping returns them to the pool.
struct Holding<'a>(&'a Gpu);

impl<'a> Holding<'a> {
    fn start(gpu: &'a Gpu) -> Holding<'a> {
        gpu.withhold();
        Holding(gpu)
    }

    fn finish(self) -> Vec<CudaSlice<f32>> {
        let held = self.0.end_withholding();
        std::mem::forget(self);
        held
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        for b in self.0.end_withholding() {
            self.0.recycle_f32(b);
        }
    }
}

/// This thread captures: other threads' device calls wait until it is dropped.
struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURING.with(|c| c.set(false));
    }
}

impl Recorded {
    /// Captures one run of `run` on `gpu` (see the module docs); the real arguments and
    /// variables are only read.
    pub(crate) fn capture(
        gpu: &Arc<Gpu>,
        inputs: &[&Tensor],
        vars: &[&Variable],
        run: &RunPlan<'_>,
    ) -> Result<Recorded, Error> {
        let args = inputs.iter().map(|t| copy(gpu, t, "an argument")).collect::<Result<Vec<_>, _>>()?;
        let values = vars.iter().map(|v| copy(gpu, &rt::read_variable(v), v.name())).collect::<Result<Vec<_>, _>>()?;
        let arg_refs: SmallVec<[&Tensor; 8]> = args.iter().collect();
        {
            // 1. Priming: every freed buffer goes back to the pool only at the end.
            let priming = stand_ins(&values, vars);
            let refs: SmallVec<[&Variable; 8]> = priming.iter().collect();
            let holding = Holding::start(gpu);
            drop(run(&arg_refs, &refs)?);
            drop(refs);
            drop(priming);
            drop(holding);
        }
        // 2. The captured run.
        let stand_ins = stand_ins(&values, vars);
        let refs: SmallVec<[&Variable; 8]> = stand_ins.iter().collect();
        let _exclusive = gpu.gate.write().unwrap_or_else(|p| p.into_inner());
        // Work queued before the capture (the copies above) is not part of the graph.
        gpu.stream.synchronize().map_err(|e| gpu.err(e))?;
        let holding = Holding::start(gpu);
        CAPTURING.with(|c| c.set(true));
        let capturing = Capturing;
        gpu.stream
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(|e| gpu.err(format!("beginning a CUDA graph capture: {e}")))?;
        let results = run(&arg_refs, &refs);
        drop((refs, arg_refs));
        // Always end the capture, also after an error (the stream leaves capture mode).
        let graph = gpu.stream.end_capture(CUgraphInstantiate_flags(0));
        drop(capturing);
        let intermediates = holding.finish();
        let results = results.map_err(|e| gpu.err(format!("capturing a CUDA graph: {e}")))?;
        let graph = graph
            .map_err(|e| gpu.err(format!("capturing a CUDA graph: {e}")))?
            .ok_or_else(|| gpu.err("capturing a CUDA graph: nothing was captured"))?;
        for (i, r) in results.iter().enumerate() {
            slice(gpu, r, &format!("result {i}"))?;
        }
        Ok(Recorded {
            graph,
            inputs: args,
            variables: values,
            stand_ins,
            results,
            _intermediates: intermediates,
            gpu: gpu.clone(),
        })
    }

    /// Runs the function on `inputs` and `vars` by replaying the graph.
    pub(crate) fn replay(&self, inputs: &[&Tensor], vars: &[&Variable]) -> Result<Outputs, Error> {
        let gpu = &self.gpu;
        for (i, (to, from)) in self.inputs.iter().zip(inputs).enumerate() {
            // SAFETY: the graph's input copies are owned by this record, never handed out.
            unsafe { gpu.copy_over(slice(gpu, from, &format!("argument {i}"))?, slice(gpu, to, "")?) }?;
        }
        for (to, v) in self.variables.iter().zip(vars) {
            let value = rt::read_variable(v);
            // SAFETY: as above.
            unsafe { gpu.copy_over(slice(gpu, &value, v.name())?, slice(gpu, to, "")?) }?;
        }
        {
            let _gate = gpu.enter();
            self.graph.launch().map_err(|e| gpu.err(format!("launching a CUDA graph: {e}")))?;
        }
        for ((stand_in, input), v) in self.stand_ins.iter().zip(&self.variables).zip(vars) {
            let written = rt::read_variable(stand_in);
            if !same_buffer(&written, input) {
                rt::assign_variable(v, copy(gpu, &written, v.name())?)?;
            }
        }
        self.results.iter().enumerate().map(|(i, r)| copy(gpu, r, &format!("result {i}"))).collect()
    }
}

fn same_buffer(a: &Tensor, b: &Tensor) -> bool {
    match (a.device_memory(), b.device_memory()) {
        (Some(x), Some(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}
