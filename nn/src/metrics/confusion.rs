//! Confusion counts at thresholds (precision, recall, ROC AUC), Keras' way: a
//! prediction is positive when above the threshold, a target when non-zero (Keras casts
//! targets to bool).

use tensorjit_runtime::{DType, Tensor};

use crate::error::raise;

/// Keras' AUC thresholds: −ε, then `i/(n − 1)` for `i` in `1..n − 1`, then `1 + ε`.
pub(super) fn thresholds(n: usize) -> Tensor {
    let eps = 1e-7;
    let mut t = vec![-eps];
    t.extend((1..n - 1).map(|i| i as f64 / (n - 1) as f64));
    t.push(1.0 + eps);
    let len = t.len();
    Tensor::from_vec(t.into_iter().map(|x| x as f32).collect::<Vec<f32>>(), [len])
        .unwrap_or_else(|_| unreachable!("n values"))
}

/// `[tp…, fp…, fn…, tn…]` (f32, one run of counts per threshold) of `y_pred` against
/// `y_true` over every element (only where `mask` holds). `thresholds` is a scalar or a
/// vector.
#[track_caller]
pub(super) fn counts(y_true: &Tensor, y_pred: &Tensor, mask: Option<&Tensor>, thresholds: &Tensor) -> Tensor {
    let y = if y_true.rank() + 1 == y_pred.rank() { y_true.expand_dims(-1) } else { y_true.clone() };
    if y.dims() != y_pred.dims() {
        raise(
            "precision/recall/auc",
            format!("targets {} do not match predictions {}", y_true.type_string(), y_pred.type_string()),
        )
    }
    let column = |t: &Tensor| t.reshape([-1, 1]);
    let label = column(&y.ne(0).cast(DType::F32));
    let weight = match mask {
        None => Tensor::ones_like(&label),
        Some(m) => {
            let m = if m.rank() + 1 == y_pred.rank() { m.expand_dims(-1) } else { m.clone() };
            column(&m.cast(DType::F32).broadcast_to(y_pred.dims()))
        }
    };
    let thresholds = thresholds.cast(y_pred.dtype()).reshape([1, -1]);
    let positive = column(y_pred).gt(&thresholds).cast(DType::F32);
    let negative = 1.0f64 - &positive;
    let (pos_w, neg_w) = (&label * &weight, (1.0f64 - &label) * &weight);
    let sum = |a: &Tensor, b: &Tensor| (a * b).sum(0, false);
    let parts = [sum(&pos_w, &positive), sum(&neg_w, &positive), sum(&pos_w, &negative), sum(&neg_w, &negative)];
    Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)
}

/// The area under the ROC curve from summed `[tp…, fp…, fn…, tn…]`: the trapezoids
/// between consecutive thresholds' (false positive rate, recall) points.
pub(super) fn roc_auc(sums: &[f64]) -> f64 {
    let n = sums.len() / 4;
    let (tp, fp, fne, tn) = (&sums[..n], &sums[n..2 * n], &sums[2 * n..3 * n], &sums[3 * n..]);
    let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
    let recall: Vec<f64> = (0..n).map(|i| ratio(tp[i], tp[i] + fne[i])).collect();
    let fpr: Vec<f64> = (0..n).map(|i| ratio(fp[i], fp[i] + tn[i])).collect();
    (0..n - 1).map(|i| (fpr[i] - fpr[i + 1]) * (recall[i] + recall[i + 1]) / 2.0).sum()
}

#[cfg(test)]
mod tests {
    use super::super::Metric;
    use super::*;
    use crate::losses::Loss;
    use tensorjit_runtime::random;

    fn stats(m: Metric, y: &Tensor, p: &Tensor, mask: Option<&Tensor>) -> Vec<f64> {
        let loss = Loss::BinaryCrossentropy { from_logits: false };
        m.batch_stats(loss, y, p, mask).cast(DType::F64).to_vec::<f64>().unwrap()
    }

    #[test]
    fn precision_and_recall_count_the_confusion() {
        let p = random::uniform([40, 1], 0.0, 1.0, DType::F32, Some(1));
        let y = random::uniform([40], 0.0, 1.0, DType::F32, Some(2)).gt(0.4).cast(DType::F32);
        let (pv, yv) = (p.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
        for t in [0.3, 0.5, 0.8] {
            let tp = (0..40).filter(|&i| f64::from(pv[i]) > t && yv[i] != 0.0).count() as f64;
            let fp = (0..40).filter(|&i| f64::from(pv[i]) > t && yv[i] == 0.0).count() as f64;
            let fne = (0..40).filter(|&i| f64::from(pv[i]) <= t && yv[i] != 0.0).count() as f64;
            let prec = Metric::Precision { threshold: t };
            let s = stats(prec, &y, &p, None);
            assert_eq!(&s[..3], &[tp, fp, fne], "t = {t}");
            assert_eq!(prec.result_of(&s), tp / (tp + fp));
            assert_eq!(Metric::Recall { threshold: t }.result_of(&s), tp / (tp + fne));
        }
        // A mask leaves the masked entries out.
        let p = random::uniform([2, 3, 1], 0.0, 1.0, DType::F32, Some(3));
        let y = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 1.0, 1.0, 0.0], [2, 3]).unwrap();
        let mask = Tensor::from_vec(vec![true, true, false, true, false, false], [2, 3]).unwrap();
        let s = stats(Metric::Precision { threshold: -1.0 }, &y, &p, Some(&mask));
        assert_eq!(s, [2.0, 1.0, 0.0, 0.0], "three unmasked entries, all predicted positive");
        assert_eq!(Metric::Precision { threshold: 0.5 }.result_of(&[0.0; 4]), 0.0, "no positives yet");
    }

    #[test]
    fn roc_auc_matches_the_rank_statistic() {
        // With thresholds finer than the distinct scores, the trapezoidal ROC AUC is the
        // Mann-Whitney probability that a positive outranks a negative (ties ½).
        let p = random::uniform([300], 0.0, 1.0, DType::F32, Some(4));
        let noise = random::uniform([300], 0.0, 1.0, DType::F32, Some(5));
        let y = (&p * 0.6 + &noise * 0.4).gt(0.5).cast(DType::F32);
        let (pv, yv) = (p.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
        let (mut wins, mut pairs) = (0.0, 0.0);
        for i in 0..300 {
            for j in 0..300 {
                if yv[i] == 1.0 && yv[j] == 0.0 {
                    pairs += 1.0;
                    wins += if pv[i] > pv[j] {
                        1.0
                    } else if pv[i] == pv[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        let auc = Metric::AUC { num_thresholds: 20_001, from_logits: false };
        let got = auc.result_of(&stats(auc, &y, &p, None));
        assert!((got - wins / pairs).abs() < 2e-3, "{got} vs {}", wins / pairs);
        // Keras' 200 thresholds are within a percent here; logits give the same counts.
        let keras = Metric::auc();
        let coarse = keras.result_of(&stats(keras, &y, &p, None));
        assert!((coarse - wins / pairs).abs() < 1e-2, "{coarse}");
        let logits = (&p / &(1.0f64 - &p)).log();
        let from_logits = Metric::AUC { num_thresholds: 200, from_logits: true };
        assert!((from_logits.result_of(&stats(from_logits, &y, &logits, None)) - coarse).abs() < 1e-3);
        // Perfect and reversed rankings.
        assert_eq!(keras.result_of(&stats(keras, &y, &y, None)), 1.0);
        assert_eq!(keras.result_of(&stats(keras, &y, &(1.0f64 - &y), None)), 0.0);
    }
}
