//! Kernels of the shape ops. Everything that moves elements goes through one strided
//! copy (`gather_strided`): permute, broadcast_to and slice differ only in the strides.

use crate::buffer::{alloc, same_type, Buffer};
use crate::dtype::{DType, Element};
use crate::error::OpError;
use crate::ops::SliceAxis;
use crate::shape::Shape;
use crate::tensor::Tensor;
use rayon::prelude::*;

/// `out[i0, .., ik] = src[base + Σ i_d · strides[d]]` over `dims` (row-major output).
fn gather_strided<T: Element>(src: &[T], dims: &[usize], strides: &[isize], base: usize) -> Vec<T> {
    let n: usize = dims.iter().product();
    let mut out = alloc::<T>(n);
    if n == 0 {
        return out;
    }
    let (dims, strides) = coalesce(dims, strides);
    let r = dims.len();
    let (inner, s_in) = (dims[r - 1], strides[r - 1]);
    if r >= 2 && s_in != 1 && strides[r - 2] == 1 && inner >= TILE && dims[r - 2] >= TILE {
        // A transpose of the last two axes: copy square tiles, so that both the reads
        // and the writes stay within a few cache lines per tile row.
        transpose_tiles(src, (&dims, &strides), base, &mut out);
        return out;
    }
    let walk = |block: &mut [T], first_row: usize| {
        for (k, row) in block.chunks_mut(inner).enumerate() {
            let off = row_offset(&dims, &strides, first_row + k, base);
            if s_in == 1 {
                row.copy_from_slice(&src[off as usize..off as usize + inner]);
            } else {
                for (i, o) in row.iter_mut().enumerate() {
                    *o = src[(off + i as isize * s_in) as usize];
                }
            }
        }
    };
    let rows_per_task = (super::par::CHUNK / inner).max(1);
    if n >= 2 * super::par::CHUNK {
        out.par_chunks_mut(rows_per_task * inner).enumerate().for_each(|(t, b)| walk(b, t * rows_per_task));
    } else {
        walk(&mut out, 0);
    }
    out
}

/// Side of the square tiles of a transposing copy.
const TILE: usize = 32;

type DimVec = smallvec::SmallVec<[usize; 6]>;
type StrideVec = smallvec::SmallVec<[isize; 6]>;

/// `dims`/`strides` with size-1 dims dropped and neighbours merged where the outer one
/// steps exactly over the inner one (at least one dim is kept).
fn coalesce(dims: &[usize], strides: &[isize]) -> (DimVec, StrideVec) {
    let (mut d, mut s) = (DimVec::new(), StrideVec::new());
    for (&n, &st) in dims.iter().zip(strides) {
        if n == 1 {
            continue;
        }
        match (d.last_mut(), s.last_mut()) {
            (Some(pd), Some(ps)) if *ps == st * n as isize => {
                *pd *= n;
                *ps = st;
            }
            _ => {
                d.push(n);
                s.push(st);
            }
        }
    }
    if d.is_empty() {
        d.push(1);
        s.push(0);
    }
    (d, s)
}

/// Source offset of output row `row` (a row being the last dim).
#[inline]
fn row_offset(dims: &[usize], strides: &[isize], mut row: usize, base: usize) -> isize {
    let mut off = base as isize;
    for d in (0..dims.len() - 1).rev() {
        off += (row % dims[d]) as isize * strides[d];
        row /= dims[d];
    }
    off
}

/// The tiled copy for [`gather_strided`] when the source walks the output's
/// second-to-last dim contiguously: each task takes `TILE` output rows of one matrix
/// and copies them a `TILE × TILE` square at a time.
fn transpose_tiles<T: Element>(src: &[T], (dims, strides): (&[usize], &[isize]), base: usize, out: &mut [T]) {
    let r = dims.len();
    let (rows, cols, col_stride) = (dims[r - 2], dims[r - 1], strides[r - 1]);
    let band = |matrix: usize, b: usize, dst: &mut [T]| {
        let row0 = b * TILE;
        // The source offset of (row0, 0) of this matrix.
        let start = row_offset(dims, strides, matrix * rows + row0, base);
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            for (i, out_row) in dst.chunks_mut(cols).enumerate() {
                let at = start + i as isize;
                for (c, o) in out_row[c0..c1].iter_mut().enumerate() {
                    *o = src[(at + (c0 + c) as isize * col_stride) as usize];
                }
            }
        }
    };
    // A band: the output rows row0..row0+TILE of one matrix, contiguous in `out`.
    let parallel = out.len() >= 2 * super::par::CHUNK;
    let tasks: Vec<(usize, usize, &mut [T])> = out
        .chunks_mut(rows * cols)
        .enumerate()
        .flat_map(|(m, matrix)| matrix.chunks_mut(TILE * cols).enumerate().map(move |(b, d)| (m, b, d)))
        .collect();
    if parallel {
        tasks.into_par_iter().for_each(|(m, b, dst)| band(m, b, dst));
    } else {
        tasks.into_iter().for_each(|(m, b, dst)| band(m, b, dst));
    }
}

