//! Gradient accumulation during backprop.
//!
//! A tensor read through many slices (an RNN's input projection, one step at a time; an
//! LSTM's gates, four slices of one product) gets one gradient per slice. Scattering
//! each into zeros of the whole tensor and adding them costs a full-size buffer per
//! slice: quadratic in the number of steps. Instead the slices' gradients are kept apart
//! until the tensor's own gradient is read, and slices along one axis that tile a range
//! are joined by one `concat` (and padded once, if the range is not the whole axis).

use std::collections::HashMap;

use crate::ops::shape::SliceAxis;
use crate::ops::{apply, Op};
use crate::shape::{Shape, UNKNOWN};
use crate::tensor::{Tensor, TensorId};

/// The gradient of one slice of a tensor.
struct Piece {
    input: Shape,
    slice: Vec<SliceAxis>,
    grad: Tensor,
}

/// Whether axis `a` of `slice` of a tensor of shape `input` is the whole axis.
fn is_whole(input: &Shape, slice: &[SliceAxis], a: usize) -> bool {
    let (s, d) = (slice[a], input.dims()[a]);
    s.start == 0 && s.step == 1 && (s.len == d || s.len == UNKNOWN)
}

/// Whether axis `a` of `slice` is the whole axis backwards (`reverse`).
fn is_reversed(input: &Shape, slice: &[SliceAxis], a: usize) -> bool {
    let (s, d) = (slice[a], input.dims()[a]);
    d != UNKNOWN && s.step == -1 && s.len == d && s.start + 1 == d
}

/// The gradient of one slice of a tensor of shape `input` given the slice's gradient
/// `g`: `g` scattered into zeros of the whole shape; for a slice that only reverses axes
/// (its own inverse), `g` reversed alike, without the padding.
pub(super) fn slice_gradient(input: &Shape, slice: &[SliceAxis], g: &Tensor) -> Tensor {
    if (0..slice.len()).all(|a| is_whole(input, slice, a) || is_reversed(input, slice, a)) {
        return apply(Op::Slice(slice.to_vec()), &[g]);
    }
    apply(Op::SliceGrad { input: input.clone(), slice: slice.to_vec() }, &[g])
}

impl Piece {
    fn is_whole(&self, a: usize) -> bool {
        is_whole(&self.input, &self.slice, a)
    }

    /// The one axis the slice narrows with step 1 (`None` if it narrows several, or
    /// steps, or none).
    fn axis(&self) -> Option<usize> {
        let mut partial = (0..self.slice.len()).filter(|&a| !self.is_whole(a));
        let a = partial.next()?;
        (partial.next().is_none() && self.slice[a].step == 1 && self.slice[a].len != UNKNOWN).then_some(a)
    }

    /// The gradient of the whole tensor.
    fn scatter(&self) -> Tensor {
        slice_gradient(&self.input, &self.slice, &self.grad)
    }
}

/// Gradients summed per tensor, slices' gradients kept apart until read.
#[derive(Default)]
pub(super) struct Accumulator {
    dense: HashMap<TensorId, Tensor>,
    pieces: HashMap<TensorId, Vec<Piece>>,
}

impl Accumulator {
    /// Adds `g` to the gradient of `id`.
    pub(super) fn add(&mut self, id: TensorId, g: Tensor) {
        let acc = match self.dense.remove(&id) {
            Some(prev) => &prev + &g,
            None => g,
        };
        self.dense.insert(id, acc);
    }

    /// Adds the gradient `g` of `slice` of `input` (a tensor of shape `input`).
    pub(super) fn add_slice(&mut self, id: TensorId, input: &Tensor, slice: &[SliceAxis], g: Tensor) {
        let piece = Piece { input: input.shape().clone(), slice: slice.to_vec(), grad: g };
        self.pieces.entry(id).or_default().push(piece);
    }

    /// The whole gradient of `id` so far.
    pub(super) fn get(&mut self, id: TensorId) -> Option<Tensor> {
        if let Some(pieces) = self.pieces.remove(&id) {
            for g in join(pieces) {
                self.add(id, g);
            }
        }
        self.dense.get(&id).cloned()
    }

    /// Every gradient.
    pub(super) fn finish(mut self) -> HashMap<TensorId, Tensor> {
        let ids: Vec<TensorId> = self.pieces.keys().copied().collect();
        for id in ids {
            self.get(id);
        }
        self.dense
    }
}

