//! Axis permutation (`transpose`, `permute`) of f32 tensors on GPUs: one thread per
//! output element splits its index into output coordinates and sums them times the
//! input strides of the axes they come from. Up to [`PERMUTE_RANK`] axes (fewer are
//! padded with leading axes of size 1).

use super::conv::{divmod, per_output};
use super::{address, entry, header, load_params, Emitter};

/// The most axes a permutation kernel handles.
pub const PERMUTE_RANK: usize = 6;

/// The permute entry's parameters, in order (all `.u64`): the pointers, the element
/// count, the output dims `d0…d5` and, for each output axis, the input stride of the
/// axis it comes from, `s0…s5`.
pub const PERMUTE_PARAMS: [&str; 15] =
    ["in", "out", "total", "d0", "d1", "d2", "d3", "d4", "d5", "s0", "s1", "s2", "s3", "s4", "s5"];

/// A module with one entry, `name`, permuting the axes of an f32 tensor (parameters
/// [`PERMUTE_PARAMS`]).
pub fn render_permute(name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [input, output], [total, d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5]) =
        load_params(&mut e, name, &PERMUTE_PARAMS);
    let (dims, strides) = ([d0, d1, d2, d3, d4, d5], [s0, s1, s2, s3, s4, s5]);
    per_output(&mut e, total, output, |e, i| {
        let (rest, off) = (e.rd(), e.rd());
        e.ins(format_args!("mov.u64 {rest}, {i}"));
        e.ins(format_args!("mov.u64 {off}, 0"));
        // The last axis varies fastest.
        for k in (0..PERMUTE_RANK).rev() {
            let (q, coord) = divmod(e, rest, dims[k]);
            e.ins(format_args!("mad.lo.u64 {off}, {coord}, {}, {off}", strides[k]));
            e.ins(format_args!("mov.u64 {rest}, {q}"));
        }
        let from = address(e, input, off, 2);
        let v = e.f();
        e.ins(format_args!("ld.global.nc.f32 {v}, [{from}]"));
        v
    });
    header() + &entry(name, &params, "", &e)
}

/// The permute entry's `d` and `s` parameters for an input of `dims` permuted by `perm`
/// (output axis `k` is input axis `perm[k]`); `None` beyond [`PERMUTE_RANK`] axes or
/// for a `perm` that is not a permutation of the axes.
pub fn permute_dims(dims: &[usize], perm: &[usize]) -> Option<[u64; 2 * PERMUTE_RANK]> {
    let r = dims.len();
    if r > PERMUTE_RANK || perm.len() != r || (0..r).any(|a| !perm.contains(&a)) {
        return None;
    }
    let mut in_strides = vec![1usize; r];
    for a in (0..r.saturating_sub(1)).rev() {
        in_strides[a] = in_strides[a + 1] * dims[a + 1];
    }
    let mut out = [1u64; 2 * PERMUTE_RANK];
    let pad = PERMUTE_RANK - r;
    for (k, &p) in perm.iter().enumerate() {
        out[pad + k] = dims[p] as u64;
        out[PERMUTE_RANK + pad + k] = in_strides[p] as u64;
    }
    for s in &mut out[PERMUTE_RANK..PERMUTE_RANK + pad] {
        *s = 0;
    }
    Some(out)
}
