//! Shape ops: reshape, transpose/permute, broadcast_to, expand_dims, squeeze, concat,
//! stack, slice, gather, one_hot (plus the gradient helpers slice_grad, scatter_add).

use std::ops::{Range, RangeFrom, RangeFull, RangeTo};
use std::panic::Location;

use super::{apply, needs, AxisList, Op};
use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::{norm_axis, Shape, UNKNOWN};
use crate::tensor::Tensor;

/// One axis of a normalised slice: elements `start + k·step` for `k < len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SliceAxis {
    pub start: usize,
    pub step: i64,
    pub len: usize,
}

/// A Python-style slice of one axis: optional start/stop (negative counts from the end,
/// out-of-range values clamp) and a non-zero step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceArg {
    pub start: Option<i64>,
    pub stop: Option<i64>,
    pub step: i64,
}

impl SliceArg {
    pub fn new(start: Option<i64>, stop: Option<i64>, step: i64) -> SliceArg {
        SliceArg { start, stop, step }
    }
    /// The whole axis.
    pub fn full() -> SliceArg {
        SliceArg::new(None, None, 1)
    }
    /// This slice with another step.
    pub fn step(self, step: i64) -> SliceArg {
        SliceArg { step, ..self }
    }

    fn normalize(&self, n: usize) -> Option<SliceAxis> {
        if n == UNKNOWN {
            // Only whole slices of unknown dims are expressible; the length is resolved
            // at run time.
            return (self.start.is_none() && self.stop.is_none() && self.step == 1).then_some(SliceAxis {
                start: 0,
                step: 1,
                len: UNKNOWN,
            });
        }
        let (n, s) = (n as i64, self.step);
        if s == 0 {
            return None;
        }
        let fix = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
        // ⌈distance / |step|⌉ without overflow, whatever the step (i64::MIN included).
        let count = |distance: i64| if distance > 0 { (distance as u64 - 1) / s.unsigned_abs() + 1 } else { 0 };
        let (start, len) = if s > 0 {
            let a = self.start.map_or(0, fix).clamp(0, n);
            let b = self.stop.map_or(n, fix).clamp(0, n);
            (a, count(b - a))
        } else {
            let a = self.start.map_or(n - 1, fix).clamp(-1, n - 1);
            let b = self.stop.map_or(-1, |v| fix(v).clamp(-1, n - 1));
            (a, count(a - b))
        };
        // With one element or none the step is never taken: ±1 keeps index arithmetic
        // (start + i·step·stride) far from overflow for steps like i64::MAX.
        let step = if len <= 1 { s.signum() } else { s };
        Some(SliceAxis { start: if len == 0 { 0 } else { start as usize }, step, len: len as usize })
    }
}

impl From<Range<i64>> for SliceArg {
    fn from(r: Range<i64>) -> SliceArg {
        SliceArg::new(Some(r.start), Some(r.end), 1)
    }
}
impl From<RangeFrom<i64>> for SliceArg {
    fn from(r: RangeFrom<i64>) -> SliceArg {
        SliceArg::new(Some(r.start), None, 1)
    }
}
impl From<RangeTo<i64>> for SliceArg {
    fn from(r: RangeTo<i64>) -> SliceArg {
        SliceArg::new(None, Some(r.end), 1)
    }
}
impl From<RangeFull> for SliceArg {
    fn from(_: RangeFull) -> SliceArg {
        SliceArg::full()
    }
}

/// A reshape target: dims, one of which may be −1 (inferred).
pub trait ReshapeSpec {
    fn dims(&self) -> Vec<i64>;
}
impl<const N: usize> ReshapeSpec for [i64; N] {
    fn dims(&self) -> Vec<i64> {
        self.to_vec()
    }
}
impl<const N: usize> ReshapeSpec for &[i64; N] {
    fn dims(&self) -> Vec<i64> {
        self.to_vec()
    }
}
impl ReshapeSpec for &[i64] {
    fn dims(&self) -> Vec<i64> {
        self.to_vec()
    }
}
impl ReshapeSpec for Vec<i64> {
    fn dims(&self) -> Vec<i64> {
        self.clone()
    }
}
fn shape_spec(s: &Shape) -> Vec<i64> {
    s.iter().map(|&d| if d == UNKNOWN { -1 } else { d as i64 }).collect()
}
impl ReshapeSpec for &Shape {
    fn dims(&self) -> Vec<i64> {
        shape_spec(self)
    }
}
impl ReshapeSpec for Shape {
    fn dims(&self) -> Vec<i64> {
        shape_spec(self)
    }
}

