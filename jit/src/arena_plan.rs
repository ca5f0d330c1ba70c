//! Functions over one arena. When a concrete function's plan is only fused kernels, f32
//! ops, prints, variable reads and assignments (no variable read after one is assigned)
//! and `while` loops that have an arena form of their own (`arena_loop`: the loop keeps
//! its state in a small arena of its own and writes its results into rooms of this
//! one; `cond` keeps the general executor), every
//! intermediate gets a fixed offset in one arena, laid out by liveness: a value's
//! room is handed to a later value of the same size once its last reader has run, and
//! a kernel the plan marks `(over %v)` writes its output into `%v`'s room.
//! Results are written straight into fresh buffers (callers own them); the arena is
//! kept for the next call in a small pool, so concurrent calls each take their own and
//! never share scratch memory. Matmuls run the shared GEMM into their slot
//! (`backend::matmul_f32_into`); other ops (small operands only) run their eager
//! kernel on copies. Variables are read when the call starts (no step assigns them
//! before); a value a variable is assigned is computed into a fresh buffer that becomes
//! the variable's tensor at its step, in the plan's order. Same kernels, same GEMM,
//! same bits as the general executor.
//!
//! ```text
//! arena: [ %7 | %9 (then %12) | … ]   fresh: [ result 0 | … ]
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use smallvec::SmallVec;
use tensorjit_runtime::dtype::DType;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ir::{Graph, ValueId, ValueType};
use tensorjit_runtime::ops::{Op, ReduceOp};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend::{self, MatMulF32, Outputs};
use tensorjit_runtime::{Tensor, Variable};

use crate::arena_loop::ArenaLoop;
use crate::codegen::{compile_entry, CompiledModule, EntryFn, HookCall};
use crate::launch::{Kernels, Ptr};
use crate::plan::{Plan, Step};

/// Operands of other ops are copied out of the arena: only small ones.
const COPY_MAX: usize = 1 << 14;
/// Arenas kept for later calls (one per concurrent caller, up to this many).
const POOL_MAX: usize = 4;

/// Where a value lives during a call: an arena room, outer tensor `k` (a parameter or
/// constant, read only) or fresh result buffer `j`.
use crate::codegen::PtrSrc as Loc;

/// One step: what it runs and its pointer table's sources.
#[derive(Debug)]
struct AStep {
    kind: Kind,
    /// Kernel: inputs then outputs; matmul: a, b, out; op: inputs then out.
    ptrs: SmallVec<[Loc; 8]>,
}

#[derive(Debug)]
enum Kind {
    Kernel {
        index: usize,
        rows: usize,
        cols: usize,
    },
    MatMul(MatMulF32),
    Op(Box<OpStep>),
    /// Variable `resource` takes the value at `ptrs[0]` (outer or fresh).
    Assign {
        resource: usize,
    },
    /// `tf_print` of the values at `ptrs` (shapes as given), in the plan's order.
    Print {
        template: String,
        shapes: Vec<Shape>,
    },
    /// The eager f32 reduction over `[outer, n, inner]` (ptrs: input, output).
    Reduce {
        op: ReduceOp,
        dims: (usize, usize, usize),
    },
    /// A `while` loop (ptrs: the loop variables' initial values, the outer values its
    /// regions read, its results, the room of its own arena).
    Loop(Box<LoopStep>),
}

/// A `while` step of an arena plan.
#[derive(Debug)]
struct LoopStep {
    body: std::sync::Arc<ArenaLoop>,
    max: Option<u64>,
    /// Element counts of the outer values the regions read.
    outer_lens: Vec<usize>,
}

/// An outer value: a parameter or constant, or variable `r` read at the start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Outer {
    Value(ValueId),
    Var(usize),
}

/// Another op, run eagerly on copies of its arena operands.
#[derive(Debug)]
struct OpStep {
    op: Op,
    shapes: Vec<Shape>,
    ty: ValueType,
}

/// What the steps need during a call: the plan, the kernels, the outer tensors, the
/// variables, the fresh buffers (and the tensors made of them so far), and room for a
/// step's error.
struct RunCtx<'a> {
    plan: &'a ArenaPlan,
    kernels: &'a Kernels,
    outer: &'a [&'a Tensor],
    vars: &'a [&'a Variable],
    fresh: RefCell<SmallVec<[Vec<f32>; 2]>>,
    made: RefCell<SmallVec<[Option<Tensor>; 2]>>,
    err: RefCell<Option<Error>>,
}

