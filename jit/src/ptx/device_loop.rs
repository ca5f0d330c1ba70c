//! `while` loops on a GPU as one launch: a loop over an arena ([`ArenaLoop`]: fused
//! kernels, whole-tensor f32 reductions and scalar comparisons) rendered as one entry
//! that a single block of [`BLOCK`] threads runs from the first trip to the last — the
//! condition is decided on the device, so a trip costs no host round trip and no launch.
//!
//! Every value lives in a global-memory arena laid out as the CPU's arena loop lays it
//! out (then a scratch room). Each step is the work a device plan's step does on the
//! GPU, in the same order: a kernel's expressions element by element through the same
//! lowering (threads striding over the elements; a kernel ending in a row sum or mean
//! writes the summed expression to the scratch room and reduces each row as the eager
//! reduction of the last axis does), a whole-tensor reduction in the row reduction's
//! fixed order ([`BlockLanes::line_total`], shared with `render_row_reduce`), then the
//! mean's division as the mean kernel makes it, a comparison as an IEEE `setp` — so a
//! loop run here gives the bits of the same loop run step by step on the GPU. A barrier follows every step: the arena is written and
//! read within the launch, so it is read through coherent loads (never `.nc`).
//!
//! Parameters (all `.u64`): `arena`, the loop variables' initial values `init0…`, the
//! outer values `outer0…` (by [`ArenaLoop`]'s outer index), the results `out0…`, and
//! `max` (the most trips; `u64::MAX` for none).

use std::fmt::Write;

use tensorjit_runtime::ops::{BinaryOp, ReduceOp};

use super::{address, entry, header, param, BlockLanes, Emitter, LineLabels, Reg, RowReduce, BLOCK};
use crate::arena_loop::{ArenaLoop, ArenaStep, Src};
use crate::kernel::{Access, Kernel};
use crate::lower::{self, Lower};

/// The most arena elements a device loop holds: one block walks every value of every
/// step, which pays while launches and host round trips dominate (small loop states);
/// past this the loop runs step by step, each kernel on the whole GPU. An estimate, not
/// a measurement: one SM (~2·10¹¹ lane-instructions/s) takes ~8 µs for a step of 16 Ki
/// elements at ~100 instructions each (a transcendental chain), about the ~10–25 µs a
/// trip costs step by step (launches, a synchronise, the condition's download).
pub const MAX_LOOP_ELEMENTS: usize = 1 << 14;

/// The entry's parameter names, in order.
pub fn loop_params(n_state: usize, n_outer: usize) -> Vec<String> {
    std::iter::once("arena".to_string())
        .chain((0..n_state).map(|j| format!("init{j}")))
        .chain((0..n_outer).map(|k| format!("outer{k}")))
        .chain((0..n_state).map(|j| format!("out{j}")))
        .chain(std::iter::once("max".to_string()))
        .collect()
}

/// What the entry's steps address: the arena, the outer values, the block's lanes.
struct Ctx<'a> {
    arena: Reg,
    outer: Vec<Reg>,
    t64: Reg,
    block: BlockLanes,
    kernels: &'a [Kernel],
    /// The predicate register of each comparison slot.
    preds: Vec<Option<Reg>>,
    labels: usize,
    /// Where the arena's scratch room starts (after the loop's own slots), and the most
    /// any step uses of it: a kernel ending in a row reduction writes the expression
    /// it sums there.
    scratch: usize,
    scratch_len: usize,
}