fn resolve_reshape(x: &Tensor, spec: &[i64]) -> Result<Shape, OpError> {
    let err = |m: String| OpError::new("reshape", m);
    let inferred: Vec<usize> = spec.iter().enumerate().filter(|(_, &d)| d == -1).map(|(i, _)| i).collect();
    if inferred.len() > 1 {
        return Err(err(format!("at most one dim may be -1 (or unknown), got {spec:?}")));
    }
    if let Some(d) = spec.iter().find(|&&d| d < -1) {
        return Err(err(format!("dim {d} is negative in {spec:?}")));
    }
    let mut dims: Vec<usize> = spec.iter().map(|&d| if d == -1 { UNKNOWN } else { d as usize }).collect();
    let s = Shape::from(dims.clone());
    if let (Some(&i), true) = (inferred.first(), x.shape().is_fully_known()) {
        let known: usize = spec.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
        if known == 0 || !x.numel().is_multiple_of(known) {
            return Err(err(format!("cannot infer the -1 dim of {spec:?} for {} elements", x.numel())));
        }
        dims[i] = x.numel() / known;
        return Ok(Shape::from(dims));
    }
    Ok(s)
}

/// Resolves a target with unknown dims against a concrete input (at run time): one
/// unknown dim from the element count; several by matching the target to the input
/// with only dims of 1 inserted or removed (the reshapes expand_dims, squeeze and
/// keepdims make), where each unknown dim takes one input dim — which may be 1.
fn resolve_unknown(x: &Tensor, s: &Shape) -> Result<Shape, OpError> {
    if !x.shape().is_fully_known() {
        return Ok(s.clone());
    }
    if s.iter().filter(|&&d| d == UNKNOWN).count() == 1 {
        return resolve_reshape(x, &shape_spec(s));
    }
    let mut out = Vec::with_capacity(s.rank());
    if match_groups(x.dims(), s.dims(), &mut out) {
        Ok(Shape::from(out))
    } else {
        Err(OpError::new("reshape", format!("cannot resolve {s} against {}", x.shape())))
    }
}

/// Matches `target` to `src` up to dims of 1 inserted or removed and runs of known
/// dims merged or split (a known target dim the product of consecutive source dims, or
/// consecutive known target dims the factors of one source dim), an unknown target dim
/// taking exactly one source dim; pushes the resolved dims onto `out`.
fn match_groups(src: &[usize], target: &[usize], out: &mut Vec<usize>) -> bool {
    let Some(&t) = target.first() else { return src.iter().all(|&d| d == 1) };
    // `dims` resolve `target[..used_target]` from `src[..used_src]`; the rest must match.
    let take = |dims: &[usize], used_src: usize, used_target: usize, out: &mut Vec<usize>| {
        out.extend_from_slice(dims);
        let ok = match_groups(&src[used_src..], &target[used_target..], out);
        if !ok {
            out.truncate(out.len() - dims.len());
        }
        ok
    };
    let head = src.first().copied();
    let consumed = match (t, head) {
        (UNKNOWN, Some(d)) => take(&[d], 1, 1, out),
        (1, Some(1)) => take(&[1], 1, 1, out) || take(&[1], 0, 1, out),
        (1, _) => take(&[1], 0, 1, out),
        (t, Some(d)) if d == t => take(&[t], 1, 1, out),
        _ => false,
    };
    if consumed || (head == Some(1) && match_groups(&src[1..], target, out)) {
        return true;
    }
    if t == UNKNOWN || t == 1 {
        return false;
    }
    // A known target dim merging several source dims…
    let mut product = 1usize;
    for (l, &d) in src.iter().enumerate() {
        product = product.saturating_mul(d);
        if product > t {
            break;
        }
        if product == t && l > 0 && take(&[t], l + 1, 1, out) {
            return true;
        }
    }
    // …or several known target dims splitting one source dim.
    let Some(d) = head else { return false };
    let mut product = 1usize;
    for (k, &u) in target.iter().enumerate() {
        if u == UNKNOWN {
            break;
        }
        product = product.saturating_mul(u);
        if product > d {
            break;
        }
        if product == d && k > 0 && take(&target[..=k], 1, k + 1, out) {
            return true;
        }
    }
    false
}

