//! # tensorjit
//!
//! `tf.function` for Rust: write ordinary eager tensor code; tensorjit runs it eagerly
//! today, and traces, optimises and JIT-compiles it as the tracing and JIT layers land.
//!
//! ```
//! use tensorjit::prelude::*;
//!
//! let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2])?;
//! let w = Variable::new(Tensor::ones([2, 1], DType::F32), "w");
//! let tape = GradientTape::new();
//! let loss = (x.matmul(&w.read()) * 2.0 + 1.0).square().mean_all();
//! let grads = tape.gradient(&loss, &[&w]);
//! assert_eq!(grads[0].as_ref().unwrap().dims(), &[2, 1]);
//! # Ok::<(), tensorjit::Error>(())
//! ```
//!
//! A traced training step (the body runs once per input signature; later calls run its
//! graph, with the same variable updates and the same bits):
//!
//! ```
//! use tensorjit::prelude::*;
//!
//! #[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, Some(3)]),
//!                                  TensorSpec::new(DType::F32, &[None, Some(1)])])]
//! fn train_step(w: &Variable, x: &Tensor, y: &Tensor) -> Tensor {
//!     let tape = GradientTape::new();
//!     let loss = (x.matmul(&w.read()) - y).square().mean_all();
//!     let g = tape.gradient(&loss, &[w]);
//!     w.assign_sub(g[0].as_ref().unwrap() * 0.1);
//!     loss
//! }
//!
//! fn main() {
//!     let w = Variable::new(Tensor::zeros([3, 1], DType::F32), "w");
//!     for batch in [4, 7, 2] {
//!         let x = random::uniform([batch, 3], -1.0, 1.0, DType::F32, Some(batch as u64));
//!         let y = x.sum(1, true);
//!         train_step(&w, &x, &y);
//!     }
//!     assert_eq!(train_step::tracing_count(), 1);
//!     assert!(train_step::concrete_functions()[0].ir_text().contains("f32[?,3]"));
//! }
//! ```
//!
//! This crate is the facade: it re-exports the runtime (`tensorjit-runtime`), the
//! `#[tf_function]` macro and the Keras-style layers, and installs the JIT backends
//! (`tensorjit-jit`): Cranelift for traced functions on the CPU, and the CUDA backend
//! for tensors moved to a GPU with `tensor.to(Device::Cuda(0))` (after [`init`]).

pub use tensorjit_macros::{tf_function, FunctionArgs};
pub use tensorjit_runtime::*;

/// Keras-style layers, models, optimizers, losses, `compile`/`fit` and datasets
/// (`tensorjit-nn`): `use tensorjit::nn::prelude::*;`.
pub use tensorjit_nn as nn;

/// A traced function of `body` (see `tensorjit_runtime::function`), executed by the
/// Cranelift JIT (installed on first use; `TENSORJIT_BACKEND=interp` keeps the
/// interpreter).
pub fn function<A, R, F>(name: &str, body: F) -> Function<A, R>
where
    A: FunctionArgs,
    R: FunctionOutput,
    F: Fn(A) -> R + Send + Sync + 'static,
{
    tensorjit_jit::install();
    tensorjit_runtime::function(name, body)
}

/// Installs the executors: the Cranelift JIT for traced functions and the CUDA backend
/// for GPU tensors (`Tensor::to(Device::Cuda(0))`). Traced functions call it
/// themselves; call it before moving tensors to a GPU. Idempotent and cheap.
pub fn init() {
    tensorjit_jit::install();
}

/// The number of CUDA GPUs this machine offers (0 without a driver or a GPU).
pub fn cuda_device_count() -> usize {
    tensorjit_jit::cuda::device_count()
}

/// The names most programs need: `use tensorjit::prelude::*;`.
pub mod prelude {
    pub use crate::function;
    pub use tensorjit_macros::{tf_function, FunctionArgs};
    pub use tensorjit_runtime::random;
    pub use tensorjit_runtime::{
        cond, config, for_range, tf_print, tf_range, while_loop, while_loop_with, Axes, CumsumOptions, DType, Device,
        Error, Function, GradientTape, PadMode, Padding, Shape, SliceArg, Static, Tensor, TensorSpec, Variable,
        WhileOptions,
    };
}
