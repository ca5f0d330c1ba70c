//! Index ops on GPUs: `one_hot`, `gather` along an axis, `argmax`/`argmin` along an
//! axis — one thread per output element in a grid-stride loop, 64-bit indices, the
//! runtime's rules: an index outside `0..depth` (one_hot) or `0..n` (gather) gives a
//! row of zeros; an arg-reduction keeps the first of equal values, and the first NaN
//! wins over everything — and `cumsum`/`cumprod`, one thread per line along the axis.

use super::conv::{divmod, per_output_of};
use super::typed::Elem;
use super::{address, entry, grid_stride, header, load_params, Emitter, Reg};

/// The one-hot entry's parameters, in order (all `.u64`): the indices, the output,
/// the output's element count and the depth.
pub const ONE_HOT_PARAMS: [&str; 4] = ["in", "out", "total", "depth"];

/// The gather entry's parameters, in order (all `.u64`): the gathered tensor viewed as
/// `[outer, n, inner]`, the `m` indices, the `[outer, m, inner]` output, its element
/// count, then `n`, `m` and `inner`.
pub const GATHER_PARAMS: [&str; 7] = ["params", "indices", "out", "total", "n", "m", "inner"];

/// The arg-reduction entry's parameters, in order (all `.u64`): the input viewed as
/// `[outer, n, inner]`, the `[outer, inner]` i64 output, its element count, `n` and
/// `inner`.
pub const ARG_REDUCE_PARAMS: [&str; 5] = ["in", "out", "total", "n", "inner"];

/// The cumsum entry's parameters, in order (all `.u64`): the input viewed as
/// `[outer, n, inner]`, the output of the same layout, its element count, `n` (≥ 1),
/// `inner`, and the `exclusive` and `reverse` flags (0 or 1).
pub const CUMSUM_PARAMS: [&str; 7] = ["in", "out", "total", "n", "inner", "exclusive", "reverse"];

/// The instruction that adds (multiplies, when `product`) two `elem` values as the
/// runtime's sums and products do: floats rounded to nearest, integers wrapping.
pub(super) fn step_instruction(elem: Elem, product: bool) -> &'static str {
    match (elem, product) {
        (Elem::F32, false) => "add.rn.f32",
        (Elem::F64, false) => "add.rn.f64",
        (Elem::I32, false) => "add.s32",
        (Elem::I64, false) => "add.s64",
        (Elem::F32, true) => "mul.rn.f32",
        (Elem::F64, true) => "mul.rn.f64",
        (Elem::I32, true) => "mul.lo.s32",
        (Elem::I64, true) => "mul.lo.s64",
        (Elem::Bool, _) => unreachable!("sums and products of bool are rejected by their shape inference"),
    }
}

/// Index `j` of the index buffer at `base` (i32 or i64), as a signed 64-bit value.
fn index_at(e: &mut Emitter, index: Elem, base: Reg, j: Reg) -> Reg {
    let addr = address(e, base, j, index.shift());
    let v = index.load(e, addr);
    if index == Elem::I64 {
        return v;
    }
    let wide = e.rd();
    e.ins(format_args!("cvt.s64.s32 {wide}, {v}"));
    wide
}

/// A module with one entry, `name`: `out[r, c] = (indices[r] == c)` as `out`'s 1 or 0,
/// for `index` (i32 or i64) indices (parameters [`ONE_HOT_PARAMS`]).
pub fn render_one_hot(index: Elem, out: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, depth]) = load_params(&mut e, name, &ONE_HOT_PARAMS);
    per_output_of(&mut e, out, total, output, |e, i| {
        let (r, c) = divmod(e, i, depth);
        let id = index_at(e, index, input, r);
        // 0 ≤ c < depth: an index outside that range equals no column.
        let hot = e.p();
        e.ins(format_args!("setp.eq.s64 {hot}, {id}, {c}"));
        let (one, zero, d) = (out.constant(e, true), out.constant(e, false), out.reg(e));
        e.ins(format_args!("selp.{} {d}, {one}, {zero}, {hot}", out.selp()));
        d
    });
    header() + &entry(name, &params, "", &e)
}

/// A module with one entry, `name`: `out[o, j, x] = params[o, indices[j], x]` (zero for
/// an index outside `0..n`) for `elem` values and `index` (i32 or i64) indices
/// (parameters [`GATHER_PARAMS`]).
pub fn render_gather(elem: Elem, index: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [values, indices, output], [total, n, m, inner]) = load_params(&mut e, name, &GATHER_PARAMS);
    per_output_of(&mut e, elem, total, output, |e, i| {
        let (q, x) = divmod(e, i, inner);
        let (o, j) = divmod(e, q, m);
        let id = index_at(e, index, indices, j);
        // Unsigned: a negative index is a huge one, out of range too.
        let ok = e.p();
        e.ins(format_args!("setp.lt.u64 {ok}, {id}, {n}"));
        let src = e.rd();
        e.ins(format_args!("mad.lo.u64 {src}, {o}, {n}, {id}"));
        e.ins(format_args!("mad.lo.u64 {src}, {src}, {inner}, {x}"));
        let v = elem.constant(e, false);
        let at = address(e, values, src, elem.shift());
        e.ins(format_args!("@{ok} ld.global.nc.{} {v}, [{at}]", elem.load_type()));
        v
    });
    header() + &entry(name, &params, "", &e)
}

