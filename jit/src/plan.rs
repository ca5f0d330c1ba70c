//! From a graph to an execution plan: runs of fusible elementwise nodes (same output
//! shape, inputs that reach it by a supported broadcast) become one kernel; every other
//! node stays a step that runs its eager kernel. The plan also records, for each step,
//! the values no later step needs, so the executor frees them as it goes.

use std::collections::{HashMap, HashSet};
use std::fmt;

use tensorjit_runtime::dtype::DType;
use tensorjit_runtime::ir::{Graph, Node, NodeKind, Region, ResourceId, ValueId, ValueType};
use tensorjit_runtime::ops::{Op, ReduceOp};
use tensorjit_runtime::shape::Shape;

use crate::arena_loop::ArenaLoop;
use crate::kernel::{fusible_binary, fusible_unary, Access, Expr, Kernel, RowReduce, ROW_REDUCE_MAX};

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
        /// Input (by position) that dies here and whose buffer the one output may be
        /// written over, when the executor finds it unshared at run time.
        donor: Option<usize>,
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
    /// Runs one of two sub-plans, copying its results into `outputs`.
    Cond {
        pred: ValueId,
        branches: Box<[SubPlan; 2]>,
        outputs: Vec<ValueId>,
    },
    /// Re-runs `cond` then `body` on the loop variables until `cond` yields false.
    While {
        inputs: Vec<ValueId>,
        cond: Box<SubPlan>,
        body: Box<SubPlan>,
        outputs: Vec<ValueId>,
        max: Option<u64>,
        /// The loop over one arena, when both regions qualify (`arena_loop`).
        /// (Shared with an arena plan that runs this loop as one of its steps.)
        arena: Option<std::sync::Arc<ArenaLoop>>,
    },
}

/// A graph as kernels and steps (control flow nests sub-plans).
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
    /// The value (and shape) of the row reduction the kernel ends in.
    reduced: Option<(ValueId, Shape)>,
}

impl Group {
    fn new(shape: Shape) -> Group {
        Group {
            shape,
            nodes: vec![],
            kernel: Kernel { inputs: vec![], exprs: vec![], outputs: vec![], reduce: None },
            inputs: vec![],
            expr: HashMap::new(),
            defined: vec![],
            reduced: None,
        }
    }

