//! im2col for conv2d on GPUs (the GEMM that follows is cuBLAS's): the NHWC input's
//! windows laid out as the rows of a `[N·OH·OW, KH·KW·C]` matrix, zeros for cells in the
//! padding — the layout of the runtime's CPU im2col, so the filter (HWIO, i.e.
//! `[KH·KW·C, O]`) multiplies it directly. One thread per matrix element in a
//! grid-stride loop; every index is 64-bit.

use super::typed::Elem;
use super::{address, entry, grid_stride, header, load_params, Emitter, Reg};

/// The entry's parameters, in order (all `.u64`): the input and output pointers, the
/// matrix's element count, then the geometry.
pub const IM2COL_PARAMS: [&str; 14] =
    ["in", "out", "total", "kk", "c", "kw", "ohw", "ow", "h", "w", "sh", "sw", "pt", "pl"];

/// A module with one entry, `name`, writing the im2col matrix of an NHWC `elem` (f32 or
/// f64) input.
/// Parameters: [`IM2COL_PARAMS`] — `total` = N·OH·OW·KK, `kk` = KH·KW·C, `c` channels,
/// `kw` window width, `ohw` = OH·OW, `ow` output width, `h`/`w` input height/width,
/// `sh`/`sw` strides, `pt`/`pl` top/left padding.
pub fn render_im2col(elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, kk, c, kw, ohw, ow, h, w, sh, sw, pt, pl]) =
        load_params(&mut e, name, &IM2COL_PARAMS);
    per_output_of(&mut e, elem, total, output, |e, i| {
        // Matrix row o (output position) and column j (window cell, channel).
        let (o, j) = divmod(e, i, kk);
        let (cell, ch) = divmod(e, j, c);
        let (ky, kx) = divmod(e, cell, kw);
        let (img, pos) = divmod(e, o, ohw);
        let (oy, ox) = divmod(e, pos, ow);
        // Input row and column (signed: the padding lies before 0).
        let iy = input_coord(e, oy, sh, ky, pt);
        let ix = input_coord(e, ox, sw, kx, pl);
        let [in_h, in_w, ok] = [e.p(), e.p(), e.p()];
        // Unsigned compares: a negative coordinate is a huge unsigned one, out of range too.
        e.ins(format_args!("setp.lt.u64 {in_h}, {iy}, {h}"));
        e.ins(format_args!("setp.lt.u64 {in_w}, {ix}, {w}"));
        e.ins(format_args!("and.pred {ok}, {in_h}, {in_w}"));
        let v = elem.reg(e);
        e.ins(format_args!("mov.{} {v}, {}", elem.mov(), elem.zero_literal()));
        // src = ((img·h + iy)·w + ix)·c + ch, loaded only inside the input.
        let src = e.rd();
        e.ins(format_args!("mad.lo.u64 {src}, {img}, {h}, {iy}"));
        e.ins(format_args!("mad.lo.u64 {src}, {src}, {w}, {ix}"));
        e.ins(format_args!("mad.lo.u64 {src}, {src}, {c}, {ch}"));
        let at = address(e, input, src, elem.shift());
        e.ins(format_args!("@{ok} ld.global.nc.{} {v}, [{at}]", elem.load_type()));
        v
    });
    header() + &entry(name, &params, "", &e)
}

/// `(x / d, x mod d)`, unsigned 64-bit.
pub(super) fn divmod(e: &mut Emitter, x: Reg, d: Reg) -> (Reg, Reg) {
    let (q, r) = (e.rd(), e.rd());
    e.ins(format_args!("div.u64 {q}, {x}, {d}"));
    e.ins(format_args!("mul.lo.u64 {r}, {q}, {d}"));
    e.ins(format_args!("sub.s64 {r}, {x}, {r}"));
    (q, r)
}

/// `out·stride + k − pad` (wraps below zero: the caller's unsigned bounds check then
/// fails).
pub(super) fn input_coord(e: &mut Emitter, out: Reg, stride: Reg, k: Reg, pad: Reg) -> Reg {
    let x = e.rd();
    e.ins(format_args!("mad.lo.u64 {x}, {out}, {stride}, {k}"));
    e.ins(format_args!("sub.s64 {x}, {x}, {pad}"));
    x
}

