//! Weight initializers (Keras' `kernel_initializer` / `bias_initializer`).
//!
//! Random initializers draw from the runtime's global random sequence, so
//! `random::set_seed(s)` before building a model makes its initial weights repeat.

use tensorjit_runtime::{random, DType, Shape, Tensor};

/// How a weight's initial value is made.
#[derive(Clone, Debug, PartialEq)]
pub enum Initializer {
    Zeros,
    Ones,
    /// Every element `value` (e.g. the linear-regression example's kernel 5.0).
    Constant(f64),
    /// U(−l, l) with l = √(6 / (fan_in + fan_out)) — Keras' default kernel initializer.
    GlorotUniform,
    /// N(0, √(2 / fan_in)) truncated at two standard deviations (ReLU networks).
    HeNormal,
    RandomNormal {
        mean: f64,
        stddev: f64,
    },
    RandomUniform {
        low: f64,
        high: f64,
    },
    /// A random orthogonal matrix (Keras' default for recurrent kernels): the Q of a QR
    /// decomposition of a standard-normal draw, its columns' signs fixed by R's
    /// diagonal; shapes beyond rank 2 are flattened to `[prod(leading), last]`.
    Orthogonal,
}

impl Initializer {
    /// The initial value of a weight of shape `dims`.
    pub fn make(&self, dims: &[usize], dtype: DType) -> Tensor {
        let shape = Shape::new(dims);
        match *self {
            Initializer::Zeros => Tensor::zeros(shape, dtype),
            Initializer::Ones => Tensor::ones(shape, dtype),
            Initializer::Constant(v) => Tensor::full(shape, v, dtype),
            Initializer::GlorotUniform => random::glorot_uniform(shape, dtype, None),
            Initializer::HeNormal => {
                let (fan_in, _) = random::fans(&shape);
                let stddev = (2.0 / fan_in.max(1) as f64).sqrt() / 0.879_625_720_537_975;
                random::truncated_normal(shape, 0.0, stddev, dtype, None)
            }
            Initializer::RandomNormal { mean, stddev } => random::normal(shape, mean, stddev, dtype, None),
            Initializer::RandomUniform { low, high } => random::uniform(shape, low, high, dtype, None),
            Initializer::Orthogonal => orthogonal(dims, dtype),
        }
    }
}

/// See [`Initializer::Orthogonal`]: modified Gram–Schmidt on the host, in f64, over the
/// longer side's vectors.
fn orthogonal(dims: &[usize], dtype: DType) -> Tensor {
    let cols = dims.last().copied().unwrap_or(1);
    let rows: usize = dims.iter().rev().skip(1).product();
    // Orthonormal vectors of length `len`, `count` of them (count ≤ len).
    let (len, count) = (rows.max(cols), rows.min(cols));
    let draw = random::normal(Shape::new(&[count, len]), 0.0, 1.0, DType::F64, None);
    let mut q = draw.to_vec::<f64>().unwrap_or_else(|_| vec![0.0; count * len]);
    for i in 0..count {
        for j in 0..i {
            let dot: f64 = (0..len).map(|k| q[i * len + k] * q[j * len + k]).sum();
            for k in 0..len {
                q[i * len + k] -= dot * q[j * len + k];
            }
        }
        // R's diagonal is this norm (positive): Q's signs are then Keras' ones.
        let norm = (0..len).map(|k| q[i * len + k] * q[i * len + k]).sum::<f64>().sqrt();
        for k in 0..len {
            q[i * len + k] /= if norm > 0.0 { norm } else { 1.0 };
        }
    }
    // The vectors are the columns when rows ≥ cols, else the rows.
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = if rows >= cols { q[c * len + r] } else { q[r * len + c] };
        }
    }
    let t = Tensor::from_vec(out, Shape::new(dims)).unwrap_or_else(|_| unreachable!("rows·cols values"));
    if dtype == DType::F64 {
        t
    } else {
        t.cast(dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_matrices_are_orthonormal() {
        for dims in [[6usize, 6], [4, 10], [12, 3]] {
            let q = Initializer::Orthogonal.make(&dims, DType::F64);
            let (r, c) = (dims[0], dims[1]);
            // QᵀQ = I for tall (or square) Q, QQᵀ = I for wide Q.
            let gram = if r >= c { q.t().matmul(&q) } else { q.matmul(&q.t()) };
            let g = gram.to_vec::<f64>().unwrap();
            let n = r.min(c);
            for i in 0..n {
                for j in 0..n {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((g[i * n + j] - want).abs() < 1e-12, "{dims:?} ({i}, {j}): {}", g[i * n + j]);
                }
            }
        }
    }

    #[test]
    fn glorot_uniform_stays_within_its_limit() {
        let t = Initializer::GlorotUniform.make(&[64, 32], DType::F32);
        let limit = (6.0f32 / 96.0).sqrt();
        let v = t.to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.abs() <= limit));
        let spread = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(spread > 0.8 * limit, "draws should fill the range, max |x| = {spread}");
    }

    #[test]
    fn constants_fill_the_shape() {
        let t = Initializer::Constant(5.0).make(&[2, 1], DType::F32);
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![5.0, 5.0]);
        assert_eq!(Initializer::Ones.make(&[3], DType::F32).to_vec::<f32>().unwrap(), vec![1.0; 3]);
    }
}
