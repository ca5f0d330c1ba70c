//! Tracing: recording the ops of a function body into a [`Graph`] instead of running
//! them.
//!
//! While a trace is active on a thread, the dispatch path hands every op whose inputs
//! include a symbolic tensor (and every random draw) to `record_op`, which appends a
//! node and returns a symbolic result. Ops on concrete tensors only are computed at
//! trace time with the eager kernels and enter the graph as captured constants (the
//! same bits either way). Variable reads and writes, prints and random draws become
//! nodes of the effect chain, so a traced call has exactly the side effects of an eager
//! one. Plain Rust side effects in the body (`println!`, pushing to a `Vec`) run only
//! while tracing, as in TensorFlow.

mod args;
pub mod backend;
pub mod function;
pub mod instance;
pub(crate) mod interp;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::device::Device;
use crate::dtype::DType;
use crate::error::OpError;
use crate::ir::{Graph, Node, NodeKind, Region, Resource, ResourceId, ValueId, ValueType};
use crate::ops::Op;
use crate::shape::Shape;
use crate::tensor::{Symbol, Tensor, TensorId};
use crate::variable::{Variable, VariableId};

pub(crate) struct TraceState {
    /// The id of the top-level scope (symbols made there carry it).
    id: u64,
    /// The device the traced function runs on (its tensor arguments').
    device: Device,
    pub(crate) graph: Graph,
    constants: HashMap<TensorId, ValueId>,
    resources: HashMap<VariableId, ResourceId>,
    /// The variable behind each resource (captured or bound for this trace).
    resource_vars: Vec<Variable>,
    /// Regions being traced (a `cond` branch, a `while_loop` body), innermost last.
    frames: Vec<Frame>,
    /// Ids of regions already finished, for the error on a value that escapes one.
    closed: Vec<u64>,
}

/// A region being traced: its nodes go here instead of into the graph.
struct Frame {
    id: u64,
    region: Region,
    /// Values of enclosing scopes used inside, with their tensors.
    captures: Vec<(ValueId, Tensor)>,
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
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

/// Runs `f` outside every active trace and with gradient tapes paused (TensorFlow's
/// `tf.init_scope`): ops compute concrete values and variables may be created. Layers
/// build their weights and optimizers their slots in it, so a model first called inside
/// a traced function gets its variables once, on the first trace, as in Keras.
pub fn init_scope<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Vec<TraceState>, usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = std::mem::take(&mut self.0);
            TRACES.with(|t| {
                let mut t = t.borrow_mut();
                let inner = std::mem::replace(&mut *t, outer);
                t.extend(inner);
            });
            DEPTH.with(|d| d.set(d.get() + self.1));
        }
    }
    let saved = TRACES.with(|t| std::mem::take(&mut *t.borrow_mut()));
    let depth = DEPTH.with(|d| d.replace(0));
    let _restore = Restore(saved, depth);
    let _paused = crate::autodiff::pause();
    f()
}

/// Starts a trace on this thread; ends with [`end`].
pub(crate) fn begin(name: &str, device: Device) -> u64 {
    let id = next_id();
    TRACES.with(|t| {
        t.borrow_mut().push(TraceState {
            id,
            device,
            graph: Graph::new(name),
            constants: HashMap::new(),
            resources: HashMap::new(),
            resource_vars: Vec::new(),
            frames: Vec::new(),
            closed: Vec::new(),
        })
    });
    DEPTH.with(|d| d.set(d.get() + 1));
    id
}

/// Ends the innermost trace and returns its graph.
pub(crate) fn end() -> Option<Graph> {
    let mut st = TRACES.with(|t| t.borrow_mut().pop())?;
    DEPTH.with(|d| d.set(d.get() - 1));
    crate::ir::number_effects(&mut st.graph.nodes, &mut 0);
    Some(st.graph)
}

fn with_trace<R>(f: impl FnOnce(&mut TraceState) -> R) -> Option<R> {
    TRACES.with(|t| t.borrow_mut().last_mut().map(f))
}

impl TraceState {
    /// The id of the innermost open scope.
    fn scope(&self) -> u64 {
        self.frames.last().map_or(self.id, |f| f.id)
    }

    fn nodes(&mut self) -> &mut Vec<Node> {
        match self.frames.last_mut() {
            Some(f) => &mut f.region.nodes,
            None => &mut self.graph.nodes,
        }
    }

    fn symbol(&self, value: ValueId, ty: ValueType) -> Tensor {
        Tensor::symbolic(Symbol { trace: self.scope(), value, dtype: ty.dtype, device: self.device }, ty.shape)
    }

