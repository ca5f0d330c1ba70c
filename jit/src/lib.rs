//! tensorjit's CPU JIT: graph passes, fusion of elementwise chains (and the row sums
//! that end them) into loop kernels, memory planning and Cranelift code generation,
//! behind the runtime's `Backend` trait.
//!
//! The interpreter stays the reference: every compiled concrete function must give its
//! bits. [`install`] makes this the executor of new traces (the `tensorjit` facade calls
//! it); `TENSORJIT_BACKEND=interp` switches back. A compiled concrete function runs one
//! of four ways: a function that is one kernel runs it directly; one that is one
//! `while` loop over f32 state runs that loop over an arena of its own (`arena_loop`);
//! a plan of kernels, f32 ops, prints, variable reads and assignments and such loops
//! runs from a compiled entry point over one pooled arena (`arena_plan`); anything
//! else — `cond`, values of other dtypes, a variable read after an assignment — runs
//! on the general executor (`exec`). Dims known only at call time are specialised per
//! input shapes.
//! A trace on a GPU runs the same plan as a [`device_plan::DevicePlan`]: its kernels
//! as PTX (`cuda::fused`), its other steps as the device's eager ops (`steps` is the
//! step walker both executors share).

mod arena_loop;
mod arena_plan;
pub mod codegen;
pub mod cuda;
pub mod device_plan;
pub mod exec;
pub mod kernel;
mod launch;
pub mod lower;
pub mod passes;
pub mod plan;
pub mod ptx;
pub mod staged;
mod steps;

use std::sync::{Arc, OnceLock};

use tensorjit_runtime::device::Device;

use tensorjit_runtime::error::Error;
use tensorjit_runtime::ir::Graph;
use tensorjit_runtime::trace::backend::{install_backend, Backend, Executable};

/// The Cranelift backend.
pub struct CpuJit;

impl Backend for CpuJit {
    fn name(&self) -> &'static str {
        "cranelift"
    }

    fn compile(&self, g: &Graph) -> Result<Option<Box<dyn Executable>>, Error> {
        if g.values.iter().any(|t| !t.shape.is_fully_known()) {
            // Dims unknown until called (an input_signature with `None`): compiled per
            // set of input shapes on first use.
            return Ok(Some(Box::new(exec::Specializing::new(g.clone()))));
        }
        Ok(compile_concrete(g)?.map(|c| Box::new(c) as Box<dyn Executable>))
    }

    /// On a device: the same passes and plan, run by [`device_plan::DevicePlan`] (fused
    /// kernels as PTX on CUDA GPUs). Dims known only at call time leave the trace to the
    /// interpreter, which runs each op on the device.
    fn compile_on(&self, g: &Graph, device: Device) -> Result<Option<Box<dyn Executable>>, Error> {
        let Device::Cuda(ordinal) = device else { return self.compile(g) };
        if g.values.iter().any(|t| !t.shape.is_fully_known()) {
            return Ok(None);
        }
        let Some((optimized, plan)) = optimized_plan(g)? else { return Ok(None) };
        let launcher: Box<dyn device_plan::Launcher> = match CUDA.get() {
            Some(cuda) => Box::new(cuda::fused::PtxLauncher::new(cuda.gpu(ordinal)?)),
            // Another device backend was installed for CUDA devices: its own ops.
            None => Box::new(device_plan::OpByOp { device }),
        };
        Ok(Some(Box::new(device_plan::DevicePlan::new(&optimized, plan, device, launcher)?)))
    }
}

/// The CUDA backend, when this crate's is the one installed for `Device::Cuda`.
static CUDA: OnceLock<Arc<cuda::backend::CudaBackend>> = OnceLock::new();

fn compile_error(g: &Graph, message: String) -> Error {
    Error::Compile { function: g.name.clone(), message }
}

/// The optimised graph and its plan, device-independent (`None` if the graph holds
/// something the planner does not handle).
pub fn optimized_plan(g: &Graph) -> Result<Option<(Graph, plan::Plan)>, Error> {
    let optimized = passes::optimize(g).map_err(|m| compile_error(g, m))?;
    Ok(plan::plan(&optimized).map(|p| (optimized, p)))
}

/// Passes, plan and code for a graph whose shapes are all known (`None` if it holds
/// something the planner does not handle).
pub(crate) fn compile_concrete(g: &Graph) -> Result<Option<exec::Compiled>, Error> {
    let Some((optimized, plan)) = optimized_plan(g)? else { return Ok(None) };
    let (to_compile, kernels) = launch::Kernels::prepare(&plan.kernels);
    let (module, fns) = codegen::compile(&to_compile).map_err(|m| compile_error(g, m))?;
    Ok(Some(exec::Compiled::new(&optimized, plan, module, kernels.link(fns))))
}

/// Installs the Cranelift backend for traced functions (once per process; later calls
/// do nothing). Returns whether this call installed it.
pub fn install() -> bool {
    // GPU tensors' ops: the CUDA backend (opens GPUs only when asked for one).
    let backend = Arc::new(cuda::backend::CudaBackend::default());
    if tensorjit_runtime::device::install_cuda_backend(backend.clone()) {
        let _ = CUDA.set(backend);
    }
    install_backend(Arc::new(CpuJit))
}

#[cfg(test)]
mod tests;
