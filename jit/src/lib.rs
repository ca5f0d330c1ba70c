//! tensorjit's CPU JIT: fusion of elementwise chains into loop kernels and Cranelift
//! code generation, behind the runtime's `Backend` trait.
//!
//! The interpreter stays the reference: every compiled concrete function must give its
//! bits. [`install`] makes this the executor of new traces (the `tensorjit` facade calls
//! it); `TENSORJIT_BACKEND=interp` switches back. Graphs with control flow or dims
//! known only at run time are left to the interpreter for now.

pub mod codegen;
pub mod exec;
pub mod kernel;
pub mod passes;
pub mod plan;

use std::sync::Arc;

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
        let compile_error = |message: String| Error::Compile { function: g.name.clone(), message };
        let optimized = passes::optimize(g).map_err(compile_error)?;
        let Some(plan) = plan::plan(&optimized) else { return Ok(None) };
        let (module, fns) = codegen::compile(&plan.kernels).map_err(compile_error)?;
        Ok(Some(Box::new(exec::Compiled::new(&optimized, plan, module, fns))))
    }
}

/// Installs the Cranelift backend for traced functions (once per process; later calls
/// do nothing). Returns whether this call installed it.
pub fn install() -> bool {
    install_backend(Arc::new(CpuJit))
}

#[cfg(test)]
mod tests;
