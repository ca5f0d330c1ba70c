//! `while` loops that run without tensors: when every step of both regions is a fused
//! kernel, a whole-tensor f32 reduction or a comparison of two f32 scalars, and every
//! loop variable is f32, the loop runs over one arena allocated per call. The loop
//! state, each region value and each predicate get a fixed slot; a trip is kernel calls
//! through their function pointers, reductions on slices and a scalar compare — no
//! allocation, no reference counting, no value table. Results are the general
//! executor's bits: the same compiled kernels, the runtime's own reduction
//! (`backend::reduce_all_f32`) and IEEE comparisons.
//!
//! ```text
//! arena: [ state 0 | state 1 | … | value slots … | staging (when the body permutes) ]
//! ```

use std::collections::HashMap;

use smallvec::SmallVec;
use tensorjit_runtime::dtype::DType;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ir::{Graph, ValueId};
use tensorjit_runtime::ops::{BinaryOp, Op, ReduceOp};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend;
use tensorjit_runtime::Tensor;

use crate::launch::Kernels;
use crate::plan::{Step, SubPlan};

/// Where an f32 operand lives during the loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Src {
    /// At this offset of the arena (a loop variable or a region value).
    Arena(usize),
    /// Outer value `k` (read-only during the loop).
    Outer(usize),
}

#[derive(Debug)]
pub(crate) enum ArenaStep {
    Kernel { index: usize, inputs: Vec<Src>, outputs: Vec<usize>, rows: usize, cols: usize },
    Reduce { op: ReduceOp, input: Src, len: usize, output: usize },
    Compare { op: BinaryOp, a: Src, b: Src, output: usize },
}

/// The compiled form of one `while` step (see the module docs).
#[derive(Debug)]
pub struct ArenaLoop {
    /// Arena offset and length of each loop variable.
    pub(crate) state: Vec<(usize, usize)>,
    pub(crate) shapes: Vec<Shape>,
    pub(crate) cond: Vec<ArenaStep>,
    /// The predicate slot the condition yields.
    pub(crate) pred: usize,
    pub(crate) body: Vec<ArenaStep>,
    /// Where each body result is.
    pub(crate) next: Vec<Src>,
    /// Offset of a staging copy of the state, when the body yields loop variables in
    /// another order (all results are read before any is written).
    pub(crate) staging: Option<usize>,
    /// Values from outside the loop, by `Src::Outer` index.
    outer: Vec<ValueId>,
    pub(crate) arena_len: usize,
    n_preds: usize,
}

/// Assigns slots while translating the regions.
struct Layout<'g> {
    g: &'g Graph,
    at: HashMap<ValueId, Src>,
    preds: HashMap<ValueId, usize>,
    outer: Vec<ValueId>,
    arena_len: usize,
}

impl Layout<'_> {
    fn slot(&mut self, v: ValueId, len: usize) -> usize {
        let off = self.arena_len;
        self.arena_len += len;
        self.at.insert(v, Src::Arena(off));
        off
    }

    /// An f32 operand: a slot of the loop, or a new outer value.
    fn f32_src(&mut self, v: ValueId) -> Option<Src> {
        if let Some(s) = self.at.get(&v) {
            return Some(*s);
        }
        let t = self.g.value_type(v);
        if t.dtype != DType::F32 || !t.shape.is_fully_known() {
            return None;
        }
        let s = Src::Outer(self.outer.len());
        self.outer.push(v);
        self.at.insert(v, s);
        Some(s)
    }

    fn numel(&self, v: ValueId) -> usize {
        self.g.value_type(v).shape.iter().product()
    }

    fn steps(&mut self, steps: &[Step]) -> Option<Vec<ArenaStep>> {
        let mut out = Vec::with_capacity(steps.len());
        for s in steps {
            out.push(match s {
                Step::Kernel { index, inputs, outputs, rows, cols, .. } => {
                    let inputs = inputs.iter().map(|v| self.f32_src(*v)).collect::<Option<Vec<_>>>()?;
                    let outputs = outputs.iter().map(|(v, shape)| self.slot(*v, shape.numel())).collect();
                    ArenaStep::Kernel { index: *index, inputs, outputs, rows: *rows, cols: *cols }
                }
                Step::Op { op: Op::Reduce { op, axes, .. }, inputs, output, ty } => {
                    let x = *inputs.first()?;
                    let xt = self.g.value_type(x);
                    let whole = axes.len() == xt.shape.rank() && ty.dtype == DType::F32 && ty.shape.numel() == 1;
                    if !whole {
                        return None;
                    }
                    let (input, len) = (self.f32_src(x)?, self.numel(x));
                    ArenaStep::Reduce { op: *op, input, len, output: self.slot(*output, 1) }
                }
                Step::Op { op: Op::Binary(op), inputs, output, .. } if op.is_comparison() => {
                    let (a, b) = (*inputs.first()?, *inputs.get(1)?);
                    if self.numel(a) != 1 || self.numel(b) != 1 {
                        return None;
                    }
                    let (a, b) = (self.f32_src(a)?, self.f32_src(b)?);
                    let p = self.preds.len();
                    self.preds.insert(*output, p);
                    ArenaStep::Compare { op: *op, a, b, output: p }
                }
                _ => return None,
            });
        }
        Some(out)
    }
}

