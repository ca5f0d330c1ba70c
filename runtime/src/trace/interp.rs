//! The interpreter: runs a graph with the eager kernels. It is the reference executor
//! (the JIT must match it bit for bit) and, until the JIT lands, the executor of every
//! traced function.

use smallvec::SmallVec;

use crate::error::Error;
use crate::ir::{Graph, NodeKind, Resource};
use crate::kernels;
use crate::tensor::Tensor;
use crate::variable::Variable;

fn internal(msg: String) -> Error {
    Error::Internal(msg)
}

/// Runs `g` on `inputs` (one per parameter) with `bound` variables for its resource
/// parameters (in order), returning its results.
pub(crate) fn execute(
    g: &Graph,
    inputs: impl IntoIterator<Item = Tensor>,
    bound: &[Variable],
) -> Result<Vec<Tensor>, Error> {
    let mut vals: SmallVec<[Option<Tensor>; 16]> = smallvec::smallvec![None; g.values.len()];
    for (p, t) in g.params.iter().zip(inputs) {
        vals[p.index()] = Some(t);
    }
    for (v, t) in &g.constants {
        vals[v.index()] = Some(t.clone());
    }
    let mut bound_iter = bound.iter();
    let vars: SmallVec<[&Variable; 4]> = g
        .resources
        .iter()
        .map(|r| match r {
            Resource::Captured(v) => Ok(v),
            Resource::Param(_) => bound_iter.next().ok_or_else(|| internal("a variable argument is missing".into())),
        })
        .collect::<Result<_, _>>()?;
    for (i, n) in g.nodes.iter().enumerate() {
        let ins: SmallVec<[&Tensor; 4]> = n
            .inputs
            .iter()
            .map(|v| vals[v.index()].as_ref().ok_or_else(|| internal(format!("node {i}: {v} has no value"))))
            .collect::<Result<_, _>>()?;
        let out = match &n.kind {
            NodeKind::Op(op) => {
                let o = n.output.ok_or_else(|| internal(format!("node {i} has no output")))?;
                let ty = g.value_type(o);
                if ty.shape.is_fully_known() {
                    Some(kernels::run(op, &ins, ty.dtype, ty.shape.clone()))
                } else {
                    // Dims unknown at trace time: the op infers them from this call's
                    // inputs (and checks them, e.g. broadcasting of two unknown dims).
                    let (dtype, shape) = op.infer(&ins).map_err(|e| Error::Function(format!("{e} (node {i})")))?;
                    Some(kernels::run(op, &ins, dtype, shape))
                }
            }
            NodeKind::ReadVariable(r) => Some(vars[r.index()].value_untracked()),
            NodeKind::AssignVariable(r) => {
                vars[r.index()].store_concrete(ins[0].clone());
                None
            }
            NodeKind::Print(t) => {
                println!("{}", super::format_print(t, &ins));
                None
            }
        };
        drop(ins);
        if let (Some(o), Some(t)) = (n.output, out) {
            vals[o.index()] = Some(t);
        }
    }
    g.results
        .iter()
        .map(|r| vals[r.index()].clone().ok_or_else(|| internal(format!("result {r} has no value"))))
        .collect()
}
