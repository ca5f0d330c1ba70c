//! The losses computed from dense targets of the predictions' shape, Keras 3's
//! formulas: the regression losses (per element, averaged over the last axis), the KL
//! divergence, cosine similarity and categorical hinge (reduced over the last axis).

use tensorjit_runtime::Tensor;

use super::{Loss, Unreduced, EPSILON};

/// The unreduced loss `loss` of predictions `p` against targets `y` (same shape and
/// dtype). The cross-entropies are not computed here.
pub(super) fn unreduced(loss: Loss, y: &Tensor, p: &Tensor) -> Unreduced {
    use Unreduced::{PerElement, PerExample};
    match loss {
        Loss::MeanSquaredError => PerElement((p - y).square()),
        Loss::MeanAbsoluteError => PerElement((p - y).abs()),
        Loss::MeanAbsolutePercentageError => PerElement(((y - p) / &y.abs().maximum(EPSILON)).abs() * 100.0),
        Loss::MeanSquaredLogarithmicError => {
            let first = (p.maximum(EPSILON) + 1.0).log();
            let second = (y.maximum(EPSILON) + 1.0).log();
            PerElement((first - second).square())
        }
        Loss::Huber { delta } => {
            let error = p - y;
            let abs = error.abs();
            let quadratic = error.square() * 0.5;
            let linear = &abs * delta - 0.5 * delta * delta;
            PerElement(Tensor::where_(&abs.le(delta), &quadratic, &linear))
        }
        Loss::LogCosh => {
            let e = p - y;
            PerElement(&e + &(&e * -2.0).softplus() - std::f64::consts::LN_2)
        }
        Loss::Poisson => PerElement(p - &(y * &(p + EPSILON).log())),
        Loss::KLDivergence => {
            let (y, p) = (y.clip(EPSILON, 1.0), p.clip(EPSILON, 1.0));
            PerExample((&y * &(&y / &p).log()).sum(-1, false))
        }
        Loss::CosineSimilarity => {
            // x/√max(Σx², 1e-12), as `tf.math.l2_normalize`.
            let (y, p) = (y.l2_normalize(-1, 1e-12), p.l2_normalize(-1, 1e-12));
            PerExample(-(&y * &p).sum(-1, false))
        }
        Loss::Hinge => PerElement((1.0f64 - &(&hinge_labels(y) * p)).relu()),
        Loss::SquaredHinge => PerElement((1.0f64 - &(&hinge_labels(y) * p)).relu().square()),
        Loss::CategoricalHinge => {
            let pos = (y * p).sum(-1, false);
            let neg = ((1.0f64 - y) * p).max(-1, false);
            PerExample((neg - pos + 1.0).relu())
        }
        Loss::BinaryCrossentropy { .. }
        | Loss::CategoricalCrossentropy { .. }
        | Loss::SparseCategoricalCrossentropy { .. }
        | Loss::LabelSmoothed { .. } => unreachable!("cross-entropies are computed by Loss::unreduced"),
    }
}