fn strides_of(s: &Shape) -> Vec<isize> {
    s.strides().iter().map(|&x| x as isize).collect()
}

pub(crate) fn permute(x: &Tensor, perm: &[usize]) -> Tensor {
    let st = strides_of(x.shape());
    let dims: Vec<usize> = perm.iter().map(|&a| x.dims()[a]).collect();
    let pst: Vec<isize> = perm.iter().map(|&a| st[a]).collect();
    let buf = same_type!(x.buffer(), v => gather_strided(v, &dims, &pst, 0));
    Tensor::from_buffer(buf, Shape::from(dims))
}

pub(crate) fn broadcast_to(x: &Tensor, shape: Shape) -> Tensor {
    let st = strides_of(x.shape());
    let r = shape.rank();
    let k = r - x.rank();
    let bst: Vec<isize> = (0..r).map(|i| if i < k || x.dims()[i - k] == 1 { 0 } else { st[i - k] }).collect();
    let buf = same_type!(x.buffer(), v => gather_strided(v, &shape, &bst, 0));
    Tensor::from_buffer(buf, shape)
}

pub(crate) fn slice(x: &Tensor, s: &[SliceAxis], shape: Shape) -> Tensor {
    let st = strides_of(x.shape());
    let base: usize = s.iter().zip(&st).map(|(a, &t)| a.start * t as usize).sum();
    let sst: Vec<isize> = s.iter().zip(&st).map(|(a, &t)| a.step as isize * t).collect();
    let buf = same_type!(x.buffer(), v => gather_strided(v, &shape, &sst, base));
    Tensor::from_buffer(buf, shape)
}

/// Scatters `dy` (the sliced region) into zeros of `input` shape: row by row along
/// `dy`'s last axis (a slice's positions are distinct, so each is written once).
pub(crate) fn slice_grad(dy: &Tensor, input: Shape, s: &[SliceAxis]) -> Tensor {
    fn go<T: Element>(dy: &[T], dy_dims: &[usize], input: &Shape, s: &[SliceAxis]) -> Vec<T> {
        let mut out = crate::buffer::filled(T::default(), input.numel());
        if dy.is_empty() {
            return out;
        }
        let st = strides_of(input);
        let base: isize = s.iter().zip(&st).map(|(a, &t)| a.start as isize * t).sum();
        let sst: Vec<isize> = s.iter().zip(&st).map(|(a, &t)| a.step as isize * t).collect();
        let (dims, strides) = coalesce(dy_dims, &sst);
        let (inner, s_in) = (dims[dims.len() - 1], strides[strides.len() - 1]);
        for (row, src) in dy.chunks_exact(inner).enumerate() {
            let off = row_offset(&dims, &strides, row, 0) + base;
            if s_in == 1 {
                out[off as usize..off as usize + inner].copy_from_slice(src);
            } else {
                for (i, &v) in src.iter().enumerate() {
                    out[(off + i as isize * s_in) as usize] = v;
                }
            }
        }
        out
    }
    let buf = same_type!(dy.buffer(), v => go(v, dy.dims(), &input, s));
    Tensor::from_buffer(buf, input)
}

pub(crate) fn concat(xs: &[&Tensor], axis: usize, shape: Shape) -> Tensor {
    fn go<T: Element>(xs: &[&Tensor], axis: usize, shape: &Shape) -> Vec<T> {
        let outer: usize = shape[..axis].iter().product();
        let mut out = Vec::with_capacity(shape.numel());
        for o in 0..outer {
            for t in xs {
                let chunk: usize = t.dims()[axis..].iter().product();
                out.extend_from_slice(&t.data::<T>().unwrap_or(&[])[o * chunk..(o + 1) * chunk]);
            }
        }
        out
    }
    let buf = same_type!(xs[0].buffer(), _v => go(xs, axis, &shape));
    Tensor::from_buffer(buf, shape)
}

