//! Running a plan's steps over a per-call value table, shared by the CPU's compiled
//! functions (`exec`) and device plans (`device_plan`): ops run their eager kernel
//! wherever their operands live, variables are read and assigned, control flow nests
//! sub-plans, and values are freed after their last use. Only kernel steps (and `while`
//! loops over one arena) differ between executors: [`KernelSteps`].

use smallvec::SmallVec;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ir::{Graph, Resource, ValueId, ValueType};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend::{self, Outputs};
use tensorjit_runtime::{DType, Device, Tensor, Variable};

use crate::arena_loop::ArenaLoop;
use crate::plan::{Plan, Step, SubPlan};

pub(crate) fn internal(msg: impl Into<String>) -> Error {
    Error::Internal(msg.into())
}

/// One kernel step of a plan, as its executor gets it.
pub(crate) struct KernelStep<'a> {
    pub index: usize,
    pub inputs: &'a [ValueId],
    pub outputs: &'a [(ValueId, Shape)],
    pub rows: usize,
    pub cols: usize,
    /// Input (by position) whose buffer the one output may be written over.
    pub donor: Option<usize>,
}

/// How an executor runs a plan's kernels.
pub(crate) trait KernelSteps {
    /// Runs a kernel step: reads its inputs from `vals`, sets its outputs there.
    fn kernel(&self, step: KernelStep<'_>, vals: &mut Table<'_>) -> Result<(), Error>;

    /// The device the function runs on: an op step whose operands put it on the host
    /// (an op without tensor operands, e.g. a random draw, or with only rank-0 host
    /// operands) has a result of rank ≥ 1 copied there, as the trace's types say.
    fn device(&self) -> Device {
        Device::Cpu
    }

    /// Whether `while` steps with an arena run through [`arena_loop`](Self::arena_loop)
    /// (else they run step by step like any other loop).
    fn has_arena_loops(&self) -> bool {
        false
    }

    /// Runs a `while` loop over its arena from the loop variables' initial `inputs`,
    /// returning their final values (`Ok(None)`: this executor runs this loop step by
    /// step after all).
    fn arena_loop(
        &self,
        _arena: &ArenaLoop,
        _inputs: &[&Tensor],
        _vals: &Table<'_>,
        _max: Option<u64>,
    ) -> Result<Option<Vec<Tensor>>, Error> {
        Ok(None)
    }
}

/// Where a compiled function's values live in the value table, and what a call binds
/// (made once per compiled function).
pub(crate) struct Layout {
    /// Dense slot of each graph value (`u32::MAX`: none), and how many.
    slots: Vec<u32>,
    n_slots: usize,
    params: Vec<ValueId>,
    results: Vec<ValueId>,
    /// No value is returned twice (so results are moved out of the table).
    results_unique: bool,
    /// Captured variables by resource (`None`: a variable argument).
    resources: Vec<Option<Variable>>,
}

impl Layout {
    pub(crate) fn new(g: &Graph, plan: &Plan, constants: &[(ValueId, Tensor)]) -> Layout {
        let extra: Vec<ValueId> =
            g.params.iter().chain(constants.iter().map(|(v, _)| v)).chain(&g.results).copied().collect();
        let (slots, n_slots) = assign_slots(g.values.len(), &plan.steps, &extra);
        Layout {
            slots,
            n_slots,
            params: g.params.clone(),
            results: g.results.clone(),
            results_unique: g.results.iter().enumerate().all(|(i, r)| !g.results[..i].contains(r)),
            resources: g
                .resources
                .iter()
                .map(|r| match r {
                    Resource::Captured(v) => Some(v.clone()),
                    Resource::Param(_) => None,
                })
                .collect(),
        }
    }

    /// The variables of a call by resource: captured ones and the `bound` arguments.
    pub(crate) fn vars<'a>(&'a self, bound: &[&'a Variable]) -> Result<SmallVec<[&'a Variable; 8]>, Error> {
        let mut vars: SmallVec<[&Variable; 8]> = SmallVec::new();
        let mut bound_iter = bound.iter();
        for r in &self.resources {
            match r {
                Some(v) => vars.push(v),
                None => vars.push(bound_iter.next().ok_or_else(|| internal("a variable argument is missing"))?),
            }
        }
        Ok(vars)
    }

    /// Runs `plan` over a fresh table holding `inputs` and `constants`; returns the
    /// results.
    pub(crate) fn run<K: KernelSteps>(
        &self,
        k: &K,
        plan: &Plan,
        inputs: &[&Tensor],
        constants: &[(ValueId, Tensor)],
        vars: &[&Variable],
    ) -> Result<Outputs, Error> {
        let mut vals = Table { slots: &self.slots, vals: SmallVec::new() };
        vals.vals.resize_with(self.n_slots, || None);
        for (p, t) in self.params.iter().zip(inputs) {
            vals.set(*p, (*t).clone());
        }
        for (v, t) in constants {
            vals.set(*v, t.clone());
        }
        run_steps(k, &plan.steps, Some(&plan.frees), &mut vals, vars)?;
        let mut out = Outputs::new();
        for r in &self.results {
            let t = if self.results_unique { vals.take(*r)? } else { vals.cloned(*r)? };
            // A predicate made on the host (`host_predicate`) returned: on the device,
            // like every result of a function traced there.
            let t = if t.device() != k.device() && t.dtype() == DType::Bool { t.to(k.device())? } else { t };
            out.push(t);
        }
        Ok(out)
    }
}

