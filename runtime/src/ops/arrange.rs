//! Rearranging ops built from the primitives (`slice`, `concat`, `reshape`, fills):
//! `tile`, `repeat`, `pad`, `reverse`, `split` and `chunks`. Being compositions, they
//! trace, compile and differentiate like the ops they are made of (TensorFlow's
//! `tf.tile`, `tf.repeat`, `tf.pad`, `tf.reverse`, `tf.split`).

use std::panic::Location;

use super::shape::SliceArg;
use crate::error::OpError;
use crate::shape::{Shape, UNKNOWN};
use crate::tensor::Tensor;

/// How [`Tensor::pad`] fills the new elements (TensorFlow's `mode` of `tf.pad`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PadMode {
    /// Every new element is this value (`CONSTANT`, with `constant_values`).
    Constant(f64),
    /// A mirror image without the edge element: `[1, 2, 3]` padded by 2 on both sides
    /// is `[3, 2, 1, 2, 3, 2, 1]` (`REFLECT`; each padding must be < the axis length).
    Reflect,
    /// A mirror image with the edge element: `[1, 2, 3]` padded by 2 on both sides is
    /// `[2, 1, 1, 2, 3, 3, 2]` (`SYMMETRIC`; each padding must be ≤ the axis length).
    Symmetric,
}

