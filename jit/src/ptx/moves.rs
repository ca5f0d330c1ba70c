//! Data movement of any element type on GPUs: strided copies (permutes, broadcasts and
//! slices of i32/i64/bool tensors, slices of f32 ones — negative steps included — and
//! their scatter, the gradient of a slice), concatenation (one launch per part), and
//! scatters (`scatter_add`, the gradient of `gather`; segment max and min), folded per
//! output element in the CPU's order so that its bits are the CPU's. One thread per
//! element in grid-stride loops, 64-bit offsets (negative strides wrap, as two's
//! complement, to the right address).

use super::conv::{divmod, per_output_of};
use super::permute::{dense_strides, StridedWalk, PERMUTE_RANK};
use super::typed::Elem;
use super::{address, entry, grid_stride, header, load_params, Emitter, Reg};

/// The strided entry's parameters, in order (all `.u64`): the pointers, the element
/// count, the base offset, the dims `d0…d5` of the element grid walked, and the stride
/// `s0…s5` of each of its axes in the strided tensor (two's complement when negative).
pub const STRIDED_PARAMS: [&str; 16] =
    ["in", "out", "total", "base", "d0", "d1", "d2", "d3", "d4", "d5", "s0", "s1", "s2", "s3", "s4", "s5"];

/// The concat-part entry's parameters, in order (all `.u64`): the part, the output, the
/// part's element count, its row width `w` (elements from the axis on), the output's row
/// width `wide`, and where the part's rows start in an output row, `at`.
pub const CONCAT_PARAMS: [&str; 6] = ["in", "out", "total", "w", "wide", "at"];

/// The scatter entries' parameters, in order (all `.u64`): the `[outer, k, inner]`
/// updates, the `k` indices, the `[outer, size, inner]` output, its element count, then
/// `size`, `k` and `inner`.
pub const SCATTER_PARAMS: [&str; 7] = ["upd", "indices", "out", "total", "size", "k", "inner"];

/// How a scatter combines the updates that land on one output element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScatterFold {
    /// Their sum, from 0 (`scatter_add`, `unsorted_segment_sum`).
    Add,
    /// The largest, from the type's lowest value; a NaN wins and stays
    /// (`unsorted_segment_max`).
    Max,
    /// The smallest, from the type's highest value; a NaN wins and stays.
    Min,
    /// Their product, from 1 (`unsorted_segment_prod`); integers wrap.
    Prod,
}

/// `base + Σ coord_k · s_k` for element `i` of the grid of dims `d` (the last axis
/// varies fastest).
fn strided_offset(e: &mut Emitter, i: Reg, base: Reg, d: &[Reg], s: &[Reg]) -> Reg {
    let (rest, off) = (e.rd(), e.rd());
    e.ins(format_args!("mov.u64 {rest}, {i}"));
    e.ins(format_args!("mov.u64 {off}, {base}"));
    for k in (0..PERMUTE_RANK).rev() {
        let (q, coord) = divmod(e, rest, d[k]);
        e.ins(format_args!("mad.lo.u64 {off}, {coord}, {}, {off}", s[k]));
        e.ins(format_args!("mov.u64 {rest}, {q}"));
    }
    off
}

/// A module with one entry, `name`, copying `elem` elements between a dense tensor and
/// a strided view of another (parameters [`STRIDED_PARAMS`]): `out[i] = in[off(i)]`
/// (a gather: permutes, broadcasts, slices) or, with `scatter`, `out[off(i)] = in[i]`
/// (a slice's gradient, into zeros).
pub fn render_strided(elem: Elem, scatter: bool, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, base, d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5]) =
        load_params(&mut e, name, &STRIDED_PARAMS);
    let (d, s) = ([d0, d1, d2, d3, d4, d5], [s0, s1, s2, s3, s4, s5]);
    if !scatter {
        per_output_of(&mut e, elem, total, output, |e, i| {
            let off = strided_offset(e, i, base, &d, &s);
            let from = address(e, input, off, elem.shift());
            elem.load(e, from)
        });
    } else {
        let (i, stride) = grid_stride(&mut e);
        let done = e.p();
        e.loop_head("$L_elem", done, i, total, "$L_done");
        let from = address(&mut e, input, i, elem.shift());
        let v = elem.load(&mut e, from);
        let off = strided_offset(&mut e, i, base, &d, &s);
        let to = address(&mut e, output, off, elem.shift());
        elem.store(&mut e, to, v);
        e.ins(format_args!("add.s64 {i}, {i}, {stride}"));
        e.ins(format_args!("bra $L_elem"));
        e.label("$L_done");
    }
    header() + &entry(name, &params, "", &e)
}

