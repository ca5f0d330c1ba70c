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

/// The strides of a dense row-major tensor of `dims` (the last axis is 1).
pub(super) fn dense_strides(dims: &[usize]) -> Vec<u64> {
    let mut s = vec![1u64; dims.len()];
    for a in (0..dims.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1].wrapping_mul(dims[a + 1] as u64);
    }
    s
}

/// A strided walk over a grid of `dims` (the last axis varies fastest): a step along
/// axis `k` moves the strided tensor's offset by `strides[k]` (two's complement when
/// negative; the offsets wrap as the kernels' 64-bit arithmetic does). The permute,
/// broadcast and slice kernels each walk one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StridedWalk {
    pub dims: Vec<u64>,
    pub strides: Vec<u64>,
}

impl StridedWalk {
    /// The same walk over the fewest axes: axes of size 1 dropped (their coordinate is
    /// always 0) and each axis merged into the next when one step along it is a whole
    /// run of the next (`strides[k] = strides[k+1]·dims[k+1]`: contiguous, or both
    /// repeated with stride 0). Every grid index visits the same offset as before.
    pub fn coalesced(&self) -> StridedWalk {
        let mut out = StridedWalk { dims: Vec::new(), strides: Vec::new() };
        for (&d, &s) in self.dims.iter().zip(&self.strides) {
            if d == 1 {
                continue;
            }
            match (out.dims.last_mut(), out.strides.last_mut()) {
                (Some(pd), Some(ps)) if *ps == s.wrapping_mul(d) => {
                    *pd *= d;
                    *ps = s;
                }
                _ => {
                    out.dims.push(d);
                    out.strides.push(s);
                }
            }
        }
        out
    }

    /// The kernels' `d0…d5` and `s0…s5` parameters of the coalesced walk, padded with
    /// leading axes of size 1 (stride 0); `None` when it still has more than
    /// [`PERMUTE_RANK`] axes.
    pub fn params(&self) -> Option<[u64; 2 * PERMUTE_RANK]> {
        let w = self.coalesced();
        let r = w.dims.len();
        if r > PERMUTE_RANK {
            return None;
        }
        let mut out = [1u64; 2 * PERMUTE_RANK];
        out[PERMUTE_RANK..].fill(0);
        let pad = PERMUTE_RANK - r;
        out[pad..PERMUTE_RANK].copy_from_slice(&w.dims);
        out[PERMUTE_RANK + pad..].copy_from_slice(&w.strides);
        Some(out)
    }

    /// The walk reading an input of `dims` permuted by `perm` (output axis `k` is input
    /// axis `perm[k]`); `None` when `perm` is not a permutation of the axes.
    pub fn permute(dims: &[usize], perm: &[usize]) -> Option<StridedWalk> {
        let r = dims.len();
        if perm.len() != r || (0..r).any(|a| !perm.contains(&a)) {
            return None;
        }
        let strides = dense_strides(dims);
        Some(StridedWalk {
            dims: perm.iter().map(|&p| dims[p] as u64).collect(),
            strides: perm.iter().map(|&p| strides[p]).collect(),
        })
    }

    /// The walk reading an input of `dims` broadcast to `out` (NumPy's rule: dims
    /// aligned at the right; an input dim of 1, or a missing one, repeats — stride 0);
    /// `None` when `dims` does not broadcast to `out`.
    pub fn broadcast(dims: &[usize], out: &[usize]) -> Option<StridedWalk> {
        let lead = out.len().checked_sub(dims.len())?;
        let dense = dense_strides(dims);
        let mut strides = vec![0u64; out.len()];
        for (k, &o) in out.iter().enumerate().skip(lead) {
            let d = dims[k - lead];
            if d != o && d != 1 {
                return None;
            }
            strides[k] = if d == 1 { 0 } else { dense[k - lead] };
        }
        Some(StridedWalk { dims: out.iter().map(|&d| d as u64).collect(), strides })
    }
}

/// The permute entry's `d` and `s` parameters for an input of `dims` permuted by `perm`
/// (output axis `k` is input axis `perm[k]`); `None` for a `perm` that is not a
/// permutation of the axes, or one whose walk keeps more than [`PERMUTE_RANK`] axes
/// after merging ([`StridedWalk::coalesced`]; [`permute_steps`] splits those).
pub fn permute_dims(dims: &[usize], perm: &[usize]) -> Option<[u64; 2 * PERMUTE_RANK]> {
    StridedWalk::permute(dims, perm)?.params()
}