    /// Adds fusible node `n` (number `id`, op `op`, output `o`) to the kernel.
    fn push(&mut self, g: &Graph, op: &Op, n: &Node, o: ValueId, id: usize, consts: &HashMap<ValueId, f32>) {
        let args: Vec<usize> = n.inputs.iter().map(|v| self.operand(*v, g.value_type(*v), consts)).collect();
        let e = self.kernel.exprs.len();
        self.kernel.exprs.push(match op {
            Op::Unary(u) => Expr::Unary(*u, args[0]),
            Op::Binary(b) if b.is_comparison() => Expr::Cmp(*b, args[0], args[1]),
            Op::Binary(b) => Expr::Binary(*b, args[0], args[1]),
            Op::Select => Expr::Select(args[0], args[1], args[2]),
            _ => unreachable!("fusible() admits only unary, binary and select ops"),
        });
        self.expr.insert(o, e);
        self.defined.push(o);
        self.nodes.push(id);
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
    let reachable = |t: &&ValueType| access(&t.shape, &out.shape).is_some();
    let known = out.shape.is_fully_known() && out.shape.iter().product::<usize>() > 0;
    let f32_ins = |ins: &[&ValueType]| ins.iter().all(|t| t.dtype == DType::F32 && reachable(t));
    known
        && match op {
            Op::Unary(u) => fusible_unary(*u) && out.dtype == DType::F32 && f32_ins(ins),
            Op::Binary(b) if b.is_comparison() => out.dtype == DType::Bool && f32_ins(ins),
            Op::Binary(b) => fusible_binary(*b) && out.dtype == DType::F32 && f32_ins(ins),
            // The mask must come from a comparison of the same kernel (checked when
            // the node joins a group).
            Op::Select => out.dtype == DType::F32 && ins[0].shape == out.shape && f32_ins(&ins[1..]),
            _ => false,
        }
}

/// Whether reduction node `n` (output type `out`) can end the open kernel `grp`: an f32
/// sum or mean of a value the kernel computes, along the last axis of the kernel's
/// shape only (other reduced axes of size 1), over rows of at most one canonical block.
/// Returns whether it is a mean.
fn row_reduction(op: &Op, n: &Node, out: &ValueType, grp: &Group) -> Option<bool> {
    let Op::Reduce { op, axes, .. } = op else { return None };
    let mean = match op {
        ReduceOp::Sum => false,
        ReduceOp::Mean => true,
        _ => return None,
    };
    let x = *n.inputs.first()?;
    let dims = grp.shape.dims();
    let last = dims.len().checked_sub(1)?;
    let along_rows = axes.contains(&last) && (0..last).all(|i| dims[i] == 1 || !axes.contains(&i));
    let (_, cols) = rows_cols(&grp.shape);
    (out.dtype == DType::F32 && grp.defined.contains(&x) && along_rows && cols <= ROW_REDUCE_MAX).then_some(mean)
}

/// Plans a graph whose shapes are all known (else `None`: the interpreter runs it).
pub fn plan(g: &Graph) -> Option<Plan> {
    if g.values.iter().any(|t| !t.shape.is_fully_known()) {
        return None;
    }
    let mut no_fuse = HashSet::new();
    loop {
        let mut b = Builder::new(g);
        b.no_fuse = no_fuse.clone();
        match b.block(&g.nodes) {
            Some(mut steps) => {
                let frees = frees(g, &steps);
                choose_donors(g, &b.kernels, &mut steps, &frees);
                return Some(Plan { kernels: b.kernels, steps, frees });
            }
            None => no_fuse.insert(b.unfuse?),
        };
    }
}

/// A region's plan: its parameters, steps and yielded values.
#[derive(Debug)]
pub struct SubPlan {
    pub params: Vec<ValueId>,
    pub steps: Vec<Step>,
    pub results: Vec<ValueId>,
}

struct Builder<'g> {
    g: &'g Graph,
    scalar_consts: HashMap<ValueId, f32>,
    /// Consumers of each value: node numbers in pre-order; `usize::MAX` = a yield or a
    /// graph result.
    users: HashMap<ValueId, Vec<usize>>,
    kernels: Vec<Kernel>,
    next: usize,
    /// Comparison nodes whose mask is needed outside their kernel: not fused.
    no_fuse: HashSet<usize>,
    /// Set when a group had to store a mask: plan again without fusing that node.
    unfuse: Option<usize>,
}