/// The values of an integer tensor as i64 (empty for other dtypes, for symbolic
/// tensors, whose values exist only at run time, and for tensors on a device, whose
/// values would cost a copy to the host).
pub(crate) fn index_values(t: &Tensor) -> Box<dyn Iterator<Item = i64> + '_> {
    if t.is_symbolic() || t.device() != crate::device::Device::Cpu {
        return Box::new(std::iter::empty());
    }
    match t.buffer() {
        Buffer::I32(v) => Box::new(v.iter().map(|&i| i as i64)),
        Buffer::I64(v) => Box::new(v.iter().copied()),
        _ => Box::new(std::iter::empty()),
    }
}

/// Refuses an index outside `p`'s `axis`, naming it: on the CPU a gather reads its
/// indices anyway, so an out-of-range one is an error wherever the gather runs — eager,
/// interpreted or compiled (as TensorFlow's CPU kernel does). On a GPU the indices are
/// not read back; there an out-of-range index gathers zeros.
/// Indices that are not host values (see [`index_values`]), or an axis of unknown length
/// (a trace with `None` dims), are not checked.
pub(crate) fn check_gather_indices(p: &Tensor, idx: &Tensor, axis: usize) -> Result<(), OpError> {
    if p.dims()[axis] == crate::shape::UNKNOWN {
        return Ok(());
    }
    let n = p.dims()[axis] as i64;
    match index_values(idx).find(|&i| !(0..n).contains(&i)) {
        None => Ok(()),
        Some(bad) => Err(OpError::new("gather", format!("index {bad} is out of range for axis {axis} of length {n}"))
            .with_operands([(p.dtype(), p.shape()), (idx.dtype(), idx.shape())])),
    }
}

pub(crate) fn gather(p: &Tensor, idx: &Tensor, axis: usize, shape: Shape) -> Tensor {
    let outer: usize = p.dims()[..axis].iter().product();
    let n = p.dims()[axis];
    let inner: usize = p.dims()[axis + 1..].iter().product();
    let ids: Vec<i64> = index_values(idx).collect();
    fn go<T: Element>(v: &[T], ids: &[i64], (outer, n, inner): (usize, usize, usize)) -> Vec<T> {
        let mut out = Vec::with_capacity(outer * ids.len() * inner);
        for o in 0..outer {
            for &i in ids {
                if (0..n as i64).contains(&i) {
                    let at = (o * n + i as usize) * inner;
                    out.extend_from_slice(&v[at..at + inner]);
                } else {
                    out.extend(std::iter::repeat_n(T::default(), inner));
                }
            }
        }
        out
    }
    let buf = same_type!(p.buffer(), v => go(v, &ids, (outer, n, inner)));
    Tensor::from_buffer(buf, shape)
}

pub(crate) fn scatter_add(upd: &Tensor, idx: &Tensor, axis: usize, size: usize, shape: Shape) -> Tensor {
    let d = scatter_dims(upd, idx, axis, size);
    let ids: Vec<i64> = index_values(idx).collect();
    // Integers wrap, as every integer op of the runtime.
    let buf = match upd.buffer() {
        Buffer::F32(v) => Buffer::F32(scatter_fold(v, &ids, d, 0.0, |a, b| a + b)),
        Buffer::F64(v) => Buffer::F64(scatter_fold(v, &ids, d, 0.0, |a, b| a + b)),
        Buffer::I32(v) => Buffer::I32(scatter_fold(v, &ids, d, 0, i32::wrapping_add)),
        Buffer::I64(v) => Buffer::I64(scatter_fold(v, &ids, d, 0, i64::wrapping_add)),
        Buffer::Bool(_) => Buffer::Bool(crate::buffer::filled(false, shape.numel())),
    };
    Tensor::from_buffer(buf, shape)
}

/// The product of the updates per index, in the order of their positions, from 1
/// (TensorFlow's `unsorted_segment_prod`); integers wrap.
pub(crate) fn scatter_prod(upd: &Tensor, idx: &Tensor, axis: usize, size: usize, shape: Shape) -> Tensor {
    let d = scatter_dims(upd, idx, axis, size);
    let ids: Vec<i64> = index_values(idx).collect();
    let buf = match upd.buffer() {
        Buffer::F32(v) => Buffer::F32(scatter_fold(v, &ids, d, 1.0, |a, b| a * b)),
        Buffer::F64(v) => Buffer::F64(scatter_fold(v, &ids, d, 1.0, |a, b| a * b)),
        Buffer::I32(v) => Buffer::I32(scatter_fold(v, &ids, d, 1, i32::wrapping_mul)),
        Buffer::I64(v) => Buffer::I64(scatter_fold(v, &ids, d, 1, i64::wrapping_mul)),
        Buffer::Bool(_) => unreachable!("rejected by unsorted_segment_prod"),
    };
    Tensor::from_buffer(buf, shape)
}