/// The permute entry's `d` and `s` parameters that broadcast an input of `dims` to
/// `out` (NumPy's rule: dims aligned at the right; an input dim of 1, or a missing one,
/// repeats — read with stride 0). `None` when `dims` does not broadcast to `out`, or
/// when the walk keeps more than [`PERMUTE_RANK`] axes after merging
/// ([`broadcast_steps`] splits those).
pub fn broadcast_dims(dims: &[usize], out: &[usize]) -> Option<[u64; 2 * PERMUTE_RANK]> {
    StridedWalk::broadcast(dims, out)?.params()
}

/// Permutations which, applied in turn to a tensor of `dims`, permute it by `perm`,
/// each one a single launch of the permute kernel: `[perm]` itself when its walk fits
/// [`PERMUTE_RANK`] axes; otherwise one step per axis out of place, each moving one axis
/// to its final position (a walk of at most four merged runs). `None` when `perm` is
/// not a permutation of the axes.
pub fn permute_steps(dims: &[usize], perm: &[usize]) -> Option<Vec<Vec<usize>>> {
    if StridedWalk::permute(dims, perm)?.params().is_some() {
        return Some(vec![perm.to_vec()]);
    }
    let r = dims.len();
    // `order[i]`: the original axis now at position i.
    let mut order: Vec<usize> = (0..r).collect();
    let mut steps = Vec::new();
    for (k, &want) in perm.iter().enumerate() {
        let j = order.iter().position(|&a| a == want)?;
        if j == k {
            continue;
        }
        // Position j moves to k; positions k..j shift up by one.
        let step: Vec<usize> = (0..k).chain(std::iter::once(j)).chain(k..j).chain(j + 1..r).collect();
        order = step.iter().map(|&p| order[p]).collect();
        steps.push(step);
    }
    Some(steps)
}

