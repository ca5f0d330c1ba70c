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
//! This crate is the facade: it re-exports the runtime (`tensorjit-runtime`) and will
//! install the JIT backends (`tensorjit-jit`) and the `#[tf_function]` macro.

pub use tensorjit_macros::tf_function;
pub use tensorjit_runtime::*;

/// The names most programs need: `use tensorjit::prelude::*;`.
pub mod prelude {
    pub use tensorjit_macros::tf_function;
    pub use tensorjit_runtime::random;
    pub use tensorjit_runtime::{
        config, function, tf_print, Axes, DType, Device, Error, Function, GradientTape, Padding, Shape, SliceArg,
        Static, Tensor, TensorSpec, Variable,
    };
}
