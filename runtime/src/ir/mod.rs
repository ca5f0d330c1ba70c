//! The graph IR that traced functions are recorded into.
//!
//! SSA values (`%3`) with a dtype and a static shape; nodes = an op kind + attributes +
//! input values; function parameters, captured constants, resources (variables, captured
//! or bound per call) and results. Stateful nodes — variable reads and writes, prints,
//! random draws — carry a position in one explicit effect chain (`!e0`, `!e1`, …) that
//! records program order; no pass may reorder or drop them. The text form (`text.rs`)
//! is stable: golden tests and users read it.

mod dot;
mod parse;
mod text;
mod verify;

use std::fmt;

pub use dot::to_dot;
pub use parse::parse;
pub use verify::verify;

use crate::dtype::DType;
use crate::ops::Op;
use crate::shape::Shape;
use crate::tensor::Tensor;
use crate::variable::Variable;

/// A typed index into one of a graph's tables, printed with its prefix.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) u32);

        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// An SSA value of a graph, printed `%3`.
    ValueId,
    "%"
);
id_type!(
    /// A resource (variable) slot of a graph, printed `@0`.
    ResourceId,
    "@"
);

/// Type of a value: dtype + static shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ValueType {
    pub dtype: DType,
    pub shape: Shape,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}

/// A variable the graph reads or writes.
#[derive(Clone, Debug)]
pub enum Resource {
    /// A variable captured from the environment (closure capture, `&self` field): part
    /// of the concrete function.
    Captured(Variable),
    /// A `&Variable` argument: bound to the caller's variable on every call, so one trace
    /// serves every variable of this type.
    Param(ValueType),
}

/// What a node does.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A primitive op of the op layer.
    Op(Op),
    /// Reads a variable (effect).
    ReadVariable(ResourceId),
    /// Writes its one input into a variable (effect).
    AssignVariable(ResourceId),
    /// `tf_print!`: formats its inputs into the template's `{}` and prints (effect).
    Print(String),
}

/// One node: kind, inputs, at most one output, and its place in the effect chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub inputs: Vec<ValueId>,
    pub output: Option<ValueId>,
    /// Position in the effect chain for stateful nodes.
    pub effect: Option<u32>,
}

impl NodeKind {
    /// Whether the node is stateful (ordered by the effect chain).
    pub fn is_effect(&self) -> bool {
        !matches!(self, NodeKind::Op(op) if !matches!(op, Op::Random(_)))
    }
}

/// A traced function body.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub name: String,
    /// Type of every value, indexed by `ValueId`.
    pub values: Vec<ValueType>,
    pub params: Vec<ValueId>,
    /// Concrete tensors captured by the trace.
    pub constants: Vec<(ValueId, Tensor)>,
    pub resources: Vec<Resource>,
    pub nodes: Vec<Node>,
    pub results: Vec<ValueId>,
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Graph {
        Graph { name: name.into(), ..Graph::default() }
    }

    /// Adds a value of type `ty`.
    pub fn add_value(&mut self, ty: ValueType) -> ValueId {
        self.values.push(ty);
        ValueId(self.values.len() as u32 - 1)
    }

    pub fn value_type(&self, v: ValueId) -> &ValueType {
        &self.values[v.index()]
    }

    /// Number of stateful nodes (the length of the effect chain).
    pub fn effect_count(&self) -> usize {
        self.nodes.iter().filter(|n| n.effect.is_some()).count()
    }
}
