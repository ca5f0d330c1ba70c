//! From a graph to an execution plan: runs of fusible elementwise nodes (same output
//! shape, inputs that reach it by a supported broadcast) become one kernel; every other
//! node stays a step that runs its eager kernel. The plan also records, for each step,
//! the values no later step needs, so the executor frees them as it goes.

use std::collections::HashMap;
use std::fmt;

use tensorjit_runtime::dtype::DType;
use tensorjit_runtime::ir::{Graph, NodeKind, ResourceId, ValueId, ValueType};
use tensorjit_runtime::ops::Op;
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::Tensor;

use crate::kernel::{fusible_binary, fusible_unary, Access, Expr, Kernel};

/// One step of a plan.
#[derive(Debug)]
pub enum Step {
    /// Kernel `index` of the compiled module over `rows × cols` elements.
    Kernel {
        index: usize,
        inputs: Vec<ValueId>,
        outputs: Vec<(ValueId, Shape)>,
        rows: usize,
        cols: usize,
    },
    Op {
        op: Op,
        inputs: Vec<ValueId>,
        output: ValueId,
        ty: ValueType,
    },
    Read {
        resource: ResourceId,
        output: ValueId,
    },
    Assign {
        resource: ResourceId,
        input: ValueId,
    },
    Print {
        template: String,
        inputs: Vec<ValueId>,
    },
}

/// A straight-line graph as kernels and steps.
pub struct Plan {
    pub kernels: Vec<Kernel>,
    pub steps: Vec<Step>,
    /// Values to drop after each step (their last use).
    pub frees: Vec<Vec<ValueId>>,
}

/// How an input of shape `input` reaches an output of shape `out` (rows × cols with
/// cols the last dim), if a kernel can read it that way.
pub fn access(input: &Shape, out: &Shape) -> Option<Access> {
    if !input.is_fully_known() || input.rank() > out.rank() {
        return None;
    }
    let pad = out.rank() - input.rank();
    let dims: Vec<usize> = std::iter::repeat_n(1, pad).chain(input.iter().copied()).collect();
    let o = out.dims();
    if dims == o {
        return Some(Access::Full);
    }
    if dims.iter().product::<usize>() == 1 {
        return Some(Access::Scalar);
    }
    let r = o.len();
    if r >= 1 && dims[r - 1] == o[r - 1] && dims[..r - 1].iter().all(|&d| d == 1) {
        return Some(Access::Row);
    }
    if r >= 1 && dims[r - 1] == 1 && dims[..r - 1] == o[..r - 1] {
        return Some(Access::Col);
    }
    None
}

/// `rows × cols` of an output shape.
pub fn rows_cols(s: &Shape) -> (usize, usize) {
    let n: usize = s.iter().product();
    let cols = s.dims().last().copied().unwrap_or(1).max(1);
    (if n == 0 { 0 } else { n / cols }, cols)
}

struct Group {
    shape: Shape,
    nodes: Vec<usize>,
    kernel: Kernel,
    inputs: Vec<ValueId>,
    /// Kernel expression of each value computed or read in the group.
    expr: HashMap<ValueId, usize>,
    defined: Vec<ValueId>,
}

impl Group {
    fn new(shape: Shape) -> Group {
        Group {
            shape,
            nodes: vec![],
            kernel: Kernel { inputs: vec![], exprs: vec![], outputs: vec![] },
            inputs: vec![],
            expr: HashMap::new(),
            defined: vec![],
        }
    }

    fn operand(&mut self, v: ValueId, ty: &ValueType, scalar_consts: &HashMap<ValueId, f32>) -> usize {
        if let Some(&e) = self.expr.get(&v) {
            return e;
        }
        let e = self.kernel.exprs.len();
        match scalar_consts.get(&v) {
            Some(c) => self.kernel.exprs.push(Expr::Const(*c)),
            None => {
                let a = access(&ty.shape, &self.shape).unwrap_or(Access::Full);
                self.kernel.exprs.push(Expr::Input(self.inputs.len()));
                self.kernel.inputs.push(a);
                self.inputs.push(v);
            }
        }
        self.expr.insert(v, e);
        e
    }
}

/// Whether node `op` with these input/output types can join a kernel.
fn fusible(op: &Op, ins: &[&ValueType], out: &ValueType) -> bool {
    let elementwise = match op {
        Op::Unary(u) => fusible_unary(*u),
        Op::Binary(b) => fusible_binary(*b),
        _ => false,
    };
    elementwise
        && out.dtype == DType::F32
        && out.shape.is_fully_known()
        && out.shape.iter().product::<usize>() > 0
        && ins.iter().all(|t| t.dtype == DType::F32 && access(&t.shape, &out.shape).is_some())
}