/// A module with one entry, `name`, copying one part of a concatenation into its place
/// in the output (parameters [`CONCAT_PARAMS`]): `out[(i / w)·wide + at + i mod w] =
/// in[i]`.
pub fn render_concat_part(elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, w, wide, at]) = load_params(&mut e, name, &CONCAT_PARAMS);
    let (i, stride) = grid_stride(&mut e);
    let done = e.p();
    e.loop_head("$L_elem", done, i, total, "$L_done");
    let from = address(&mut e, input, i, elem.shift());
    let v = elem.load(&mut e, from);
    let (row, c) = divmod(&mut e, i, w);
    let dst = e.rd();
    e.ins(format_args!("mad.lo.u64 {dst}, {row}, {wide}, {at}"));
    e.ins(format_args!("add.s64 {dst}, {dst}, {c}"));
    let to = address(&mut e, output, dst, elem.shift());
    elem.store(&mut e, to, v);
    e.ins(format_args!("add.s64 {i}, {i}, {stride}"));
    e.ins(format_args!("bra $L_elem"));
    e.label("$L_done");
    header() + &entry(name, &params, "", &e)
}

/// A module with one entry, `name`: `out[o, i, x]` folds `upd[o, j, x]` over every `j`
/// with `indices[j] == i`, in the order of `j` (the CPU's order, so that sums round as
/// its do), for `value` updates (f32, f64, i32 or i64; bool too for max and min) and
/// `index` (i32 or i64) indices; an index outside `0..size` matches no output
/// (parameters [`SCATTER_PARAMS`]).
pub fn render_scatter(fold: ScatterFold, value: Elem, index: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [upd, indices, output], [total, size, k, inner]) = load_params(&mut e, name, &SCATTER_PARAMS);
    let (ty, mov) = (value.setp(), value.mov());
    per_output_of(&mut e, value, total, output, |e, t| {
        let (q, x) = divmod(e, t, inner);
        let (o, i) = divmod(e, q, size);
        let acc = match fold {
            ScatterFold::Add => value.constant(e, false),
            ScatterFold::Prod => value.constant(e, true),
            ScatterFold::Max | ScatterFold::Min => extreme(e, value, fold == ScatterFold::Max),
        };
        let (j, row) = (e.rd(), e.rd());
        e.ins(format_args!("mov.u64 {j}, 0"));
        // upd[(o·k + j)·inner + x], advanced by `inner` per j.
        e.ins(format_args!("mul.lo.u64 {row}, {o}, {k}"));
        e.ins(format_args!("mad.lo.u64 {row}, {row}, {inner}, {x}"));
        let done = e.p();
        e.loop_head("$L_j", done, j, k, "$L_j_done");
        let at = address(e, indices, j, index.shift());
        let id = index.load(e, at);
        let id = if index == Elem::I64 {
            id
        } else {
            let wide = e.rd();
            e.ins(format_args!("cvt.s64.s32 {wide}, {id}"));
            wide
        };
        let hit = e.p();
        e.ins(format_args!("setp.eq.s64 {hit}, {id}, {i}"));
        let from = address(e, upd, row, value.shift());
        let u = value.constant(e, false);
        e.ins(format_args!("@{hit} ld.global.nc.{} {u}, [{from}]", value.load_type()));
        match fold {
            ScatterFold::Add | ScatterFold::Prod => {
                let op = super::index::step_instruction(value, fold == ScatterFold::Prod);
                let next = value.reg(e);
                e.ins(format_args!("{op} {next}, {acc}, {u}"));
                e.ins(format_args!("@{hit} mov.{mov} {acc}, {next}"));
            }
            ScatterFold::Max | ScatterFold::Min => {
                // The runtime's rule: the update replaces the fold when it is a NaN or
                // strictly beyond it (a NaN fold stays: nothing compares beyond it).
                let take = e.p();
                let cmp = if fold == ScatterFold::Max { "gt" } else { "lt" };
                e.ins(format_args!("setp.{cmp}.{ty} {take}, {u}, {acc}"));
                if value.is_float() {
                    let nan = e.p();
                    e.ins(format_args!("setp.nan.{ty} {nan}, {u}, {u}"));
                    e.ins(format_args!("or.pred {take}, {take}, {nan}"));
                }
                e.ins(format_args!("and.pred {take}, {take}, {hit}"));
                e.ins(format_args!("@{take} mov.{mov} {acc}, {u}"));
            }
        }
        e.ins(format_args!("add.s64 {row}, {row}, {inner}"));
        e.ins(format_args!("add.s64 {j}, {j}, 1"));
        e.ins(format_args!("bra $L_j"));
        e.label("$L_j_done");
        acc
    });
    header() + &entry(name, &params, "", &e)
}

