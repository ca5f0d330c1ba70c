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
    /// x for x > 0, 0.2·x otherwise (Keras' `leaky_relu`, `tf.nn.leaky_relu`'s default
    /// slope; [`Tensor::leaky_relu`] takes any).
    LeakyRelu,
    /// x·sigmoid(x) (Keras' `swish`, also called `silu`).
    Swish,
    /// GELU, 0.5·x·(1 + erf(x/√2)) (Keras' `gelu`, PyTorch's default; BERT's).
    Gelu,
    /// The tanh approximation of GELU, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    /// (Keras' `gelu(approximate=True)`, PyTorch's `approximate="tanh"`, GPT-2's).
    GeluTanh,
    /// scale·elu with Keras' α = 1.67326324 and scale = 1.05070098.
    Selu,
    /// x / (1 + |x|).
    Softsign,
    /// min(max(x, 0), 6).
    Relu6,
    /// x·tanh(softplus(x)).
    Mish,
    /// Along the last axis.
    LogSoftmax,
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
            Activation::Elu => elu(x),
            Activation::Softplus => x.softplus(),
            Activation::LeakyRelu => x.leaky_relu(0.2),
            Activation::Swish => x * &x.sigmoid(),
            Activation::Gelu => (x * 0.5) * &((x * std::f64::consts::FRAC_1_SQRT_2).erf() + 1.0),
            Activation::GeluTanh => {
                let inner = (x + &(x.square() * x * 0.044_715)) * (2.0 / std::f64::consts::PI).sqrt();
                (x * 0.5) * &(inner.tanh() + 1.0)
            }
            Activation::Selu => elu_alpha(x, SELU_ALPHA) * SELU_SCALE,
            Activation::Softsign => x / &(x.abs() + 1.0),
            Activation::Relu6 => x.clip(0.0, 6.0),
            Activation::Mish => x * &x.softplus().tanh(),
            Activation::LogSoftmax => x.log_softmax(-1),
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
            Activation::LeakyRelu => "leaky_relu",
            Activation::Swish => "swish",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::Selu => "selu",
            Activation::Softsign => "softsign",
            Activation::Relu6 => "relu6",
            Activation::Mish => "mish",
            Activation::LogSoftmax => "log_softmax",
        }
    }
}

impl Activation {
    /// Every activation (for parsing and exhaustive tests).
    pub const ALL: [Activation; 16] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
        Activation::Elu,
        Activation::Softplus,
        Activation::LeakyRelu,
        Activation::Swish,
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Selu,
        Activation::Softsign,
        Activation::Relu6,
        Activation::Mish,
        Activation::LogSoftmax,
    ];
}

/// Keras' activation strings: `"relu".parse::<Activation>()` (`silu` is swish too); an
/// unknown name is an error listing the known ones.
impl std::str::FromStr for Activation {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> Result<Activation, Self::Err> {
        if s == "silu" {
            return Ok(Activation::Swish);
        }
        Activation::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| {
            let known: Vec<&str> = Activation::ALL.iter().map(|a| a.name()).collect();
            crate::error::Error::invalid("activation", format!("unknown activation '{s}'; known: {}", known.join(", ")))
        })
    }
}

/// SELU's constants (Klambauer et al.; Keras' values).
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// x for x > 0, α(eˣ − 1) otherwise (α = 1 for ELU, SELU's α for SELU). exp of min(x, 0):
/// the unused branch never overflows (its gradient is 0·eˣ).
fn elu(x: &Tensor) -> Tensor {
    elu_alpha(x, 1.0)
}

fn elu_alpha(x: &Tensor, alpha: f64) -> Tensor {
    let negative = x.minimum(0.0).exp() - 1.0;
    let negative = if alpha == 1.0 { negative } else { negative * alpha };
    Tensor::where_(&x.gt(0.0), x, &negative)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorjit_runtime::{random, DType, GradientTape};

    /// Every elementwise activation against its definition computed in f64 on the host,
    /// and its tape gradient against central differences, on f64 inputs over a wide
    /// range (|x| up to ~100: the exp and tanh branches saturate).
    #[test]
    fn activations_match_their_definitions_and_differentiate() {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
        let elu = |x: f64, a: f64| if x > 0.0 { x } else { a * x.exp_m1() };
        let erf = tensorjit_runtime::math::erf_f64;
        let cases: [(Activation, &dyn Fn(f64) -> f64); 9] = [
            (Activation::Gelu, &|x| 0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2))),
            (Activation::LeakyRelu, &|x| if x > 0.0 { x } else { 0.2 * x }),
            (Activation::Swish, &|x| x * sigmoid(x)),
            (Activation::GeluTanh, &|x| {
                0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
            }),
            (Activation::Selu, &|x| SELU_SCALE * elu(x, SELU_ALPHA)),
            (Activation::Softsign, &|x| x / (1.0 + x.abs())),
            (Activation::Relu6, &|x| x.clamp(0.0, 6.0)),
            (Activation::Mish, &|x| x * softplus(x).tanh()),
            (Activation::Elu, &|x| elu(x, 1.0)),
        ];
        let x = random::normal([301], 0.0, 20.0, DType::F64, Some(11));
        let xs = x.to_vec::<f64>().unwrap();
        for (act, reference) in cases {
            let tape = GradientTape::new();
            tape.watch(&x);
            let y = act.apply(&x);
            let g = tape.gradient(&y.sum_all(), &[&x]).remove(0).unwrap().to_vec::<f64>().unwrap();
            let ys = y.to_vec::<f64>().unwrap();
            for i in 0..xs.len() {
                let want = reference(xs[i]);
                let scale = want.abs().max(1e-300);
                assert!(
                    (ys[i] - want).abs() <= 1e-13 * scale.max(1.0),
                    "{}({}) = {}, want {want}",
                    act.name(),
                    xs[i],
                    ys[i]
                );
                // Central differences away from the kinks (0, and 6 for relu6).
                if xs[i].abs() > 1e-3 && (xs[i] - 6.0).abs() > 1e-3 {
                    let h = 1e-6 * xs[i].abs().max(1.0);
                    let fd = (reference(xs[i] + h) - reference(xs[i] - h)) / (2.0 * h);
                    assert!(
                        (g[i] - fd).abs() <= 1e-6 * fd.abs().max(1.0),
                        "{}'({}) = {}, want {fd}",
                        act.name(),
                        xs[i],
                        g[i]
                    );
                }
            }
        }
    }

    #[test]
    fn every_activation_parses_from_its_keras_name() {
        for a in Activation::ALL {
            assert_eq!(a.name().parse::<Activation>().unwrap(), a);
        }
        assert_eq!("silu".parse::<Activation>().unwrap(), Activation::Swish);
        let err = "rleu".parse::<Activation>().unwrap_err().to_string();
        assert!(err.starts_with("activation: unknown activation 'rleu'; known: linear, relu,"), "{err}");
    }

    #[test]
    fn log_softmax_activation_is_the_last_axis_log_softmax() {
        let x = random::normal([4, 7], 0.0, 3.0, DType::F32, Some(12));
        let got = Activation::LogSoftmax.apply(&x).to_vec::<f32>().unwrap();
        assert_eq!(got, x.log_softmax(1).to_vec::<f32>().unwrap());
        assert_eq!(Activation::LogSoftmax.name(), "log_softmax");
    }

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
