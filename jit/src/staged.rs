//! Kernels with transcendentals, run in stages over cache-sized tiles.
//!
//! Cranelift's vectors are 4 lanes wide; the runtime's eager transcendentals are
//! compiled by LLVM at the host's full width (AVX2: 8 lanes, AVX-512: 16) and run
//! 2.4× (AVX2) to ~6× (AVX-512) faster per element. So a fused kernel holding `exp`, `log`, `tanh`, `sigmoid` or `softplus` is cut
//! at each of them: the cheap elementwise runs between them stay Cranelift code, and each
//! transcendental becomes a call of the runtime's own slice function
//! (`backend::unary_f32_into`). The stages run one tile (≤ [`TILE`] elements) at a
//! time, passing values through per-thread scratch that stays in L1 — the kernel still
//! reads its inputs and writes its outputs once. Results are the eager bits: the
//! Cranelift stages compute exactly what the fused kernel did, and the calls are the
//! eager kernels' per-element functions.
//!
//! ```text
//! kernel: e2 = mul e0, e1; e3 = add e2, 0.5; e4 = tanh e3; e5 = mul e4, e0
//! stages: jit [in0, in1 → t0 = e3] ; call tanh t0 → t1 ; jit [t1, in0 → out0]
//! ```

use std::cell::RefCell;
use std::collections::HashMap;

use smallvec::SmallVec;
use tensorjit_runtime::ops::UnaryOp;
use tensorjit_runtime::trace::backend;

use crate::codegen::KernelFn;
use crate::kernel::{Access, Expr, Kernel};

/// Elements per tile (a multiple of 8: whole vector trips).
pub const TILE: usize = 512;

/// Where a stage reads or writes, per tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loc {
    /// Kernel input `i` (read with its access pattern).
    In(usize),
    /// Kernel output `j` (full).
    Out(usize),
    /// Scratch buffer `t` of the tile (full, contiguous).
    Temp(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// Compiled sub-kernel `kernel` (an index into [`Staged::kernels`] until linked, then
    /// into the module's functions) reading `reads`, writing `writes`.
    Jit { kernel: usize, reads: Vec<Loc>, writes: Vec<Loc> },
    /// `dst = op(src)` through the runtime.
    Call { op: UnaryOp, src: Loc, dst: Loc },
}

/// A kernel cut into stages.
#[derive(Clone, Debug, PartialEq)]
pub struct Staged {
    pub stages: Vec<Stage>,
    /// The Cranelift sub-kernels, by `Stage::Jit::kernel`.
    pub kernels: Vec<Kernel>,
    pub n_temps: usize,
}

fn is_heavy(e: &Expr) -> Option<UnaryOp> {
    match e {
        Expr::Unary(u, _)
            if matches!(u, UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Softplus) =>
        {
            Some(*u)
        }
        _ => None,
    }
}

/// Values every stage can compute from scratch (constants, kernel inputs, comparisons
/// of those) instead of reading them from an earlier stage.
fn remakeable(k: &Kernel, e: usize) -> bool {
    matches!(&k.exprs[e], Expr::Const(_) | Expr::Input(_) | Expr::Cmp(..))
}

/// One Cranelift stage being built.
struct Builder<'k> {
    k: &'k Kernel,
    loc: &'k HashMap<usize, Loc>,
    kernel: Kernel,
    reads: Vec<Loc>,
    local: HashMap<usize, usize>,
}

impl Builder<'_> {
    fn push(&mut self, e: Expr) -> usize {
        self.kernel.exprs.push(e);
        self.kernel.exprs.len() - 1
    }

    fn read(&mut self, l: Loc, access: Access) -> usize {
        let i = match self.reads.iter().position(|r| *r == l) {
            Some(i) => i,
            None => {
                self.reads.push(l);
                self.kernel.inputs.push(access);
                self.reads.len() - 1
            }
        };
        self.push(Expr::Input(i))
    }

    /// The local expression of kernel expression `e`, importing it when it was
    /// computed by an earlier stage.
    fn import(&mut self, e: usize) -> usize {
        if let Some(&l) = self.local.get(&e) {
            return l;
        }
        let l = match &self.k.exprs[e] {
            Expr::Const(c) => self.push(Expr::Const(*c)),
            Expr::Input(i) => self.read(Loc::In(*i), self.k.inputs[*i]),
            Expr::Cmp(op, a, b) => {
                let (a, b) = (self.import(*a), self.import(*b));
                self.push(Expr::Cmp(*op, a, b))
            }
            _ => {
                let at = self.loc[&e];
                self.read(at, Access::Full)
            }
        };
        self.local.insert(e, l);
        l
    }

    /// Computes `e` here (its operands imported).
    fn compute(&mut self, e: usize) {
        let x = match self.k.exprs[e].clone() {
            Expr::Unary(u, a) => Expr::Unary(u, self.import(a)),
            Expr::Binary(op, a, b) => Expr::Binary(op, self.import(a), self.import(b)),
            Expr::Select(m, a, b) => Expr::Select(self.import(m), self.import(a), self.import(b)),
            _ => return,
        };
        let l = self.push(x);
        self.local.insert(e, l);
    }
}