pub(crate) fn infer_reshape(x: &Tensor, s: &Shape) -> Result<(DType, Shape), OpError> {
    let s = if s.is_fully_known() { s.clone() } else { resolve_unknown(x, s)? };
    if x.shape().is_fully_known() && s.is_fully_known() && s.numel() != x.numel() {
        return Err(OpError::new("reshape", format!("cannot reshape {} elements into {s}", x.numel())));
    }
    Ok((x.dtype(), s))
}

pub(crate) fn infer_permute(x: &Tensor, p: &[usize]) -> Result<(DType, Shape), OpError> {
    let mut seen = vec![false; x.rank()];
    let ok = p.len() == x.rank() && p.iter().all(|&a| a < x.rank() && !std::mem::replace(&mut seen[a], true));
    if !ok {
        return Err(OpError::new("transpose", format!("{p:?} is not a permutation of the {} axes", x.rank())));
    }
    Ok((x.dtype(), Shape::from_iter_dims(p.iter().map(|&a| x.dims()[a]))))
}

pub(crate) fn infer_broadcast_to(x: &Tensor, s: &Shape) -> Result<(DType, Shape), OpError> {
    if !s.is_fully_known() {
        return Err(OpError::new(
            "broadcast_to",
            format!("the target {s} has unknown dims; broadcast by an elementwise op instead"),
        ));
    }
    match Shape::broadcast(x.shape(), s) {
        Some(b) if &b == s => Ok((x.dtype(), s.clone())),
        _ => Err(OpError::new("broadcast_to", format!("cannot broadcast {} to {s}", x.shape()))),
    }
}

pub(crate) fn infer_concat(xs: &[&Tensor], axis: usize) -> Result<(DType, Shape), OpError> {
    let first = xs.first().ok_or_else(|| OpError::new("concat", "needs at least one tensor"))?;
    if axis >= first.rank() {
        return Err(OpError::new("concat", format!("axis {axis} is out of range for rank {}", first.rank())));
    }
    let mut out = first.shape().clone();
    for (i, t) in xs.iter().enumerate().skip(1) {
        if t.dtype() != first.dtype() {
            return Err(OpError::new("concat", format!("tensor {i} is {}, tensor 0 is {}", t.dtype(), first.dtype())));
        }
        let same = t.rank() == first.rank()
            && (0..t.rank()).all(|d| d == axis || crate::shape::dims_match(&t.dims()[d..=d], &first.dims()[d..=d]));
        if !same {
            return Err(OpError::new(
                "concat",
                format!("tensor {i} has shape {}, incompatible with {} along axis {axis}", t.shape(), first.shape()),
            ));
        }
        out = Shape::from_iter_dims(out.iter().enumerate().map(|(d, &n)| match (d == axis, n, t.dims()[d]) {
            (false, n, _) => n,
            (true, UNKNOWN, _) | (true, _, UNKNOWN) => UNKNOWN,
            (true, n, m) => n + m,
        }));
    }
    Ok((first.dtype(), out))
}

pub(crate) fn infer_slice(x: &Tensor, s: &[SliceAxis]) -> Result<(DType, Shape), OpError> {
    if s.len() != x.rank() {
        return Err(OpError::new("slice", format!("{} axes given for a tensor of rank {}", s.len(), x.rank())));
    }
    // A whole slice of an unknown dim has length UNKNOWN: it takes the dim's size.
    Ok((
        x.dtype(),
        Shape::from_iter_dims(s.iter().zip(x.dims()).map(|(a, &d)| if a.len == UNKNOWN { d } else { a.len })),
    ))
}

