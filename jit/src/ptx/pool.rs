//! Max and average pooling on GPUs and their gradients, with the CPU's semantics: a
//! window's maximum is taken over its cells in row-major order (a NaN wins, as `v >
//! best || v is NaN`), and the gradient goes to each window's *first* maximum; an
//! average is the in-order sum over the window's cells inside the input divided by
//! their count. The gradients gather: one thread per input element visits the windows
//! covering it in output order (so the additions happen in the CPU's order, from
//! `+0.0`), recomputing what each window needs — no atomics, deterministic.

use super::conv::{divmod, gather, input_coord, per_output_of, GatherDims, NEXT_WINDOW, STORE};
use super::{address, entry, header, load_params, Elem, Emitter, Reg};

/// −∞ as a literal of the float type `elem` (a window's maximum starts there).
fn neg_inf(elem: Elem) -> &'static str {
    if elem == Elem::F64 {
        "0dFFF0000000000000"
    } else {
        "0fFF800000"
    }
}

/// The max-pool entry's parameters, in order (all `.u64`).
pub const MAX_POOL_PARAMS: [&str; 14] =
    ["in", "out", "total", "c", "ow", "ohw", "h", "w", "kh", "kw", "sh", "sw", "pt", "pl"];

/// The max-pool gradient entry's parameters, in order (all `.u64`).
pub const MAX_POOL_GRAD_PARAMS: [&str; 15] =
    ["x", "dy", "out", "total", "c", "w", "h", "kh", "kw", "sh", "sw", "pt", "pl", "oh", "ow"];

/// Jumps to `skip` unless `coord < limit` (a coordinate below zero wrapped around, so it
/// is out of range too).
fn require_below(e: &mut Emitter, coord: Reg, limit: Reg, skip: &str) {
    let out = e.p();
    e.ins(format_args!("setp.ge.u64 {out}, {coord}, {limit}"));
    e.ins(format_args!("@{out} bra {skip}"));
}

/// `((img·h + iy)·w + ix)·c + ch`: the flat NHWC index.
fn nhwc(e: &mut Emitter, [img, iy, ix, ch]: [Reg; 4], [h, w, c]: [Reg; 3]) -> Reg {
    let at = e.rd();
    e.ins(format_args!("mad.lo.u64 {at}, {img}, {h}, {iy}"));
    e.ins(format_args!("mad.lo.u64 {at}, {at}, {w}, {ix}"));
    e.ins(format_args!("mad.lo.u64 {at}, {at}, {c}, {ch}"));
    at
}

/// A counted loop `k = 0, 1, …, n − 1` around `body`, labelled with `tag`; `body` may
/// jump to the label it is given to go on with the next `k`.
fn count_up(e: &mut Emitter, tag: &str, n: Reg, exit: &str, body: impl FnOnce(&mut Emitter, Reg, &str)) {
    let k = e.rd();
    e.ins(format_args!("mov.u64 {k}, 0"));
    let (head, next) = (format!("$L_{tag}"), format!("$L_{tag}_next"));
    let done = e.p();
    e.loop_head(&head, done, k, n, exit);
    body(e, k, &next);
    e.label(&next);
    e.ins(format_args!("add.s64 {k}, {k}, 1"));
    e.ins(format_args!("bra {head}"));
}

/// The window being walked: its output position, and the input's geometry and element
/// type.
struct Window {
    elem: Elem,
    img: Reg,
    oy: Reg,
    ox: Reg,
    ch: Reg,
    /// Input height, width and channels.
    hwc: [Reg; 3],
    /// Window height and width, strides, top and left padding.
    kh: Reg,
    kw: Reg,
    sh: Reg,
    sw: Reg,
    pt: Reg,
    pl: Reg,
}