    fn value_of(&mut self, t: &Tensor) -> Result<ValueId, OpError> {
        let scope = self.scope();
        match t.symbol() {
            Some(s) if s.trace == scope => Ok(s.value),
            Some(s) if s.trace == self.id || self.frames.iter().any(|f| f.id == s.trace) => {
                // A value of an enclosing scope: a capture of every region in between.
                let owner = self.frames.iter().position(|f| f.id == s.trace).map_or(0, |p| p + 1);
                for f in &mut self.frames[owner..] {
                    if !f.captures.iter().any(|(v, _)| *v == s.value) {
                        f.captures.push((s.value, t.clone()));
                    }
                }
                Ok(s.value)
            }
            Some(s) if self.closed.contains(&s.trace) => Err(OpError::new(
                "trace",
                "a tensor computed inside a cond branch or a while_loop body was used outside it; return it \
                 from the branch (or make it a loop variable) instead",
            )),
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
        let output = out.clone().map(|ty| self.graph.add_value(ty));
        let mut node = Node::simple(kind, inputs, output);
        // A placeholder: `end` numbers the chain in pre-order.
        node.effect = node.is_effect().then_some(0);
        self.nodes().push(node);
        Some(self.symbol(output?, out?))
    }

    fn resource(&mut self, v: &Variable) -> ResourceId {
        *self.resources.entry(v.id()).or_insert_with(|| {
            self.graph.resources.push(Resource::Captured(v.clone()));
            self.resource_vars.push(v.clone());
            ResourceId(self.graph.resources.len() as u32 - 1)
        })
    }
}

/// Opens a region (a branch or loop body) in the active trace with parameters of these
/// types and returns them as symbolic tensors; `None` when not tracing.
pub(crate) fn begin_region(params: &[ValueType]) -> Option<Vec<Tensor>> {
    with_trace(|st| {
        let id = next_id();
        let values: Vec<ValueId> = params.iter().map(|ty| st.graph.add_value(ty.clone())).collect();
        st.frames.push(Frame { id, region: Region { params: values.clone(), ..Region::default() }, captures: vec![] });
        values.iter().zip(params).map(|(v, ty)| st.symbol(*v, ty.clone())).collect()
    })
}

/// A finished region with the values of enclosing scopes it uses.
pub(crate) struct TracedRegion {
    pub(crate) region: Region,
    pub(crate) captures: Vec<(ValueId, Tensor)>,
}

/// Closes the innermost region, yielding `results` (values of the region, of enclosing
/// scopes, or concrete tensors).
pub(crate) fn end_region(results: &[Tensor]) -> Result<TracedRegion, OpError> {
    with_trace(|st| {
        let ids = results.iter().map(|t| st.value_of(t)).collect::<Result<Vec<_>, _>>();
        let mut f = st.frames.pop().ok_or_else(|| OpError::new("trace", "internal: no region is open"))?;
        st.closed.push(f.id);
        f.region.results = ids?;
        Ok(TracedRegion { region: f.region, captures: f.captures })
    })
    .unwrap_or_else(|| Err(OpError::new("trace", "internal: no trace is active")))
}

/// Appends a control-flow node (`Cond` / `While`) with its regions to the active scope
/// and returns its outputs as symbolic tensors.
pub(crate) fn push_control(
    kind: NodeKind,
    inputs: &[&Tensor],
    regions: Vec<Region>,
    outputs: &[ValueType],
) -> Result<Vec<Tensor>, OpError> {
    with_trace(|st| {
        let ins = inputs.iter().map(|t| st.value_of(t)).collect::<Result<Vec<_>, _>>()?;
        let outs: Vec<ValueId> = outputs.iter().map(|ty| st.graph.add_value(ty.clone())).collect();
        let mut node = Node { kind, inputs: ins, outputs: outs.clone(), regions, effect: None };
        node.effect = node.is_effect().then_some(0);
        st.nodes().push(node);
        Ok(outs.iter().zip(outputs).map(|(v, ty)| st.symbol(*v, ty.clone())).collect())
    })
    .unwrap_or_else(|| Err(OpError::new("trace", "internal: no trace is active")))
}

/// The variable behind resource `r` of the active trace (for replaying a region).
pub(crate) fn resource_variable(r: ResourceId) -> Option<Variable> {
    with_trace(|st| st.resource_vars.get(r.index()).cloned()).flatten()
}

/// The tensor of constant `v` of the active trace.
pub(crate) fn constant(v: ValueId) -> Option<Tensor> {
    with_trace(|st| st.graph.constants.iter().find(|(c, _)| *c == v).map(|(_, t)| t.clone())).flatten()
}

/// The type of value `v` of the active trace.
pub(crate) fn value_type_of(v: ValueId) -> ValueType {
    with_trace(|st| st.graph.value_type(v).clone()).unwrap_or(ValueType { dtype: DType::F32, shape: Shape::scalar() })
}

/// The type of `t` as a graph value.
pub(crate) fn value_type(t: &Tensor) -> ValueType {
    ValueType { dtype: t.dtype(), shape: t.shape().clone() }
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
        st.resource_vars.push(v.clone());
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
        let ty = ValueType { dtype, shape };
        let v = st.graph.add_value(ty.clone());
        st.graph.params.push(v);
        st.symbol(v, ty)
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
