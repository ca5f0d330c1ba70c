//! tensorjit's runtime: tensors, the op layer with its eager kernels, automatic
//! differentiation and variables.
//!
//! Every public tensor operation goes through one dispatch path (`ops::apply`): infer
//! the output type (bad input panics naming the op, operands and the caller's location),
//! run the eager kernel, record the op on active gradient tapes.

pub mod autodiff;
pub mod buffer;
pub mod device;
pub mod dtype;
pub mod error;
pub(crate) mod kernels;
pub mod math;
pub mod ops;
pub mod shape;
pub mod tensor;
pub mod variable;

pub use autodiff::{GradientTape, Source};
pub use device::Device;
pub use dtype::{DType, Element, Scalar};
pub use error::{Error, OpError, Result};
pub use ops::nn::Padding;
pub use ops::random;
pub use ops::shape::{ReshapeSpec, SliceArg};
pub use ops::Operand;
pub use shape::{Axes, Shape};
pub use tensor::{Tensor, TensorId};
pub use variable::{Variable, VariableId};
