//! Errors: `Error` for everything that can fail at a boundary (returned as `Result`),
//! `OpError` for programmer errors in tensor code (reported by panicking at the
//! caller's location, as ndarray's operators do).

use std::fmt;
use std::panic::Location;

use crate::dtype::DType;
use crate::shape::Shape;

/// Everything that can fail at a boundary of tensorjit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Building a tensor from data whose length does not match the shape.
    #[error("cannot build a tensor of shape {shape} from {len} elements (the shape needs {})", shape.numel())]
    ElementCount { shape: Shape, len: usize },
    /// Reading a tensor as a Rust type of another dtype.
    #[error("cannot read a {found} tensor as {expected}; cast it first (`.cast(DType::{expected_variant})`)", expected_variant = expected.variant_name())]
    DTypeMismatch { expected: DType, found: DType },
    /// `to_scalar` on a tensor with more than one element.
    #[error("to_scalar needs a tensor with exactly one element, this one has shape {shape}")]
    NotAScalar { shape: Shape },
    /// An ndarray that could not be converted (e.g. from a non-standard layout).
    #[error("ndarray conversion failed: {0}")]
    NdArray(String),
    /// Reading the elements of a symbolic tensor (inside a traced function).
    #[error(
        "cannot read the value of symbolic tensor {tensor} while tracing: its elements exist only when the \
         function runs; print it with tf_print!(...) (prints on every call) or return it from the function"
    )]
    SymbolicValue { tensor: String },
    /// Reading the elements of a tensor that lives on a device.
    #[error("tensor {tensor} lives on {device}: copy it to the host first with `.to(Device::Cpu)`")]
    OnDevice { tensor: String, device: crate::device::Device },
    /// A call does not match the function's `input_signature`, or the body failed.
    #[error("{0}")]
    Function(String),
    /// A backend failed to compile a traced function (the code generator's message).
    #[error("compiling {function} failed: {message}")]
    Compile { function: String, message: String },
    /// A device that is not there or failed (no CUDA driver, no such GPU, a launch
    /// error): names the device and what the driver said.
    #[error("{device}: {message}")]
    Device { device: String, message: String },
    /// A broken invariant inside tensorjit (please report it).
    #[error("internal error: {0}")]
    Internal(String),
    /// An op rejected its operands (the fallible `try_` form of an op).
    #[error(transparent)]
    Op(#[from] OpError),
}

/// Convenience alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An op rejected its operands: names the op, the operand types and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct OpError {
    pub op: &'static str,
    /// `dtype[shape]` of each operand, in order.
    pub operands: Vec<String>,
    pub message: String,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.message)?;
        if !self.operands.is_empty() {
            write!(f, " (operands: {})", self.operands.join(", "))?;
        }
        Ok(())
    }
}

impl OpError {
    /// An error of `op` (device backends report theirs with it).
    pub fn new(op: &'static str, message: impl Into<String>) -> OpError {
        OpError { op, operands: Vec::new(), message: message.into() }
    }

    pub(crate) fn with_operands<'a>(mut self, ops: impl IntoIterator<Item = (DType, &'a Shape)>) -> OpError {
        self.operands = ops.into_iter().map(|(d, s)| format!("{d}{s}")).collect();
        self
    }

    /// Reports a programmer error at the user's call site.
    #[cold]
    #[inline(never)]
    pub(crate) fn raise(self, at: &Location<'_>) -> ! {
        panic!("tensorjit: {self}\n  at {}:{}:{}", at.file(), at.line(), at.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_error_names_op_operands_and_location() {
        let e = OpError::new("add", "shapes cannot broadcast")
            .with_operands([(DType::F32, &Shape::new(&[2, 3])), (DType::F32, &Shape::new(&[4]))]);
        assert_eq!(e.to_string(), "add: shapes cannot broadcast (operands: f32[2,3], f32[4])");
        let loc = Location::caller();
        let msg = std::panic::catch_unwind(|| e.raise(loc)).unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.contains("error.rs:"), "{msg}");
    }

    #[test]
    fn error_messages_name_the_fix() {
        let e = Error::DTypeMismatch { expected: DType::F64, found: DType::F32 };
        assert_eq!(e.to_string(), "cannot read a f32 tensor as f64; cast it first (`.cast(DType::F64)`)");
    }
}