/// The graph's constants some step or result reads (scalar f32 constants are inlined
/// into kernels and never enter the value table).
pub(crate) fn used_constants(g: &Graph, plan: &Plan) -> Vec<(ValueId, Tensor)> {
    let used: std::collections::HashSet<ValueId> =
        plan.steps.iter().flat_map(crate::plan::step_uses).chain(g.results.iter().copied()).collect();
    g.constants.iter().filter(|(v, _)| used.contains(v)).cloned().collect()
}

/// The values of one run, in the dense slots the plan's values were given (graph
/// values that never exist at run time — fused intermediates, inlined constants — get
/// none).
pub(crate) struct Table<'a> {
    slots: &'a [u32],
    vals: SmallVec<[Option<Tensor>; 8]>,
}

impl Table<'_> {
    fn slot(&self, v: ValueId) -> usize {
        self.slots[v.index()] as usize
    }

    pub(crate) fn get(&self, v: ValueId) -> Result<&Tensor, Error> {
        self.vals[self.slot(v)].as_ref().ok_or_else(|| internal(format!("{v} has no value")))
    }

    pub(crate) fn cloned(&self, v: ValueId) -> Result<Tensor, Error> {
        self.get(v).cloned()
    }

    pub(crate) fn set(&mut self, v: ValueId, t: Tensor) {
        let i = self.slot(v);
        self.vals[i] = Some(t);
    }

    pub(crate) fn take(&mut self, v: ValueId) -> Result<Tensor, Error> {
        let i = self.slot(v);
        self.vals[i].take().ok_or_else(|| internal(format!("{v} has no value")))
    }

    pub(crate) fn clear(&mut self, v: ValueId) {
        let i = self.slot(v);
        self.vals[i] = None;
    }

    /// The value of a scalar bool predicate.
    fn truth(&self, v: ValueId) -> Result<bool, Error> {
        backend::predicate(self.get(v)?)
    }

    /// Copies the values of `from` into `to` (a region's parameters or a node's
    /// outputs). All are read before any is written: a body may yield its parameters
    /// permuted.
    fn copy(&mut self, to: &[ValueId], from: &[ValueId]) -> Result<(), Error> {
        if !to.iter().any(|t| from.contains(t)) {
            // No overlap (the usual case): copy in place.
            for (t, f) in to.iter().zip(from) {
                let x = self.cloned(*f)?;
                self.set(*t, x);
            }
            return Ok(());
        }
        let mut xs: SmallVec<[Tensor; 8]> = SmallVec::new();
        for f in from {
            xs.push(self.cloned(*f)?);
        }
        for (t, x) in to.iter().zip(xs) {
            self.set(*t, x);
        }
        Ok(())
    }
}

/// Dense slots for every value a step defines or reads, the parameters, the used
/// constants and the results (`u32::MAX`: no slot); returns the map and the count.
fn assign_slots(n_values: usize, steps: &[Step], extra: &[ValueId]) -> (Vec<u32>, usize) {
    fn visit(steps: &[Step], out: &mut Vec<ValueId>) {
        for s in steps {
            out.extend(crate::plan::step_uses(s));
            match s {
                Step::Kernel { outputs, .. } => out.extend(outputs.iter().map(|(v, _)| *v)),
                Step::Op { output, .. } | Step::Read { output, .. } => out.push(*output),
                Step::Assign { .. } | Step::Print { .. } => {}
                Step::Cond { branches, outputs, .. } => {
                    out.extend(outputs);
                    for b in branches.iter() {
                        out.extend(&b.params);
                        visit(&b.steps, out);
                    }
                }
                Step::While { cond, body, outputs, .. } => {
                    out.extend(outputs);
                    for b in [cond, body] {
                        out.extend(&b.params);
                        visit(&b.steps, out);
                    }
                }
            }
        }
    }
    let mut used = extra.to_vec();
    visit(steps, &mut used);
    let mut slots = vec![u32::MAX; n_values];
    let mut n = 0;
    for v in used {
        if slots[v.index()] == u32::MAX {
            slots[v.index()] = n;
            n += 1;
        }
    }
    (slots, n as usize)
}

/// Runs `steps` over the value table, freeing values after their last use when `frees`
/// is given (the top level; inside regions values are simply overwritten).
/// Whether an op step on a device makes a bool scalar from scalars (see `run_steps`).
fn host_predicate<K: KernelSteps>(k: &K, ty: &ValueType, inputs: &[ValueId], vals: &Table<'_>) -> bool {
    k.device() != Device::Cpu
        && ty.dtype == DType::Bool
        && ty.shape.rank() == 0
        && inputs.iter().all(|v| vals.get(*v).is_ok_and(|t| t.rank() == 0))
}