pub(crate) fn infer_slice_grad(dy: &Tensor, input: &Shape, s: &[SliceAxis]) -> Result<(DType, Shape), OpError> {
    let lens: Vec<usize> = s.iter().map(|a| a.len).collect();
    if s.len() != input.rank() || !crate::shape::dims_match(dy.dims(), &lens) {
        return Err(OpError::new("slice_grad", format!("gradient of shape {} does not match the slice", dy.shape())));
    }
    // Unknown input dims were sliced whole: they have the gradient's size.
    Ok((
        dy.dtype(),
        Shape::from_iter_dims(input.iter().zip(dy.dims()).map(|(&i, &d)| if i == UNKNOWN { d } else { i })),
    ))
}

fn gathered_shape(p: &Shape, idx: &Shape, axis: usize) -> Shape {
    Shape::from_iter_dims(p[..axis].iter().chain(idx.iter()).chain(p[axis + 1..].iter()).copied())
}

pub(crate) fn infer_gather(p: &Tensor, idx: &Tensor, axis: usize) -> Result<(DType, Shape), OpError> {
    if !idx.dtype().is_int() {
        return Err(needs("gather", "integer indices", idx.dtype(), ""));
    }
    if axis >= p.rank() {
        return Err(OpError::new("gather", format!("axis {axis} is out of range for rank {}", p.rank())));
    }
    Ok((p.dtype(), gathered_shape(p.shape(), idx.shape(), axis)))
}

pub(crate) fn infer_scatter_add(
    upd: &Tensor,
    idx: &Tensor,
    axis: usize,
    size: usize,
) -> Result<(DType, Shape), OpError> {
    let r = idx.rank();
    if size == UNKNOWN {
        return Err(OpError::new("scatter_add", "the gathered axis has an unknown size; give it a known size"));
    }
    if !idx.dtype().is_int()
        || upd.rank() < axis + r
        || !crate::shape::dims_match(&upd.dims()[axis..axis + r], idx.dims())
    {
        return Err(OpError::new("scatter_add", "updates do not match the indices"));
    }
    let d = upd.dims();
    Ok((
        upd.dtype(),
        Shape::from_iter_dims(d[..axis].iter().copied().chain([size]).chain(d[axis + r..].iter().copied())),
    ))
}

pub(crate) fn infer_one_hot(idx: &Tensor, depth: usize, dtype: DType) -> Result<(DType, Shape), OpError> {
    if !idx.dtype().is_int() {
        return Err(needs("one_hot", "integer indices", idx.dtype(), "; cast them (`.cast(DType::I64)`)"));
    }
    let mut s = idx.shape().clone();
    s.push(depth);
    Ok((dtype, s))
}

impl Tensor {
    /// Reshapes to `dims` (one may be −1, inferred). Zero-copy.
    #[track_caller]
    pub fn reshape(&self, dims: impl ReshapeSpec) -> Tensor {
        match resolve_reshape(self, &dims.dims()) {
            Ok(s) => apply(Op::Reshape(s), &[self]),
            Err(e) => e.with_operands([(self.dtype(), self.shape())]).raise(Location::caller()),
        }
    }

    /// Reshapes to `s` exactly (unknown dims resolved at run time); for gradients.
    #[track_caller]
    pub(crate) fn reshape_to(&self, s: &Shape) -> Tensor {
        if s == self.shape() {
            return self.clone();
        }
        apply(Op::Reshape(s.clone()), &[self])
    }

