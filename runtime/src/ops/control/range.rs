//! `tf_range` (TensorFlow's `tf.range` as a loop bound) and `for_range`.

use std::panic::Location;

use super::{while_loop_at, WhileOptions};
use crate::dtype::DType;
use crate::error::OpError;
use crate::tensor::Tensor;
use crate::trace::function::FunctionOutput;

/// A loop bound: a scalar tensor, or a Rust integer (which takes the tensors' dtype).
pub trait RangeBound {
    #[doc(hidden)]
    fn bound(self) -> Result<Tensor, i64>;
}

impl RangeBound for Tensor {
    fn bound(self) -> Result<Tensor, i64> {
        Ok(self)
    }
}
impl RangeBound for &Tensor {
    fn bound(self) -> Result<Tensor, i64> {
        Ok(self.clone())
    }
}
macro_rules! int_bound {
    ($($t:ty),*) => {$(
        impl RangeBound for $t {
            fn bound(self) -> Result<Tensor, i64> {
                Err(self as i64)
            }
        }
    )*};
}
int_bound!(i32, i64, usize, u32);

/// `start, start+step, …` while below `stop` (above it for a negative step), with
/// bounds that may be tensors known only at run time. Iterate it with [`for_range`] (or
/// `for i in tf_range(..)` inside `#[tf_function]`, which AutoGraph turns into a
/// `while_loop`); eagerly it is also a plain iterator of scalar tensors.
#[derive(Clone, Debug)]
pub struct TfRange {
    pub start: Tensor,
    pub stop: Tensor,
    pub step: Tensor,
}

/// A range over scalar tensors (see [`TfRange`]). Rust integers take the dtype of the
/// tensor bounds (i32 when all are integers).
#[track_caller]
pub fn tf_range(start: impl RangeBound, stop: impl RangeBound, step: impl RangeBound) -> TfRange {
    let loc = Location::caller();
    let parts = [start.bound(), stop.bound(), step.bound()];
    let dtype = parts.iter().find_map(|p| p.as_ref().ok().map(Tensor::dtype)).unwrap_or(DType::I32);
    let [start, stop, step] = parts.map(|p| match p {
        Ok(t) => t,
        Err(v) => Tensor::full([], v as f64, dtype),
    });
    for (name, t) in [("start", &start), ("stop", &stop), ("step", &step)] {
        if t.rank() != 0 || t.dtype() != dtype || t.dtype() == DType::Bool {
            OpError::new(
                "tf_range",
                format!(
                    "{name} is {}{}; start, stop and step must be scalars of one numeric dtype ({dtype})",
                    t.dtype(),
                    t.shape()
                ),
            )
            .raise(loc)
        }
    }
    // (A step on a device is read back to the host.)
    let host = |t: &Tensor| t.to(crate::device::Device::Cpu);
    if !step.is_symbolic() && host(&step).and_then(|s| s.cast(DType::F64).to_scalar::<f64>()).is_ok_and(|s| s == 0.0) {
        OpError::new("tf_range", "step must not be zero").raise(loc)
    }
    TfRange { start, stop, step }
}

impl TfRange {
    /// Whether `i` is still inside the range (bounds on a device are compared there and
    /// the answer read back).
    pub fn contains(&self, i: &Tensor) -> bool {
        self.in_range(i).to(crate::device::Device::Cpu).and_then(|b| b.to_scalar::<bool>()).unwrap_or(false)
    }

    /// `i < stop` for a positive step, `i > stop` for a negative one (a bool tensor).
    pub fn in_range(&self, i: &Tensor) -> Tensor {
        Tensor::where_(&self.step.gt(0), i.lt(&self.stop), i.gt(&self.stop))
    }
}

/// Eager iteration (bounds must be concrete): yields scalar tensors.
impl Iterator for TfRange {
    type Item = Tensor;

    #[track_caller]
    fn next(&mut self) -> Option<Tensor> {
        if self.start.is_symbolic() || self.stop.is_symbolic() || self.step.is_symbolic() {
            OpError::new(
                "tf_range",
                "a range with symbolic bounds cannot be iterated by Rust; use `for_range` (or `for i in \
                 tf_range(..)` inside #[tf_function], which becomes a while_loop)",
            )
            .raise(Location::caller())
        }
        if !self.contains(&self.start) {
            return None;
        }
        let i = self.start.clone();
        self.start = &self.start + &self.step;
        Some(i)
    }
}

/// Runs `body(i, vars)` for every `i` of `range`, threading the loop variables through
/// (a `while_loop` over `(i, vars)` when traced).
///
/// ```
/// use tensorjit_runtime::ops::control::{for_range, tf_range};
/// use tensorjit_runtime::Tensor;
/// let total = for_range(&tf_range(0, 5, 1), Tensor::scalar(0i32), |i, acc| &acc + i);
/// assert_eq!(total.to_scalar::<i32>().unwrap(), 10);
/// ```
#[track_caller]
pub fn for_range<S: FunctionOutput>(range: &TfRange, vars: S, mut body: impl FnMut(&Tensor, S) -> S) -> S {
    let loc = Location::caller();
    let (_, out) = while_loop_at(
        |(i, _): &(Tensor, S)| range.in_range(i),
        |(i, s)| {
            let s = body(&i, s);
            (&i + &range.step, s)
        },
        (range.start.clone(), vars),
        &WhileOptions::default(),
        loc,
    );
    out
}