/// Runs a `while` step through the executor's arena loop, setting its outputs; whether
/// the executor ran it (`false`: it runs step by step instead).
fn arena_loop<K: KernelSteps>(
    k: &K,
    arena: &ArenaLoop,
    (inputs, outputs): (&[ValueId], &[ValueId]),
    max: Option<u64>,
    vals: &mut Table<'_>,
) -> Result<bool, Error> {
    let mut ins: SmallVec<[&Tensor; 4]> = SmallVec::new();
    for v in inputs {
        ins.push(vals.get(*v)?);
    }
    let Some(results) = k.arena_loop(arena, &ins, vals, max)? else { return Ok(false) };
    drop(ins);
    for (v, t) in outputs.iter().zip(results) {
        vals.set(*v, t);
    }
    Ok(true)
}

/// Runs a `while` step trip by trip: its condition's steps, a read of the predicate,
/// its body's steps.
fn step_loop<K: KernelSteps>(
    k: &K,
    (cond, body): (&SubPlan, &SubPlan),
    (inputs, outputs): (&[ValueId], &[ValueId]),
    max: Option<u64>,
    (vals, vars): (&mut Table<'_>, &[&Variable]),
) -> Result<(), Error> {
    let mut current: &[ValueId] = inputs;
    let mut trips = 0u64;
    while max.is_none_or(|m| trips < m) {
        vals.copy(&cond.params, current)?;
        run_steps(k, &cond.steps, None, vals, vars)?;
        if !vals.truth(cond.results[0])? {
            break;
        }
        vals.copy(&body.params, current)?;
        run_steps(k, &body.steps, None, vals, vars)?;
        current = &body.results;
        trips += 1;
    }
    vals.copy(outputs, current)
}

pub(crate) fn run_steps<K: KernelSteps>(
    k: &K,
    steps: &[Step],
    frees: Option<&[Vec<ValueId>]>,
    vals: &mut Table<'_>,
    vars: &[&Variable],
) -> Result<(), Error> {
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Kernel { index, inputs, outputs, rows, cols, donor } => {
                k.kernel(KernelStep { index: *index, inputs, outputs, rows: *rows, cols: *cols, donor: *donor }, vals)?
            }
            Step::Op { op, inputs, output, ty } if host_predicate(k, ty, inputs, vals) => {
                // A bool of scalars on a device (a loop's or a branch's condition): made
                // on the host from the scalars, where it is read; the device would make
                // it (on the host: no GPU kernel makes bools) only to have it read back.
                let mut ins: SmallVec<[Tensor; 4]> = SmallVec::new();
                for v in inputs {
                    ins.push(vals.get(*v)?.to(Device::Cpu)?);
                }
                let refs: SmallVec<[&Tensor; 4]> = ins.iter().collect();
                let t = backend::run_kernel(op, &refs, ty)?;
                vals.set(*output, t);
            }
            Step::Op { op, inputs, output, ty } => {
                let mut refs: SmallVec<[&Tensor; 4]> = SmallVec::new();
                for v in inputs {
                    refs.push(vals.get(*v)?);
                }
                let mut t = if inputs.is_empty() && k.device() != Device::Cpu {
                    // An op of no operands (a random draw): made where the function runs.
                    backend::run_kernel_on(k.device(), op, &refs, ty)?
                } else {
                    backend::run_kernel(op, &refs, ty)?
                };
                drop(refs);
                if t.device() != k.device() && t.rank() > 0 {
                    t = t.to(k.device())?;
                }
                vals.set(*output, t);
            }
            Step::Read { resource, output } => {
                vals.set(*output, backend::read_variable(vars[resource.index()]));
            }
            Step::Assign { resource, input } => backend::assign_variable(vars[resource.index()], vals.cloned(*input)?)?,
            Step::Print { template, inputs } => {
                let ins: SmallVec<[Tensor; 4]> = inputs.iter().map(|v| vals.cloned(*v)).collect::<Result<_, _>>()?;
                let refs: SmallVec<[&Tensor; 4]> = ins.iter().collect();
                backend::print(template, &refs);
            }
            Step::Cond { pred, branches, outputs, .. } => {
                let b = &branches[if vals.truth(*pred)? { 0 } else { 1 }];
                run_steps(k, &b.steps, None, vals, vars)?;
                vals.copy(outputs, &b.results)?;
            }
            Step::While { inputs, cond, body, outputs, max, arena } => {
                let ran = match arena {
                    Some(a) if k.has_arena_loops() => arena_loop(k, a, (inputs, outputs), *max, vals)?,
                    _ => false,
                };
                if !ran {
                    step_loop(k, (cond, body), (inputs, outputs), *max, (vals, vars))?;
                }
            }
        }
        if let Some(f) = frees {
            for v in &f[i] {
                vals.clear(*v);
            }
        }
    }
    Ok(())
}