/// Shapes which, broadcast to in turn from `dims`, reach `out`, each one a single launch
/// of the permute kernel: `[out]` when one walk fits [`PERMUTE_RANK`] axes; otherwise
/// each step repeats the input along as many more of the trailing axes as one walk
/// takes. `None` when `dims` does not broadcast to `out`.
pub fn broadcast_steps(dims: &[usize], out: &[usize]) -> Option<Vec<Vec<usize>>> {
    StridedWalk::broadcast(dims, out)?;
    let r = out.len();
    // The input's dims aligned to the output's rank (a missing leading dim is a 1).
    let mut cur: Vec<usize> = std::iter::repeat_n(1, r - dims.len()).chain(dims.iter().copied()).collect();
    let mut steps = Vec::new();
    while cur != out {
        // The most leading axis `from` such that repeating every axis from it on fits
        // one walk; from the first unrepeated axis, a single axis always does.
        let mut mid = cur.clone();
        for from in (0..r).rev() {
            let mut wider = mid.clone();
            wider[from] = out[from];
            if broadcast_dims(&cur, &wider).is_none() {
                break;
            }
            mid = wider;
        }
        if mid == cur {
            return None;
        }
        steps.push(mid.clone());
        cur = mid;
    }
    if steps.is_empty() {
        steps.push(out.to_vec());
    }
    Some(steps)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn broadcast_strides_repeat_the_axes_of_size_one() {
        let p = broadcast_dims(&[3, 1, 5], &[2, 3, 4, 5]).expect("broadcasts");
        assert_eq!(&p[..PERMUTE_RANK], &[1, 1, 2, 3, 4, 5]);
        assert_eq!(&p[PERMUTE_RANK..], &[0, 0, 0, 5, 0, 1]);
        assert!(broadcast_dims(&[3, 2], &[3, 4]).is_none(), "2 does not broadcast to 4");
        assert!(broadcast_dims(&[1, 2, 3], &[2, 3]).is_none(), "more dims than the output");
        assert!(broadcast_dims(&[1], &[1, 1, 1, 1, 1, 1, 1]).is_some(), "rank 7 of ones merges to nothing");
        assert!(broadcast_dims(&[2, 1, 2, 1, 2, 1, 2], &[2, 3, 2, 3, 2, 3, 2]).is_none(), "seven runs");
    }

    /// The offsets a walk visits, in grid order.
    pub(in crate::ptx) fn offsets(w: &StridedWalk) -> Vec<u64> {
        let n: u64 = w.dims.iter().product();
        (0..n)
            .map(|i| {
                let (mut rest, mut off) = (i, 0u64);
                for (&d, &s) in w.dims.iter().zip(&w.strides).rev() {
                    off = off.wrapping_add((rest % d).wrapping_mul(s));
                    rest /= d;
                }
                off
            })
            .collect()
    }

    /// `data` (a tensor of `dims`) read by `walk`.
    fn gather(data: &[u64], walk: &StridedWalk) -> Vec<u64> {
        offsets(walk).iter().map(|&o| data[o as usize]).collect()
    }

    #[test]
    fn merged_walks_keep_their_runs() {
        // [2, 3, 4, 5] with its last two axes swapped: the leading two merge.
        let w = StridedWalk::permute(&[2, 3, 4, 5], &[0, 1, 3, 2]).expect("a permutation").coalesced();
        assert_eq!((w.dims, w.strides), (vec![6, 5, 4], vec![20, 1, 5]));
        // Repeated axes side by side merge; size-1 axes go.
        let w = StridedWalk::broadcast(&[1, 1, 1, 7], &[2, 3, 1, 7]).expect("broadcasts").coalesced();
        assert_eq!((w.dims, w.strides), (vec![6, 7], vec![0, 1]));
        // An identity permutation of any rank is one contiguous run.
        let dims = [2, 2, 2, 2, 2, 2, 2, 2];
        let w = StridedWalk::permute(&dims, &[0, 1, 2, 3, 4, 5, 6, 7]).expect("a permutation").coalesced();
        assert_eq!((w.dims, w.strides), (vec![256], vec![1]));
        assert!(permute_dims(&[2, 3], &[0, 0]).is_none(), "not a permutation");
        assert!(permute_steps(&[2, 3], &[1, 1]).is_none(), "not a permutation");
        // Reversing eight axes is eight runs: more launches than one.
        let reversed: Vec<usize> = (0..8).rev().collect();
        assert!(permute_dims(&dims, &reversed).is_none());
        assert_eq!(permute_steps(&dims, &reversed).map(|s| s.len()), Some(7));
        let ones = [2, 1, 2, 1, 2, 1, 2];
        assert_eq!(broadcast_steps(&ones, &[2, 3, 2, 3, 2, 3, 2]).map(|s| s.len()), Some(2));
    }

    /// A permutation of `0..r` from the keys' sort order.
    fn perm_of(keys: &[u32]) -> Vec<usize> {
        let mut p: Vec<usize> = (0..keys.len()).collect();
        p.sort_by_key(|&i| (keys[i], i));
        p
    }

    proptest::proptest! {
        #[test]
        fn merging_visits_the_same_offsets(
            dims in proptest::collection::vec(1usize..4, 1..9),
            keys in proptest::collection::vec(0u32..100, 9),
        ) {
            let perm = perm_of(&keys[..dims.len()]);
            let w = StridedWalk::permute(&dims, &perm).expect("a permutation");
            proptest::prop_assert_eq!(offsets(&w), offsets(&w.coalesced()));
        }

        #[test]
        fn permute_steps_compose_to_the_permutation(
            dims in proptest::collection::vec(1usize..4, 1..10),
            keys in proptest::collection::vec(0u32..100, 10),
        ) {
            let perm = perm_of(&keys[..dims.len()]);
            let n: usize = dims.iter().product();
            let data: Vec<u64> = (0..n as u64).map(|v| v * 7 + 3).collect();
            let want = gather(&data, &StridedWalk::permute(&dims, &perm).expect("a permutation"));
            let steps = permute_steps(&dims, &perm).expect("a permutation");
            let (mut cur, mut cur_dims) = (data, dims.clone());
            for step in &steps {
                proptest::prop_assert!(permute_dims(&cur_dims, step).is_some(), "step {step:?} of {cur_dims:?} fits one launch");
                cur = gather(&cur, &StridedWalk::permute(&cur_dims, step).expect("a permutation"));
                cur_dims = step.iter().map(|&a| cur_dims[a]).collect();
            }
            proptest::prop_assert_eq!(cur, want);
        }

        #[test]
        fn broadcast_steps_compose_to_the_broadcast(
            out in proptest::collection::vec(1usize..4, 1..10),
            ones in proptest::collection::vec(proptest::bool::ANY, 10),
            lead in 0usize..3,
        ) {
            let dims: Vec<usize> = out.iter().zip(&ones).skip(lead.min(out.len())).map(|(&d, &one)| if one { 1 } else { d }).collect();
            let n: usize = dims.iter().product();
            let data: Vec<u64> = (0..n as u64).map(|v| v * 5 + 1).collect();
            let want = gather(&data, &StridedWalk::broadcast(&dims, &out).expect("broadcasts"));
            let steps = broadcast_steps(&dims, &out).expect("broadcasts");
            let (mut cur, mut cur_dims) = (data, dims.clone());
            for step in &steps {
                proptest::prop_assert!(broadcast_dims(&cur_dims, step).is_some(), "step {step:?} of {cur_dims:?} fits one launch");
                cur = gather(&cur, &StridedWalk::broadcast(&cur_dims, step).expect("broadcasts"));
                cur_dims = step.clone();
            }
            proptest::prop_assert_eq!(cur, want);
        }
    }
}