impl<'g> Builder<'g> {
    fn new(g: &'g Graph) -> Builder<'g> {
        let scalar_consts = g
            .constants
            .iter()
            .filter(|(_, t)| t.dtype() == DType::F32 && t.numel() == 1)
            .filter_map(|(v, t)| t.to_scalar::<f32>().ok().map(|x| (*v, x)))
            .collect();
        let mut b = Builder {
            g,
            scalar_consts,
            users: HashMap::new(),
            kernels: vec![],
            next: 0,
            no_fuse: HashSet::new(),
            unfuse: None,
        };
        let mut counter = 0;
        b.count_users(&g.nodes, &mut counter);
        for r in &g.results {
            b.users.entry(*r).or_default().push(usize::MAX);
        }
        b
    }

    /// Numbers nodes in pre-order and records who uses what.
    fn count_users(&mut self, nodes: &[Node], counter: &mut usize) {
        for n in nodes {
            let id = *counter;
            *counter += 1;
            for v in &n.inputs {
                self.users.entry(*v).or_default().push(id);
            }
            for r in &n.regions {
                self.count_users(&r.nodes, counter);
                for v in &r.results {
                    self.users.entry(*v).or_default().push(usize::MAX);
                }
            }
        }
    }

    /// Emits the group's kernel; `false` (and `unfuse` set) when a comparison's mask is
    /// needed outside it.
    fn close(&mut self, grp: Group, steps: &mut Vec<Step>) -> bool {
        let mut kernel = grp.kernel;
        let mut outputs = Vec::new();
        for (v, node) in grp.defined.iter().zip(&grp.nodes) {
            let outside = self.users.get(v).is_some_and(|us| us.iter().any(|u| !grp.nodes.contains(u)));
            if outside && self.g.value_type(*v).dtype == DType::Bool {
                self.unfuse = Some(*node);
                return false;
            }
            if outside {
                kernel.outputs.push(grp.expr[v]);
                outputs.push((*v, grp.shape.clone()));
            }
        }
        outputs.extend(grp.reduced);
        if outputs.is_empty() {
            return true;
        }
        let (rows, cols) = rows_cols(&grp.shape);
        steps.push(Step::Kernel { index: self.kernels.len(), inputs: grp.inputs, outputs, rows, cols, donor: None });
        self.kernels.push(kernel);
        true
    }

    /// Emits the open kernel, then the assignments that waited for it.
    fn emit_open(&mut self, open: Option<Group>, deferred: &mut Vec<Step>, steps: &mut Vec<Step>) -> bool {
        let ok = self.emit(open, steps);
        steps.append(deferred);
        ok
    }

    /// [`close`](Self::close) for a group that may not be there (`true` if none).
    fn emit(&mut self, grp: Option<Group>, steps: &mut Vec<Step>) -> bool {
        grp.is_none_or(|grp| self.close(grp, steps))
    }

    fn region(&mut self, r: &Region) -> Option<SubPlan> {
        Some(SubPlan { params: r.params.clone(), steps: self.block(&r.nodes)?, results: r.results.clone() })
    }

    /// Plans a list of nodes: runs of fusible nodes become kernels.
    fn block(&mut self, nodes: &[Node]) -> Option<Vec<Step>> {
        let g = self.g;
        let mut steps = Vec::new();
        let mut open: Option<Group> = None;
        // Fusible nodes of another shape than the open kernel's that read nothing of it.
        let mut side: Option<Group> = None;
        // Assignments of values of the open kernel, run right after it.
        let mut deferred: Vec<Step> = Vec::new();
        for n in nodes {
            let id = self.next;
            self.next += 1;
            let out = n.output();
            if let (NodeKind::Op(op), Some(o)) = (&n.kind, out) {
                let ins: Vec<&ValueType> = n.inputs.iter().map(|v| g.value_type(*v)).collect();
                let oty = g.value_type(o);
                let mask_here = |open: &Option<Group>| {
                    !matches!(op, Op::Select)
                        || open
                            .as_ref()
                            .is_some_and(|grp| grp.shape == oty.shape && grp.expr.contains_key(&n.inputs[0]))
                };
                if let Some(mean) = open.as_ref().and_then(|grp| row_reduction(op, n, oty, grp)) {
                    // The open kernel sums its own value along the rows; nothing in it
                    // can read the sums, so it closes here.
                    if let Some(mut grp) = open.take() {
                        let expr = grp.expr[&n.inputs[0]];
                        grp.kernel.reduce = Some(RowReduce { expr, mean });
                        grp.reduced = Some((o, oty.shape.clone()));
                        grp.nodes.push(id);
                        if !self.emit(side.take(), &mut steps) || !self.emit_open(Some(grp), &mut deferred, &mut steps)
                        {
                            return None;
                        }
                    }
                    continue;
                }
                if fusible(op, &ins, oty) && !self.no_fuse.contains(&id) && mask_here(&open) {
                    let reads = |grp: &Option<Group>| {
                        grp.as_ref().is_some_and(|grp| n.inputs.iter().any(|v| grp.defined.contains(v)))
                    };
                    let fits = |grp: &Option<Group>| grp.as_ref().is_some_and(|grp| grp.shape == oty.shape);
                    // Another shape than the open kernel's, reading nothing it computes (a
                    // scalar computed between a chain's steps, a bias correction): a side
                    // kernel takes it and the open kernel stays open.
                    let plain = matches!(op, Op::Unary(_)) || matches!(op, Op::Binary(b) if !b.is_comparison());
                    let mut aside = plain && open.is_some() && !fits(&open) && !reads(&open);
                    // The larger shape keeps the open kernel: a chain whose scalars came
                    // first (Adam's step size) moves them to the side.
                    let numel = |s: &Shape| s.iter().product::<usize>();
                    if aside
                        && deferred.is_empty()
                        && open.as_ref().is_some_and(|grp| numel(&oty.shape) > numel(&grp.shape))
                    {
                        if !self.emit(side.take(), &mut steps) {
                            return None;
                        }
                        side = open.take();
                        aside = false;
                    }
                    // (The side kernel is emitted before the open one, which may read it.)
                    if aside && side.is_some() && !fits(&side) && !self.emit(side.take(), &mut steps) {
                        return None;
                    }
                    if aside {
                        let sg = side.get_or_insert_with(|| Group::new(oty.shape.clone()));
                        sg.push(g, op, n, o, id, &self.scalar_consts);
                        continue;
                    }
                    if open.is_some()
                        && !fits(&open)
                        && (!self.emit(side.take(), &mut steps)
                            || !self.emit_open(open.take(), &mut deferred, &mut steps))
                    {
                        return None;
                    }
                    let grp = open.get_or_insert_with(|| Group::new(oty.shape.clone()));
                    grp.push(g, op, n, o, id, &self.scalar_consts);
                    continue;
                }
            }
            // A node that reads nothing the open kernel computes runs before it and the
            // kernel stays open (pure kernels commute with it; effects keep their order
            // among themselves). Control flow always closes the kernel.
            let independent = n.regions.is_empty()
                && open.as_ref().is_some_and(|grp| !n.inputs.iter().any(|v| grp.defined.contains(v)));
            let reads_side = side.as_ref().is_some_and(|sg| n.inputs.iter().any(|v| sg.defined.contains(v)));
            // An assignment of a value the open kernel computes waits for the kernel
            // instead of closing it (an optimizer's slot, assigned before the weight's
            // update reads it: one kernel for both). A later read or assignment of the
            // same variable runs after it.
            let resource = match &n.kind {
                NodeKind::ReadVariable(r) | NodeKind::AssignVariable(r) => Some(*r),
                _ => None,
            };
            let conflict = resource
                .is_some_and(|r| deferred.iter().any(|s| matches!(s, Step::Assign { resource, .. } if *resource == r)));
            let defer = !independent && !conflict && open.is_some() && matches!(n.kind, NodeKind::AssignVariable(_));
            let closes = (!independent && !defer) || conflict;
            if (reads_side || closes) && !self.emit(side.take(), &mut steps) {
                return None;
            }
            if closes && !self.emit_open(open.take(), &mut deferred, &mut steps) {
                return None;
            }
            if let (true, NodeKind::AssignVariable(r)) = (defer, &n.kind) {
                deferred.push(Step::Assign { resource: *r, input: *n.inputs.first()? });
                continue;
            }
            steps.push(match &n.kind {
                NodeKind::Op(op) => {
                    let o = out?;
                    Step::Op { op: op.clone(), inputs: n.inputs.clone(), output: o, ty: g.value_type(o).clone() }
                }
                NodeKind::ReadVariable(r) => Step::Read { resource: *r, output: out? },
                NodeKind::AssignVariable(r) => Step::Assign { resource: *r, input: *n.inputs.first()? },
                NodeKind::Print(t) => Step::Print { template: t.clone(), inputs: n.inputs.clone() },
                NodeKind::Cond => {
                    let (a, b) = (self.region(&n.regions[0])?, self.region(&n.regions[1])?);
                    Step::Cond { pred: *n.inputs.first()?, branches: Box::new([a, b]), outputs: n.outputs.clone() }
                }
                NodeKind::While { max_iterations } => {
                    let (c, b) = (self.region(&n.regions[0])?, self.region(&n.regions[1])?);
                    let arena = ArenaLoop::new(g, &n.inputs, &c, &b).map(std::sync::Arc::new);
                    Step::While {
                        arena,
                        inputs: n.inputs.clone(),
                        cond: Box::new(c),
                        body: Box::new(b),
                        outputs: n.outputs.clone(),
                        max: *max_iterations,
                    }
                }
            });
        }
        (self.emit(side.take(), &mut steps) && self.emit_open(open.take(), &mut deferred, &mut steps)).then_some(steps)
    }
}

pub(crate) fn step_uses(s: &Step) -> Vec<ValueId> {
    match s {
        Step::Kernel { inputs, .. } | Step::Op { inputs, .. } | Step::Print { inputs, .. } => inputs.clone(),
        Step::Assign { input, .. } => vec![*input],
        Step::Read { .. } => vec![],
        Step::Cond { pred, branches, .. } => {
            let mut v = vec![*pred];
            for b in branches.iter() {
                b.steps.iter().for_each(|s| v.extend(step_uses(s)));
                v.extend(b.results.iter().copied());
            }
            v
        }
        Step::While { inputs, cond, body, .. } => {
            let mut v = inputs.clone();
            for b in [cond, body] {
                b.steps.iter().for_each(|s| v.extend(step_uses(s)));
                v.extend(b.results.iter().copied());
            }
            v
        }
    }
}

/// For each top-level step, the values whose last use it is (never results). Values a
/// control-flow step reads inside its regions count as used by that step.
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

/// Memory planning: a top-level one-output kernel may write over a full-shape input
/// that dies at it and that the function computed (never a parameter, constant or
/// variable read: those the caller or a variable may still hold). Whether the buffer
/// is really unshared is checked at run time.
fn choose_donors(g: &Graph, kernels: &[Kernel], steps: &mut [Step], frees: &[Vec<ValueId>]) {
    let computed = |v: &ValueId| {
        !g.params.contains(v) && !g.constants.iter().any(|(c, _)| c == v) && g.value_type(*v).dtype == DType::F32
    };
    let read_vars: HashSet<ValueId> =
        steps.iter().filter_map(|s| if let Step::Read { output, .. } = s { Some(*output) } else { None }).collect();
    for (s, dying) in steps.iter_mut().zip(frees) {
        if let Step::Kernel { index, inputs, donor, .. } = s {
            let k = &kernels[*index];
            if k.outputs.len() != 1 || k.reduce.is_some() {
                continue;
            }
            *donor = inputs
                .iter()
                .zip(&k.inputs)
                .position(|(v, a)| *a == Access::Full && dying.contains(v) && computed(v) && !read_vars.contains(v));
        }
    }
}

fn list(vs: &[ValueId]) -> String {
    vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

/// `plan:` then one line per step; kernels with their expressions indented, regions
/// nested.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan:")?;
        self.write_steps(f, &self.steps, 1)
    }
}

