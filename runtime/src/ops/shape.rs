//! Shape ops: reshape, transpose/permute, broadcast_to, expand_dims, squeeze, concat,
//! stack, slice, gather, one_hot (plus the gradient helpers slice_grad, scatter_add).

use std::ops::{Range, RangeFrom, RangeFull, RangeTo};
use std::panic::Location;

use super::{apply, needs, AxisList, Op};
use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::{norm_axis, Shape};
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
        let (n, s) = (n as i64, self.step);
        if s == 0 {
            return None;
        }
        let fix = |v: i64| if v < 0 { v + n } else { v };
        let (start, len) = if s > 0 {
            let a = self.start.map_or(0, fix).clamp(0, n);
            let b = self.stop.map_or(n, fix).clamp(0, n);
            (a, if b > a { (b - a + s - 1) / s } else { 0 })
        } else {
            let a = self.start.map_or(n - 1, fix).clamp(-1, n - 1);
            let b = self.stop.map_or(-1, |v| fix(v).clamp(-1, n - 1));
            (a, if a > b { (a - b + (-s) - 1) / (-s) } else { 0 })
        };
        Some(SliceAxis { start: if len == 0 { 0 } else { start as usize }, step: s, len: len as usize })
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
impl ReshapeSpec for &Shape {
    fn dims(&self) -> Vec<i64> {
        self.iter().map(|&d| d as i64).collect()
    }
}
impl ReshapeSpec for Shape {
    fn dims(&self) -> Vec<i64> {
        self.iter().map(|&d| d as i64).collect()
    }
}

fn resolve_reshape(x: &Tensor, spec: &[i64]) -> Result<Shape, OpError> {
    let err = |m: String| OpError::new("reshape", m);
    let inferred: Vec<usize> = spec.iter().enumerate().filter(|(_, &d)| d == -1).map(|(i, _)| i).collect();
    if inferred.len() > 1 {
        return Err(err(format!("at most one dim may be -1, got {spec:?}")));
    }
    if let Some(d) = spec.iter().find(|&&d| d < -1) {
        return Err(err(format!("dim {d} is negative in {spec:?}")));
    }
    let known: usize = spec.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
    let mut dims: Vec<usize> = spec.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(&i) = inferred.first() {
        if known == 0 || x.numel() % known != 0 {
            return Err(err(format!("cannot infer the -1 dim of {spec:?} for {} elements", x.numel())));
        }
        dims[i] = x.numel() / known;
    }
    Ok(Shape::from(dims))
}

pub(crate) fn infer_reshape(x: &Tensor, s: &Shape) -> Result<(DType, Shape), OpError> {
    if s.numel() != x.numel() {
        return Err(OpError::new("reshape", format!("cannot reshape {} elements into {s}", x.numel())));
    }
    Ok((x.dtype(), s.clone()))
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
        let same = t.rank() == first.rank() && (0..t.rank()).all(|d| d == axis || t.dims()[d] == first.dims()[d]);
        if !same {
            return Err(OpError::new(
                "concat",
                format!("tensor {i} has shape {}, incompatible with {} along axis {axis}", t.shape(), first.shape()),
            ));
        }
        out = Shape::from_iter_dims(out.iter().enumerate().map(|(d, &n)| if d == axis { n + t.dims()[d] } else { n }));
    }
    Ok((first.dtype(), out))
}

pub(crate) fn infer_slice(x: &Tensor, s: &[SliceAxis]) -> Result<(DType, Shape), OpError> {
    if s.len() != x.rank() {
        return Err(OpError::new("slice", format!("{} axes given for a tensor of rank {}", s.len(), x.rank())));
    }
    Ok((x.dtype(), Shape::from_iter_dims(s.iter().map(|a| a.len))))
}

pub(crate) fn infer_slice_grad(dy: &Tensor, input: &Shape, s: &[SliceAxis]) -> Result<(DType, Shape), OpError> {
    if s.len() != input.rank() || dy.dims() != s.iter().map(|a| a.len).collect::<Vec<_>>() {
        return Err(OpError::new("slice_grad", format!("gradient of shape {} does not match the slice", dy.shape())));
    }
    Ok((dy.dtype(), input.clone()))
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
    if !idx.dtype().is_int() || upd.rank() < axis + r || upd.dims()[axis..axis + r] != idx.dims()[..] {
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
        let mut d: Vec<i64> = self.dims().iter().map(|&x| x as i64).collect();
        d.insert(a, 1);
        self.reshape(d)
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
        let d: Vec<i64> = (0..r)
            .filter(|&i| !(drop[i] || axes.is_empty() && self.dims()[i] == 1))
            .map(|i| self.dims()[i] as i64)
            .collect();
        self.reshape(d)
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
            None => OpError::new("slice", "step must be non-zero")
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller()),
        }
    }

    /// `len` elements of `axis` starting at `start`.
    #[track_caller]
    pub fn narrow(&self, axis: i64, start: usize, len: usize) -> Tensor {
        let Some(a) = norm_axis(axis, self.rank()) else {
            OpError::new("slice", format!("axis {axis} is out of range for rank {}", self.rank()))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        };
        if start + len > self.dims()[a] {
            OpError::new(
                "slice",
                format!("[{start}, {}) is out of range for axis {axis} of length {}", start + len, self.dims()[a]),
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
    /// An index outside the axis is an error naming it.
    #[track_caller]
    pub fn gather(&self, indices: &Tensor, axis: i64) -> Tensor {
        let Some(a) = norm_axis(axis, self.rank()) else {
            OpError::new("gather", format!("axis {axis} is out of range for rank {}", self.rank()))
                .with_operands([(self.dtype(), self.shape()), (indices.dtype(), indices.shape())])
                .raise(Location::caller())
        };
        let n = self.dims()[a] as i64;
        if let Some(bad) = crate::kernels::shape::index_values(indices).find(|&i| i < 0 || i >= n) {
            OpError::new("gather", format!("index {bad} is out of range for axis {axis} of length {n}"))
                .with_operands([(self.dtype(), self.shape()), (indices.dtype(), indices.shape())])
                .raise(Location::caller())
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
