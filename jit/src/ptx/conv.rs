//! im2col for conv2d on GPUs (the GEMM that follows is cuBLAS's): the NHWC input's
//! windows laid out as the rows of a `[N·OH·OW, KH·KW·C]` matrix, zeros for cells in the
//! padding — the layout of the runtime's CPU im2col, so the filter (HWIO, i.e.
//! `[KH·KW·C, O]`) multiplies it directly. One thread per matrix element in a
//! grid-stride loop; every index is 64-bit.

use super::{address, entry, grid_stride, header, param, Emitter, Reg};

/// The entry's parameters, in order (all `.u64`): the input and output pointers, the
/// matrix's element count, then the geometry.
pub const IM2COL_PARAMS: [&str; 14] =
    ["in", "out", "total", "kk", "c", "kw", "ohw", "ow", "h", "w", "sh", "sw", "pt", "pl"];

/// A module with one entry, `name`, writing the im2col matrix of an NHWC f32 input.
/// Parameters: [`IM2COL_PARAMS`] — `total` = N·OH·OW·KK, `kk` = KH·KW·C, `c` channels,
/// `kw` window width, `ohw` = OH·OW, `ow` output width, `h`/`w` input height/width,
/// `sh`/`sw` strides, `pt`/`pl` top/left padding.
pub fn render_im2col(name: &str) -> String {
    let mut e = Emitter::default();
    let params: Vec<String> = IM2COL_PARAMS.iter().map(|s| s.to_string()).collect();
    let input = param(&mut e, name, "in", true);
    let output = param(&mut e, name, "out", true);
    let [total, kk, c, kw, ohw, ow, h, w, sh, sw, pt, pl] =
        ["total", "kk", "c", "kw", "ohw", "ow", "h", "w", "sh", "sw", "pt", "pl"]
            .map(|p| param(&mut e, name, p, false));
    let (i, stride) = grid_stride(&mut e);
    let done = e.p();
    e.loop_head("$L_elem", done, i, total, "$L_done");
    // Matrix row o (output position) and column j (window cell, channel).
    let (o, j) = divmod(&mut e, i, kk);
    let (cell, ch) = divmod(&mut e, j, c);
    let (ky, kx) = divmod(&mut e, cell, kw);
    let (img, pos) = divmod(&mut e, o, ohw);
    let (oy, ox) = divmod(&mut e, pos, ow);
    // Input row and column (signed: the padding lies before 0).
    let iy = input_coord(&mut e, oy, sh, ky, pt);
    let ix = input_coord(&mut e, ox, sw, kx, pl);
    let [in_h, in_w, ok] = [e.p(), e.p(), e.p()];
    // Unsigned compares: a negative coordinate is a huge unsigned one, out of range too.
    e.ins(format_args!("setp.lt.u64 {in_h}, {iy}, {h}"));
    e.ins(format_args!("setp.lt.u64 {in_w}, {ix}, {w}"));
    e.ins(format_args!("and.pred {ok}, {in_h}, {in_w}"));
    let v = e.f();
    e.ins(format_args!("mov.f32 {v}, 0f00000000"));
    // src = ((img·h + iy)·w + ix)·c + ch, loaded only inside the input.
    let src = e.rd();
    e.ins(format_args!("mad.lo.u64 {src}, {img}, {h}, {iy}"));
    e.ins(format_args!("mad.lo.u64 {src}, {src}, {w}, {ix}"));
    e.ins(format_args!("mad.lo.u64 {src}, {src}, {c}, {ch}"));
    let at = address(&mut e, input, src, 2);
    e.ins(format_args!("@{ok} ld.global.nc.f32 {v}, [{at}]"));
    let to = address(&mut e, output, i, 2);
    e.ins(format_args!("st.global.f32 [{to}], {v}"));
    e.ins(format_args!("add.s64 {i}, {i}, {stride}"));
    e.ins(format_args!("bra $L_elem"));
    e.label("$L_done");
    header() + &entry(name, &params, "", &e)
}

/// `(x / d, x mod d)`, unsigned 64-bit.
fn divmod(e: &mut Emitter, x: Reg, d: Reg) -> (Reg, Reg) {
    let (q, r) = (e.rd(), e.rd());
    e.ins(format_args!("div.u64 {q}, {x}, {d}"));
    e.ins(format_args!("mul.lo.u64 {r}, {q}, {d}"));
    e.ins(format_args!("sub.s64 {r}, {x}, {r}"));
    (q, r)
}

/// `out·stride + k − pad` (wraps below zero: the caller's unsigned bounds check then
/// fails).
fn input_coord(e: &mut Emitter, out: Reg, stride: Reg, k: Reg, pad: Reg) -> Reg {
    let x = e.rd();
    e.ins(format_args!("mad.lo.u64 {x}, {out}, {stride}, {k}"));
    e.ins(format_args!("sub.s64 {x}, {x}, {pad}"));
    x
}