impl ArenaLoop {
    /// The arena form of a `while` over `inputs`, if every step qualifies.
    pub(crate) fn new(g: &Graph, inputs: &[ValueId], cond: &SubPlan, body: &SubPlan) -> Option<ArenaLoop> {
        let mut l = Layout { g, at: HashMap::new(), preds: HashMap::new(), outer: vec![], arena_len: 0 };
        let mut state = Vec::with_capacity(inputs.len());
        let mut shapes = Vec::with_capacity(inputs.len());
        for (j, v) in inputs.iter().enumerate() {
            let t = g.value_type(*v);
            if t.dtype != DType::F32 || !t.shape.is_fully_known() {
                return None;
            }
            let len = t.shape.numel();
            let off = l.arena_len;
            l.arena_len += len;
            state.push((off, len));
            shapes.push(t.shape.clone());
            for params in [&cond.params, &body.params] {
                l.at.insert(*params.get(j)?, Src::Arena(off));
            }
        }
        let csteps = l.steps(&cond.steps)?;
        let pred = *l.preds.get(cond.results.first()?)?;
        let bsteps = l.steps(&body.steps)?;
        let next = body.results.iter().map(|v| l.f32_src(*v)).collect::<Option<Vec<_>>>()?;
        if next.len() != state.len() {
            return None;
        }
        let permutes = next
            .iter()
            .enumerate()
            .any(|(j, s)| state.iter().enumerate().any(|(k, st)| k != j && *s == Src::Arena(st.0)));
        let staging = permutes.then(|| {
            let off = l.arena_len;
            l.arena_len += state.iter().map(|s| s.1).sum::<usize>();
            off
        });
        Some(ArenaLoop {
            state,
            shapes,
            cond: csteps,
            pred,
            body: bsteps,
            next,
            staging,
            outer: l.outer,
            arena_len: l.arena_len,
            n_preds: l.preds.len(),
        })
    }
}

fn compare(op: BinaryOp, a: f32, b: f32) -> bool {
    match op {
        BinaryOp::Eq => a == b,
        BinaryOp::Ne => a != b,
        BinaryOp::Lt => a < b,
        BinaryOp::Le => a <= b,
        BinaryOp::Gt => a > b,
        _ => a >= b,
    }
}

/// The arena and the outer values' data during one run.
struct Mem<'a> {
    arena: *mut f32,
    outer: &'a [&'a [f32]],
}

impl Mem<'_> {
    fn ptr(&self, s: Src) -> *mut f32 {
        match s {
            // In bounds: offsets were laid out within `arena_len`.
            Src::Arena(off) => self.arena.wrapping_add(off),
            Src::Outer(k) => self.outer[k].as_ptr() as *mut f32,
        }
    }
}

impl ArenaLoop {
    /// The values from outside the loop its regions read (all f32, fully known).
    pub(crate) fn outer_values(&self) -> &[ValueId] {
        &self.outer
    }

    /// How many comparison slots the regions have.
    pub(crate) fn n_preds(&self) -> usize {
        self.n_preds
    }