/// The largest (`max`) or smallest update per index (NaN wins, as in `max`), starting
/// from the dtype's lowest or highest value, which empty indices keep (TensorFlow's
/// `unsorted_segment_max`/`_min`).
pub(crate) fn scatter_extreme(
    upd: &Tensor,
    idx: &Tensor,
    (axis, size): (usize, usize),
    max: bool,
    shape: Shape,
) -> Tensor {
    let d = scatter_dims(upd, idx, axis, size);
    let ids: Vec<i64> = index_values(idx).collect();
    fn pick<T: PartialOrd + Copy>(max: bool) -> impl Fn(T, T) -> T {
        // `s != s`: a NaN update wins (and stays).
        #[allow(clippy::eq_op)]
        move |d: T, s: T| if s != s || (max && s > d) || (!max && s < d) { s } else { d }
    }
    let buf = match upd.buffer() {
        Buffer::F32(v) => Buffer::F32(scatter_fold(v, &ids, d, if max { f32::MIN } else { f32::MAX }, pick(max))),
        Buffer::F64(v) => Buffer::F64(scatter_fold(v, &ids, d, if max { f64::MIN } else { f64::MAX }, pick(max))),
        Buffer::I32(v) => Buffer::I32(scatter_fold(v, &ids, d, if max { i32::MIN } else { i32::MAX }, pick(max))),
        Buffer::I64(v) => Buffer::I64(scatter_fold(v, &ids, d, if max { i64::MIN } else { i64::MAX }, pick(max))),
        Buffer::Bool(v) => Buffer::Bool(scatter_fold(v, &ids, d, !max, pick(max))),
    };
    Tensor::from_buffer(buf, shape)
}

/// `(outer, size, inner)` of a scatter along `axis`.
fn scatter_dims(upd: &Tensor, idx: &Tensor, axis: usize, size: usize) -> (usize, usize, usize) {
    let outer: usize = upd.dims()[..axis].iter().product();
    let inner: usize = upd.dims()[axis + idx.rank()..].iter().product();
    (outer, size, inner)
}

/// Folds each slice of `v` into its index's slice of an output starting at `init`
/// (slices in the order of their indices' positions; indices outside `0..size` drop
/// theirs).
fn scatter_fold<T: Element>(
    v: &[T],
    ids: &[i64],
    (outer, size, inner): (usize, usize, usize),
    init: T,
    fold: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut out = crate::buffer::filled(init, outer * size * inner);
    let k = ids.len();
    for o in 0..outer {
        for (j, &i) in ids.iter().enumerate() {
            if !(0..size as i64).contains(&i) {
                continue;
            }
            let src = &v[(o * k + j) * inner..][..inner];
            let dst = &mut out[(o * size + i as usize) * inner..][..inner];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = fold(*d, s);
            }
        }
    }
    out
}

pub(crate) fn one_hot(idx: &Tensor, depth: usize, dtype: DType, shape: Shape) -> Tensor {
    let ids: Vec<i64> = index_values(idx).collect();
    let mut hot = crate::buffer::filled(false, ids.len().saturating_mul(depth));
    for (r, &i) in ids.iter().enumerate() {
        if (0..depth as i64).contains(&i) {
            hot[r * depth + i as usize] = true;
        }
    }
    let hot = Tensor::from_buffer(Buffer::Bool(hot), shape.clone());
    super::elementwise::cast(&hot, dtype, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_scatter_adds_wrap_instead_of_overflowing() {
        let upd = Tensor::from_vec(vec![i32::MAX, 5, i32::MAX, -7], [4]).unwrap();
        let idx = Tensor::from_vec(vec![1i64, 0, 1, 3], [4]).unwrap();
        let out = scatter_add(&upd, &idx, 0, 3, Shape::new(&[3]));
        // Slot 1 sums MAX + MAX (wraps to −2); index 3 is out of range and dropped.
        assert_eq!(out.to_vec::<i32>().unwrap(), vec![5, i32::MAX.wrapping_add(i32::MAX), 0]);
        let wide = scatter_add(&upd.cast(DType::I64), &idx, 0, 3, Shape::new(&[3]));
        assert_eq!(wide.to_vec::<i64>().unwrap(), vec![5, 2 * i32::MAX as i64, 0]);
    }
}