impl Ctx<'_> {
    /// A fresh label, `$L_{what}{n}`.
    fn label(&mut self, what: &str) -> String {
        self.labels += 1;
        format!("$L_{what}{}", self.labels)
    }

    /// The address of an operand's first element.
    fn ptr(&self, e: &mut Emitter, s: Src) -> Reg {
        match s {
            Src::Arena(off) => self.slot(e, off),
            Src::Outer(k) => self.outer[k],
        }
    }

    /// The address of arena element `off`.
    fn slot(&self, e: &mut Emitter, off: usize) -> Reg {
        let r = e.rd();
        e.ins(format_args!("add.s64 {r}, {}, {}", self.arena, 4 * off));
        r
    }

    /// `body(i)` for every i < `n`, thread t taking t, t + BLOCK, …
    fn each(&mut self, e: &mut Emitter, n: usize, body: impl FnOnce(&mut Emitter, Reg)) {
        let (head, done_label) = (self.label("each"), self.label("each_done"));
        let (i, end, done) = (e.rd(), e.rd(), e.p());
        e.ins(format_args!("mov.u64 {i}, {}", self.t64));
        e.ins(format_args!("mov.u64 {end}, {n}"));
        e.loop_head(&head, done, i, end, &done_label);
        body(e, i);
        e.ins(format_args!("add.s64 {i}, {i}, {BLOCK}"));
        e.ins(format_args!("bra {head}"));
        e.label(&done_label);
    }

    /// Copies `len` f32s from `from` to `to`.
    fn copy(&mut self, e: &mut Emitter, from: Reg, to: Reg, len: usize) {
        self.each(e, len, |e, i| {
            let (src, dst, v) = (address(e, from, i, 2), address(e, to, i, 2), e.f());
            e.ins(format_args!("ld.global.f32 {v}, [{src}]"));
            e.ins(format_args!("st.global.f32 [{dst}], {v}"));
        });
    }

    fn steps(&mut self, e: &mut Emitter, steps: &[ArenaStep]) -> Option<()> {
        for s in steps {
            match s {
                ArenaStep::Kernel { index, inputs, outputs, rows, cols } => {
                    self.kernel(e, self.kernels.get(*index)?, (inputs, outputs), (*rows, *cols))?
                }
                ArenaStep::Reduce { op, input, len, output } => self.reduce(e, *op, (*input, *len), *output),
                ArenaStep::Compare { op, a, b, output } => {
                    let (pa, pb) = (self.ptr(e, *a), self.ptr(e, *b));
                    let (x, y, p) = (e.f(), e.f(), e.p());
                    e.ins(format_args!("ld.global.f32 {x}, [{pa}]"));
                    e.ins(format_args!("ld.global.f32 {y}, [{pb}]"));
                    // IEEE, as the host compares: NaN is unequal and unordered.
                    let cc = match op {
                        BinaryOp::Eq => "eq",
                        BinaryOp::Ne => "neu",
                        BinaryOp::Lt => "lt",
                        BinaryOp::Le => "le",
                        BinaryOp::Gt => "gt",
                        BinaryOp::Ge => "ge",
                        _ => return None,
                    };
                    e.ins(format_args!("setp.{cc}.f32 {p}, {x}, {y}"));
                    *self.preds.get_mut(*output)? = Some(p);
                }
            }
            // Every thread's writes are seen, and every read is done, before the next step.
            e.ins(format_args!("bar.sync 0"));
        }
        Some(())
    }

    /// A fused kernel over `rows × cols` elements: inputs read as their access patterns
    /// say, outputs written to their slots. A kernel ending in a row sum or mean does
    /// what a device plan does with it: the summed expression is written out (to the
    /// scratch room), then each row is reduced as the GPU's eager reduction of the last
    /// axis reduces it, into the step's last output.
    fn kernel(
        &mut self,
        e: &mut Emitter,
        k: &Kernel,
        (inputs, outputs): (&[Src], &[usize]),
        (rows, cols): (usize, usize),
    ) -> Option<()> {
        let (k, reduce) = k.reduce_as_output();
        if k.inputs.len() != inputs.len() || k.outputs.len() != outputs.len() {
            return None;
        }
        let ptrs: Vec<Reg> = inputs.iter().map(|s| self.ptr(e, *s)).collect();
        let mut outs: Vec<Reg> = outputs.iter().map(|&off| self.slot(e, off)).collect();
        let reduced = match reduce {
            Some(r) => {
                // The summed expression goes to the scratch room; the last slot gets
                // the row totals.
                self.scratch_len = self.scratch_len.max(rows * cols);
                let summed = self.slot(e, self.scratch);
                Some((r.mean, std::mem::replace(outs.last_mut()?, summed)))
            }
            None => None,
        };
        self.elementwise(e, &k, (&ptrs, &outs), (rows, cols));
        if let Some((mean, to)) = reduced {
            e.ins(format_args!("bar.sync 0"));
            let from = *outs.last()?;
            self.rows(e, (from, to), (rows, cols), mean);
        }
        Some(())
    }

    /// Each of `rows` rows of `cols` values at `from` reduced to its sum (or mean) at
    /// `to`, one row after another, as the eager row reduction does each.
    fn rows(&mut self, e: &mut Emitter, (from, to): (Reg, Reg), (rows, cols): (usize, usize), mean: bool) {
        let (head, done_label) = (self.label("rows"), self.label("rows_done"));
        let (row, end, done, base, width) = (e.rd(), e.rd(), e.p(), e.rd(), e.rd());
        e.ins(format_args!("mov.u64 {row}, 0"));
        e.ins(format_args!("mov.u64 {end}, {rows}"));
        e.ins(format_args!("mov.u64 {width}, {cols}"));
        e.loop_head(&head, done, row, end, &done_label);
        e.ins(format_args!("mul.lo.u64 {base}, {row}, {width}"));
        let at = address(e, to, row, 2);
        self.line(e, (RowReduce::Sum, mean), (from, base, width, cols), at);
        e.ins(format_args!("bar.sync 0"));
        e.ins(format_args!("add.s64 {row}, {row}, 1"));
        e.ins(format_args!("bra {head}"));
        e.label(&done_label);
    }

    /// One line of `len` values from `input + base` (`cols` holding `len`) reduced with
    /// `which` — divided by `len` for a mean — and stored at `to` by thread 0.
    fn line(
        &mut self,
        e: &mut Emitter,
        (which, mean): (RowReduce, bool),
        (input, base, cols, len): (Reg, Reg, Reg, usize),
        to: Reg,
    ) {
        let identity = e.fconst(which.identity());
        let (col, col_done, skip) = (self.label("col"), self.label("col_done"), self.label("skip"));
        let labels = LineLabels { col: &col, col_done: &col_done, skip: &skip };
        let load = |e: &mut Emitter, addr: Reg| {
            let x = e.f();
            e.ins(format_args!("ld.global.f32 {x}, [{addr}]"));
            x
        };
        let is_lane0 = self.block.is_lane0;
        self.block.line_total(e, (which, identity), (input, base, cols), &labels, load, |e, total| {
            let result = if mean {
                let count = e.fconst(len as f32);
                lower::binary(e, BinaryOp::Div, total, count)
            } else {
                total
            };
            e.ins(format_args!("@{is_lane0} st.global.f32 [{to}], {result}"));
        });
    }

    /// A kernel without a reduction over `rows × cols` elements, threads striding over
    /// them: `ptrs` its inputs' first elements, `outs` its outputs'.
    fn elementwise(
        &mut self,
        e: &mut Emitter,
        k: &Kernel,
        (ptrs, outs): (&[Reg], &[Reg]),
        (rows, cols): (usize, usize),
    ) {
        let needs_rc = k.inputs.iter().any(|a| matches!(a, Access::Row | Access::Col));
        self.each(e, rows * cols, |e, i| {
            let (row, col) = (e.rd(), e.rd());
            if needs_rc {
                e.ins(format_args!("div.u64 {row}, {i}, {}", cols.max(1)));
                e.ins(format_args!("rem.u64 {col}, {i}, {}", cols.max(1)));
            }
            let values: Vec<Reg> = k
                .inputs
                .iter()
                .zip(ptrs)
                .map(|(a, &p)| {
                    let addr = match a {
                        Access::Scalar => p,
                        Access::Full => address(e, p, i, 2),
                        Access::Row => address(e, p, col, 2),
                        Access::Col => address(e, p, row, 2),
                    };
                    let v = e.f();
                    e.ins(format_args!("ld.global.f32 {v}, [{addr}]"));
                    v
                })
                .collect();
            let vals = lower::eval(e, k, |_, j| values.get(j).copied().unwrap_or(Reg::F(0)));
            for (&ex, &out) in k.outputs.iter().zip(outs) {
                let addr = address(e, out, i, 2);
                e.ins(format_args!("st.global.f32 [{addr}], {}", vals[ex]));
            }
        });
    }

    /// A whole-tensor reduction of `len` values into slot `output`, as the GPU's eager
    /// reduction of one row (and, for a mean, the mean kernel's division).
    fn reduce(&mut self, e: &mut Emitter, op: ReduceOp, (input, len): (Src, usize), output: usize) {
        let which = match op {
            ReduceOp::Sum | ReduceOp::Mean => RowReduce::Sum,
            ReduceOp::Prod => RowReduce::Prod,
            ReduceOp::Max => RowReduce::Max,
            ReduceOp::Min => RowReduce::Min,
        };
        let from = self.ptr(e, input);
        let to = self.slot(e, output);
        let (base, cols) = (e.rd(), e.rd());
        e.ins(format_args!("mov.u64 {base}, 0"));
        e.ins(format_args!("mov.u64 {cols}, {len}"));
        self.line(e, (which, op == ReduceOp::Mean), (from, base, cols, len), to);
    }

    /// Moves the body's results into the loop variables (through the staging room when
    /// the body permutes them), as the CPU's arena loop does.
    fn advance(&mut self, e: &mut Emitter, l: &ArenaLoop) {
        match l.staging {
            None => {
                for (s, &(off, len)) in l.next.iter().zip(&l.state) {
                    if *s != Src::Arena(off) {
                        let (from, to) = (self.ptr(e, *s), self.slot(e, off));
                        self.copy(e, from, to, len);
                    }
                }
            }
            Some(stage) => {
                let mut at = stage;
                for (s, &(_, len)) in l.next.iter().zip(&l.state) {
                    let (from, to) = (self.ptr(e, *s), self.slot(e, at));
                    self.copy(e, from, to, len);
                    at += len;
                }
                e.ins(format_args!("bar.sync 0"));
                let mut at = stage;
                for &(off, len) in &l.state {
                    let (from, to) = (self.slot(e, at), self.slot(e, off));
                    self.copy(e, from, to, len);
                    at += len;
                }
            }
        }
        e.ins(format_args!("bar.sync 0"));
    }
}

