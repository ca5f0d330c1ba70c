//! tensorjit's CPU JIT: graph passes, fusion of elementwise chains into loop kernels,
//! and Cranelift code generation, behind the runtime's `Backend` trait.
//!
//! The interpreter stays the reference: every compiled concrete function must give its
//! bits. `install()` makes this the executor of new traces (the `tensorjit` facade calls
//! it); `TENSORJIT_BACKEND=interp` switches back.

pub mod codegen;
pub mod kernel;

#[cfg(test)]
mod tests;