impl Tensor {
    #[track_caller]
    pub(crate) fn known_dim_or_raise(&self, op: &'static str, axis: usize) -> usize {
        match self.dims()[axis] {
            UNKNOWN => OpError::new(op, format!("axis {axis} has an unknown size; give it a known size"))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller()),
            n => n,
        }
    }

    /// `multiples[i]` copies of the tensor laid end to end along each axis `i`
    /// (`tf.tile`): `[1, 2]` tiled by `[3]` is `[1, 2, 1, 2, 1, 2]`.
    #[track_caller]
    pub fn tile(&self, multiples: &[usize]) -> Tensor {
        if multiples.len() != self.rank() {
            OpError::new("tile", format!("{} multiples given for a tensor of rank {}", multiples.len(), self.rank()))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
        let mut out = self.clone();
        for (axis, &m) in multiples.iter().enumerate() {
            out = match m {
                0 => out.narrow(axis as i64, 0, 0),
                1 => out,
                m => Tensor::concat(&vec![&out; m], axis as i64),
            };
        }
        out
    }

    /// Each element repeated `repeats` times along `axis` (`tf.repeat` with a scalar
    /// count): `[1, 2]` repeated 3 times is `[1, 1, 1, 2, 2, 2]`.
    #[track_caller]
    pub fn repeat(&self, repeats: usize, axis: i64) -> Tensor {
        let a = self.axis_or_raise("repeat", axis);
        if repeats == 1 {
            return self.clone();
        }
        let n = self.known_dim_or_raise("repeat", a);
        let copies = self.expand_dims(a as i64 + 1);
        let laid = Tensor::concat(&vec![&copies; repeats], a as i64 + 1);
        let mut dims: Vec<usize> = self.dims().to_vec();
        dims[a] = n * repeats;
        if dims.iter().filter(|&&d| d == UNKNOWN).count() > 1 {
            OpError::new("repeat", "at most one dim of the input may have an unknown size")
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
        laid.reshape_to(&Shape::from(dims))
    }

    /// Reverses the order of the elements along each of `axes` (`tf.reverse`).
    #[track_caller]
    pub fn reverse(&self, axes: &[i64]) -> Tensor {
        let mut args = vec![SliceArg::full(); self.rank()];
        for &axis in axes {
            let a = self.axis_or_raise("reverse", axis);
            self.known_dim_or_raise("reverse", a);
            args[a] = SliceArg::full().step(-1);
        }
        self.slice(&args)
    }

    /// Pads every axis `i` with `paddings[i].0` elements before and `paddings[i].1`
    /// after (`tf.pad`); `mode` says what the new elements are.
    #[track_caller]
    pub fn pad(&self, paddings: &[(usize, usize)], mode: PadMode) -> Tensor {
        if paddings.len() != self.rank() {
            OpError::new("pad", format!("{} paddings given for a tensor of rank {}", paddings.len(), self.rank()))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
        if matches!(mode, PadMode::Constant(v) if v.to_bits() == 0) {
            if let Some(padded) = self.zero_pad(paddings) {
                return padded;
            }
        }
        let mut out = self.clone();
        for (a, &(before, after)) in paddings.iter().enumerate() {
            if before == 0 && after == 0 {
                continue;
            }
            let n = out.known_dim_or_raise("pad", a);
            let (b, e) = match mode {
                PadMode::Constant(value) => {
                    if n == 0 {
                        OpError::new("pad", format!("axis {a} is empty; a constant pad needs one element to copy"))
                            .with_operands([(self.dtype(), self.shape())])
                            .raise(Location::caller())
                    }
                    let edge = Tensor::fill_like(&out.narrow(a as i64, 0, 1), value);
                    (Tensor::concat_or_none(&vec![&edge; before], a), Tensor::concat_or_none(&vec![&edge; after], a))
                }
                PadMode::Reflect | PadMode::Symmetric => {
                    let skip = usize::from(mode == PadMode::Reflect);
                    if before.max(after) + skip > n {
                        let most = n - skip.min(n);
                        OpError::new(
                            "pad",
                            format!(
                                "paddings ({before}, {after}) of axis {a} exceed {most}, the most a {mode:?} pad \
                                 of an axis of length {n} allows"
                            ),
                        )
                        .with_operands([(self.dtype(), self.shape())])
                        .raise(Location::caller())
                    }
                    // `count` elements from `from` downwards along the axis.
                    let mirror = |from: usize, count: usize| {
                        let mut args = vec![SliceArg::full(); a + 1];
                        let stop = from as i64 - count as i64;
                        args[a] = SliceArg::new(Some(from as i64), (stop >= 0).then_some(stop), -1);
                        out.slice(&args)
                    };
                    // Before: from before-1+skip down to skip; after: from n-1-skip down.
                    let b = (before > 0).then(|| mirror(before + skip - 1, before));
                    (b, (after > 0).then(|| mirror(n - 1 - skip, after)))
                }
            };
            let parts: Vec<&Tensor> = b.iter().chain([&out]).chain(e.iter()).collect();
            out = Tensor::concat(&parts, a as i64);
        }
        out
    }

    /// A pad with +0 as one op: the input scattered into zeros (`slice_grad`, the
    /// gradient of the slice that takes it back out), one pass instead of a concat per
    /// axis. `None` when a padded axis is unknown or empty (the general path reports it).
    #[track_caller]
    fn zero_pad(&self, paddings: &[(usize, usize)]) -> Option<Tensor> {
        let mut dims = Vec::with_capacity(self.rank());
        let mut slice = Vec::with_capacity(self.rank());
        for (&n, &(before, after)) in self.dims().iter().zip(paddings) {
            let padded = before + after > 0;
            if padded && (n == UNKNOWN || n == 0) {
                return None;
            }
            dims.push(if n == UNKNOWN { UNKNOWN } else { n + before + after });
            slice.push(super::shape::SliceAxis { start: before, step: 1, len: n });
        }
        Some(super::apply(super::Op::SliceGrad { input: Shape::from(dims), slice }, &[self]))
    }

    /// `concat` of `parts`, or `None` for no parts.
    #[track_caller]
    fn concat_or_none(parts: &[&Tensor], axis: usize) -> Option<Tensor> {
        (!parts.is_empty()).then(|| Tensor::concat(parts, axis as i64))
    }

    /// Splits `axis` into consecutive pieces of the given sizes, which must add up to
    /// its length (`tf.split` with `size_splits`).
    #[track_caller]
    pub fn split(&self, sizes: &[usize], axis: i64) -> Vec<Tensor> {
        let a = self.axis_or_raise("split", axis);
        let n = self.known_dim_or_raise("split", a);
        let total = sizes.iter().try_fold(0usize, |s, &k| s.checked_add(k));
        if total != Some(n) {
            OpError::new("split", format!("sizes {sizes:?} do not add up to {n}, the length of axis {axis}"))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&k| {
                start += k;
                self.narrow(a as i64, start - k, k)
            })
            .collect()
    }

    /// Splits `axis` into `pieces` equal parts (`tf.split` with `num_or_size_splits` a
    /// number): the length must be a multiple of `pieces`.
    #[track_caller]
    pub fn chunks(&self, pieces: usize, axis: i64) -> Vec<Tensor> {
        let a = self.axis_or_raise("split", axis);
        let n = self.known_dim_or_raise("split", a);
        if pieces == 0 || !n.is_multiple_of(pieces) {
            OpError::new("split", format!("axis {axis} of length {n} cannot be split into {pieces} equal parts"))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
        self.split(&vec![n / pieces; pieces], axis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(n: usize) -> Tensor {
        Tensor::from_vec((1..=n as i32).collect::<Vec<_>>(), [n]).unwrap()
    }

    #[test]
    fn the_documented_examples() {
        let v = |t: Tensor| t.to_vec::<i32>().unwrap();
        assert_eq!(v(iota(2).tile(&[3])), [1, 2, 1, 2, 1, 2]);
        assert_eq!(v(iota(2).repeat(3, 0)), [1, 1, 1, 2, 2, 2]);
        assert_eq!(v(iota(3).pad(&[(2, 2)], PadMode::Reflect)), [3, 2, 1, 2, 3, 2, 1]);
        assert_eq!(v(iota(3).pad(&[(2, 2)], PadMode::Symmetric)), [2, 1, 1, 2, 3, 3, 2]);
        assert_eq!(v(iota(3).pad(&[(1, 0)], PadMode::Constant(-7.0))), [-7, 1, 2, 3]);
        assert_eq!(v(iota(3).reverse(&[0])), [3, 2, 1]);
    }
}