/// Visits the cells of window `win` inside the input in row-major order (loops tagged
/// `tag`), loading each from `input`: `body` gets the cell's flat NHWC index and value.
/// Jumps to `exit` when done.
fn each_cell(
    e: &mut Emitter,
    tag: &str,
    win: &Window,
    input: Reg,
    exit: &str,
    body: impl FnOnce(&mut Emitter, Reg, Reg),
) {
    let [h, w, c] = win.hwc;
    count_up(e, &format!("{tag}y"), win.kh, exit, |e, ky, next_ky| {
        let iy = input_coord(e, win.oy, win.sh, ky, win.pt);
        require_below(e, iy, h, next_ky);
        count_up(e, &format!("{tag}x"), win.kw, next_ky, |e, kx, next_kx| {
            let ix = input_coord(e, win.ox, win.sw, kx, win.pl);
            require_below(e, ix, w, next_kx);
            let at = nhwc(e, [win.img, iy, ix, win.ch], [h, w, c]);
            let addr = address(e, input, at, win.elem.shift());
            let v = win.elem.load(e, addr);
            body(e, at, v);
        });
    });
}

/// A module with one entry, `name`: the max of each window of an NHWC `elem` (f32 or
/// f64) input (one thread per output element; parameters [`MAX_POOL_PARAMS`], `total` =
/// N·OH·OW·C).
pub fn render_max_pool(elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, c, ow, ohw, h, w, kh, kw, sh, sw, pt, pl]) =
        load_params(&mut e, name, &MAX_POOL_PARAMS);
    let (ty, mov) = (elem.setp(), elem.mov());
    per_output_of(&mut e, elem, total, output, |e, i| {
        let (o, ch) = divmod(e, i, c);
        let (img, pos) = divmod(e, o, ohw);
        let (oy, ox) = divmod(e, pos, ow);
        let best = elem.reg(e);
        e.ins(format_args!("mov.{mov} {best}, {}", neg_inf(elem)));
        let win = Window { elem, img, oy, ox, ch, hwc: [h, w, c], kh, kw, sh, sw, pt, pl };
        each_cell(e, "k", &win, input, STORE, |e, _, v| {
            let [gt, nan, take] = [e.p(), e.p(), e.p()];
            e.ins(format_args!("setp.gt.{ty} {gt}, {v}, {best}"));
            e.ins(format_args!("setp.nan.{ty} {nan}, {v}, {v}"));
            e.ins(format_args!("or.pred {take}, {gt}, {nan}"));
            e.ins(format_args!("@{take} mov.{mov} {best}, {v}"));
        });
        best
    });
    header() + &entry(name, &params, "", &e)
}

/// A module with one entry, `name`: the gradient of max pooling with respect to its
/// NHWC input `x`, given the output gradient `dy` (one thread per input element;
/// parameters [`MAX_POOL_GRAD_PARAMS`], `total` = N·H·W·C; `elem` f32 or f64).
pub fn render_max_pool_grad(elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [x, dy, output], [total, c, w, h, kh, kw, sh, sw, pt, pl, oh, ow]) =
        load_params(&mut e, name, &MAX_POOL_GRAD_PARAMS);
    let dims = GatherDims { total, c, w, h, kh, kw, sh, sw, pt, pl, oh, ow };
    gather(&mut e, elem, &dims, output, |e, at| {
        // The window's first maximum (flat index `arg`; all ones until a cell is seen).
        let (best, arg) = (elem.reg(e), e.rd());
        e.ins(format_args!("mov.{} {best}, {}", elem.mov(), neg_inf(elem)));
        e.ins(format_args!("mov.u64 {arg}, -1"));
        let win = Window { elem, img: at.img, oy: at.oy, ox: at.ox, ch: at.ch, hwc: [h, w, c], kh, kw, sh, sw, pt, pl };
        each_cell(e, "w", &win, x, "$L_window_done", |e, cell, v| first_max_step(e, elem, (best, arg), cell, v));
        e.label("$L_window_done");
        // Only the window whose first maximum is this element passes its gradient.
        let (me, mine) = (nhwc(e, [at.img, at.iy, at.ix, at.ch], [h, w, c]), e.p());
        e.ins(format_args!("setp.eq.u64 {mine}, {arg}, {me}"));
        e.ins(format_args!("@!{mine} bra {NEXT_WINDOW}"));
        let out_at = nhwc(e, [at.img, at.oy, at.ox, at.ch], [oh, ow, c]);
        let addr = address(e, dy, out_at, elem.shift());
        elem.load(e, addr)
    });
    header() + &entry(name, &params, "", &e)
}

