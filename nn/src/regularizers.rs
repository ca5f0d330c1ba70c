//! Weight regularizers (Keras' `keras.regularizers`): penalties on a layer's weights
//! that [`Module::losses`](crate::Module::losses) returns and `fit`/`evaluate` add to the
//! loss, so the optimizer minimises `loss + Σ penalties`.
//!
//! ```
//! use tensorjit_nn::prelude::*;
//! use tensorjit_runtime::{random, DType};
//!
//! let layer = Dense::new(4).kernel_regularizer(Regularizer::L2(0.01));
//! layer.call(&random::normal([2, 3], 0.0, 1.0, DType::F32, Some(1)), false);
//! let kernel = layer.kernel().unwrap().read();
//! let want = (kernel.square().sum_all() * 0.01).to_scalar::<f32>().unwrap();
//! assert_eq!(layer.losses()[0].to_scalar::<f32>().unwrap(), want);
//! ```

use tensorjit_runtime::Tensor;

use crate::error::raise;

/// A penalty on a weight tensor `w`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Regularizer {
    /// `l1·Σ|w|`.
    L1(f64),
    /// `l2·Σw²` (no ½, as Keras).
    L2(f64),
    /// `l1·Σ|w| + l2·Σw²`.
    L1L2 { l1: f64, l2: f64 },
}

impl Regularizer {
    /// The penalty of `w`, a scalar of its dtype.
    pub fn penalty(self, w: &Tensor) -> Tensor {
        match self {
            Regularizer::L1(l1) => w.abs().sum_all() * l1,
            Regularizer::L2(l2) => w.square().sum_all() * l2,
            Regularizer::L1L2 { l1, l2 } => w.abs().sum_all() * l1 + w.square().sum_all() * l2,
        }
    }

    /// The activity penalty of a layer's output `y` (Keras' `activity_regularizer`): the
    /// penalty of `y` divided by the batch size (its axis 0), as Keras adds it.
    pub fn activity_penalty(self, y: &Tensor) -> Tensor {
        let p = self.penalty(y);
        match y.dims().first() {
            None => p,
            Some(&b) if b != tensorjit_runtime::shape::UNKNOWN => p / b as f64,
            // A batch only known when the step runs: count it (ones summed down axis 0,
            // all equal to the batch size).
            Some(_) => {
                let batch = Tensor::ones_like(y).sum(0, false).mean_all();
                p / batch.cast(y.dtype())
            }
        }
    }

    /// Refuses factors that are negative or not finite (Keras does too), naming the
    /// layer's setter.
    #[track_caller]
    pub(crate) fn checked(self, what: &str) -> Regularizer {
        let factors = match self {
            Regularizer::L1(f) | Regularizer::L2(f) => vec![f],
            Regularizer::L1L2 { l1, l2 } => vec![l1, l2],
        };
        if let Some(f) = factors.into_iter().find(|f| !(f.is_finite() && *f >= 0.0)) {
            raise(what, format!("regularization factors must be finite and ≥ 0, got {f} in {self:?}"));
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorjit_runtime::{random, DType};

    #[test]
    fn penalties_match_hand_sums() {
        let w = random::normal([3, 4], 0.0, 1.0, DType::F64, Some(5));
        let v = w.to_vec::<f64>().unwrap();
        let l1: f64 = v.iter().map(|x| x.abs()).sum();
        let l2: f64 = v.iter().map(|x| x * x).sum();
        let got = |r: Regularizer| r.penalty(&w).to_scalar::<f64>().unwrap();
        assert!((got(Regularizer::L1(0.3)) - 0.3 * l1).abs() < 1e-12);
        assert!((got(Regularizer::L2(0.2)) - 0.2 * l2).abs() < 1e-12);
        assert!((got(Regularizer::L1L2 { l1: 0.3, l2: 0.2 }) - (0.3 * l1 + 0.2 * l2)).abs() < 1e-12);
        let r =
            std::panic::catch_unwind(|| Regularizer::L1L2 { l1: 0.1, l2: -1.0 }.checked("Dense.kernel_regularizer"));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(
            msg.contains("Dense.kernel_regularizer: regularization factors must be finite and ≥ 0, got -1"),
            "{msg}"
        );
    }
}