impl Staged {
    /// `k` cut at its transcendentals; `None` when it has none (it runs whole).
    pub fn split(k: &Kernel) -> Option<Staged> {
        let heavy: Vec<usize> = (0..k.exprs.len()).filter(|&e| is_heavy(&k.exprs[e]).is_some()).collect();
        // A kernel ending in a row reduction runs whole (its sums walk each row in
        // the canonical lane order, which tiles would cut).
        if heavy.is_empty() || k.reduce.is_some() {
            return None;
        }
        // Stage of each expression: 2h + 1 for the h-th call; the Cranelift runs around
        // them are the even stages. A value that feeds a call is computed as early as
        // its operands allow (so calls follow each other with no stage between), any
        // other as late as its first reader (so it is not kept in a temp meanwhile).
        let operands = |x: &Expr| -> SmallVec<[usize; 3]> {
            match x {
                Expr::Unary(_, a) => [*a].into_iter().collect(),
                Expr::Binary(_, a, b) | Expr::Cmp(_, a, b) => [*a, *b].into_iter().collect(),
                Expr::Select(m, a, b) => [*m, *a, *b].into_iter().collect(),
                _ => SmallVec::new(),
            }
        };
        let mut stage = vec![0usize; k.exprs.len()];
        let mut s = 0;
        for e in 0..k.exprs.len() {
            if is_heavy(&k.exprs[e]).is_some() {
                stage[e] = s + 1;
                s += 2;
            } else {
                let after = |o: usize| if is_heavy(&k.exprs[o]).is_some() { stage[o] + 1 } else { stage[o] };
                stage[e] = operands(&k.exprs[e]).into_iter().map(after).max().unwrap_or(0);
            }
        }
        let mut feeds_call = vec![false; k.exprs.len()];
        for e in (0..k.exprs.len()).rev() {
            if is_heavy(&k.exprs[e]).is_some() || feeds_call[e] {
                for o in operands(&k.exprs[e]) {
                    feeds_call[o] = true;
                }
            }
        }
        let mut readers: Vec<SmallVec<[usize; 4]>> = vec![SmallVec::new(); k.exprs.len()];
        for (e, x) in k.exprs.iter().enumerate() {
            for o in operands(x) {
                readers[o].push(e);
            }
        }
        for e in (0..k.exprs.len()).rev() {
            if is_heavy(&k.exprs[e]).is_some() || feeds_call[e] {
                continue;
            }
            let out_at = k.outputs.contains(&e).then_some(s);
            let latest = readers[e].iter().map(|&r| stage[r]).chain(out_at).min();
            if let Some(l) = latest {
                stage[e] = stage[e].max(l);
            }
        }
        let last = s;
        // Which computed values later stages read (comparisons are remade, so their
        // operands count as read where the comparison is).
        let mut used_later = vec![false; k.exprs.len()];
        fn mark(k: &Kernel, stage: &[usize], used: &mut [bool], e: usize, at: usize) {
            match &k.exprs[e] {
                Expr::Cmp(_, a, b) => {
                    mark(k, stage, used, *a, at);
                    mark(k, stage, used, *b, at);
                }
                _ if stage[e] != at => used[e] = true,
                _ => {}
            }
        }
        for (e, x) in k.exprs.iter().enumerate() {
            if matches!(x, Expr::Cmp(..)) {
                continue;
            }
            for a in operands(x) {
                mark(k, &stage, &mut used_later, a, stage[e]);
            }
        }
        // Locations: a call's result and every value read later get one (the output
        // they are, if any, else a temp); a call's argument must be full and contiguous.
        let mut loc: HashMap<usize, Loc> = HashMap::new();
        let mut n_temps = 0;
        let mut temp = || {
            n_temps += 1;
            Loc::Temp(n_temps - 1)
        };
        let output_of = |e: usize| k.outputs.iter().position(|&o| o == e).map(Loc::Out);
        for (e, &later) in used_later.iter().enumerate() {
            let computed = !remakeable(k, e);
            if is_heavy(&k.exprs[e]).is_some() || (computed && later) {
                loc.insert(e, output_of(e).unwrap_or_else(&mut temp));
            }
        }
        let mut arg_temp: HashMap<usize, Loc> = HashMap::new();
        for &h in &heavy {
            let Expr::Unary(_, a) = k.exprs[h] else { continue };
            let full_input = matches!(k.exprs[a], Expr::Input(i) if k.inputs[i] == Access::Full);
            if !loc.contains_key(&a) && !full_input {
                arg_temp.insert(h, temp());
            }
        }
        // Build the stages in order.
        let mut out = Staged { stages: vec![], kernels: vec![], n_temps };
        let mut written: Vec<bool> = vec![false; k.outputs.len()];
        for st in 0..=last {
            if st % 2 == 1 {
                // Stage 2q + 1 is the q-th call.
                let h = heavy[st / 2];
                let Expr::Unary(op, a) = k.exprs[h] else { return None };
                let src = match (loc.get(&a), &k.exprs[a], arg_temp.get(&h)) {
                    (_, _, Some(t)) => *t,
                    (Some(l), _, None) => *l,
                    (None, Expr::Input(i), None) => Loc::In(*i),
                    _ => return None,
                };
                let dst = loc[&h];
                if let Loc::Out(j) = dst {
                    written[j] = true;
                }
                out.stages.push(Stage::Call { op, src, dst });
                continue;
            }
            let mut b = Builder {
                k,
                loc: &loc,
                kernel: Kernel { inputs: vec![], exprs: vec![], outputs: vec![], reduce: None },
                reads: vec![],
                local: HashMap::new(),
            };
            let mut writes = vec![];
            for e in (0..k.exprs.len()).filter(|&e| stage[e] == st) {
                if remakeable(k, e) {
                    continue;
                }
                b.compute(e);
                if let Some(&l) = loc.get(&e) {
                    writes.push((b.local[&e], l));
                }
                for (j, _) in k.outputs.iter().enumerate().filter(|(_, &o)| o == e) {
                    if loc.get(&e) != Some(&Loc::Out(j)) {
                        writes.push((b.local[&e], Loc::Out(j)));
                    }
                }
            }
            // Arguments of the next call that have no place yet.
            if let Some(&h) = heavy.get(st / 2) {
                if let (Some(t), Expr::Unary(_, a)) = (arg_temp.get(&h), &k.exprs[h]) {
                    let l = b.import(*a);
                    writes.push((l, *t));
                }
            }
            // The last stage writes every output not written yet (e.g. a value also
            // returned under a second output, or a call's result returned twice).
            if st == last {
                for (j, &o) in k.outputs.iter().enumerate() {
                    let done = written[j] || writes.iter().any(|w| w.1 == Loc::Out(j));
                    if !done {
                        let l = b.import(o);
                        writes.push((l, Loc::Out(j)));
                    }
                }
            }
            if writes.is_empty() {
                continue;
            }
            for (_, l) in &writes {
                if let Loc::Out(j) = l {
                    written[*j] = true;
                }
            }
            b.kernel.outputs = writes.iter().map(|w| w.0).collect();
            out.stages.push(Stage::Jit {
                kernel: out.kernels.len(),
                reads: b.reads,
                writes: writes.iter().map(|w| w.1).collect(),
            });
            out.kernels.push(b.kernel);
        }
        let ok = out.verify(k.outputs.len());
        // Debug builds (the tests) stop on a bad cut; release builds run the kernel whole.
        debug_assert!(ok, "a staged cut failed its check:\n{k}\n{out:#?}");
        ok.then_some(out)
    }

