//! Reductions split over many threads: `reduce_sum`, `reduce_mean`, `reduce_prod`,
//! `reduce_max` and `reduce_min` of i32, i64 and f64 tensors. On integers they are
//! exact — wrapping sums and products, max and min are associative and commutative on
//! two's complement integers, so any grouping gives the runtime's result bit for bit.
//! On f64, max and min are too (NaN propagates, as the runtime's), and sums and
//! products are deterministic (the grouping depends on the shape only) and agree with
//! the CPU's blocked order to rounding, as the f32 GPU reductions do.
//!
//! The input is viewed as `[outer, count, inner]` (the reduced axes are one run in the
//! middle). One pass writes `[outer, parts, inner]` partials: partial `p` of a line
//! combines the line's elements `p, p + parts, p + 2·parts, …` (neighbouring threads
//! read neighbouring addresses), one thread per partial in a grid-stride loop. The
//! launcher repeats passes until `parts` is 1; a mean's last pass then divides by the
//! original count: an f64 mean rounds, an integer one truncates toward zero (the
//! runtime's integer mean, the count wrapped to the element type as the runtime's
//! `n as T`).

use super::conv::{divmod, per_output_of};
use super::{entry, header, load_params, Elem, Emitter, Reg, RowReduce};

/// The split reduction entry's parameters, in order (all `.u64`): the input viewed as
/// `[outer, count, inner]`, the `[outer, parts, inner]` output, its element count
/// (`total`), `count`, `inner`, `parts`, then `mean` (1: divide each result by
/// `divisor`) and `divisor`.
pub const SPLIT_REDUCE_PARAMS: [&str; 8] = ["in", "out", "total", "count", "inner", "parts", "mean", "divisor"];

/// The identity of `op` on `elem` (i32, i64 or f64), as a PTX literal.
fn identity(op: RowReduce, elem: Elem) -> &'static str {
    let wide = elem == Elem::I64;
    if elem == Elem::F64 {
        return match op {
            RowReduce::Sum => "0d0000000000000000",
            RowReduce::Prod => "0d3FF0000000000000",
            RowReduce::Max => "0dFFF0000000000000",
            RowReduce::Min => "0d7FF0000000000000",
        };
    }
    match op {
        RowReduce::Sum => "0",
        RowReduce::Prod => "1",
        RowReduce::Max if wide => "0x8000000000000000",
        RowReduce::Max => "0x80000000",
        RowReduce::Min if wide => "0x7FFFFFFFFFFFFFFF",
        RowReduce::Min => "0x7FFFFFFF",
    }
}

/// A module with one entry, `name`: one pass of the reduction `op` over `elem` (i32,
/// i64 or f64) values (parameters [`SPLIT_REDUCE_PARAMS`]; any grid of
/// [`super::BLOCK`] threads per block).
pub fn render_split_reduce(op: RowReduce, elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, count, inner, parts, mean, divisor]) =
        load_params(&mut e, name, &SPLIT_REDUCE_PARAMS);
    let mov = if elem == Elem::I32 { "mov.b32" } else { "mov.b64" };
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
        combine(e, op, elem, acc, v);
        e.ins(format_args!("add.s64 {at}, {at}, {step}"));
        e.ins(format_args!("add.s64 {k}, {k}, {parts}"));
        e.ins(format_args!("bra $L_part"));
        e.label("$L_part_done");
        match elem {
            Elem::F64 => divide_f64_if(e, acc, (mean, divisor)),
            _ => divide_if(e, elem, acc, (mean, divisor)),
        }
    });
    header() + &entry(name, &params, "", &e)
}

/// `acc ← acc <op> v` in place.
fn combine(e: &mut Emitter, op: RowReduce, elem: Elem, acc: Reg, v: Reg) {
    let ty = elem.setp();
    if elem != Elem::F64 {
        let instruction = match op {
            RowReduce::Sum => "add",
            RowReduce::Prod => "mul.lo",
            RowReduce::Max => "max",
            RowReduce::Min => "min",
        };
        e.ins(format_args!("{instruction}.{ty} {acc}, {acc}, {v}"));
        return;
    }
    match op {
        RowReduce::Sum => e.ins(format_args!("add.rn.f64 {acc}, {acc}, {v}")),
        RowReduce::Prod => e.ins(format_args!("mul.rn.f64 {acc}, {acc}, {v}")),
        RowReduce::Max | RowReduce::Min => {
            // The runtime's max_nan/min_nan: v replaces acc when better or a NaN (a NaN,
            // once taken, stays: nothing is better than it and it is not replaced).
            let (better, nan, take) = (e.p(), e.p(), e.p());
            let cc = if op == RowReduce::Max { "gt" } else { "lt" };
            e.ins(format_args!("setp.{cc}.f64 {better}, {v}, {acc}"));
            e.ins(format_args!("setp.nan.f64 {nan}, {v}, {v}"));
            e.ins(format_args!("or.pred {take}, {better}, {nan}"));
            e.ins(format_args!("@{take} mov.b64 {acc}, {v}"));
        }
    }
}

/// `acc / divisor` (rounded) when `mean` is nonzero, else `acc` — an f64 mean.
fn divide_f64_if(e: &mut Emitter, acc: Reg, (mean, divisor): (Reg, Reg)) -> Reg {
    let (n, q, is_mean, out) = (e.rd(), e.rd(), e.p(), e.rd());
    e.ins(format_args!("cvt.rn.f64.u64 {n}, {divisor}"));
    e.ins(format_args!("div.rn.f64 {q}, {acc}, {n}"));
    e.ins(format_args!("setp.ne.u64 {is_mean}, {mean}, 0"));
    e.ins(format_args!("selp.b64 {out}, {q}, {acc}, {is_mean}"));
    out
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
/// is 1. A pass splits lines only while each thread's share is at least `PER_THREAD`
/// elements and the lines alone do not fill the GPU; then enough threads to fill it.
pub fn split_reduce_passes(count: usize, lines: usize) -> Vec<usize> {
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
        assert_eq!(split_reduce_passes(10, 1), [1], "a short line is one thread's");
        assert_eq!(split_reduce_passes(1000, 1 << 20), [1], "many lines fill the GPU alone");
        assert_eq!(split_reduce_passes(1 << 20, 1), [1 << 14, 1 << 8, 4, 1], "a long line: a few passes");
        assert_eq!(split_reduce_passes(1 << 20, 1 << 12), [32, 1], "lines share the GPU");
        assert_eq!(split_reduce_passes(0, 3), [1], "an empty line still gets its identity");
    }
}