/// One cell of the search for a window's first maximum (the CPU's `first_argmax`):
/// `(best, arg)` take the cell's value and flat index `cell` when no cell was taken yet
/// (`arg` all ones), the value is greater, or it is the first NaN.
fn first_max_step(e: &mut Emitter, elem: Elem, (best, arg): (Reg, Reg), cell: Reg, v: Reg) {
    let [first, gt, nan, best_num, nan_wins, take] = [e.p(), e.p(), e.p(), e.p(), e.p(), e.p()];
    let ty = elem.setp();
    e.ins(format_args!("setp.eq.u64 {first}, {arg}, -1"));
    e.ins(format_args!("setp.gt.{ty} {gt}, {v}, {best}"));
    e.ins(format_args!("setp.nan.{ty} {nan}, {v}, {v}"));
    e.ins(format_args!("setp.num.{ty} {best_num}, {best}, {best}"));
    e.ins(format_args!("and.pred {nan_wins}, {nan}, {best_num}"));
    e.ins(format_args!("or.pred {take}, {first}, {gt}"));
    e.ins(format_args!("or.pred {take}, {take}, {nan_wins}"));
    e.ins(format_args!("@{take} mov.{} {best}, {v}", elem.mov()));
    e.ins(format_args!("@{take} mov.u64 {arg}, {cell}"));
}

/// The entry's parameters of max pooling's second-order gradient, in order (all
/// `.u64`): `x`, `g` (of x's shape), the output, then as [`MAX_POOL_PARAMS`].
pub const MAX_POOL_GRAD_GRAD_PARAMS: [&str; 15] =
    ["x", "g", "out", "total", "c", "ow", "ohw", "h", "w", "kh", "kw", "sh", "sw", "pt", "pl"];

/// A module with one entry, `name`: `g` picked at each window's first maximum of `x`
/// (0 for a window with no cell inside the input) — the gradient of `MaxPool2dGrad`
/// with respect to its `dy` (one thread per output element; parameters
/// [`MAX_POOL_GRAD_GRAD_PARAMS`], `total` = N·OH·OW·C; `elem` f32 or f64).
pub fn render_max_pool_grad_grad(elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [x, g, output], [total, c, ow, ohw, h, w, kh, kw, sh, sw, pt, pl]) =
        load_params(&mut e, name, &MAX_POOL_GRAD_GRAD_PARAMS);
    per_output_of(&mut e, elem, total, output, |e, i| {
        let (o, ch) = divmod(e, i, c);
        let (img, pos) = divmod(e, o, ohw);
        let (oy, ox) = divmod(e, pos, ow);
        let (best, arg) = (elem.reg(e), e.rd());
        e.ins(format_args!("mov.{} {best}, {}", elem.mov(), neg_inf(elem)));
        e.ins(format_args!("mov.u64 {arg}, -1"));
        let win = Window { elem, img, oy, ox, ch, hwc: [h, w, c], kh, kw, sh, sw, pt, pl };
        each_cell(e, "k", &win, x, "$L_window_done", |e, cell, v| first_max_step(e, elem, (best, arg), cell, v));
        e.label("$L_window_done");
        let (found, picked) = (e.p(), elem.reg(e));
        e.ins(format_args!("setp.ne.u64 {found}, {arg}, -1"));
        e.ins(format_args!("mov.{} {picked}, {}", elem.mov(), elem.zero_literal()));
        let addr = address(e, g, arg, elem.shift());
        e.ins(format_args!("@{found} ld.global.nc.{} {picked}, [{addr}]", elem.load_type()));
        picked
    });
    header() + &entry(name, &params, "", &e)
}

/// The average-pool entry's parameters (as [`MAX_POOL_PARAMS`]).
pub const AVG_POOL_PARAMS: [&str; 14] = MAX_POOL_PARAMS;

