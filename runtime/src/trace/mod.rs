//! Tracing: recording the ops of a function body into a [`Graph`] instead of running
//! them.
//!
//! While a trace is active on a thread, the dispatch path hands every op whose inputs
//! include a symbolic tensor (and every random draw) to [`record_op`], which appends a
//! node and returns a symbolic result. Ops on concrete tensors only are computed at
//! trace time with the eager kernels and enter the graph as captured constants (the
//! same bits either way). Variable reads and writes, prints and random draws become
//! nodes of the effect chain, so a traced call has exactly the side effects of an eager
//! one. Plain Rust side effects in the body (`println!`, pushing to a `Vec`) run only
//! while tracing, as in TensorFlow.

mod args;
pub mod function;
pub mod instance;
pub(crate) mod interp;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dtype::DType;
use crate::error::OpError;
use crate::ir::{Graph, Node, NodeKind, Resource, ResourceId, ValueId, ValueType};
use crate::ops::Op;
use crate::shape::Shape;
use crate::tensor::{Symbol, Tensor, TensorId};
use crate::variable::{Variable, VariableId};

pub(crate) struct TraceState {
    id: u64,
    pub(crate) graph: Graph,
    constants: HashMap<TensorId, ValueId>,
    resources: HashMap<VariableId, ResourceId>,
    effects: u32,
}