/// The slices' gradients as few whole-tensor gradients: slices along one axis, sorted by
/// start, joined by `concat` where each starts at the previous one's end (a run); a run
/// covering the axis is its concat, another is padded once. Other slices are padded each.
fn join(mut pieces: Vec<Piece>) -> Vec<Tensor> {
    // Stable: pieces with one axis and start keep their recording order.
    pieces.sort_by_key(|p| p.axis().map_or((usize::MAX, 0), |a| (a, p.slice[a].start)));
    let mut out = Vec::new();
    let mut run: Vec<Piece> = Vec::new();
    for p in pieces {
        let continues = match (run.last(), p.axis()) {
            (Some(last), Some(a)) => {
                last.axis() == Some(a) && last.slice[a].start + last.slice[a].len == p.slice[a].start
            }
            _ => false,
        };
        if !continues {
            out.extend(close(std::mem::take(&mut run)));
        }
        if p.axis().is_some() {
            run.push(p);
        } else {
            out.push(p.scatter());
        }
    }
    out.extend(close(run));
    out
}

/// One run of adjacent slices along one axis as one gradient of the whole tensor.
fn close(run: Vec<Piece>) -> Option<Tensor> {
    let first = run.first()?;
    if run.len() == 1 {
        return Some(first.scatter());
    }
    let a = first.axis().unwrap_or_else(|| unreachable!("runs hold slices along one axis"));
    let grads: Vec<&Tensor> = run.iter().map(|p| &p.grad).collect();
    let joined = Tensor::concat(&grads, a as i64);
    let len: usize = run.iter().map(|p| p.slice[a].len).sum();
    let mut slice = first.slice.clone();
    slice[a] = SliceAxis { start: first.slice[a].start, step: 1, len };
    let whole = Piece { input: first.input.clone(), slice, grad: joined };
    Some(if whole.is_whole(a) { whole.grad } else { whole.scatter() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;

    fn slice_of(input: &Tensor, axis: usize, start: usize, len: usize) -> Vec<SliceAxis> {
        input
            .dims()
            .iter()
            .enumerate()
            .map(
                |(a, &d)| {
                    if a == axis {
                        SliceAxis { start, step: 1, len }
                    } else {
                        SliceAxis { start: 0, step: 1, len: d }
                    }
                },
            )
            .collect()
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + 1.0) * seed).sin()).collect()
    }

    #[test]
    fn joined_slices_equal_the_sum_of_padded_slices() {
        let x = Tensor::from_vec(values(2 * 7 * 3, 0.37), [2, 7, 3]).unwrap();
        let id = x.id;
        // Steps 0..7 in order, some twice, one overlapping pair, and a slice along axis 2.
        let slices: [(usize, usize, usize); 7] =
            [(1, 0, 3), (1, 3, 2), (1, 5, 2), (1, 2, 3), (1, 2, 1), (2, 1, 2), (1, 6, 1)];
        let mut acc = Accumulator::default();
        let mut want = Tensor::zeros_like(&x);
        for (k, &(axis, start, len)) in slices.iter().enumerate() {
            let s = slice_of(&x, axis, start, len);
            let mut dims = x.dims().to_vec();
            dims[axis] = len;
            let n: usize = dims.iter().product();
            let g = Tensor::from_vec(values(n, 0.11 * (k as f32 + 1.0)), dims.as_slice()).unwrap();
            want = &want + &apply(Op::SliceGrad { input: x.shape().clone(), slice: s.clone() }, &[&g]);
            acc.add_slice(id, &x, &s, g);
        }
        acc.add(id, Tensor::ones_like(&x));
        let want = (&want + &Tensor::ones_like(&x)).to_vec::<f32>().unwrap();
        let got = acc.get(id).unwrap();
        assert_eq!(got.dtype(), DType::F32);
        for (g, w) in got.to_vec::<f32>().unwrap().iter().zip(&want) {
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{g} vs {w}");
        }
        assert!(acc.finish().contains_key(&id));
    }

    #[test]
    fn a_reversal_is_its_own_gradient() {
        let x = Tensor::from_vec(values(3 * 4, 0.5), [3, 4]).unwrap();
        let g = Tensor::from_vec(values(3 * 4, 0.9), [3, 4]).unwrap();
        let rev = vec![SliceAxis { start: 0, step: 1, len: 3 }, SliceAxis { start: 3, step: -1, len: 4 }];
        let want = apply(Op::SliceGrad { input: x.shape().clone(), slice: rev.clone() }, &[&g]);
        let mut acc = Accumulator::default();
        acc.add_slice(x.id, &x, &rev, g.clone());
        assert_eq!(acc.get(x.id).unwrap().to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
        assert_eq!(want.to_vec::<f32>().unwrap(), g.reverse(&[1]).to_vec::<f32>().unwrap());
    }
}