    /// Permutes the axes: output axis `i` is input axis `perm[i]` (negative allowed).
    #[track_caller]
    pub fn permute(&self, perm: &[i64]) -> Tensor {
        let p: Option<AxisList> = perm.iter().map(|&a| norm_axis(a, self.rank())).collect();
        match p {
            Some(p) => apply(Op::Permute(p), &[self]),
            None => OpError::new("transpose", format!("{perm:?} is not a permutation of the {} axes", self.rank()))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller()),
        }
    }

    /// Reverses the axes (the matrix transpose for rank 2).
    #[track_caller]
    pub fn t(&self) -> Tensor {
        let p: Vec<i64> = (0..self.rank() as i64).rev().collect();
        self.permute(&p)
    }

    /// Swaps two axes.
    #[track_caller]
    pub fn transpose(&self, a: i64, b: i64) -> Tensor {
        let r = self.rank();
        let (Some(a), Some(b)) = (norm_axis(a, r), norm_axis(b, r)) else {
            OpError::new("transpose", format!("axes ({a}, {b}) are out of range for rank {r}"))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        };
        let mut p: Vec<i64> = (0..r as i64).collect();
        p.swap(a, b);
        self.permute(&p)
    }

    /// Broadcasts to `shape` (NumPy rules), materialised.
    #[track_caller]
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Tensor {
        let s = shape.into();
        if &s == self.shape() {
            return self.clone();
        }
        apply(Op::BroadcastTo(s), &[self])
    }

    /// Inserts a dim of size 1 at `axis` (−1 appends).
    #[track_caller]
    pub fn expand_dims(&self, axis: i64) -> Tensor {
        let Some(a) = norm_axis(axis, self.rank() + 1) else {
            OpError::new("expand_dims", format!("axis {axis} is out of range for rank {}", self.rank()))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        };
        let mut d: Vec<usize> = self.dims().to_vec();
        d.insert(a, 1);
        apply(Op::Reshape(Shape::from(d)), &[self])
    }

    /// Removes the given size-1 axes (all size-1 axes for an empty list).
    #[track_caller]
    pub fn squeeze(&self, axes: &[i64]) -> Tensor {
        let r = self.rank();
        let mut drop = vec![false; r];
        for &a in axes {
            match norm_axis(a, r) {
                Some(i) if self.dims()[i] == 1 => drop[i] = true,
                _ => OpError::new("squeeze", format!("axis {a} is not a size-1 axis"))
                    .with_operands([(self.dtype(), self.shape())])
                    .raise(Location::caller()),
            }
        }
        let d: Vec<usize> =
            (0..r).filter(|&i| !(drop[i] || axes.is_empty() && self.dims()[i] == 1)).map(|i| self.dims()[i]).collect();
        apply(Op::Reshape(Shape::from(d)), &[self])
    }

    /// Flattens to rank 1.
    #[track_caller]
    pub fn flatten(&self) -> Tensor {
        self.reshape([-1])
    }

    /// Joins tensors along an existing axis.
    #[track_caller]
    pub fn concat(tensors: &[&Tensor], axis: i64) -> Tensor {
        let rank = tensors.first().map_or(0, |t| t.rank());
        match norm_axis(axis, rank) {
            Some(a) => apply(Op::Concat { axis: a }, tensors),
            None => {
                OpError::new("concat", format!("axis {axis} is out of range for rank {rank} (or no tensors given)"))
                    .raise(Location::caller())
            }
        }
    }

    /// Joins tensors along a new axis.
    #[track_caller]
    pub fn stack(tensors: &[&Tensor], axis: i64) -> Tensor {
        let rank = tensors.first().map_or(0, |t| t.rank());
        let Some(a) = norm_axis(axis, rank + 1) else {
            OpError::new("stack", format!("axis {axis} is out of range for rank {rank}")).raise(Location::caller())
        };
        let expanded: Vec<Tensor> = tensors.iter().map(|t| t.expand_dims(a as i64)).collect();
        let refs: Vec<&Tensor> = expanded.iter().collect();
        Tensor::concat(&refs, a as i64)
    }

    /// Python-style slicing, one [`SliceArg`] per leading axis (missing axes are taken
    /// whole): `x.slice(&[(1..3).into(), SliceArg::full().step(2)])`.
    #[track_caller]
    pub fn slice(&self, args: &[SliceArg]) -> Tensor {
        if args.len() > self.rank() {
            OpError::new("slice", format!("{} axes given for a tensor of rank {}", args.len(), self.rank()))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
        let norm: Option<Vec<SliceAxis>> = (0..self.rank())
            .map(|i| args.get(i).copied().unwrap_or_else(SliceArg::full).normalize(self.dims()[i]))
            .collect();
        match norm {
            Some(s) => apply(Op::Slice(s), &[self]),
            None => OpError::new("slice", "step must be non-zero (and dims of unknown size can only be taken whole)")
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller()),
        }
    }

    /// `len` elements of `axis` starting at `start`.
    #[track_caller]
    pub fn narrow(&self, axis: i64, start: usize, len: usize) -> Tensor {
        let a = self.axis_or_raise("slice", axis);
        if start.checked_add(len).is_none_or(|end| end > self.dims()[a]) {
            OpError::new(
                "slice",
                format!("{len} elements from {start} are out of range for axis {axis} of length {}", self.dims()[a]),
            )
            .with_operands([(self.dtype(), self.shape())])
            .raise(Location::caller())
        }
        let mut args = vec![SliceArg::full(); a + 1];
        args[a] = SliceArg::new(Some(start as i64), Some((start + len) as i64), 1);
        self.slice(&args)
    }

    /// Gathers slices along `axis` at `indices` (an integer tensor of any shape):
    /// output shape = `self.shape[..axis] ++ indices.shape ++ self.shape[axis+1..]`.
    /// An index outside the axis is an error naming it, as in TensorFlow: at this call
    /// when the indices are host values, and when the gather runs on the CPU (indices
    /// computed inside a traced function: the call of the traced function fails, or
    /// returns `Err` if it returns a `Result`). Indices on a GPU are not read back to be
    /// checked: there an out-of-range index gathers zeros (as TensorFlow does on GPUs).
    #[track_caller]
    pub fn gather(&self, indices: &Tensor, axis: i64) -> Tensor {
        let Some(a) = norm_axis(axis, self.rank()) else {
            OpError::new("gather", format!("axis {axis} is out of range for rank {}", self.rank()))
                .with_operands([(self.dtype(), self.shape()), (indices.dtype(), indices.shape())])
                .raise(Location::caller())
        };
        // Every gather the CPU runs checks its indices (`device::run_op_on`); host indices
        // are checked here too where the gather does not run on the CPU now: while
        // tracing (the error then names this line) and for a tensor on a device.
        if crate::trace::is_tracing() || self.device() != crate::device::Device::Cpu {
            if let Err(e) = crate::kernels::shape::check_gather_indices(self, indices, a) {
                e.raise(Location::caller())
            }
        }
        apply(Op::Gather { axis: a }, &[self, indices])
    }

    /// One-hot rows of length `depth` (last axis) for integer `self`; an index outside
    /// `[0, depth)` gives a row of zeros (TensorFlow).
    #[track_caller]
    pub fn one_hot(&self, depth: usize, dtype: DType) -> Tensor {
        apply(Op::OneHot { depth, dtype }, &[self])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(src: &[usize], target: &[usize]) -> Option<Vec<usize>> {
        let mut out = Vec::new();
        match_groups(src, target, &mut out).then_some(out)
    }

    #[test]
    fn unknown_dims_resolve_one_to_one_around_ones_merges_and_splits() {
        const U: usize = UNKNOWN;
        // 1s inserted or removed, an unknown dim that is 1 at run time.
        assert_eq!(resolved(&[1, 5, 3], &[U, 1, U, 3]), Some(vec![1, 1, 5, 3]));
        assert_eq!(resolved(&[2, 1, 4], &[U, U]), Some(vec![2, 4]));
        // Known dims merged or split beside unknown ones.
        assert_eq!(resolved(&[2, 5, 2, 4], &[U, U, 8]), Some(vec![2, 5, 8]));
        assert_eq!(resolved(&[1, 5, 8], &[U, U, 2, 4]), Some(vec![1, 5, 2, 4]));
        assert_eq!(resolved(&[3, 6, 1, 7], &[U, 2, 3, U]), Some(vec![3, 2, 3, 7]));
        // Nothing fits.
        assert_eq!(resolved(&[2, 5, 3], &[U, U, 4]), None);
        assert_eq!(resolved(&[2, 5], &[U, U, U]), None);
    }
}
