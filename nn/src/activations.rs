//! Activation functions (Keras' `activation=` argument and `Activation` layer).

use tensorjit_runtime::Tensor;

/// An elementwise (or, for softmax, last-axis) activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// The identity.
    #[default]
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    /// Along the last axis.
    Softmax,
    /// x for x > 0, eˣ − 1 otherwise.
    Elu,
    Softplus,
}

impl Activation {
    /// The activation applied to `x`.
    #[track_caller]
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Linear => x.clone(),
            Activation::Relu => x.relu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Softmax => x.softmax(-1),
            // exp of min(x, 0): the unused branch never overflows (its gradient is 0·e^x).
            Activation::Elu => Tensor::where_(&x.gt(0.0), x, &(x.minimum(0.0).exp() - 1.0)),
            Activation::Softplus => x.softplus(),
        }
    }

    /// Keras' name for it (`relu`).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::Elu => "elu",
            Activation::Softplus => "softplus",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorjit_runtime::{random, DType, GradientTape};

    #[test]
    fn elu_matches_its_definition_and_has_finite_gradients() {
        let x = random::normal([257], 0.0, 30.0, DType::F32, Some(7));
        let tape = GradientTape::new();
        tape.watch(&x);
        let y = Activation::Elu.apply(&x);
        let g = tape.gradient(&y.sum_all(), &[&x]).remove(0).unwrap();
        let (xs, ys, gs) = (x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap(), g.to_vec::<f32>().unwrap());
        for i in 0..xs.len() {
            let want = if xs[i] > 0.0 { xs[i] } else { xs[i].exp() - 1.0 };
            assert!((ys[i] - want).abs() <= 1e-6 * want.abs().max(1.0), "elu({}) = {}", xs[i], ys[i]);
            let dwant = if xs[i] > 0.0 { 1.0 } else { xs[i].exp() };
            assert!(gs[i].is_finite() && (gs[i] - dwant).abs() <= 1e-6, "elu'({}) = {}", xs[i], gs[i]);
        }
    }
}
