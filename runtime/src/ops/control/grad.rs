//! Gradients of traced control flow.
//!
//! A traced `cond` is recorded on the tape as one op whose inputs are the values its
//! branches capture from outside (and one read of each variable they read). Its
//! gradient is a `cond` on the same predicate whose branches replay their forward
//! branch from the IR (recomputing it, so no branch-local value has to leave its
//! region) under a fresh tape and differentiate it with the incoming output gradients.

use std::collections::HashMap;
use std::panic::Location;
use std::rc::Rc;

use super::{cond_at, while_loop_at, WhileOptions};
use crate::autodiff::{self, GradientTape};
use crate::error::OpError;
use crate::ir::{Node, NodeKind, Region, ResourceId, ValueId};
use crate::ops::{try_apply, Op};
use crate::tensor::Tensor;
use crate::trace::{self, TracedRegion};

/// Values known while replaying a region.
#[derive(Clone)]
struct Env {
    vals: HashMap<ValueId, Tensor>,
    reads: Rc<HashMap<ResourceId, Tensor>>,
}

impl Env {
    fn get(&self, v: ValueId) -> Result<Tensor, OpError> {
        self.vals
            .get(&v)
            .cloned()
            .or_else(|| trace::constant(v))
            .ok_or_else(|| OpError::new("gradient", format!("internal: {v} has no value while replaying a branch")))
    }
}

/// Union of the regions' captures (each value once).
fn captures(regions: &[&TracedRegion]) -> Vec<(ValueId, Tensor)> {
    let mut out: Vec<(ValueId, Tensor)> = Vec::new();
    for r in regions {
        for (v, t) in &r.captures {
            if !out.iter().any(|(w, _)| w == v) {
                out.push((*v, t.clone()));
            }
        }
    }
    out
}