/// A module with one entry, `name`, running loop `l` (whose kernel steps index
/// `kernels`) from its first trip to its last in one block (see the module docs), and
/// the arena it needs (the loop's slots, then a scratch room); `None` when the loop
/// does not qualify: an arena past [`MAX_LOOP_ELEMENTS`].
pub(crate) fn render_loop(l: &ArenaLoop, kernels: &[Kernel], name: &str) -> Option<(String, usize)> {
    let (n_state, n_outer) = (l.state.len(), l.outer_values().len());
    let params = loop_params(n_state, n_outer);
    let mut e = Emitter::default();
    let ptrs: Vec<Reg> = params[..params.len() - 1].iter().map(|p| param(&mut e, name, p, true)).collect();
    let max = param(&mut e, name, "max", false);
    let (arena, init) = (ptrs[0], &ptrs[1..=n_state]);
    let (outer, out) = (ptrs[1 + n_state..1 + n_state + n_outer].to_vec(), &ptrs[1 + n_state + n_outer..]);
    let [tid, lane, warp] = [e.r(), e.r(), e.r()];
    e.ins(format_args!("mov.u32 {tid}, %tid.x"));
    e.ins(format_args!("and.b32 {lane}, {tid}, 31"));
    e.ins(format_args!("shr.u32 {warp}, {tid}, 5"));
    let (t64, shared) = (e.rd(), e.rd());
    e.ins(format_args!("cvt.u64.u32 {t64}, {tid}"));
    e.ins(format_args!("mov.u64 {shared}, {name}_partial"));
    let block = BlockLanes::new(&mut e, (tid, t64, lane, warp), shared);
    let preds = vec![None; l.n_preds()];
    let mut cx = Ctx { arena, outer, t64, block, kernels, preds, labels: 0, scratch: l.arena_len, scratch_len: 0 };
    for (&from, &(off, len)) in init.iter().zip(&l.state) {
        let to = cx.slot(&mut e, off);
        cx.copy(&mut e, from, to, len);
    }
    e.ins(format_args!("bar.sync 0"));
    let (trips, at_max) = (e.rd(), e.p());
    e.ins(format_args!("mov.u64 {trips}, 0"));
    e.loop_head("$L_trip", at_max, trips, max, "$L_exit");
    cx.steps(&mut e, &l.cond)?;
    let go_on = (*cx.preds.get(l.pred)?)?;
    e.ins(format_args!("@!{go_on} bra $L_exit"));
    cx.steps(&mut e, &l.body)?;
    cx.advance(&mut e, l);
    e.ins(format_args!("add.s64 {trips}, {trips}, 1"));
    e.ins(format_args!("bra $L_trip"));
    e.label("$L_exit");
    for (&to, &(off, len)) in out.iter().zip(&l.state) {
        let from = cx.slot(&mut e, off);
        cx.copy(&mut e, from, to, len);
    }
    let arena_len = l.arena_len + cx.scratch_len;
    if arena_len > MAX_LOOP_ELEMENTS {
        return None;
    }
    let mut text = header();
    let _ = writeln!(text, ".shared .align 4 .f32 {name}_partial[{}];\n", BLOCK / 32);
    Some((text + &entry(name, &params, &format!("\n.reqntid {BLOCK}, 1, 1"), &e), arena_len))
}
