//! Constructors and masks built from the primitives: `eye`, `linspace`, and the
//! triangle masks `tril` / `triu` (which work on dims known only when a traced
//! function runs).

use std::panic::Location;

use crate::dtype::DType;
use crate::error::{OpError, Result};
use crate::tensor::Tensor;

impl Tensor {
    /// The `n × n` identity matrix of `dtype` (`tf.eye`).
    pub fn eye(n: usize, dtype: DType) -> Tensor {
        let v: Vec<f64> = (0..n * n).map(|i| if i % (n + 1) == 0 { 1.0 } else { 0.0 }).collect();
        let t = Tensor::from_vec(v, [n, n]).unwrap_or_else(|_| unreachable!("n·n values for [n, n]"));
        if dtype == DType::F64 {
            t
        } else {
            t.cast(dtype)
        }
    }

    /// `num` evenly spaced values from `start` to `stop`, both included (`tf.linspace`,
    /// `np.linspace`): `start + i·(stop − start)/(num − 1)`, computed in f64, the last
    /// exactly `stop`. Float dtypes only.
    pub fn linspace(start: f64, stop: f64, num: usize, dtype: DType) -> Result<Tensor> {
        if !dtype.is_float() {
            return Err(OpError::new("linspace", format!("needs a float dtype, got {dtype}")).into());
        }
        let step = if num > 1 { (stop - start) / (num - 1) as f64 } else { 0.0 };
        let v: Vec<f64> =
            (0..num).map(|i| if i + 1 == num && num > 1 { stop } else { start + step * i as f64 }).collect();
        let t = Tensor::from_vec(v, [num])?;
        Ok(if dtype == DType::F64 { t } else { t.cast(dtype) })
    }

    /// The lower triangle of the last two axes: elements with `col − row ≤ k` kept, the
    /// others zero (`np.tril`; `tf.linalg.band_part(x, -1, k)` for k ≥ 0). `k = 0` keeps
    /// the diagonal, `k = -1` drops it.
    #[track_caller]
    pub fn tril(&self, k: i64) -> Tensor {
        self.triangle("tril", k, false)
    }

    /// The upper triangle of the last two axes: elements with `col − row ≥ k` kept
    /// (`np.triu`).
    #[track_caller]
    pub fn triu(&self, k: i64) -> Tensor {
        self.triangle("triu", k, true)
    }

    #[track_caller]
    fn triangle(&self, op: &'static str, k: i64, upper: bool) -> Tensor {
        if self.rank() < 2 {
            OpError::new(op, format!("needs a tensor of rank >= 2, got rank {}", self.rank()))
                .with_operands([(self.dtype(), self.shape())])
                .raise(Location::caller())
        }
        // Row and column indices from running counts of ones (shapes known only at run
        // time work too): [.., n, 1] and [.., 1, m].
        let ones = self.cast(DType::I64);
        let rows = Tensor::ones_like(&ones.sum(-1, true)).cumsum(-2);
        let cols = Tensor::ones_like(&ones.sum(-2, true)).cumsum(-1);
        let offset = cols - rows;
        let keep = if upper { offset.ge(k) } else { offset.le(k) };
        Tensor::where_(&keep, self, Tensor::zeros_like(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_examples() {
        assert_eq!(Tensor::eye(2, DType::I32).to_vec::<i32>().unwrap(), [1, 0, 0, 1]);
        let l = Tensor::linspace(0.0, 1.0, 4, DType::F64).unwrap().to_vec::<f64>().unwrap();
        assert_eq!(l, [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]);
        assert_eq!(Tensor::linspace(2.0, 5.0, 1, DType::F32).unwrap().to_vec::<f32>().unwrap(), [2.0]);
        let x = Tensor::from_vec((1..=9).collect::<Vec<i32>>(), [3, 3]).unwrap();
        assert_eq!(x.tril(0).to_vec::<i32>().unwrap(), [1, 0, 0, 4, 5, 0, 7, 8, 9]);
        assert_eq!(x.triu(1).to_vec::<i32>().unwrap(), [0, 2, 3, 0, 0, 6, 0, 0, 0]);
    }
}