    /// Every stage reads only kernel inputs and locations an earlier stage wrote, and
    /// every output is written: the cut's invariant, checked on every split.
    fn verify(&self, n_out: usize) -> bool {
        let mut written: Vec<Loc> = Vec::new();
        let ready = |l: &Loc, w: &[Loc]| matches!(l, Loc::In(_)) || w.contains(l);
        for s in &self.stages {
            match s {
                Stage::Jit { kernel, reads, writes } => {
                    let k = &self.kernels[*kernel];
                    if !reads.iter().all(|l| ready(l, &written))
                        || k.inputs.len() != reads.len()
                        || k.outputs.len() != writes.len()
                    {
                        return false;
                    }
                    written.extend(writes);
                }
                Stage::Call { src, dst, .. } => {
                    if !ready(src, &written) || src == dst {
                        return false;
                    }
                    written.push(*dst);
                }
            }
        }
        (0..n_out).all(|j| written.contains(&Loc::Out(j)))
    }

    /// Offsets stage `Jit` kernel indices by `base` (their place in the module).
    pub fn link(&mut self, base: usize) {
        for s in &mut self.stages {
            if let Stage::Jit { kernel, .. } = s {
                *kernel += base;
            }
        }
    }
}

thread_local! {
    /// Per-thread tile scratch (reused across calls).
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One tile: `rows × cols` elements; `ptrs` are the kernel's inputs then outputs,
/// already offset to the tile (with their access patterns).
///
/// # Safety
/// As [`crate::exec::launch`] for the tile; `fns` holds the linked stage kernels.
unsafe fn run_tile(
    st: &Staged,
    fns: &[KernelFn],
    ptrs: &[*mut f32],
    n_in: usize,
    scratch: *mut f32,
    rows: usize,
    cols: usize,
) {
    let n = rows * cols;
    let at = |l: Loc| match l {
        Loc::In(i) => ptrs[i],
        Loc::Out(j) => ptrs[n_in + j],
        // In bounds: the scratch holds n_temps × TILE and n ≤ TILE.
        Loc::Temp(t) => scratch.wrapping_add(t * TILE),
    };
    for s in &st.stages {
        match s {
            Stage::Jit { kernel, reads, writes } => {
                let mut table: SmallVec<[*mut f32; 16]> = SmallVec::new();
                for l in reads.iter().chain(writes) {
                    table.push(at(*l));
                }
                // SAFETY: every location addresses the tile's elements for its access.
                unsafe { fns[*kernel](table.as_ptr(), rows as i64, cols as i64) };
            }
            Stage::Call { op, src, dst } => {
                // SAFETY: a call's source and destination are full locations (contiguous
                // n elements within the tile) and distinct.
                let (x, y) =
                    unsafe { (std::slice::from_raw_parts(at(*src), n), std::slice::from_raw_parts_mut(at(*dst), n)) };
                backend::unary_f32_into(*op, x, y);
            }
        }
    }
}

/// Runs a staged kernel over `rows × cols` (one chunk of a launch): tile by tile, whole
/// rows when they are short, else pieces of one row.
///
/// # Safety
/// As [`crate::exec::launch`]: `ptrs` (inputs then outputs) address `rows × cols`
/// elements with the access patterns in `access`.
pub(crate) unsafe fn run(
    st: &Staged,
    fns: &[KernelFn],
    ptrs: &[*mut f32],
    access: &[Access],
    rows: usize,
    cols: usize,
) {
    if rows * cols == 0 {
        return;
    }
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let need = st.n_temps.max(1) * TILE;
        if s.len() < need {
            s.resize(need, 0.0);
        }
        let scratch = s.as_mut_ptr();
        let n_in = access.len();
        let offset = |r: usize, c: usize| crate::launch::offset_to(ptrs, access, cols, r, c);
        if rows * cols <= TILE {
            // One tile (small kernels): the pointers as given.
            // SAFETY: the whole of rows × cols, the caller's guarantee.
            unsafe { run_tile(st, fns, ptrs, n_in, scratch, rows, cols) };
        } else if cols <= TILE {
            let step = TILE / cols;
            for r0 in (0..rows).step_by(step) {
                let r1 = (r0 + step).min(rows);
                // SAFETY: rows r0..r1 of every buffer, within the caller's guarantee.
                unsafe { run_tile(st, fns, &offset(r0, 0), n_in, scratch, r1 - r0, cols) };
            }
        } else {
            for r in 0..rows {
                for c0 in (0..cols).step_by(TILE) {
                    let c1 = (c0 + TILE).min(cols);
                    // SAFETY: columns c0..c1 of row r, within the caller's guarantee.
                    unsafe { run_tile(st, fns, &offset(r, c0), n_in, scratch, 1, c1 - c0) };
                }
            }
        }
    });
}
