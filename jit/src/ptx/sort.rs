//! `argsort` on GPUs: a stable sort of each `[o, ·, x]` line of `[outer, n, inner]` by
//! ranking. The thread of element `i` counts the elements of its line that sort before
//! it — a smaller key, or an equal key at an earlier position — and writes `i` at that
//! rank if it is one of the first `keep` (all of them for `argsort`, `k` for `top_k`). Keys are the runtime's (`kernels/sort.rs`): a value's bits mapped so that
//! unsigned order is the documented order (NaN above +∞, every NaN one key, −0 and +0
//! equal), inverted when descending. Every rank is distinct, so the output is the CPU's
//! permutation exactly. `n` threads each read the whole line: O(n²) work per line, for
//! the lines a launcher gives it ([`ARGSORT_MAX_LINE`]).

use super::conv::divmod;
use super::typed::Elem;
use super::{address, entry, grid_stride, header, load_params, Emitter, Reg};

/// The argsort entry's parameters, in order (all `.u64`): the input viewed as
/// `[outer, n, inner]`, the i64 output `[outer, keep, inner]`, the *input's* element
/// count, `n`, `inner`, `keep` (≤ n: the ranks written) and `descending` (0 or 1).
pub const ARGSORT_PARAMS: [&str; 7] = ["in", "out", "total", "n", "inner", "keep", "descending"];

/// The longest line a launcher hands the ranking kernel: each element reads its whole
/// line, so longer lines are sorted on the host (O(n log n) there).
pub const ARGSORT_MAX_LINE: usize = 8192;

/// The sort key of `v` (an `elem` register) in a fresh unsigned register of its width,
/// xored with `flip` (all ones when descending, else 0).
fn sort_key(e: &mut Emitter, elem: Elem, v: Reg, flip: Reg) -> Reg {
    let wide = matches!(elem, Elem::F64 | Elem::I64);
    let (b, w) = if wide { ("b64", 64) } else { ("b32", 32) };
    let sign = if wide { "0x8000000000000000" } else { "0x80000000" };
    let reg = |e: &mut Emitter| if wide { e.rd() } else { e.r() };
    let bits = reg(e);
    match elem {
        Elem::F32 | Elem::F64 => {
            // One key for every NaN (the canonical quiet NaN's), one for ±0.
            let (nan, zero, ty) = (e.p(), e.p(), elem.setp());
            let (canonical, zero_literal) =
                if wide { ("0x7FF8000000000000", Elem::F64.zero_literal()) } else { ("0x7FC00000", "0f00000000") };
            e.ins(format_args!("mov.{b} {bits}, {v}"));
            e.ins(format_args!("setp.nan.{ty} {nan}, {v}, {v}"));
            e.ins(format_args!("setp.eq.{ty} {zero}, {v}, {zero_literal}"));
            e.ins(format_args!("selp.{b} {bits}, {canonical}, {bits}, {nan}"));
            e.ins(format_args!("selp.{b} {bits}, 0, {bits}, {zero}"));
            // Negatives flipped whole (their order reverses), positives above them:
            // bits ^ ((bits >> (w−1), arithmetic) | sign).
            let mask = reg(e);
            let s = if wide { "s64" } else { "s32" };
            e.ins(format_args!("shr.{s} {mask}, {bits}, {}", w - 1));
            e.ins(format_args!("or.{b} {mask}, {mask}, {sign}"));
            e.ins(format_args!("xor.{b} {bits}, {bits}, {mask}"));
        }
        Elem::I32 | Elem::I64 => e.ins(format_args!("xor.{b} {bits}, {v}, {sign}")),
        Elem::Bool => unreachable!("argsort of bool is rejected by its shape inference"),
    }
    e.ins(format_args!("xor.{b} {bits}, {bits}, {flip}"));
    bits
}

/// A module with one entry, `name`: the stable argsort of each line of an `elem` input
/// (f32, f64, i32 or i64) as i64 positions (parameters [`ARGSORT_PARAMS`]; a grid-stride
/// loop over the elements).
pub fn render_argsort(elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, n, inner, keep, descending]) = load_params(&mut e, name, &ARGSORT_PARAMS);
    let wide = matches!(elem, Elem::F64 | Elem::I64);
    let u = if wide { "u64" } else { "u32" };
    // All ones when descending: the keys are inverted, as the CPU's are.
    let ones = e.rd();
    e.ins(format_args!("neg.s64 {ones}, {descending}"));
    let flip = if wide {
        ones
    } else {
        let low = e.r();
        e.ins(format_args!("cvt.u32.u64 {low}, {ones}"));
        low
    };
    let (t, stride) = grid_stride(&mut e);
    let done = e.p();
    e.loop_head("$L_elem", done, t, total, "$L_done");
    let (q, x) = divmod(&mut e, t, inner);
    let (o, i) = divmod(&mut e, q, n);
    // The line's first element, o·n·inner + x; element j is `inner` further per step.
    let (first, at, j, rank) = (e.rd(), e.rd(), e.rd(), e.rd());
    e.ins(format_args!("mul.lo.u64 {first}, {o}, {n}"));
    e.ins(format_args!("mad.lo.u64 {first}, {first}, {inner}, {x}"));
    let own = address(&mut e, input, t, elem.shift());
    let v = elem.load(&mut e, own);
    let key = sort_key(&mut e, elem, v, flip);
    e.ins(format_args!("mov.u64 {at}, {first}"));
    e.ins(format_args!("mov.u64 {j}, 0"));
    e.ins(format_args!("mov.u64 {rank}, 0"));
    let line_done = e.p();
    e.loop_head("$L_line", line_done, j, n, "$L_line_done");
    let from = address(&mut e, input, at, elem.shift());
    let c = elem.load(&mut e, from);
    let other = sort_key(&mut e, elem, c, flip);
    // Before: a smaller key, or the same key at an earlier position.
    let [smaller, same, earlier] = [e.p(), e.p(), e.p()];
    e.ins(format_args!("setp.lt.{u} {smaller}, {other}, {key}"));
    e.ins(format_args!("setp.eq.{u} {same}, {other}, {key}"));
    e.ins(format_args!("setp.lt.u64 {earlier}, {j}, {i}"));
    e.ins(format_args!("and.pred {same}, {same}, {earlier}"));
    e.ins(format_args!("or.pred {smaller}, {smaller}, {same}"));
    e.ins(format_args!("@{smaller} add.s64 {rank}, {rank}, 1"));
    e.ins(format_args!("add.s64 {at}, {at}, {inner}"));
    e.ins(format_args!("add.s64 {j}, {j}, 1"));
    e.ins(format_args!("bra $L_line"));
    e.label("$L_line_done");
    // out[o, rank, x] = i for the kept ranks (rank < keep ≤ n).
    let (dropped, slot) = (e.p(), e.rd());
    e.ins(format_args!("setp.ge.u64 {dropped}, {rank}, {keep}"));
    e.ins(format_args!("@{dropped} bra $L_next"));
    e.ins(format_args!("mul.lo.u64 {slot}, {o}, {keep}"));
    e.ins(format_args!("add.s64 {slot}, {slot}, {rank}"));
    e.ins(format_args!("mad.lo.u64 {slot}, {slot}, {inner}, {x}"));
    let to = address(&mut e, output, slot, Elem::I64.shift());
    Elem::I64.store(&mut e, to, i);
    e.label("$L_next");
    e.ins(format_args!("add.s64 {t}, {t}, {stride}"));
    e.ins(format_args!("bra $L_elem"));
    e.label("$L_done");
    header() + &entry(name, &params, "", &e)
}