impl Plan {
    fn write_steps(&self, f: &mut fmt::Formatter<'_>, steps: &[Step], depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        for s in steps {
            match s {
                Step::Kernel { index, inputs, outputs, rows, cols, donor } => {
                    let outs: Vec<ValueId> = outputs.iter().map(|(v, _)| *v).collect();
                    let over = donor.map_or(String::new(), |d| format!(" (over {})", inputs[d]));
                    writeln!(f, "{pad}{} = kernel{index}[{rows}x{cols}] {}{over}", list(&outs), list(inputs))?;
                    for line in self.kernels[*index].to_string().lines().skip(1) {
                        writeln!(f, "{pad}  {}", line.trim_start())?;
                    }
                }
                Step::Op { op, inputs, output, .. } => writeln!(f, "{pad}{output} = {} {}", op.name(), list(inputs))?,
                Step::Read { resource, output } => writeln!(f, "{pad}{output} = read_variable {resource}")?,
                Step::Assign { resource, input } => writeln!(f, "{pad}assign_variable {resource}, {input}")?,
                Step::Print { inputs, .. } => writeln!(f, "{pad}print {}", list(inputs))?,
                Step::Cond { pred, branches, outputs, .. } => {
                    writeln!(f, "{pad}{} = cond {pred}", list(outputs))?;
                    for (name, b) in ["then", "else"].iter().zip(branches.iter()) {
                        self.write_sub(f, name, b, depth + 1)?;
                    }
                }
                Step::While { inputs, cond, body, outputs, arena, .. } => {
                    let how = if arena.is_some() { " (arena loop)" } else { "" };
                    writeln!(f, "{pad}{} = while {}{how}", list(outputs), list(inputs))?;
                    self.write_sub(f, "cond", cond, depth + 1)?;
                    self.write_sub(f, "body", body, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    fn write_sub(&self, f: &mut fmt::Formatter<'_>, name: &str, b: &SubPlan, depth: usize) -> fmt::Result {
        writeln!(f, "{}{name}({}):", "  ".repeat(depth), list(&b.params))?;
        self.write_steps(f, &b.steps, depth + 1)?;
        writeln!(f, "{}yield {}", "  ".repeat(depth + 1), list(&b.results))
    }
}