/// A module with one entry, `name`: the index along `n` of the largest (`max`) or
/// smallest value of each `[o, ·, x]` line of an `elem` input, as i64 (parameters
/// [`ARG_REDUCE_PARAMS`]; `n` ≥ 1). Each thread walks its line in order: a value
/// replaces the best so far when strictly better, or when it is the first NaN.
pub fn render_arg_reduce(elem: Elem, max: bool, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, n, inner]) = load_params(&mut e, name, &ARG_REDUCE_PARAMS);
    per_output_of(&mut e, Elem::I64, total, output, |e, t| {
        let (o, x) = divmod(e, t, inner);
        let (at, best, r) = (e.rd(), e.rd(), e.rd());
        e.ins(format_args!("mul.lo.u64 {at}, {o}, {n}"));
        e.ins(format_args!("mad.lo.u64 {at}, {at}, {inner}, {x}"));
        e.ins(format_args!("mov.u64 {best}, 0"));
        e.ins(format_args!("mov.u64 {r}, 1"));
        let first = address(e, input, at, elem.shift());
        let bv = elem.load(e, first);
        let done = e.p();
        e.loop_head("$L_line", done, r, n, "$L_line_done");
        e.ins(format_args!("add.s64 {at}, {at}, {inner}"));
        let addr = address(e, input, at, elem.shift());
        let c = elem.load(e, addr);
        let take = e.p();
        let cmp = if max { "gt" } else { "lt" };
        e.ins(format_args!("setp.{cmp}.{} {take}, {c}, {bv}", elem.setp()));
        if elem.is_float() {
            // Better, or a NaN — and only while the best is not a NaN already.
            let (c_nan, b_num, ty) = (e.p(), e.p(), elem.setp());
            e.ins(format_args!("setp.nan.{ty} {c_nan}, {c}, {c}"));
            e.ins(format_args!("setp.num.{ty} {b_num}, {bv}, {bv}"));
            e.ins(format_args!("or.pred {take}, {take}, {c_nan}"));
            e.ins(format_args!("and.pred {take}, {take}, {b_num}"));
        }
        let mov = match elem {
            Elem::F32 => "mov.f32",
            Elem::I64 | Elem::F64 => "mov.u64",
            Elem::I32 | Elem::Bool => "mov.b32",
        };
        e.ins(format_args!("@{take} mov.u64 {best}, {r}"));
        e.ins(format_args!("@{take} {mov} {bv}, {c}"));
        e.ins(format_args!("add.s64 {r}, {r}, 1"));
        e.ins(format_args!("bra $L_line"));
        e.label("$L_line_done");
        best
    });
    header() + &entry(name, &params, "", &e)
}

/// A module with one entry, `name`: the running sums (running products when `product`)
/// of an `elem` input (f32, f64, i32 or i64) along the middle of `[outer, n, inner]`
/// (parameters [`CUMSUM_PARAMS`]). Each thread walks one `[o, ·, x]` line in order (from
/// its end when reversed), rounding each step as the CPU kernel does (integers wrap),
/// so the results are the CPU's bits.
pub fn render_scan(elem: Elem, product: bool, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, n, inner, exclusive, reverse]) = load_params(&mut e, name, &CUMSUM_PARAMS);
    let add = step_instruction(elem, product);
    let (excl, rev) = (e.p(), e.p());
    e.ins(format_args!("setp.ne.u64 {excl}, {exclusive}, 0"));
    e.ins(format_args!("setp.ne.u64 {rev}, {reverse}, 0"));
    // Reversed lines start at their last element and step back.
    let (lines, back, step) = (e.rd(), e.rd(), e.rd());
    e.ins(format_args!("div.u64 {lines}, {total}, {n}"));
    e.ins(format_args!("sub.s64 {back}, {n}, 1"));
    e.ins(format_args!("mul.lo.u64 {back}, {back}, {inner}"));
    e.ins(format_args!("mov.u64 {step}, {inner}"));
    e.ins(format_args!("@{rev} neg.s64 {step}, {step}"));
    let (t, stride) = grid_stride(&mut e);
    let done = e.p();
    e.loop_head("$L_line", done, t, lines, "$L_done");
    let (o, x) = divmod(&mut e, t, inner);
    let (at, r) = (e.rd(), e.rd());
    e.ins(format_args!("mul.lo.u64 {at}, {o}, {n}"));
    e.ins(format_args!("mad.lo.u64 {at}, {at}, {inner}, {x}"));
    e.ins(format_args!("@{rev} add.s64 {at}, {at}, {back}"));
    e.ins(format_args!("mov.u64 {r}, 0"));
    let acc = elem.constant(&mut e, product);
    let (before, written) = (elem.reg(&mut e), elem.reg(&mut e));
    let end = e.p();
    e.loop_head("$L_scan", end, r, n, "$L_scan_done");
    let from = address(&mut e, input, at, elem.shift());
    let v = elem.load(&mut e, from);
    e.ins(format_args!("mov.{} {before}, {acc}", elem.mov()));
    e.ins(format_args!("{add} {acc}, {acc}, {v}"));
    e.ins(format_args!("selp.{} {written}, {before}, {acc}, {excl}", elem.selp()));
    let to = address(&mut e, output, at, elem.shift());
    elem.store(&mut e, to, written);
    e.ins(format_args!("add.s64 {at}, {at}, {step}"));
    e.ins(format_args!("add.s64 {r}, {r}, 1"));
    e.ins(format_args!("bra $L_scan"));
    e.label("$L_scan_done");
    e.ins(format_args!("add.s64 {t}, {t}, {stride}"));
    e.ins(format_args!("bra $L_line"));
    e.label("$L_done");
    header() + &entry(name, &params, "", &e)
}
