//! `Variable`: shared mutable state with a stable id and a name.

use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::autodiff;
use crate::dtype::DType;
use crate::error::OpError;
use crate::ops::Operand;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// A variable's identity (stable for its whole life, shared by clones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VariableId(u64);

impl VariableId {
    /// The id as a number (never reused within a process).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for VariableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "var{}", self.0)
    }
}

struct Inner {
    id: VariableId,
    name: String,
    trainable: bool,
    dtype: DType,
    shape: Shape,
    /// Where the value lives (fixed: assignments are copied here).
    device: crate::device::Device,
    value: RwLock<Tensor>,
}

/// Shared mutable tensor state (TensorFlow's `tf.Variable`). Cloning shares the
/// variable; its dtype and shape are fixed at creation and every assignment is checked
/// against them. Usable directly in ops (`&x * &v`); a `GradientTape` watches trainable
/// variables automatically.
#[derive(Clone)]
pub struct Variable {
    inner: Arc<Inner>,
}

impl Variable {
    /// A trainable variable holding `initial`.
    #[track_caller]
    pub fn new(initial: Tensor, name: impl Into<String>) -> Variable {
        Variable::with_trainable(initial, name, true)
    }

    /// A variable whose `trainable` flag is given (non-trainable variables are not
    /// watched by tapes automatically, e.g. BatchNormalization's moving statistics).
    #[track_caller]
    pub fn with_trainable(initial: Tensor, name: impl Into<String>, trainable: bool) -> Variable {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = name.into();
        if crate::trace::is_tracing() {
            OpError::new(
                "Variable::new",
                format!(
                    "variable '{name}' is created inside a traced function; a traced body runs once per input \
                     signature, so create variables outside it (in the model's constructor, or before the first \
                     call) and use them inside"
                ),
            )
            .raise(Location::caller())
        }
        let value = initial.stop_gradient();
        Variable {
            inner: Arc::new(Inner {
                id: VariableId(NEXT.fetch_add(1, Ordering::Relaxed)),
                name,
                trainable,
                dtype: value.dtype(),
                shape: value.shape().clone(),
                device: value.device(),
                value: RwLock::new(value),
            }),
        }
    }

    pub fn id(&self) -> VariableId {
        self.inner.id
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn trainable(&self) -> bool {
        self.inner.trainable
    }

    pub fn dtype(&self) -> DType {
        self.inner.dtype
    }

    pub fn shape(&self) -> &Shape {
        &self.inner.shape
    }

    /// The device its value lives on (the initial value's, for the variable's life).
    pub fn device(&self) -> crate::device::Device {
        self.inner.device
    }

    /// The current value without notifying tapes (a `read_variable` node while tracing).
    pub(crate) fn value_untracked(&self) -> Tensor {
        if let Some(t) = crate::trace::read_variable(self) {
            return t;
        }
        self.value_now()
    }

    fn value_now(&self) -> Tensor {
        match self.inner.value.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current value (a snapshot: later assignments do not change it). Recording
    /// tapes watch it when the variable is trainable.
    pub fn read(&self) -> Tensor {
        let v = self.value_untracked();
        if autodiff::recording() {
            autodiff::variable_read(self, &v);
        }
        v
    }

    /// Alias of [`read`](Self::read).
    pub fn value(&self) -> Tensor {
        self.read()
    }

    #[track_caller]
    fn store(&self, op: &'static str, new: Tensor) {
        if new.dtype() != self.inner.dtype || new.shape() != &self.inner.shape {
            OpError::new(
                op,
                format!(
                    "variable '{}' is {}{}, the new value is {}; a variable's dtype and shape are fixed",
                    self.inner.name,
                    self.inner.dtype,
                    self.inner.shape,
                    new.type_string()
                ),
            )
            .raise(Location::caller())
        }
        match crate::trace::assign_variable(self, &new) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => e.raise(Location::caller()),
        }
        // Assignment is a state change, not a differentiable op: later reads start fresh.
        if let Err(e) = self.store_concrete(new.stop_gradient()) {
            OpError::new(op, e.to_string()).raise(Location::caller())
        }
    }

    /// Replaces the value with a concrete tensor of the right type (the interpreter's
    /// `assign_variable`), copied to the variable's device when it lives elsewhere.
    pub(crate) fn store_concrete(&self, new: Tensor) -> Result<(), crate::error::Error> {
        let new = if new.device() == self.inner.device {
            new
        } else {
            new.to(self.inner.device)
                .map_err(|e| crate::error::Error::Function(format!("assigning variable '{}': {e}", self.inner.name)))?
        };
        match self.inner.value.write() {
            Ok(mut v) => *v = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        Ok(())
    }

    /// Replaces the value (same dtype and shape; a Rust scalar fills it).
    #[track_caller]
    pub fn assign(&self, value: impl Operand) {
        let (d, strong) = value.natural_dtype();
        let t = match value.into_tensor(self.inner.dtype, "assign") {
            Ok(t) => t,
            Err(e) => e.raise(Location::caller()),
        };
        let t = if strong || d == self.inner.dtype && t.shape() == &self.inner.shape {
            t
        } else {
            t.broadcast_to(&self.inner.shape)
        };
        self.store("assign", t);
    }

    /// `self = self + delta`.
    #[track_caller]
    pub fn assign_add(&self, delta: impl Operand) {
        let new = &self.value_untracked() + delta;
        self.store("assign_add", new);
    }

    /// `self = self - delta`.
    #[track_caller]
    pub fn assign_sub(&self, delta: impl Operand) {
        let new = &self.value_untracked() - delta;
        self.store("assign_sub", new);
    }
}

impl fmt::Debug for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Variable('{}', {}, {})",
            self.inner.name,
            self.value_untracked(),
            if self.trainable() { "trainable" } else { "non-trainable" }
        )
    }
}

impl Operand for &Variable {
    fn natural_dtype(&self) -> (DType, bool) {
        (self.inner.dtype, true)
    }
    fn into_tensor(self, _: DType, _: &'static str) -> Result<Tensor, OpError> {
        Ok(self.read())
    }
}

impl Operand for Variable {
    fn natural_dtype(&self) -> (DType, bool) {
        (self.inner.dtype, true)
    }
    fn into_tensor(self, _: DType, _: &'static str) -> Result<Tensor, OpError> {
        Ok(self.read())
    }
}