impl RunCtx<'_> {
    /// Fresh buffer `j` as a tensor (made once; its data stays where the steps
    /// address it).
    fn made(&self, j: usize) -> Result<Tensor, Error> {
        if let Some(t) = self.made.borrow().get(j).and_then(|t| t.clone()) {
            return Ok(t);
        }
        let buf = std::mem::take(&mut self.fresh.borrow_mut()[j]);
        let t = Tensor::from_vec(buf, self.plan.fresh[j].clone())?;
        self.made.borrow_mut()[j] = Some(t.clone());
        Ok(t)
    }
}

/// The entry point's hook: runs step `step` with its pointer table; 0 when done, else
/// 1 with the error left in the context (a panic becomes an error: it must not unwind
/// through compiled frames).
///
/// # Safety
/// `ctx` is the `RunCtx` of the running call; `table` holds the step's pointers.
unsafe extern "C" fn run_step(ctx: *mut u8, step: i64, _: i64, _: i64, table: *const *mut f32) -> i64 {
    // SAFETY: the caller's guarantee (`ArenaPlan::run` passes its own context).
    let ctx = unsafe { &*(ctx as *const RunCtx<'_>) };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let s = ctx.plan.steps.get(step as usize).ok_or_else(|| Error::Internal(format!("no step {step}")))?;
        // SAFETY: the entry stored exactly this step's pointers in `table`.
        let t = unsafe { std::slice::from_raw_parts(table, s.ptrs.len()) };
        ctx.plan.exec(s, t, ctx)
    }));
    let e = match r {
        Ok(Ok(())) => return 0,
        Ok(Err(e)) => e,
        Err(_) => Error::Internal(format!("step {step} of a compiled function panicked")),
    };
    *ctx.err.borrow_mut() = Some(e);
    1
}

/// A plan run over one arena (see the module docs).
pub(crate) struct ArenaPlan {
    steps: Vec<AStep>,
    /// The outer values, by `Loc::Outer` index.
    pub(crate) outer: Vec<Outer>,
    /// Whether a step assigns a variable (the caller must not bind one variable to
    /// two resources then: a read would not see the other's assignment).
    pub(crate) assigns: bool,
    fresh: Vec<Shape>,
    /// Which fresh buffer each graph result is.
    results: Vec<usize>,
    arena_len: usize,
    reused: usize,
    pool: Mutex<Vec<Vec<f32>>>,
    /// The compiled entry point (its module owns the code), or `None` if Cranelift
    /// refused it: the steps then run from Rust, to the same effect.
    entry: Option<(CompiledModule, EntryFn)>,
}

/// Slot assignment while translating the steps.
struct Layout<'g> {
    g: &'g Graph,
    at: HashMap<ValueId, Loc>,
    outer: Vec<Outer>,
    /// Values some variable is assigned (computed into fresh buffers).
    assigned: Vec<ValueId>,
    fresh: Vec<Shape>,
    /// Free arena rooms by length.
    free: HashMap<usize, Vec<usize>>,
    arena_len: usize,
    reused: usize,
}

impl Layout<'_> {
    /// An operand: already placed, or an outer f32 value.
    fn operand(&mut self, v: ValueId) -> Option<Loc> {
        if let Some(l) = self.at.get(&v) {
            return Some(*l);
        }
        let known = self.g.params.contains(&v) || self.g.constants.iter().any(|(c, _)| *c == v);
        if !known || self.g.value_type(v).dtype != DType::F32 {
            return None;
        }
        let l = Loc::Outer(self.outer.len());
        self.outer.push(Outer::Value(v));
        self.at.insert(v, l);
        Some(l)
    }

    /// Room for a value the function computes: a fresh buffer for a result, else an
    /// arena room (a dead value's of the same length when one is free).
    fn place(&mut self, v: ValueId) -> Option<Loc> {
        let t = self.g.value_type(v);
        if t.dtype != DType::F32 || self.at.contains_key(&v) {
            return None;
        }
        let loc = if self.g.results.contains(&v) || self.assigned.contains(&v) {
            self.fresh.push(t.shape.clone());
            Loc::Fresh(self.fresh.len() - 1)
        } else {
            let len = t.shape.numel();
            match self.free.get_mut(&len).and_then(|f| f.pop()) {
                Some(off) => {
                    self.reused += 1;
                    Loc::Arena(off)
                }
                None => {
                    self.arena_len += len;
                    Loc::Arena(self.arena_len - len)
                }
            }
        };
        self.at.insert(v, loc);
        Some(loc)
    }
}