/// A register holding `value`'s lowest (`lowest`) or highest value: `f32::MIN`,
/// `i64::MAX`, `false`, … (the runtime's starting points of scatter max and min).
fn extreme(e: &mut Emitter, value: Elem, lowest: bool) -> Reg {
    let d = value.reg(e);
    let literal = match (value, lowest) {
        (Elem::F32, true) => "0fFF7FFFFF",
        (Elem::F32, false) => "0f7F7FFFFF",
        (Elem::F64, true) => "0dFFEFFFFFFFFFFFFF",
        (Elem::F64, false) => "0d7FEFFFFFFFFFFFFF",
        (Elem::I32, true) => "0x80000000",
        (Elem::I32, false) => "0x7FFFFFFF",
        (Elem::I64, true) => "0x8000000000000000",
        (Elem::I64, false) => "0x7FFFFFFFFFFFFFFF",
        (Elem::Bool, true) => "0",
        (Elem::Bool, false) => "1",
    };
    e.ins(format_args!("mov.{} {d}, {literal}", value.mov()));
    d
}

/// The strided entry's `d` and `s` parameters and base offset for `slice` of a tensor
/// of `dims` (`(start, step)` per axis, the output's `out` dims); `None` when the walk
/// keeps more than [`PERMUTE_RANK`] axes after merging ([`StridedWalk::coalesced`]: an
/// axis taken whole merges with its neighbours).
pub fn slice_dims(dims: &[usize], slice: &[(usize, i64)], out: &[usize]) -> Option<(u64, [u64; 2 * PERMUTE_RANK])> {
    let r = dims.len();
    if slice.len() != r || out.len() != r {
        return None;
    }
    let dense = dense_strides(dims);
    let mut base = 0u64;
    for (&(start, _), &s) in slice.iter().zip(&dense) {
        base = base.wrapping_add((start as u64).wrapping_mul(s));
    }
    let walk = StridedWalk {
        dims: out.iter().map(|&d| d as u64).collect(),
        strides: slice.iter().zip(&dense).map(|(&(_, step), &s)| (step as u64).wrapping_mul(s)).collect(),
    };
    Some((base, walk.params()?))
}

/// The axes each of several slices takes in turn (the other axes whole), which together
/// take `slice` (`(start, step)` per axis, the output's `out` dims) of a tensor of
/// `dims`, each one launch: all axes at once when one walk fits ([`slice_dims`]);
/// otherwise runs of consecutive axes, each as long as one walk takes (a single sliced
/// axis always does: whole axes around it merge). `None` when the lengths disagree.
pub fn slice_steps(dims: &[usize], slice: &[(usize, i64)], out: &[usize]) -> Option<Vec<Vec<usize>>> {
    let r = dims.len();
    if slice.len() != r || out.len() != r {
        return None;
    }
    if slice_dims(dims, slice, out).is_some() {
        return Some(vec![(0..r).collect()]);
    }
    // The dims after the steps so far, and the first axis no step has taken yet.
    let (mut cur, mut from) = (dims.to_vec(), 0);
    let mut steps = Vec::new();
    while from < r {
        let mut to = from;
        while to < r {
            let taken = |k: usize| (from..=to).contains(&k);
            let part: Vec<(usize, i64)> = (0..r).map(|k| if taken(k) { slice[k] } else { (0, 1) }).collect();
            let part_out: Vec<usize> = (0..r).map(|k| if taken(k) { out[k] } else { cur[k] }).collect();
            if slice_dims(&cur, &part, &part_out).is_none() {
                break;
            }
            to += 1;
        }
        if to == from {
            return None;
        }
        cur[from..to].copy_from_slice(&out[from..to]);
        steps.push((from..to).collect());
        from = to;
    }
    Some(steps)
}

/// The fill entry's parameters, in order (all `.u64`): the output, its word count, and
/// the words `lo` and `hi` (their low 32 bits) that even and odd words receive.
pub const FILL_PARAMS: [&str; 4] = ["out", "total", "lo", "hi"];