thread_local! {
    static TRACES: RefCell<Vec<TraceState>> = const { RefCell::new(Vec::new()) };
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Whether a trace is active on this thread (the dispatch path's one check).
#[inline(always)]
pub fn is_tracing() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

/// Starts a trace on this thread; ends with [`end`].
pub(crate) fn begin(name: &str) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    TRACES.with(|t| {
        t.borrow_mut().push(TraceState {
            id,
            graph: Graph::new(name),
            constants: HashMap::new(),
            resources: HashMap::new(),
            effects: 0,
        })
    });
    DEPTH.with(|d| d.set(d.get() + 1));
    id
}

/// Ends the innermost trace and returns its graph.
pub(crate) fn end() -> Option<Graph> {
    let st = TRACES.with(|t| t.borrow_mut().pop())?;
    DEPTH.with(|d| d.set(d.get() - 1));
    Some(st.graph)
}

fn with_trace<R>(f: impl FnOnce(&mut TraceState) -> R) -> Option<R> {
    TRACES.with(|t| t.borrow_mut().last_mut().map(f))
}

impl TraceState {
    fn value_of(&mut self, t: &Tensor) -> Result<ValueId, OpError> {
        match t.symbol() {
            Some(s) if s.trace == self.id => Ok(s.value),
            Some(_) => Err(OpError::new(
                "trace",
                "a symbolic tensor from another trace was used here; symbolic tensors live only inside the \
                 traced call that made them — return values from the function instead of storing them",
            )),
            None => Ok(*self.constants.entry(t.id()).or_insert_with(|| {
                let v = self.graph.add_value(ValueType { dtype: t.dtype(), shape: t.shape().clone() });
                self.graph.constants.push((v, t.clone()));
                v
            })),
        }
    }

    fn push(&mut self, kind: NodeKind, inputs: Vec<ValueId>, out: Option<ValueType>) -> Option<Tensor> {
        let effect = kind.is_effect().then(|| {
            self.effects += 1;
            self.effects - 1
        });
        let output = out.clone().map(|ty| self.graph.add_value(ty));
        self.graph.nodes.push(Node { kind, inputs, output, effect });
        let (o, ty) = (output?, out?);
        Some(Tensor::symbolic(Symbol { trace: self.id, value: o, dtype: ty.dtype }, ty.shape))
    }

    fn resource(&mut self, v: &Variable) -> ResourceId {
        *self.resources.entry(v.id()).or_insert_with(|| {
            self.graph.resources.push(Resource::Captured(v.clone()));
            ResourceId(self.graph.resources.len() as u32 - 1)
        })
    }
}

/// The dispatch path's hook: while tracing, appends `op` as a node when it must run at
/// call time (a symbolic input, or a random draw) and returns its symbolic result.
/// `Ok(None)` = compute it now (all inputs concrete).
pub(crate) fn record_op(op: &Op, inputs: &[&Tensor], dtype: DType, shape: &Shape) -> Result<Option<Tensor>, OpError> {
    if !inputs.iter().any(|t| t.is_symbolic()) && !matches!(op, Op::Random(_)) {
        return Ok(None);
    }
    with_trace(|st| {
        let ins = inputs.iter().map(|t| st.value_of(t)).collect::<Result<Vec<_>, _>>()?;
        Ok(st.push(NodeKind::Op(op.clone()), ins, Some(ValueType { dtype, shape: shape.clone() })))
    })
    .unwrap_or(Ok(None))
}

/// Error for a symbolic tensor reaching an op with no trace active.
pub(crate) fn escaped(op: &'static str) -> OpError {
    OpError::new(
        op,
        "this tensor is symbolic (from a traced function's body) but no trace is active; symbolic tensors \
         exist only while their function is traced — return the value from the function instead",
    )
}

/// Binds variable `v` to resource parameter `r` of the trace (a `&Variable` argument).
pub(crate) fn bind_variable_param(v: &Variable) {
    with_trace(|st| {
        let ty = ValueType { dtype: v.dtype(), shape: v.shape().clone() };
        st.graph.resources.push(Resource::Param(ty));
        let r = ResourceId(st.graph.resources.len() as u32 - 1);
        st.resources.insert(v.id(), r);
    });
}

/// A read of `v` inside a trace: a `read_variable` node (None when not tracing).
pub(crate) fn read_variable(v: &Variable) -> Option<Tensor> {
    if !is_tracing() {
        return None;
    }
    with_trace(|st| {
        let r = st.resource(v);
        st.push(NodeKind::ReadVariable(r), vec![], Some(ValueType { dtype: v.dtype(), shape: v.shape().clone() }))
    })
    .flatten()
}

/// An assignment inside a trace: an `assign_variable` node. Returns false when not
/// tracing (the caller assigns eagerly).
pub(crate) fn assign_variable(v: &Variable, value: &Tensor) -> Result<bool, OpError> {
    if !is_tracing() {
        return Ok(false);
    }
    with_trace(|st| {
        let r = st.resource(v);
        let x = st.value_of(value)?;
        st.push(NodeKind::AssignVariable(r), vec![x], None);
        Ok(true)
    })
    .unwrap_or(Ok(false))
}

/// `tf_print!` inside a trace: a `print` node. Returns false when not tracing.
pub(crate) fn print(template: &str, args: &[&Tensor]) -> Result<bool, OpError> {
    if !is_tracing() {
        return Ok(false);
    }
    with_trace(|st| {
        let ins = args.iter().map(|t| st.value_of(t)).collect::<Result<Vec<_>, _>>()?;
        st.push(NodeKind::Print(template.to_string()), ins, None);
        Ok(true)
    })
    .unwrap_or(Ok(false))
}

/// Makes a symbolic parameter of the active trace.
pub(crate) fn param(dtype: DType, shape: Shape) -> Option<Tensor> {
    with_trace(|st| {
        let ty = ValueType { dtype, shape: shape.clone() };
        let v = st.graph.add_value(ty);
        st.graph.params.push(v);
        Tensor::symbolic(Symbol { trace: st.id, value: v, dtype }, shape)
    })
}

/// Records the results of the active trace.
pub(crate) fn set_results(results: &[Tensor]) -> Result<(), OpError> {
    with_trace(|st| {
        let ids = results.iter().map(|t| st.value_of(t)).collect::<Result<Vec<_>, _>>()?;
        st.graph.results = ids;
        Ok(())
    })
    .unwrap_or(Ok(()))
}

/// Formats `template`, replacing each `{}` with the next tensor (shared by the eager
/// path, the interpreter and — later — compiled code).
pub fn format_print(template: &str, args: &[&Tensor]) -> String {
    let mut out = String::new();
    let mut parts = template.split("{}");
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        match args.get(i) {
            Some(t) => out.push_str(&t.to_string()),
            None => out.push_str("{}"),
        }
        out.push_str(part);
    }
    out
}