    /// Each loop variable's element count.
    pub(crate) fn state_lens(&self) -> impl Iterator<Item = usize> + '_ {
        self.state.iter().map(|s| s.1)
    }

    /// Runs the loop from `inputs` (the loop variables' initial values) with `vals`
    /// holding the outer values; returns the final loop variables.
    pub(crate) fn run(
        &self,
        k: &Kernels,
        inputs: &[&Tensor],
        vals: &crate::steps::Table<'_>,
        max: Option<u64>,
    ) -> Result<Vec<Tensor>, Error> {
        let mut outer: SmallVec<[&[f32]; 8]> = SmallVec::new();
        for v in &self.outer {
            outer.push(vals.get(*v)?.as_slice::<f32>()?);
        }
        let mut init: SmallVec<[&[f32]; 4]> = SmallVec::new();
        for t in inputs {
            init.push(t.as_slice::<f32>()?);
        }
        let mut arena = backend::alloc_f32(self.arena_len);
        self.run_slices(k, &init, &outer, max, &mut arena)?;
        let mut out = Vec::with_capacity(self.state.len());
        for (&(off, len), shape) in self.state.iter().zip(&self.shapes) {
            out.push(Tensor::from_vec(arena[off..off + len].to_vec(), shape.clone())?);
        }
        Ok(out)
    }

    /// Elements of the loop's own arena.
    pub(crate) fn arena_len(&self) -> usize {
        self.arena_len
    }

    /// Runs the loop over `arena` (an arena plan's room of [`arena_len`](Self::arena_len))
    /// from the loop variables' initial values `init`, with the outer values' data
    /// `outer` (by [`outer_values`](Self::outer_values)), writing the final loop
    /// variables into `results` (rooms of the plan).
    pub(crate) fn run_into(
        &self,
        k: &Kernels,
        (init, outer): (&[&[f32]], &[&[f32]]),
        max: Option<u64>,
        arena: &mut [f32],
        results: &mut [&mut [f32]],
    ) -> Result<(), Error> {
        self.run_slices(k, init, outer, max, arena)?;
        if results.len() != self.state.len() {
            return Err(Error::Internal("a loop's results do not match its variables".into()));
        }
        for (r, &(off, len)) in results.iter_mut().zip(&self.state) {
            r.copy_from_slice(&arena[off..off + len]);
        }
        Ok(())
    }

    /// The loop over `arena` (final state at `self.state`).
    fn run_slices(
        &self,
        k: &Kernels,
        init: &[&[f32]],
        outer: &[&[f32]],
        max: Option<u64>,
        arena: &mut [f32],
    ) -> Result<(), Error> {
        let lens_ok = init.len() == self.state.len()
            && init.iter().zip(&self.state).all(|(x, s)| x.len() == s.1)
            && outer.len() == self.outer.len()
            && arena.len() == self.arena_len;
        if !lens_ok {
            return Err(Error::Internal("a loop's operands do not match its layout".into()));
        }
        for (x, &(off, len)) in init.iter().zip(&self.state) {
            arena[off..off + len].copy_from_slice(x);
        }
        let mut preds: SmallVec<[bool; 4]> = SmallVec::from_elem(false, self.n_preds);
        let mem = Mem { arena: arena.as_mut_ptr(), outer };
        let mut trips = 0u64;
        while max.is_none_or(|m| trips < m) {
            self.steps(k, &self.cond, &mem, &mut preds);
            if !preds[self.pred] {
                break;
            }
            self.steps(k, &self.body, &mem, &mut preds);
            self.advance(&mem);
            trips += 1;
        }
        Ok(())
    }

    fn steps(&self, k: &Kernels, steps: &[ArenaStep], mem: &Mem<'_>, preds: &mut [bool]) {
        for s in steps {
            match s {
                ArenaStep::Kernel { index, inputs, outputs, rows, cols, .. } => {
                    let mut ptrs: SmallVec<[crate::launch::Ptr; 16]> = SmallVec::new();
                    ptrs.extend(inputs.iter().map(|s| crate::launch::Ptr(mem.ptr(*s))));
                    ptrs.extend(outputs.iter().map(|off| crate::launch::Ptr(mem.ptr(Src::Arena(*off)))));
                    // SAFETY: every operand holds what its access pattern reads (the plan
                    // checked the static shapes, the slots were sized from them); output
                    // slots are distinct from every input.
                    unsafe { k.launch(*index, &ptrs, *rows, *cols) };
                }
                ArenaStep::Reduce { op, input, len, output } => {
                    // SAFETY: `input` addresses `len` initialised f32s (a slot or an outer
                    // tensor); `output` is another slot.
                    let r = backend::reduce_all_f32(*op, unsafe { std::slice::from_raw_parts(mem.ptr(*input), *len) });
                    unsafe { *mem.ptr(Src::Arena(*output)) = r };
                }
                ArenaStep::Compare { op, a, b, output } => {
                    // SAFETY: scalar operands: one f32 each.
                    let (a, b) = unsafe { (*mem.ptr(*a), *mem.ptr(*b)) };
                    preds[*output] = compare(*op, a, b);
                }
            }
        }
    }

    /// Moves the body's results into the loop state.
    fn advance(&self, mem: &Mem<'_>) {
        let copy = |from: *const f32, to: *mut f32, len: usize| {
            if !std::ptr::eq(from, to) {
                // SAFETY: distinct slots (or an outer tensor) of `len` f32s each.
                unsafe { std::ptr::copy_nonoverlapping(from, to, len) };
            }
        };
        match self.staging {
            None => {
                for (s, &(off, len)) in self.next.iter().zip(&self.state) {
                    copy(mem.ptr(*s), mem.ptr(Src::Arena(off)), len);
                }
            }
            Some(stage) => {
                let mut at = stage;
                for (s, &(_, len)) in self.next.iter().zip(&self.state) {
                    copy(mem.ptr(*s), mem.ptr(Src::Arena(at)), len);
                    at += len;
                }
                let mut at = stage;
                for &(off, len) in &self.state {
                    copy(mem.ptr(Src::Arena(at)), mem.ptr(Src::Arena(off)), len);
                    at += len;
                }
            }
        }
    }
}
