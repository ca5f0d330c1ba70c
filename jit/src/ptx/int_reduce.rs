//! Integer reductions on GPUs: `reduce_sum`, `reduce_mean`, `reduce_prod`,
//! `reduce_max` and `reduce_min` of i32 and i64 tensors, exact — wrapping sums and
//! products, max and min are associative and commutative on two's complement integers,
//! so any grouping gives the runtime's result bit for bit, and the kernel may split a
//! long line among many threads.
//!
//! The input is viewed as `[outer, count, inner]` (the reduced axes are one run in the
//! middle). One pass writes `[outer, parts, inner]` partials: partial `p` of a line
//! combines the line's elements `p, p + parts, p + 2·parts, …` (neighbouring threads
//! read neighbouring addresses), one thread per partial in a grid-stride loop. The
//! launcher repeats passes until `parts` is 1; a mean's last pass then divides by the
//! original count, truncating toward zero (the runtime's integer mean, the count wrapped
//! to the element type as the runtime's `n as T`).

use super::conv::{divmod, per_output_of};
use super::{entry, header, load_params, Elem, Emitter, Reg, RowReduce};

/// The integer reduction entry's parameters, in order (all `.u64`): the input viewed as
/// `[outer, count, inner]`, the `[outer, parts, inner]` output, its element count
/// (`total`), `count`, `inner`, `parts`, then `mean` (1: divide each result by
/// `divisor`, truncating) and `divisor`.
pub const INT_REDUCE_PARAMS: [&str; 8] = ["in", "out", "total", "count", "inner", "parts", "mean", "divisor"];

/// The identity of `op` on `elem` (i32 or i64), as a PTX literal.
fn identity(op: RowReduce, elem: Elem) -> &'static str {
    let wide = elem == Elem::I64;
    match op {
        RowReduce::Sum => "0",
        RowReduce::Prod => "1",
        RowReduce::Max if wide => "0x8000000000000000",
        RowReduce::Max => "0x80000000",
        RowReduce::Min if wide => "0x7FFFFFFFFFFFFFFF",
        RowReduce::Min => "0x7FFFFFFF",
    }
}

/// A module with one entry, `name`: one pass of the integer reduction `op` over `elem`
/// (i32 or i64) values (parameters [`INT_REDUCE_PARAMS`]; any grid of [`super::BLOCK`]
/// threads per block).
pub fn render_int_reduce(op: RowReduce, elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, count, inner, parts, mean, divisor]) =
        load_params(&mut e, name, &INT_REDUCE_PARAMS);
    let (ty, mov) = (elem.setp(), if elem == Elem::I64 { "mov.b64" } else { "mov.b32" });
    let step = e.rd();
    e.ins(format_args!("mul.lo.u64 {step}, {parts}, {inner}"));
    per_output_of(&mut e, elem, total, output, |e, t| {
        let (q, x) = divmod(e, t, inner);
        let (o, p) = divmod(e, q, parts);
        let (at, k) = (e.rd(), e.rd());
        e.ins(format_args!("mad.lo.u64 {at}, {o}, {count}, {p}"));
        e.ins(format_args!("mad.lo.u64 {at}, {at}, {inner}, {x}"));
        e.ins(format_args!("mov.u64 {k}, {p}"));
        let acc = elem.reg(e);
        e.ins(format_args!("{mov} {acc}, {}", identity(op, elem)));
        let done = e.p();
        e.loop_head("$L_part", done, k, count, "$L_part_done");
        let addr = super::address(e, input, at, elem.shift());
        let v = elem.load(e, addr);
        let instruction = match op {
            RowReduce::Sum => "add",
            RowReduce::Prod => "mul.lo",
            RowReduce::Max => "max",
            RowReduce::Min => "min",
        };
        e.ins(format_args!("{instruction}.{ty} {acc}, {acc}, {v}"));
        e.ins(format_args!("add.s64 {at}, {at}, {step}"));
        e.ins(format_args!("add.s64 {k}, {k}, {parts}"));
        e.ins(format_args!("bra $L_part"));
        e.label("$L_part_done");
        divide_if(e, elem, acc, (mean, divisor))
    });
    header() + &entry(name, &params, "", &e)
}

/// `acc / divisor` truncated toward zero when `mean` is nonzero, else `acc`: the
/// runtime's `truncdiv` with the divisor wrapped to `elem`.
fn divide_if(e: &mut Emitter, elem: Elem, acc: Reg, (mean, divisor): (Reg, Reg)) -> Reg {
    let d = match elem {
        Elem::I64 => divisor,
        _ => {
            let d = e.r();
            e.ins(format_args!("cvt.u32.u64 {d}, {divisor}"));
            d
        }
    };
    let q = super::int::truncdiv(e, elem, acc, d);
    let (is_mean, out) = (e.p(), elem.reg(e));
    e.ins(format_args!("setp.ne.u64 {is_mean}, {mean}, 0"));
    e.ins(format_args!("selp.{} {out}, {q}, {acc}, {is_mean}", elem.selp()));
    out
}

/// The partials per line of each pass, for `lines` lines of `count` elements: the last
/// is 1. A pass splits lines only while each thread's share is at least [`PER_THREAD`]
/// elements and the lines alone do not fill the GPU; then enough threads to fill it.
pub fn int_reduce_passes(count: usize, lines: usize) -> Vec<usize> {
    /// Threads that keep a GPU busy.
    const THREADS: usize = 1 << 17;
    let most = (THREADS / lines.max(1)).max(1);
    let mut passes = Vec::new();
    let mut count = count;
    loop {
        let parts = count.div_ceil(PER_THREAD).min(most).max(1);
        passes.push(parts);
        if parts == 1 {
            return passes;
        }
        count = parts;
    }
}

/// The fewest elements one thread of a non-final pass combines.
pub const PER_THREAD: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_shrink_lines_until_one_partial_is_left() {
        assert_eq!(int_reduce_passes(10, 1), [1], "a short line is one thread's");
        assert_eq!(int_reduce_passes(1000, 1 << 20), [1], "many lines fill the GPU alone");
        assert_eq!(int_reduce_passes(1 << 20, 1), [1 << 14, 1 << 8, 4, 1], "a long line: a few passes");
        assert_eq!(int_reduce_passes(1 << 20, 1 << 12), [32, 1], "lines share the GPU");
        assert_eq!(int_reduce_passes(0, 3), [1], "an empty line still gets its identity");
    }
}
