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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
