//! tensorjit's runtime: tensors, the op layer with its eager kernels, automatic
//! differentiation and variables.
pub mod buffer;
pub mod device;
pub mod dtype;
pub mod error;
pub mod math;
pub mod shape;
pub mod tensor;

pub use device::Device;
pub use dtype::{DType, Element, Scalar};
pub use error::{Error, OpError, Result};
pub use shape::{Axes, Shape};
pub use tensor::{Tensor, TensorId};