/// The average-pool gradient entry's parameters, in order (all `.u64`).
pub const AVG_POOL_GRAD_PARAMS: [&str; 14] =
    ["dy", "out", "total", "c", "w", "h", "kh", "kw", "sh", "sw", "pt", "pl", "oh", "ow"];

/// How many of a window's `k` cells along one axis fall inside the input (`in` long)
/// for output coordinate `o`.
fn cells_inside(e: &mut Emitter, tag: &str, [o, stride, k, pad, len]: [Reg; 5]) -> Reg {
    let n = e.rd();
    e.ins(format_args!("mov.u64 {n}, 0"));
    let exit = format!("$L_{tag}_done");
    count_up(e, tag, k, &exit, |e, a, next| {
        let x = input_coord(e, o, stride, a, pad);
        require_below(e, x, len, next);
        e.ins(format_args!("add.s64 {n}, {n}, 1"));
    });
    e.label(&exit);
    n
}

/// A module with one entry, `name`: the average of each window of an NHWC `elem` (f32
/// or f64) input over its cells inside the input (parameters [`AVG_POOL_PARAMS`]).
pub fn render_avg_pool(elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, c, ow, ohw, h, w, kh, kw, sh, sw, pt, pl]) =
        load_params(&mut e, name, &AVG_POOL_PARAMS);
    let ty = elem.setp();
    per_output_of(&mut e, elem, total, output, |e, i| {
        let (o, ch) = divmod(e, i, c);
        let (img, pos) = divmod(e, o, ohw);
        let (oy, ox) = divmod(e, pos, ow);
        let (sum, count) = (elem.reg(e), e.rd());
        e.ins(format_args!("mov.{} {sum}, {}", elem.mov(), elem.zero_literal()));
        e.ins(format_args!("mov.u64 {count}, 0"));
        let win = Window { elem, img, oy, ox, ch, hwc: [h, w, c], kh, kw, sh, sw, pt, pl };
        each_cell(e, "k", &win, input, "$L_average", |e, _, v| {
            e.ins(format_args!("add.rn.{ty} {sum}, {sum}, {v}"));
            e.ins(format_args!("add.s64 {count}, {count}, 1"));
        });
        e.label("$L_average");
        let (n, mean) = (elem.reg(e), elem.reg(e));
        e.ins(format_args!("cvt.rn.{ty}.u64 {n}, {count}"));
        e.ins(format_args!("div.rn.{ty} {mean}, {sum}, {n}"));
        mean
    });
    header() + &entry(name, &params, "", &e)
}

/// A module with one entry, `name`: the gradient of average pooling with respect to
/// its NHWC input, given the output gradient `dy` — each window's gradient divided by
/// its count of cells inside the input (parameters [`AVG_POOL_GRAD_PARAMS`]; `elem`
/// f32 or f64).
pub fn render_avg_pool_grad(elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [dy, output], [total, c, w, h, kh, kw, sh, sw, pt, pl, oh, ow]) =
        load_params(&mut e, name, &AVG_POOL_GRAD_PARAMS);
    let dims = GatherDims { total, c, w, h, kh, kw, sh, sw, pt, pl, oh, ow };
    let ty = elem.setp();
    gather(&mut e, elem, &dims, output, |e, at| {
        let rows = cells_inside(e, "a", [at.oy, sh, kh, pt, h]);
        let cols = cells_inside(e, "b", [at.ox, sw, kw, pl, w]);
        let (count, n) = (e.rd(), elem.reg(e));
        e.ins(format_args!("mul.lo.u64 {count}, {rows}, {cols}"));
        e.ins(format_args!("cvt.rn.{ty}.u64 {n}, {count}"));
        let out_at = nhwc(e, [at.img, at.oy, at.ox, at.ch], [oh, ow, c]);
        let addr = address(e, dy, out_at, elem.shift());
        let g = elem.load(e, addr);
        let share = elem.reg(e);
        e.ins(format_args!("div.rn.{ty} {share}, {g}, {n}"));
        share
    });
    header() + &entry(name, &params, "", &e)
}