/// Labels in {0, 1} (all of them) as {−1, 1}; other labels as they are (Keras'
/// `convert_binary_labels_to_hinge`, decided on the values, inside a trace too).
fn hinge_labels(y: &Tensor) -> Tensor {
    let binary = y.eq(0.0).logical_or(y.eq(1.0)).all(tensorjit_runtime::Axes::All, false);
    Tensor::where_(&binary, &(y * 2.0 - 1.0), y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorjit_runtime::{random, DType};

    /// The batch mean of `f` applied per row of `[rows, cols]` targets and predictions
    /// (f64 on the host).
    fn host(y: &Tensor, p: &Tensor, f: impl Fn(&[f64], &[f64]) -> f64) -> f64 {
        let cols = y.dims()[1];
        let (y, p) = (y.to_vec::<f64>().unwrap(), p.to_vec::<f64>().unwrap());
        let rows: Vec<f64> = y.chunks(cols).zip(p.chunks(cols)).map(|(y, p)| f(y, p)).collect();
        rows.iter().sum::<f64>() / rows.len() as f64
    }

    fn mean(v: impl Iterator<Item = f64>) -> f64 {
        let v: Vec<f64> = v.collect();
        v.iter().sum::<f64>() / v.len() as f64
    }

    fn check(loss: Loss, y: &Tensor, p: &Tensor, want: f64) {
        let got = loss.compute(y, p).to_scalar::<f64>().unwrap();
        assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "{loss:?}: {got} vs {want}");
    }

    #[test]
    fn regression_losses_match_host_formulas() {
        let y = random::normal([6, 4], 0.0, 2.0, DType::F64, Some(1));
        let p = random::normal([6, 4], 0.0, 2.0, DType::F64, Some(2));
        let pair = |y: &[f64], p: &[f64]| -> Vec<(f64, f64)> { y.iter().copied().zip(p.iter().copied()).collect() };
        let eps = EPSILON;
        check(
            Loss::MeanAbsoluteError,
            &y,
            &p,
            host(&y, &p, |y, p| mean(pair(y, p).into_iter().map(|(a, b)| (a - b).abs()))),
        );
        check(
            Loss::MeanAbsolutePercentageError,
            &y,
            &p,
            host(&y, &p, |y, p| mean(pair(y, p).into_iter().map(|(a, b)| 100.0 * ((a - b) / a.abs().max(eps)).abs()))),
        );
        check(
            Loss::MeanSquaredLogarithmicError,
            &y,
            &p,
            host(&y, &p, |y, p| {
                mean(pair(y, p).into_iter().map(|(a, b)| ((b.max(eps) + 1.0).ln() - (a.max(eps) + 1.0).ln()).powi(2)))
            }),
        );
        for delta in [0.5, 1.0, 2.5] {
            let huber = |e: f64| if e.abs() <= delta { 0.5 * e * e } else { delta * e.abs() - 0.5 * delta * delta };
            check(
                Loss::Huber { delta },
                &y,
                &p,
                host(&y, &p, |y, p| mean(pair(y, p).into_iter().map(|(a, b)| huber(b - a)))),
            );
        }
        check(
            Loss::LogCosh,
            &y,
            &p,
            host(&y, &p, |y, p| mean(pair(y, p).into_iter().map(|(a, b)| (b - a).cosh().ln()))),
        );
        let rate = random::uniform([6, 4], 0.1, 3.0, DType::F64, Some(3));
        let counts = random::uniform([6, 4], 0.0, 5.0, DType::F64, Some(4)).floor();
        check(
            Loss::Poisson,
            &counts,
            &rate,
            host(&counts, &rate, |y, p| mean(pair(y, p).into_iter().map(|(a, b)| b - a * (b + eps).ln()))),
        );
    }

    #[test]
    fn distribution_and_margin_losses_match_host_formulas() {
        let y = random::uniform([5, 3], 0.0, 1.0, DType::F64, Some(5)).softmax(-1);
        let p = random::normal([5, 3], 0.0, 1.0, DType::F64, Some(6)).softmax(-1);
        check(Loss::KLDivergence, &y, &p, host(&y, &p, |y, p| y.iter().zip(p).map(|(a, b)| a * (a / b).ln()).sum()));
        let (a, b) = (
            random::normal([5, 3], 0.0, 1.0, DType::F64, Some(7)),
            random::normal([5, 3], 0.0, 1.0, DType::F64, Some(8)),
        );
        let cos = |y: &[f64], p: &[f64]| {
            let dot: f64 = y.iter().zip(p).map(|(a, b)| a * b).sum();
            let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            -dot / (n(y) * n(p))
        };
        check(Loss::CosineSimilarity, &a, &b, host(&a, &b, cos));
        check(Loss::CosineSimilarity, &a, &(&a * 3.0), -1.0);
        // Hinges: {0, 1} labels become {−1, 1}; ±1 labels stay.
        let labels01 = random::uniform([5, 3], 0.0, 1.0, DType::F64, Some(9)).gt(0.5).cast(DType::F64);
        let pm1 = &labels01 * 2.0 - 1.0;
        let hinge = |y: &[f64], p: &[f64]| mean(y.iter().zip(p).map(|(a, b)| (1.0 - a * b).max(0.0)));
        let want = host(&pm1, &b, hinge);
        check(Loss::Hinge, &labels01, &b, want);
        check(Loss::Hinge, &pm1, &b, want);
        let sq = |y: &[f64], p: &[f64]| mean(y.iter().zip(p).map(|(a, b)| (1.0 - a * b).max(0.0).powi(2)));
        check(Loss::SquaredHinge, &labels01, &b, host(&pm1, &b, sq));
        let onehot = Tensor::from_vec(vec![2i64, 0, 1, 1, 2], [5]).unwrap().one_hot(3, DType::F64);
        let cat = |y: &[f64], p: &[f64]| {
            let pos: f64 = y.iter().zip(p).map(|(a, b)| a * b).sum();
            let neg = y.iter().zip(p).map(|(a, b)| (1.0 - a) * b).fold(f64::NEG_INFINITY, f64::max);
            (neg - pos + 1.0).max(0.0)
        };
        check(Loss::CategoricalHinge, &onehot, &b, host(&onehot, &b, cat));
    }

    #[test]
    fn label_smoothing_moves_targets_toward_uniform() {
        let logits = random::normal([4, 5], 0.0, 2.0, DType::F64, Some(10));
        let onehot = Tensor::from_vec(vec![4i64, 0, 2, 2], [4]).unwrap().one_hot(5, DType::F64);
        let s = 0.2;
        let smoothed = &onehot * (1.0 - s) + s / 5.0;
        let cce = Loss::CategoricalCrossentropy { from_logits: true };
        let want = cce.compute(&smoothed, &logits).to_scalar::<f64>().unwrap();
        check(cce.label_smoothing(s), &onehot, &logits, want);
        let bits = random::uniform([4, 5], 0.0, 1.0, DType::F64, Some(11)).gt(0.5).cast(DType::F64);
        let bce = Loss::BinaryCrossentropy { from_logits: false };
        let probs = logits.sigmoid();
        let want = bce.compute(&(&bits * (1.0 - s) + 0.5 * s), &probs).to_scalar::<f64>().unwrap();
        check(bce.label_smoothing(s), &bits, &probs, want);
        assert_eq!(bce.label_smoothing(s).name(), "binary_crossentropy");
        let r =
            std::panic::catch_unwind(|| Loss::SparseCategoricalCrossentropy { from_logits: true }.label_smoothing(0.1));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("sparse_categorical_crossentropy: label smoothing applies to"), "{msg}");
        let r = std::panic::catch_unwind(|| cce.label_smoothing(1.5));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("label_smoothing must be in [0, 1], got 1.5"), "{msg}");
    }
}