/// The col2im entry's parameters, in order (all `.u64`).
pub const COL2IM_PARAMS: [&str; 15] =
    ["in", "out", "total", "c", "w", "h", "kh", "kw", "sh", "sw", "pt", "pl", "oh", "ow", "kk"];

/// A module with one entry, `name`, summing an im2col-shaped gradient `[N·OH·OW,
/// KH·KW·C]` back onto the NHWC input it was taken from (conv2d's input gradient after
/// its GEMM). One thread per input element gathers the window cells that read it, in
/// the CPU's order (output positions ascending, i.e. window rows and columns
/// descending), from `+0.0` — so equal GEMM results give equal bits. Parameters:
/// [`COL2IM_PARAMS`] — `total` = N·H·W·C, then the geometry as for im2col plus the
/// output size `oh`/`ow` and the row length `kk` = KH·KW·C.
pub fn render_col2im(elem: Elem, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, c, w, h, kh, kw, sh, sw, pt, pl, oh, ow, kk]) =
        load_params(&mut e, name, &COL2IM_PARAMS);
    let dims = GatherDims { total, c, w, h, kh, kw, sh, sw, pt, pl, oh, ow };
    gather(&mut e, elem, &dims, output, |e, at| {
        // src = ((img·oh + oy)·ow + ox)·kk + (ky·kw + kx)·c + ch
        let (row, cell, src) = (e.rd(), e.rd(), e.rd());
        e.ins(format_args!("mad.lo.u64 {row}, {}, {oh}, {}", at.img, at.oy));
        e.ins(format_args!("mad.lo.u64 {row}, {row}, {ow}, {}", at.ox));
        e.ins(format_args!("mad.lo.u64 {cell}, {}, {kw}, {}", at.ky, at.kx));
        e.ins(format_args!("mad.lo.u64 {src}, {cell}, {c}, {}", at.ch));
        e.ins(format_args!("mad.lo.u64 {src}, {row}, {kk}, {src}"));
        let addr = address(e, input, src, elem.shift());
        elem.load(e, addr)
    });
    header() + &entry(name, &params, "", &e)
}

/// The parameters a gathering entry reads (see [`gather`]).
pub(super) struct GatherDims {
    pub total: Reg,
    pub c: Reg,
    pub w: Reg,
    pub h: Reg,
    pub kh: Reg,
    pub kw: Reg,
    pub sh: Reg,
    pub sw: Reg,
    pub pt: Reg,
    pub pl: Reg,
    pub oh: Reg,
    pub ow: Reg,
}

/// Where a gathering entry stands: input element (img, iy, ix, ch), read by cell
/// (ky, kx) of the window at output position (oy, ox).
pub(super) struct At {
    pub img: Reg,
    pub iy: Reg,
    pub ix: Reg,
    pub ch: Reg,
    pub oy: Reg,
    pub ox: Reg,
    pub ky: Reg,
    pub kx: Reg,
}

/// The label a gather's `contribution` jumps to when its window adds nothing.
pub(super) const NEXT_WINDOW: &str = "$L_kx";

