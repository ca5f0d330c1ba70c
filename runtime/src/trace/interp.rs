//! The interpreter: runs a graph with the eager kernels. It is the reference executor
//! (the JIT must match it bit for bit) and, until the JIT lands, the executor of every
//! traced function. Control flow runs natively: a `cond` runs the region its predicate
//! picks, a `while` re-runs its regions until the condition yields false.

use smallvec::SmallVec;

use crate::device::Device;
use crate::error::Error;
use crate::ir::{Graph, Node, NodeKind, Region, Resource, ValueId};
use crate::tensor::Tensor;
use crate::variable::Variable;

fn internal(msg: String) -> Error {
    Error::Internal(msg)
}

struct Env<'g> {
    g: &'g Graph,
    vals: SmallVec<[Option<Tensor>; 16]>,
    vars: SmallVec<[&'g Variable; 4]>,
    /// Where the arguments live: ops with no operands (random draws) run there too.
    device: Device,
}

/// Runs `g` on `inputs` (one per parameter) with `bound` variables for its resource
/// parameters (in order), returning its results.
pub(crate) fn execute<'g>(
    g: &'g Graph,
    inputs: impl IntoIterator<Item = Tensor>,
    bound: impl IntoIterator<Item = &'g Variable>,
) -> Result<Vec<Tensor>, Error> {
    let mut vals: SmallVec<[Option<Tensor>; 16]> = smallvec::smallvec![None; g.values.len()];
    let mut device = Device::Cpu;
    for (p, t) in g.params.iter().zip(inputs) {
        if t.device() != Device::Cpu {
            device = t.device();
        }
        vals[p.index()] = Some(t);
    }
    for (v, t) in &g.constants {
        vals[v.index()] = Some(t.clone());
    }
    let mut bound_iter = bound.into_iter();
    let vars: SmallVec<[&Variable; 4]> = g
        .resources
        .iter()
        .map(|r| match r {
            Resource::Captured(v) => Ok(v),
            Resource::Param(_) => bound_iter.next().ok_or_else(|| internal("a variable argument is missing".into())),
        })
        .collect::<Result<_, _>>()?;
    let mut env = Env { g, vals, vars, device };
    env.run(&g.nodes)?;
    env.get_all(&g.results)
}

impl Env<'_> {
    fn get(&self, v: ValueId) -> Result<&Tensor, Error> {
        self.vals[v.index()].as_ref().ok_or_else(|| internal(format!("{v} has no value")))
    }

    fn get_all(&self, vs: &[ValueId]) -> Result<Vec<Tensor>, Error> {
        vs.iter().map(|v| self.get(*v).cloned()).collect()
    }

    fn set_all(&mut self, vs: &[ValueId], ts: impl IntoIterator<Item = Tensor>) {
        for (v, t) in vs.iter().zip(ts) {
            self.vals[v.index()] = Some(t);
        }
    }

    /// Copies the values of `from` into `params` (a region's parameters). All are read
    /// before any is written: a body may yield its parameters permuted.
    fn bind(&mut self, params: &[ValueId], from: &[ValueId]) -> Result<(), Error> {
        let ts: SmallVec<[Tensor; 8]> = from.iter().map(|v| self.get(*v).cloned()).collect::<Result<_, _>>()?;
        for (p, t) in params.iter().zip(ts) {
            self.vals[p.index()] = Some(t);
        }
        Ok(())
    }

    fn run(&mut self, nodes: &[Node]) -> Result<(), Error> {
        for (i, n) in nodes.iter().enumerate() {
            self.node(i, n)?;
        }
        Ok(())
    }

    /// Runs a region on `args` and returns what it yields.
    fn region(&mut self, r: &Region, args: Vec<Tensor>) -> Result<Vec<Tensor>, Error> {
        self.set_all(&r.params, args);
        self.run(&r.nodes)?;
        self.get_all(&r.results)
    }

    fn node(&mut self, i: usize, n: &Node) -> Result<(), Error> {
        match &n.kind {
            NodeKind::Cond => {
                let pick = if super::backend::predicate(self.get(n.inputs[0])?)? { 0 } else { 1 };
                let outs = self.region(&n.regions[pick], vec![])?;
                self.set_all(&n.outputs, outs);
            }
            NodeKind::While { max_iterations } => {
                let (cond, body) = (&n.regions[0], &n.regions[1]);
                // The loop variables live in the value table: each trip copies the
                // current ones (first the inputs, then the body's results) into the
                // regions' parameters — no per-trip allocation.
                let mut current: &[ValueId] = &n.inputs;
                let mut trips = 0u64;
                while max_iterations.is_none_or(|m| trips < m) {
                    self.bind(&cond.params, current)?;
                    self.run(&cond.nodes)?;
                    if !super::backend::predicate(self.get(cond.results[0])?)? {
                        break;
                    }
                    self.bind(&body.params, current)?;
                    self.run(&body.nodes)?;
                    current = &body.results;
                    trips += 1;
                }
                for (o, v) in n.outputs.iter().zip(current) {
                    self.vals[o.index()] = Some(self.get(*v)?.clone());
                }
            }
            _ => {
                let out = self.simple(i, n)?;
                if let (Some(o), Some(t)) = (n.output(), out) {
                    self.vals[o.index()] = Some(t);
                }
            }
        }
        Ok(())
    }

    fn simple(&mut self, i: usize, n: &Node) -> Result<Option<Tensor>, Error> {
        let ins: SmallVec<[&Tensor; 4]> = n.inputs.iter().map(|v| self.get(*v)).collect::<Result<_, _>>()?;
        Ok(match &n.kind {
            NodeKind::Op(op) => {
                let o = n.output().ok_or_else(|| internal(format!("node {i} has no output")))?;
                let ty = self.g.value_type(o);
                let run = |dtype, shape| {
                    let ran = match ins.is_empty() {
                        true => crate::device::run_op_on(self.device, op, &ins, dtype, shape),
                        false => crate::device::run_op(op, &ins, dtype, shape),
                    };
                    ran.map_err(|e| Error::Function(format!("{e} (node {i})")))
                };
                if ty.shape.is_fully_known() {
                    Some(run(ty.dtype, ty.shape.clone())?)
                } else {
                    // Dims unknown at trace time: the op infers them from this call's
                    // inputs (and checks them, e.g. broadcasting of two unknown dims).
                    let (dtype, shape) = op.infer(&ins).map_err(|e| Error::Function(format!("{e} (node {i})")))?;
                    Some(run(dtype, shape)?)
                }
            }
            NodeKind::ReadVariable(r) => Some(self.vars[r.index()].value_untracked()),
            NodeKind::AssignVariable(r) => {
                self.vars[r.index()].store_concrete(ins[0].clone())?;
                None
            }
            NodeKind::Print(t) => {
                println!("{}", super::format_print(t, &ins));
                None
            }
            NodeKind::Cond | NodeKind::While { .. } => unreachable!("control flow is handled by `node`"),
        })
    }
}