/// One read, in the enclosing scope, of every variable the regions read.
fn reads(regions: &[&Region]) -> Vec<(ResourceId, Tensor)> {
    fn collect(nodes: &[Node], out: &mut Vec<ResourceId>) {
        for n in nodes {
            if let NodeKind::ReadVariable(r) = n.kind {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
            n.regions.iter().for_each(|r| collect(&r.nodes, out));
        }
    }
    let mut ids = Vec::new();
    regions.iter().for_each(|r| collect(&r.nodes, &mut ids));
    ids.into_iter().filter_map(|r| trace::resource_variable(r).map(|v| (r, v.read()))).collect()
}

/// Records a traced `cond` on the tapes that track one of its inputs.
pub(super) fn record_cond(
    pred: &Tensor,
    then_r: &TracedRegion,
    else_r: &TracedRegion,
    outs: &[Tensor],
    loc: &'static Location<'static>,
) {
    let caps = captures(&[then_r, else_r]);
    let reads = reads(&[&then_r.region, &else_r.region]);
    let inputs: Vec<Tensor> = caps.iter().map(|(_, t)| t.clone()).chain(reads.iter().map(|(_, t)| t.clone())).collect();
    if !autodiff::any_tracked(&inputs) {
        return;
    }
    let env = Env { vals: caps.into_iter().collect(), reads: Rc::new(reads.into_iter().collect()) };
    let (pred, regions, all) = (pred.clone(), [then_r.region.clone(), else_r.region.clone()], inputs.clone());
    let backward = move |gy: &[Option<Tensor>], needed: &[bool]| -> Vec<Option<Tensor>> {
        let picked: Vec<usize> = (0..all.len()).filter(|&i| needed.get(i).copied().unwrap_or(false)).collect();
        let mut out = vec![None; all.len()];
        if picked.is_empty() {
            return out;
        }
        let sources: Vec<Tensor> = picked.iter().map(|&i| all[i].clone()).collect();
        let branch = |r: &Region| branch_grad(r, env.clone(), &sources, gy, loc);
        let grads: Vec<Tensor> = cond_at(&pred, || branch(&regions[0]), || branch(&regions[1]), loc);
        for (i, g) in picked.into_iter().zip(grads) {
            out[i] = Some(g);
        }
        out
    };
    autodiff::record_custom(&inputs, outs, Rc::new(backward));
}

/// Inside a gradient branch: replays the forward branch under a fresh tape and returns
/// the gradient for every source (zeros where it does not depend on one).
fn branch_grad(
    r: &Region,
    mut env: Env,
    sources: &[Tensor],
    gy: &[Option<Tensor>],
    loc: &'static Location<'static>,
) -> Vec<Tensor> {
    let tape = GradientTape::without_variable_watching(false);
    sources.iter().for_each(|s| tape.watch(s));
    let outs = replay(r, &mut env, loc).unwrap_or_else(|e| e.raise(loc));
    let seeds: Vec<(Tensor, Tensor)> =
        outs.into_iter().zip(gy).filter_map(|(o, g)| g.as_ref().map(|g| (o, g.clone()))).collect();
    let grads = autodiff::seeded_gradients(&tape, seeds, sources);
    grads.into_iter().zip(sources).map(|(g, s)| g.unwrap_or_else(|| Tensor::zeros_like(s))).collect()
}

/// Re-emits a region's nodes through the op layer (so the active tape records them).
fn replay(r: &Region, env: &mut Env, loc: &'static Location<'static>) -> Result<Vec<Tensor>, OpError> {
    for n in &r.nodes {
        let ins = n.inputs.iter().map(|v| env.get(*v)).collect::<Result<Vec<_>, _>>()?;
        let outs: Vec<Tensor> = match &n.kind {
            NodeKind::Op(Op::Random(_)) => {
                return Err(OpError::new(
                    "gradient",
                    "cannot differentiate through a traced cond branch that draws random numbers; draw them \
                     before the cond and use them inside",
                ))
            }
            NodeKind::Op(op) => vec![try_apply(op.clone(), &ins.iter().collect::<Vec<_>>())?],
            NodeKind::ReadVariable(res) => vec![env.reads.get(res).cloned().ok_or_else(|| {
                OpError::new("gradient", format!("internal: variable {res} was not read before the cond"))
            })?],
            NodeKind::AssignVariable(_) => {
                return Err(OpError::new(
                    "gradient",
                    "cannot differentiate through a traced cond branch that assigns a variable; assign after \
                     the cond (e.g. return the new value from both branches)",
                ))
            }
            NodeKind::Print(_) => vec![],
            NodeKind::Cond => {
                let (a, b) = (env.clone(), env.clone());
                let pick = |r: &Region, mut e: Env| replay(r, &mut e, loc).unwrap_or_else(|err| err.raise(loc));
                cond_at(&ins[0], || pick(&n.regions[0], a), || pick(&n.regions[1], b), loc)
            }
            NodeKind::While { max_iterations } => {
                let (c, b) = (&n.regions[0], &n.regions[1]);
                let run = |r: &Region, state: &[Tensor]| {
                    let mut e = env.clone();
                    e.vals.extend(r.params.iter().copied().zip(state.iter().cloned()));
                    replay(r, &mut e, loc).unwrap_or_else(|err| err.raise(loc))
                };
                let options = WhileOptions {
                    maximum_iterations: *max_iterations,
                    shape_invariants: Some(n.outputs.iter().map(|o| trace::value_type_of(*o).shape).collect()),
                };
                while_loop_at(|s: &Vec<Tensor>| run(c, s).remove(0), |s| run(b, &s), ins, &options, loc)
            }
        };
        env.vals.extend(n.outputs.iter().copied().zip(outs));
    }
    r.results.iter().map(|v| env.get(*v)).collect()
}

/// Records a traced `while_loop` without `maximum_iterations`: asking for its gradient
/// is an error that says how to bound it.
pub(crate) fn record_unbounded_while(
    init: &[Tensor],
    regions: &[&TracedRegion],
    outs: &[Tensor],
    loc: &'static Location<'static>,
) {
    let caps = captures(regions);
    let reads = reads(&regions.iter().map(|r| &r.region).collect::<Vec<_>>());
    let inputs: Vec<Tensor> =
        init.iter().cloned().chain(caps.into_iter().map(|(_, t)| t)).chain(reads.into_iter().map(|(_, t)| t)).collect();
    if !autodiff::any_tracked(&inputs) {
        return;
    }
    let n = inputs.len();
    let backward = move |_: &[Option<Tensor>], needed: &[bool]| -> Vec<Option<Tensor>> {
        if needed.iter().any(|&b| b) {
            OpError::new(
                "while_loop",
                "cannot differentiate a traced while_loop with an unbounded trip count; pass \
                 `WhileOptions::new().maximum_iterations(n)` so the values of every trip can be kept for the \
                 backward pass",
            )
            .raise(loc)
        }
        vec![None; n]
    };
    autodiff::record_custom(&inputs, outs, Rc::new(backward));
}
