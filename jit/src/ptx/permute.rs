//! Axis permutation (`transpose`, `permute`) of f32 tensors on GPUs: one thread per
//! output element splits its index into output coordinates and sums them times the
//! input strides of the axes they come from. Up to [`PERMUTE_RANK`] axes (fewer are
//! padded with leading axes of size 1). The same entry broadcasts (`broadcast_to`, and
//! operands of binary ops whose broadcast no access pattern expresses): a repeated
//! axis has input stride 0 ([`broadcast_dims`]).

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

/// The permute entry's `d` and `s` parameters that broadcast an input of `dims` to
/// `out` (NumPy's rule: dims aligned at the right; an input dim of 1, or a missing one,
/// repeats — read with stride 0). `None` beyond [`PERMUTE_RANK`] axes or when `dims`
/// does not broadcast to `out`.
pub fn broadcast_dims(dims: &[usize], out: &[usize]) -> Option<[u64; 2 * PERMUTE_RANK]> {
    let r = out.len();
    if r > PERMUTE_RANK || dims.len() > r {
        return None;
    }
    let lead = r - dims.len();
    let mut res = [1u64; 2 * PERMUTE_RANK];
    for s in &mut res[PERMUTE_RANK..] {
        *s = 0;
    }
    let pad = PERMUTE_RANK - r;
    let mut stride = 1usize;
    for k in (0..r).rev() {
        let d_in = if k < lead { 1 } else { dims[k - lead] };
        if d_in != out[k] && d_in != 1 {
            return None;
        }
        res[pad + k] = out[k] as u64;
        res[PERMUTE_RANK + pad + k] = if d_in == 1 { 0 } else { stride as u64 };
        stride *= d_in;
    }
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_strides_repeat_the_axes_of_size_one() {
        let p = broadcast_dims(&[3, 1, 5], &[2, 3, 4, 5]).expect("broadcasts");
        assert_eq!(&p[..PERMUTE_RANK], &[1, 1, 2, 3, 4, 5]);
        assert_eq!(&p[PERMUTE_RANK..], &[0, 0, 0, 5, 0, 1]);
        assert!(broadcast_dims(&[3, 2], &[3, 4]).is_none(), "2 does not broadcast to 4");
        assert!(broadcast_dims(&[1, 2, 3], &[2, 3]).is_none(), "more dims than the output");
        assert!(broadcast_dims(&[1], &[1, 1, 1, 1, 1, 1, 1]).is_none(), "rank 7");
    }
}