impl ArenaPlan {
    /// The arena form of `plan` when every top-level step qualifies (see the module
    /// docs) and every result is computed by a step.
    pub(crate) fn new(g: &Graph, plan: &Plan, kernels: &Kernels) -> Option<ArenaPlan> {
        // A plan that is one loop runs its arena loop directly (as a one-kernel plan
        // runs its kernel): measured ~0.13 µs faster per call on W6 than through here.
        if let [Step::While { arena: Some(_), .. }] = plan.steps.as_slice() {
            return None;
        }
        let mut last: HashMap<ValueId, usize> = HashMap::new();
        for (i, s) in plan.steps.iter().enumerate() {
            for v in crate::plan::step_uses(s) {
                last.insert(v, i);
            }
        }
        let mut l = Layout {
            g,
            at: HashMap::new(),
            outer: vec![],
            assigned: plan
                .steps
                .iter()
                .filter_map(|s| if let Step::Assign { input, .. } = s { Some(*input) } else { None })
                .collect(),
            fresh: vec![],
            free: HashMap::new(),
            arena_len: 0,
            reused: 0,
        };
        let mut steps = Vec::with_capacity(plan.steps.len());
        let mut assigned_vars = Vec::new();
        for (i, s) in plan.steps.iter().enumerate() {
            let mut donated = None;
            let (inputs, step): (SmallVec<[ValueId; 8]>, AStep) = match s {
                Step::Kernel { index, inputs, outputs, rows, cols, donor } => {
                    let mut ptrs: SmallVec<[Loc; 8]> = inputs.iter().map(|v| l.operand(*v)).collect::<Option<_>>()?;
                    // The one output over its dying input's room, when the plan chose
                    // one and the kernel allows it; else rooms of their own.
                    let over = donor.filter(|d| kernels.may_alias(*index, *d)).and_then(|d| match ptrs[d] {
                        // (Results and values assigned to variables need fresh buffers.)
                        Loc::Arena(off)
                            if !g.results.contains(&outputs[0].0) && !l.assigned.contains(&outputs[0].0) =>
                        {
                            Some(off)
                        }
                        _ => None,
                    });
                    match over {
                        Some(off) => {
                            l.at.insert(outputs[0].0, Loc::Arena(off));
                            l.reused += 1;
                            donated = Some(off);
                            ptrs.push(Loc::Arena(off));
                        }
                        None => {
                            for (v, _) in outputs {
                                ptrs.push(l.place(*v)?);
                            }
                        }
                    }
                    (
                        inputs.as_slice().into(),
                        AStep { kind: Kind::Kernel { index: *index, rows: *rows, cols: *cols }, ptrs },
                    )
                }
                Step::Op { op: Op::MatMul { transpose_a, transpose_b }, inputs, output, ty } => {
                    let (ta, tb) = (g.value_type(*inputs.first()?), g.value_type(*inputs.get(1)?));
                    if ta.shape.rank() != 2 || tb.shape.rank() != 2 || ty.dtype != DType::F32 {
                        return None;
                    }
                    let (a, b) = (l.operand(inputs[0])?, l.operand(inputs[1])?);
                    let (m, n) = (ty.shape[0], ty.shape[1]);
                    let k = if *transpose_a { ta.shape[0] } else { ta.shape[1] };
                    let d = MatMulF32 { m, k, n, transpose_a: *transpose_a, transpose_b: *transpose_b };
                    let ptrs = SmallVec::from_slice(&[a, b, l.place(*output)?]);
                    (inputs.as_slice().into(), AStep { kind: Kind::MatMul(d), ptrs })
                }
                Step::Op { op: Op::Reduce { op, axes, .. }, inputs, output, ty }
                    if ty.dtype == DType::F32 && g.value_type(*inputs.first()?).dtype == DType::F32 =>
                {
                    let dims = backend::reduce_dims(&g.value_type(inputs[0]).shape, axes)?;
                    let ptrs = SmallVec::from_slice(&[l.operand(inputs[0])?, l.place(*output)?]);
                    (inputs.as_slice().into(), AStep { kind: Kind::Reduce { op: *op, dims }, ptrs })
                }
                Step::Op { op, inputs, output, ty } => {
                    let mut ptrs: SmallVec<[Loc; 8]> = SmallVec::new();
                    let mut shapes = Vec::with_capacity(inputs.len());
                    for v in inputs {
                        let loc = l.operand(*v)?;
                        let shape = g.value_type(*v).shape.clone();
                        if !matches!(loc, Loc::Outer(_)) && shape.numel() > COPY_MAX {
                            return None;
                        }
                        ptrs.push(loc);
                        shapes.push(shape);
                    }
                    ptrs.push(l.place(*output)?);
                    let kind = Kind::Op(Box::new(OpStep { op: op.clone(), shapes, ty: ty.clone() }));
                    (inputs.as_slice().into(), AStep { kind, ptrs })
                }
                Step::Read { resource, output } => {
                    if assigned_vars.contains(&resource.index()) || g.value_type(*output).dtype != DType::F32 {
                        return None;
                    }
                    l.at.insert(*output, Loc::Outer(l.outer.len()));
                    l.outer.push(Outer::Var(resource.index()));
                    continue;
                }
                Step::Print { template, inputs } => {
                    let ptrs = inputs.iter().map(|v| l.operand(*v)).collect::<Option<SmallVec<_>>>()?;
                    let shapes = inputs.iter().map(|v| g.value_type(*v).shape.clone()).collect();
                    (inputs.as_slice().into(), AStep { kind: Kind::Print { template: template.clone(), shapes }, ptrs })
                }
                Step::Assign { resource, input } => {
                    let loc = l.operand(*input)?;
                    if matches!(loc, Loc::Arena(_)) {
                        return None;
                    }
                    assigned_vars.push(resource.index());
                    let kind = Kind::Assign { resource: resource.index() };
                    (SmallVec::from_slice(&[*input]), AStep { kind, ptrs: SmallVec::from_slice(&[loc]) })
                }
                Step::While { inputs, outputs, max, arena: Some(body), .. } => {
                    let reads: SmallVec<[ValueId; 8]> = inputs.iter().chain(body.outer_values()).copied().collect();
                    let mut ptrs = reads.iter().map(|v| l.operand(*v)).collect::<Option<SmallVec<[Loc; 8]>>>()?;
                    for v in outputs {
                        ptrs.push(l.place(*v)?);
                    }
                    // The loop's own arena: a room of this one (its last pointer).
                    ptrs.push(Loc::Arena(l.arena_len));
                    l.arena_len += body.arena_len();
                    let outer_lens = body.outer_values().iter().map(|v| g.value_type(*v).shape.numel()).collect();
                    let kind = Kind::Loop(Box::new(LoopStep { body: body.clone(), max: *max, outer_lens }));
                    (reads, AStep { kind, ptrs })
                }
                _ => return None,
            };
            // Rooms of values read for the last time here are free for later steps
            // (never for this step's own outputs, placed above).
            // (Each value once: an op may read one value twice.)
            for (k, v) in inputs.iter().enumerate() {
                if inputs[..k].contains(v) {
                    continue;
                }
                if let (Some(&Loc::Arena(off)), Some(&li)) = (l.at.get(v), last.get(v)) {
                    if li == i && donated != Some(off) {
                        l.free.entry(g.value_type(*v).shape.numel()).or_default().push(off);
                    }
                }
            }
            steps.push(step);
        }
        let mut results = Vec::with_capacity(g.results.len());
        for r in &g.results {
            match l.at.get(r) {
                Some(Loc::Fresh(j)) => results.push(*j),
                _ => return None,
            }
        }
        let calls: Vec<HookCall> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| HookCall { hook: run_step, args: [i as i64, 0, 0], ptrs: s.ptrs.to_vec() })
            .collect();
        Some(ArenaPlan {
            steps,
            outer: l.outer,
            assigns: !assigned_vars.is_empty(),
            fresh: l.fresh,
            results,
            arena_len: l.arena_len,
            reused: l.reused,
            pool: Mutex::new(Vec::new()),
            entry: compile_entry(&calls).ok(),
        })
    }

    /// Runs the plan on the outer tensors (by `Loc::Outer` index) and the variables
    /// (by resource); returns the results.
    pub(crate) fn run(&self, kernels: &Kernels, outer: &[&Tensor], vars: &[&Variable]) -> Result<Outputs, Error> {
        let mut outer_ptrs: SmallVec<[*mut f32; 8]> = SmallVec::new();
        for t in outer {
            outer_ptrs.push(t.as_slice::<f32>()?.as_ptr() as *mut f32);
        }
        let taken = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut arena = taken.unwrap_or_else(|| vec![0.0; self.arena_len]);
        let mut fresh: SmallVec<[Vec<f32>; 2]> = self.fresh.iter().map(|s| backend::alloc_f32(s.numel())).collect();
        let base = arena.as_mut_ptr();
        let fresh_ptrs: SmallVec<[*mut f32; 2]> = fresh.iter_mut().map(|v| v.as_mut_ptr()).collect();
        // (Moving the vectors in does not move their data: the pointers stay valid.)
        let ctx = RunCtx {
            plan: self,
            kernels,
            outer,
            vars,
            fresh: RefCell::new(fresh),
            made: RefCell::new(self.fresh.iter().map(|_| None).collect()),
            err: RefCell::new(None),
        };
        match &self.entry {
            Some((_, f)) => {
                // SAFETY: the entry was compiled from these steps: it reads `outer_ptrs`
                // and `fresh_ptrs` at the indices the layout gave, offsets `base` within
                // `arena_len`, and calls `run_step` with `ctx`, which outlives the call.
                let status =
                    unsafe { f(&ctx as *const RunCtx<'_> as *mut u8, base, outer_ptrs.as_ptr(), fresh_ptrs.as_ptr()) };
                if status != 0 {
                    return Err(ctx.err.take().unwrap_or_else(|| Error::Internal("a compiled step failed".into())));
                }
            }
            None => {
                for s in &self.steps {
                    let table: SmallVec<[*mut f32; 8]> = s
                        .ptrs
                        .iter()
                        .map(|l| match *l {
                            // In bounds: rooms were laid out within `arena_len`.
                            Loc::Arena(off) => base.wrapping_add(off),
                            Loc::Outer(k) => outer_ptrs[k],
                            Loc::Fresh(j) => fresh_ptrs[j],
                        })
                        .collect();
                    self.exec(s, &table, &ctx)?;
                }
            }
        }
        if let Ok(mut p) = self.pool.lock() {
            if p.len() < POOL_MAX {
                p.push(arena);
            }
        }
        let mut out = Outputs::new();
        for &j in &self.results {
            out.push(ctx.made(j)?);
        }
        Ok(out)
    }
}

impl ArenaPlan {
    /// Runs step `s` with its pointer table `t`.
    fn exec(&self, s: &AStep, t: &[*mut f32], ctx: &RunCtx<'_>) -> Result<(), Error> {
        let (kernels, outer) = (ctx.kernels, ctx.outer);
        match &s.kind {
            Kind::Kernel { index, rows, cols } => {
                // SAFETY: `Ptr` is `repr(transparent)` over `*mut f32`.
                let table = unsafe { std::slice::from_raw_parts(t.as_ptr() as *const Ptr, t.len()) };
                // SAFETY: every operand holds what its access pattern reads (shapes are
                // static and the rooms were sized from them); an output's room is no
                // input's unless the kernel allows it (`(over %v)`); the buffers
                // outlive the launch.
                unsafe { kernels.launch(*index, table, *rows, *cols) };
                Ok(())
            }
            Kind::MatMul(d) => {
                // SAFETY: the operands' rooms hold m×k and k×n values, the output's m×n,
                // and the output's room is neither operand's.
                let (a, b, o) = unsafe {
                    (
                        std::slice::from_raw_parts(t[0], d.m * d.k),
                        std::slice::from_raw_parts(t[1], d.k * d.n),
                        std::slice::from_raw_parts_mut(t[2], d.m * d.n),
                    )
                };
                backend::matmul_f32_into(*d, a, b, o)
            }
            Kind::Op(o) => {
                let mut owned: SmallVec<[Tensor; 4]> = SmallVec::new();
                for (i, shape) in o.shapes.iter().enumerate() {
                    owned.push(self.tensor_at(s.ptrs[i], t[i], shape, ctx)?);
                }
                let refs: SmallVec<[&Tensor; 4]> = owned.iter().collect();
                let r = backend::run_kernel(&o.op, &refs, &o.ty)?;
                let src = r.as_slice::<f32>()?;
                // SAFETY: the output's room holds the result type's element count,
                // which the kernel produced; it is none of the (copied) operands.
                unsafe { std::slice::from_raw_parts_mut(t[o.shapes.len()], src.len()) }.copy_from_slice(src);
                Ok(())
            }
            Kind::Reduce { op, dims } => {
                let (outer, n, inner) = *dims;
                // SAFETY: the input's room holds outer·n·inner values, the output's
                // outer·inner, and they are different rooms.
                let (x, o) = unsafe {
                    (
                        std::slice::from_raw_parts(t[0], outer * n * inner),
                        std::slice::from_raw_parts_mut(t[1], outer * inner),
                    )
                };
                backend::reduce_f32_into(*op, x, *dims, o)
            }
            Kind::Print { template, shapes } => {
                let mut owned: SmallVec<[Tensor; 4]> = SmallVec::new();
                for (i, shape) in shapes.iter().enumerate() {
                    owned.push(self.tensor_at(s.ptrs[i], t[i], shape, ctx)?);
                }
                let refs: SmallVec<[&Tensor; 4]> = owned.iter().collect();
                backend::print(template, &refs);
                Ok(())
            }
            Kind::Loop(lp) => {
                let lens: SmallVec<[usize; 4]> = lp.body.state_lens().collect();
                let n = lens.len();
                if t.len() != 2 * n + lp.outer_lens.len() + 1 {
                    return Err(Error::Internal("a loop step's table does not match its layout".into()));
                }
                // SAFETY: the initial values' and the outer values' rooms (or tensors)
                // hold their loop variable's or value's element count; the result rooms
                // were placed after every operand, so they overlap none of them; the
                // loop's own room (last) is its alone.
                let (init, outer_vals, mut results, arena) = unsafe {
                    let init: SmallVec<[&[f32]; 4]> =
                        lens.iter().zip(t).map(|(len, p)| std::slice::from_raw_parts(*p as *const f32, *len)).collect();
                    let outer_vals: SmallVec<[&[f32]; 8]> = lp
                        .outer_lens
                        .iter()
                        .zip(&t[n..])
                        .map(|(len, p)| std::slice::from_raw_parts(*p as *const f32, *len))
                        .collect();
                    let results: SmallVec<[&mut [f32]; 4]> = lens
                        .iter()
                        .zip(&t[n + lp.outer_lens.len()..])
                        .map(|(len, p)| std::slice::from_raw_parts_mut(*p, *len))
                        .collect();
                    let arena = std::slice::from_raw_parts_mut(t[t.len() - 1], lp.body.arena_len());
                    (init, outer_vals, results, arena)
                };
                lp.body.run_into(kernels, (&init, &outer_vals), lp.max, arena, &mut results)
            }
            Kind::Assign { resource } => {
                let value = match s.ptrs[0] {
                    Loc::Outer(k) => outer[k].clone(),
                    Loc::Fresh(j) => ctx.made(j)?,
                    Loc::Arena(_) => return Err(Error::Internal("a variable assigned an arena room".into())),
                };
                let var = ctx.vars.get(*resource).ok_or_else(|| Error::Internal("a variable is missing".into()))?;
                backend::assign_variable(var, value)
            }
        }
    }
}

impl ArenaPlan {
    /// The value at `loc` (address `p`) as a tensor: an outer one as it is, else a copy.
    fn tensor_at(&self, loc: Loc, p: *mut f32, shape: &Shape, ctx: &RunCtx<'_>) -> Result<Tensor, Error> {
        match loc {
            Loc::Outer(k) => Ok(ctx.outer[k].clone()),
            // SAFETY: the room or buffer holds this value's `shape.numel()` values.
            _ => Tensor::from_vec(unsafe { std::slice::from_raw_parts(p, shape.numel()) }.to_vec(), shape.clone()),
        }
    }
}

impl fmt::Display for ArenaPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arena: {} floats, {} rooms reused; {} fresh result buffer(s); ",
            self.arena_len,
            self.reused,
            self.fresh.len()
        )?;
        match self.steps.iter().filter(|s| matches!(s.kind, Kind::Loop(_))).count() {
            0 => {}
            1 => write!(f, "1 loop; ")?,
            n => write!(f, "{n} loops; ")?,
        }
        f.write_str(if self.entry.is_some() { "compiled entry point" } else { "steps run from Rust" })
    }
}
