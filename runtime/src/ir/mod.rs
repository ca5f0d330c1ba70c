//! The graph IR that traced functions are recorded into.
//!
//! SSA values (`%3`) with a dtype and a static shape; nodes = an op kind + attributes +
//! input values; function parameters, captured constants, resources (variables, captured
//! or bound per call) and results. Stateful nodes — variable reads and writes, prints,
//! random draws — carry a position in one explicit effect chain (`!e0`, `!e1`, …) that
//! records program order; no pass may reorder or drop them. The text form (`text.rs`)
//! is stable: golden tests and users read it.
//!
//! Control flow nests: a `cond` node holds a `then` and an `else` [`Region`], a `while`
//! node a `cond` and a `body` region. A region has its own parameters and yields its
//! results; its nodes may use any value of an enclosing scope (captures, as in MLIR),
//! but nothing outside may use a value defined inside it. Effects inside a region are
//! numbered in the one chain in pre-order (the node that owns the region first), so the
//! chain still reads top to bottom in the text form.

mod dot;
mod parse;
mod specialize;
mod text;
mod verify;

use std::fmt;

pub use dot::to_dot;
pub use parse::parse;
pub use specialize::specialize;
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
    /// `cond(pred, then, else)`: input = the scalar bool predicate; regions = `[then,
    /// else]` (no parameters); outputs = the results of the branch that ran.
    Cond,
    /// `while_loop`: inputs = the initial loop variables; regions = `[cond, body]`, both
    /// with one parameter per loop variable; `cond` yields a scalar bool, `body` the next
    /// loop variables; outputs = the loop variables when `cond` first yields false (or
    /// after `max_iterations` trips).
    While { max_iterations: Option<u64> },
}

/// A nested block of nodes (a branch of a `cond`, the condition or body of a `while`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Region {
    pub params: Vec<ValueId>,
    pub nodes: Vec<Node>,
    pub results: Vec<ValueId>,
}

/// One node: kind, inputs, outputs, nested regions (control flow only) and its place in
/// the effect chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
    pub regions: Vec<Region>,
    /// Position in the effect chain for stateful nodes.
    pub effect: Option<u32>,
}

impl Node {
    /// A node without regions.
    pub fn simple(kind: NodeKind, inputs: Vec<ValueId>, output: Option<ValueId>) -> Node {
        Node { kind, inputs, outputs: output.into_iter().collect(), regions: Vec::new(), effect: None }
    }

    /// The output of a single-output node.
    pub fn output(&self) -> Option<ValueId> {
        self.outputs.first().copied()
    }

    /// Whether the node is stateful (ordered by the effect chain): variable reads and
    /// writes, prints, random draws, and control flow whose regions hold any of those.
    pub fn is_effect(&self) -> bool {
        match &self.kind {
            NodeKind::Op(op) => matches!(op, Op::Random(_)),
            NodeKind::ReadVariable(_) | NodeKind::AssignVariable(_) | NodeKind::Print(_) => true,
            NodeKind::Cond | NodeKind::While { .. } => self.regions.iter().any(|r| r.nodes.iter().any(Node::is_effect)),
        }
    }
}

impl NodeKind {
    /// The name in the text form.
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::Op(op) => op.name(),
            NodeKind::ReadVariable(_) => "read_variable",
            NodeKind::AssignVariable(_) => "assign_variable",
            NodeKind::Print(_) => "print",
            NodeKind::Cond => "cond",
            NodeKind::While { .. } => "while",
        }
    }
}

/// Numbers the effect chain 0, 1, 2, … in pre-order over `nodes` and their regions.
pub(crate) fn number_effects(nodes: &mut [Node], next: &mut u32) {
    for n in nodes {
        n.effect = n.is_effect().then(|| {
            *next += 1;
            *next - 1
        });
        for r in &mut n.regions {
            number_effects(&mut r.nodes, next);
        }
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

    /// Number of stateful nodes (the length of the effect chain), regions included.
    pub fn effect_count(&self) -> usize {
        fn count(nodes: &[Node]) -> usize {
            nodes
                .iter()
                .map(|n| usize::from(n.effect.is_some()) + n.regions.iter().map(|r| count(&r.nodes)).sum::<usize>())
                .sum()
        }
        count(&self.nodes)
    }

    /// Visits every node, regions included, in pre-order.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        fn go<'a>(nodes: &'a [Node], f: &mut impl FnMut(&'a Node)) {
            for n in nodes {
                f(n);
                for r in &n.regions {
                    go(&r.nodes, f);
                }
            }
        }
        go(&self.nodes, f)
    }
}