/// Plans a graph without control flow and with every shape known (else `None`).
pub fn plan(g: &Graph) -> Option<Plan> {
    if g.nodes.iter().any(|n| !n.regions.is_empty()) || g.values.iter().any(|t| !t.shape.is_fully_known()) {
        return None;
    }
    let scalar_consts: HashMap<ValueId, f32> = g
        .constants
        .iter()
        .filter(|(_, t)| t.dtype() == DType::F32 && t.numel() == 1)
        .filter_map(|(v, t)| t.to_scalar::<f32>().ok().map(|x| (*v, x)))
        .collect();
    // Consumers of each value (node indices; usize::MAX = a graph result).
    let mut users: HashMap<ValueId, Vec<usize>> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        for v in &n.inputs {
            users.entry(*v).or_default().push(i);
        }
    }
    for r in &g.results {
        users.entry(*r).or_default().push(usize::MAX);
    }
    let mut p = Plan { kernels: vec![], steps: vec![], frees: vec![] };
    let mut open: Option<Group> = None;
    let close = |grp: Group, p: &mut Plan| {
        let mut kernel = grp.kernel;
        let mut outputs = Vec::new();
        for v in &grp.defined {
            let outside = users.get(v).is_some_and(|us| us.iter().any(|u| !grp.nodes.contains(u)));
            if outside {
                kernel.outputs.push(grp.expr[v]);
                outputs.push((*v, grp.shape.clone()));
            }
        }
        if outputs.is_empty() {
            return;
        }
        let (rows, cols) = rows_cols(&grp.shape);
        p.steps.push(Step::Kernel { index: p.kernels.len(), inputs: grp.inputs, outputs, rows, cols });
        p.kernels.push(kernel);
    };
    for (i, n) in g.nodes.iter().enumerate() {
        let out = n.output();
        if let (NodeKind::Op(op), Some(o)) = (&n.kind, out) {
            let ins: Vec<&ValueType> = n.inputs.iter().map(|v| g.value_type(*v)).collect();
            let oty = g.value_type(o);
            if fusible(op, &ins, oty) {
                if open.as_ref().is_some_and(|grp| grp.shape != oty.shape) {
                    if let Some(grp) = open.take() {
                        close(grp, &mut p);
                    }
                }
                let grp = open.get_or_insert_with(|| Group::new(oty.shape.clone()));
                let args: Vec<usize> =
                    n.inputs.iter().map(|v| grp.operand(*v, g.value_type(*v), &scalar_consts)).collect();
                let e = grp.kernel.exprs.len();
                grp.kernel.exprs.push(match op {
                    Op::Unary(u) => Expr::Unary(*u, args[0]),
                    Op::Binary(b) => Expr::Binary(*b, args[0], args[1]),
                    _ => unreachable!("fusible() admits only unary and binary ops"),
                });
                grp.expr.insert(o, e);
                grp.defined.push(o);
                grp.nodes.push(i);
                continue;
            }
        }
        if let Some(grp) = open.take() {
            close(grp, &mut p);
        }
        p.steps.push(match &n.kind {
            NodeKind::Op(op) => {
                let o = out?;
                Step::Op { op: op.clone(), inputs: n.inputs.clone(), output: o, ty: g.value_type(o).clone() }
            }
            NodeKind::ReadVariable(r) => Step::Read { resource: *r, output: out? },
            NodeKind::AssignVariable(r) => Step::Assign { resource: *r, input: *n.inputs.first()? },
            NodeKind::Print(t) => Step::Print { template: t.clone(), inputs: n.inputs.clone() },
            NodeKind::Cond | NodeKind::While { .. } => return None,
        });
    }
    if let Some(grp) = open.take() {
        close(grp, &mut p);
    }
    p.frees = frees(g, &p.steps);
    Some(p)
}

pub(crate) fn step_uses(s: &Step) -> Vec<ValueId> {
    match s {
        Step::Kernel { inputs, .. } | Step::Op { inputs, .. } | Step::Print { inputs, .. } => inputs.clone(),
        Step::Assign { input, .. } => vec![*input],
        Step::Read { .. } => vec![],
    }
}

/// For each step, the values whose last use it is (never results).
fn frees(g: &Graph, steps: &[Step]) -> Vec<Vec<ValueId>> {
    let mut last: HashMap<ValueId, usize> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        for v in step_uses(s) {
            last.insert(v, i);
        }
    }
    let mut out = vec![Vec::new(); steps.len()];
    for (v, i) in last {
        if !g.results.contains(&v) {
            out[i].push(v);
        }
    }
    out
}

/// The constant tensors of a graph by value (for the executor).
pub fn constants(g: &Graph) -> Vec<(ValueId, Tensor)> {
    g.constants.clone()
}

fn list(vs: &[ValueId]) -> String {
    vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

/// `plan:` then one line per step; kernels with their expressions indented.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan:")?;
        for s in &self.steps {
            match s {
                Step::Kernel { index, inputs, outputs, rows, cols } => {
                    let outs: Vec<ValueId> = outputs.iter().map(|(v, _)| *v).collect();
                    writeln!(f, "  {} = kernel{index}[{rows}x{cols}] {}", list(&outs), list(inputs))?;
                    for line in self.kernels[*index].to_string().lines().skip(1) {
                        writeln!(f, "    {}", line.trim_start())?;
                    }
                }
                Step::Op { op, inputs, output, .. } => writeln!(f, "  {output} = {} {}", op.name(), list(inputs))?,
                Step::Read { resource, output } => writeln!(f, "  {output} = read_variable {resource}")?,
                Step::Assign { resource, input } => writeln!(f, "  assign_variable {resource}, {input}")?,
                Step::Print { inputs, .. } => writeln!(f, "  print {}", list(inputs))?,
            }
        }
        Ok(())
    }
}