/// The body of an entry where one thread per NHWC input element (grid-stride over
/// `total`) visits the windows that read it in output order — window rows and columns
/// descending, the order of the CPU's loops over outputs — and sums, from `+0.0`, the
/// `elem` (f32 or f64) value `contribution` yields for each (it may jump to
/// [`NEXT_WINDOW`] instead), storing the sum at `output[i]`.
pub(super) fn gather(
    e: &mut Emitter,
    elem: Elem,
    d: &GatherDims,
    output: Reg,
    contribution: impl FnOnce(&mut Emitter, &At) -> Reg,
) {
    per_output_of(e, elem, d.total, output, |e, i| {
        let (rest, ch) = divmod(e, i, d.c);
        let (rest, ix) = divmod(e, rest, d.w);
        let (img, iy) = divmod(e, rest, d.h);
        let acc = elem.reg(e);
        e.ins(format_args!("mov.{} {acc}, {}", elem.mov(), elem.zero_literal()));
        let ky = e.rd();
        e.ins(format_args!("mov.u64 {ky}, {}", d.kh));
        e.label("$L_ky");
        let no_more = e.p();
        e.ins(format_args!("setp.eq.u64 {no_more}, {ky}, 0"));
        e.ins(format_args!("@{no_more} bra {STORE}"));
        e.ins(format_args!("sub.s64 {ky}, {ky}, 1"));
        let oy = output_coord(e, iy, d.pt, ky, d.sh, d.oh, "$L_ky");
        let kx = e.rd();
        e.ins(format_args!("mov.u64 {kx}, {}", d.kw));
        e.label(NEXT_WINDOW);
        let no_more_x = e.p();
        e.ins(format_args!("setp.eq.u64 {no_more_x}, {kx}, 0"));
        e.ins(format_args!("@{no_more_x} bra $L_ky"));
        e.ins(format_args!("sub.s64 {kx}, {kx}, 1"));
        let ox = output_coord(e, ix, d.pl, kx, d.sw, d.ow, NEXT_WINDOW);
        let x = contribution(e, &At { img, iy, ix, ch, oy, ox, ky, kx });
        e.ins(format_args!("add.rn.{} {acc}, {acc}, {x}", elem.setp()));
        e.ins(format_args!("bra {NEXT_WINDOW}"));
        acc
    });
}

/// The label a [`per_output`] body jumps to once its value is final.
pub(super) const STORE: &str = "$L_store";

/// An entry body with one thread per output element (grid-stride over `total`):
/// `body` computes element `i`'s f32 value into the register it returns (it may jump
/// to [`STORE`] once that register holds the final value), stored at `output[i]`.
pub(super) fn per_output(e: &mut Emitter, total: Reg, output: Reg, body: impl FnOnce(&mut Emitter, Reg) -> Reg) {
    per_output_of(e, Elem::F32, total, output, body)
}

/// [`per_output`] for an output of element type `out` (`body` returns a register of
/// that type).
pub(super) fn per_output_of(
    e: &mut Emitter,
    out: Elem,
    total: Reg,
    output: Reg,
    body: impl FnOnce(&mut Emitter, Reg) -> Reg,
) {
    let (i, stride) = grid_stride(e);
    let done = e.p();
    e.loop_head("$L_elem", done, i, total, "$L_done");
    let v = body(e, i);
    e.label(STORE);
    let to = address(e, output, i, out.shift());
    out.store(e, to, v);
    e.ins(format_args!("add.s64 {i}, {i}, {stride}"));
    e.ins(format_args!("bra $L_elem"));
    e.label("$L_done");
}

/// The output coordinate whose window cell `k` reads input coordinate `x`:
/// `(x + pad − k) / stride`, or a jump to `skip` when there is none (negative, not a
/// multiple of the stride, or past `out`).
pub(super) fn output_coord(e: &mut Emitter, x: Reg, pad: Reg, k: Reg, stride: Reg, out: Reg, skip: &str) -> Reg {
    let (t, q, r) = (e.rd(), e.rd(), e.rd());
    let [neg, off_grid, past] = [e.p(), e.p(), e.p()];
    e.ins(format_args!("add.s64 {t}, {x}, {pad}"));
    e.ins(format_args!("sub.s64 {t}, {t}, {k}"));
    e.ins(format_args!("setp.lt.s64 {neg}, {t}, 0"));
    e.ins(format_args!("@{neg} bra {skip}"));
    e.ins(format_args!("div.u64 {q}, {t}, {stride}"));
    e.ins(format_args!("mul.lo.u64 {r}, {q}, {stride}"));
    e.ins(format_args!("setp.ne.u64 {off_grid}, {r}, {t}"));
    e.ins(format_args!("@{off_grid} bra {skip}"));
    e.ins(format_args!("setp.ge.u64 {past}, {q}, {out}"));
    e.ins(format_args!("@{past} bra {skip}"));
    q
}
