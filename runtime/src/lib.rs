//! tensorjit's runtime: tensors, the op layer with its eager kernels, automatic
//! differentiation and variables.
//!
//! Every public tensor operation goes through one dispatch path (`ops::apply`): infer
//! the output type (bad input panics naming the op, operands and the caller's location),
//! run the eager kernel, record the op on active gradient tapes.

pub mod autodiff;
pub mod autograph;
pub mod buffer;
pub mod config;
pub mod device;
pub mod dtype;
pub mod error;
pub mod ir;
pub(crate) mod kernels;
pub mod math;
pub mod ops;
pub mod shape;
pub mod tensor;
pub mod trace;
pub mod variable;

pub use autodiff::{GradientTape, Source};
pub use device::Device;
pub use dtype::{DType, Element, Scalar};
pub use error::{Error, OpError, Result};
pub use ops::control::{cond, for_range, tf_range, while_loop, while_loop_with, TfRange, WhileOptions};
pub use ops::nn::Padding;
pub use ops::random;
pub use ops::shape::{ReshapeSpec, SliceArg};
pub use ops::Operand;
pub use ops::{CumsumOptions, PadMode};
pub use shape::{Axes, Shape};
pub use tensor::{Tensor, TensorId};
pub use trace::function::{
    function, ArgSpec, ArgVec, ConcreteFunction, Function, FunctionArgs, FunctionOutput, Static, TensorSpec,
    VariableSpec,
};
pub use trace::init_scope;
pub use trace::instance::InstanceField;
pub use variable::{Variable, VariableId};

/// Prints tensors on every call, eager or traced (`tf.print`): inside a traced function
/// it is an op of the graph, so it runs each time the compiled function runs, with the
/// values of that call. `{}` in the template takes the next tensor.
///
/// ```
/// # use tensorjit_runtime::{tf_print, Tensor};
/// let x = Tensor::scalar(2.0f32);
/// tf_print!("x = {}", x);
/// ```
#[macro_export]
macro_rules! tf_print {
    ($template:literal $(, $arg:expr)* $(,)?) => {
        $crate::print_tensors($template, &[$(::std::convert::AsRef::<$crate::Tensor>::as_ref(&$arg)),*])
    };
}

/// The function behind [`tf_print!`].
#[track_caller]
pub fn print_tensors(template: &str, args: &[&Tensor]) {
    match trace::print(template, args) {
        Ok(true) => {}
        Ok(false) => println!("{}", trace::format_print(template, args)),
        Err(e) => e.raise(std::panic::Location::caller()),
    }
}

impl AsRef<Tensor> for Tensor {
    fn as_ref(&self) -> &Tensor {
        self
    }
}