/// A module with one entry, `name`: a fill of any dtype, as the words of its packed
/// value — word `i` is `lo` for even `i` and `hi` for odd (an 8-byte element's halves;
/// the same word twice for 4-byte ones, a bool's byte repeated four times).
pub fn render_fill_words(name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [output], [total, lo, hi]) = load_params(&mut e, name, &FILL_PARAMS);
    let (lo32, hi32) = (e.r(), e.r());
    e.ins(format_args!("cvt.u32.u64 {lo32}, {lo}"));
    e.ins(format_args!("cvt.u32.u64 {hi32}, {hi}"));
    per_output_of(&mut e, Elem::I32, total, output, |e, i| {
        let (bit, odd, w) = (e.rd(), e.p(), e.r());
        e.ins(format_args!("and.b64 {bit}, {i}, 1"));
        e.ins(format_args!("setp.ne.u64 {odd}, {bit}, 0"));
        e.ins(format_args!("selp.b32 {w}, {hi32}, {lo32}, {odd}"));
        w
    });
    header() + &entry(name, &params, "", &e)
}

#[cfg(test)]
mod tests {
    use super::super::permute::tests::offsets;
    use super::*;

    /// `data` (a tensor of `dims`) sliced: the elements the slice's walk visits.
    fn sliced(data: &[u64], dims: &[usize], slice: &[(usize, i64)], out: &[usize]) -> Vec<u64> {
        let dense = dense_strides(dims);
        let base: u64 = slice.iter().zip(&dense).map(|(&(start, _), &s)| start as u64 * s).sum();
        let walk = StridedWalk {
            dims: out.iter().map(|&d| d as u64).collect(),
            strides: slice.iter().zip(&dense).map(|(&(_, step), &s)| (step as u64).wrapping_mul(s)).collect(),
        };
        offsets(&walk).iter().map(|&o| data[base.wrapping_add(o) as usize]).collect()
    }

    proptest::proptest! {
        #[test]
        fn slice_steps_compose_to_the_slice(
            axes in proptest::collection::vec((1usize..4, 0usize..4, -2i64..3, 0usize..4), 1..10),
        ) {
            // Each axis: its dim, and a start, non-zero step and length kept inside it.
            let dims: Vec<usize> = axes.iter().map(|a| a.0).collect();
            let mut slice = Vec::new();
            let mut out = Vec::new();
            for &(d, start, step, len) in &axes {
                let start = start % d;
                let step = if step == 0 { 1 } else { step };
                let room = if step > 0 { (d - 1 - start) / step as usize + 1 } else { start / (-step) as usize + 1 };
                slice.push((start, step));
                out.push(len.min(room).max(1));
            }
            let n: usize = dims.iter().product();
            let data: Vec<u64> = (0..n as u64).map(|v| v * 3 + 2).collect();
            let want = sliced(&data, &dims, &slice, &out);
            let steps = slice_steps(&dims, &slice, &out).expect("lengths agree");
            let (mut cur, mut cur_dims) = (data, dims.clone());
            for axes in &steps {
                let part: Vec<(usize, i64)> = (0..dims.len()).map(|k| if axes.contains(&k) { slice[k] } else { (0, 1) }).collect();
                let part_out: Vec<usize> = (0..dims.len()).map(|k| if axes.contains(&k) { out[k] } else { cur_dims[k] }).collect();
                proptest::prop_assert!(slice_dims(&cur_dims, &part, &part_out).is_some(), "each step is one launch");
                cur = sliced(&cur, &cur_dims, &part, &part_out);
                cur_dims = part_out;
            }
            proptest::prop_assert_eq!(cur, want);
        }
    }

    #[test]
    fn slices_of_many_cut_axes_take_several_launches() {
        let dims = [3; 8];
        let slice = [(1, 1); 8];
        let out = [2; 8];
        assert!(slice_dims(&dims, &slice, &out).is_none(), "eight cut axes are eight runs");
        let steps = slice_steps(&dims, &slice, &out).expect("lengths agree");
        assert_eq!(steps, vec![vec![0, 1, 2, 3, 4, 5], vec![6, 7]]);
        // Whole axes merge: one launch.
        let whole = [(0, 1); 8];
        assert_eq!(slice_steps(&dims, &whole, &dims), Some(vec![(0..8).collect()]));
    }
}
