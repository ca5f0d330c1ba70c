//! Metrics: accuracy (binary, categorical, sparse categorical, top-k), the regression
//! errors, precision, recall and ROC AUC, and a running mean.
//! Each batch gives its sufficient statistics (sums and counts) with tensor ops, inside
//! the traced step; `fit` and `evaluate` add them up on the host and compute the
//! metric from the totals, as Keras' stateful metrics do.

mod confusion;

use tensorjit_runtime::{DType, Device, Tensor};

use crate::error::raise;
use crate::losses::{sparse_pair, sparse_targets, Loss};

/// A metric asked for in `compile` (Keras' `metrics=[…]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// The accuracy that fits the loss: sparse categorical for integer labels,
    /// categorical for one-hot targets, binary (threshold 0.5, or 0 on logits) otherwise.
    Accuracy,
    /// Whether the integer label is among the `k` highest predictions (Keras'
    /// `SparseTopKCategoricalAccuracy`, `tf.math.in_top_k`: classes tied with the k-th
    /// highest count as in; a row holding NaN or ±∞, or a label out of range, is a miss).
    SparseTopKCategoricalAccuracy { k: usize },
    /// The same for one-hot targets (Keras' `TopKCategoricalAccuracy`).
    TopKCategoricalAccuracy { k: usize },
    /// The mean of each example's mean squared error over the last axis.
    MeanSquaredError,
    /// The mean of each example's mean absolute error.
    MeanAbsoluteError,
    /// The mean of each example's mean absolute percentage error.
    MeanAbsolutePercentageError,
    /// √(the mean squared error over every element seen), not a mean of batch roots.
    RootMeanSquaredError,
    /// tp / (tp + fp) over every element seen, a prediction positive when above
    /// `threshold` (Keras' 0.5 for probabilities; use 0 for logits), a target when
    /// non-zero (Keras casts targets to bool); 0 before any predicted positive.
    Precision { threshold: f64 },
    /// tp / (tp + fn), as [`Precision`](Self::Precision).
    Recall { threshold: f64 },
    /// The mean of a loss over the epoch's examples, named as the loss (Keras' loss
    /// metrics, `metrics=["binary_crossentropy"]`): to watch a loss the model is not
    /// trained on.
    MeanOf(Loss),
    /// The area under the ROC curve (Keras' `AUC()`): true and false positive rates at
    /// `num_thresholds` thresholds evenly spaced over [0, 1] (Keras' 200), summed by the
    /// trapezoidal rule; `from_logits` applies a sigmoid first.
    AUC { num_thresholds: usize, from_logits: bool },
}

impl Metric {
    /// Keras' name, the key in `History` (`val_` prefixed for validation).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::SparseTopKCategoricalAccuracy { .. } => "sparse_top_k_categorical_accuracy",
            Metric::TopKCategoricalAccuracy { .. } => "top_k_categorical_accuracy",
            Metric::MeanSquaredError => "mean_squared_error",
            Metric::MeanAbsoluteError => "mean_absolute_error",
            Metric::MeanAbsolutePercentageError => "mean_absolute_percentage_error",
            Metric::RootMeanSquaredError => "root_mean_squared_error",
            Metric::Precision { .. } => "precision",
            Metric::Recall { .. } => "recall",
            Metric::AUC { .. } => "auc",
            Metric::MeanOf(loss) => loss.name(),
        }
    }

    /// Keras' `AUC()`: 200 thresholds on probabilities.
    pub fn auc() -> Metric {
        Metric::AUC { num_thresholds: 200, from_logits: false }
    }

    /// The accuracy the metric computes when the model is trained with `loss` (`None`
    /// for the other metrics).
    pub fn kind(self, loss: Loss) -> Option<AccuracyKind> {
        match self {
            Metric::Accuracy => Some(AccuracyKind::for_loss(loss)),
            Metric::SparseTopKCategoricalAccuracy { k } => Some(AccuracyKind::SparseTopK { k }),
            Metric::TopKCategoricalAccuracy { k } => Some(AccuracyKind::TopK { k }),
            _ => None,
        }
    }

    /// Raises unless the metric's parameters make sense (at `compile`).
    #[track_caller]
    pub(crate) fn check(self) {
        let problem = match self {
            Metric::SparseTopKCategoricalAccuracy { k: 0 } | Metric::TopKCategoricalAccuracy { k: 0 } => {
                Some("k must be at least 1".to_string())
            }
            Metric::Precision { threshold } | Metric::Recall { threshold } if !threshold.is_finite() => {
                Some(format!("threshold must be finite, got {threshold}"))
            }
            Metric::AUC { num_thresholds, .. } if num_thresholds < 2 => {
                Some(format!("num_thresholds must be at least 2, got {num_thresholds}"))
            }
            _ => None,
        };
        if let Some(p) = problem {
            raise(self.name(), p)
        }
    }

    /// The batch's statistics, an f32 vector that the epoch sums: `[Σ value, count]` for
    /// means, confusion counts for precision, recall and AUC. Only the entries `mask`
    /// marks true count (masked sequence outputs).
    #[track_caller]
    pub(crate) fn batch_stats(self, loss: Loss, y_true: &Tensor, y_pred: &Tensor, mask: Option<&Tensor>) -> Tensor {
        let values = match self {
            Metric::Accuracy
            | Metric::SparseTopKCategoricalAccuracy { .. }
            | Metric::TopKCategoricalAccuracy { .. } => {
                let kind = self.kind(loss).unwrap_or(AccuracyKind::SparseCategorical);
                kind.hits(y_true, y_pred).cast(DType::F32)
            }
            Metric::MeanSquaredError | Metric::RootMeanSquaredError => {
                Loss::MeanSquaredError.per_example(y_true, y_pred)
            }
            Metric::MeanAbsoluteError => Loss::MeanAbsoluteError.per_example(y_true, y_pred),
            Metric::MeanAbsolutePercentageError => Loss::MeanAbsolutePercentageError.per_example(y_true, y_pred),
            Metric::MeanOf(loss) => loss.per_example(y_true, y_pred),
            Metric::Precision { threshold } | Metric::Recall { threshold } => {
                return confusion::counts(y_true, y_pred, mask, &Tensor::scalar(threshold as f32));
            }
            Metric::AUC { num_thresholds, from_logits } => {
                let p = if from_logits { y_pred.sigmoid() } else { y_pred.clone() };
                return confusion::counts(y_true, &p, mask, &confusion::thresholds(num_thresholds));
            }
        };
        mean_stats(self.name(), &values.cast(DType::F32), mask)
    }

    /// The metric from the summed statistics of [`batch_stats`](Self::batch_stats).
    pub(crate) fn result_of(self, sums: &[f64]) -> f64 {
        let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        match self {
            Metric::Precision { .. } => ratio(sums[0], sums[0] + sums[1]),
            Metric::Recall { .. } => ratio(sums[0], sums[0] + sums[2]),
            Metric::AUC { .. } => confusion::roc_auc(sums),
            Metric::RootMeanSquaredError => ratio(sums[0], sums[1]).sqrt(),
            _ => ratio(sums[0], sums[1]),
        }
    }
}

/// `[Σ v·w, Σ w]` with `w` the mask (all ones without one); per-element values with one
/// more axis than the mask are averaged over it first.
#[track_caller]
fn mean_stats(what: &str, values: &Tensor, mask: Option<&Tensor>) -> Tensor {
    let (total, count) = match mask {
        None => (values.sum_all(), Tensor::ones_like(values).sum_all()),
        Some(m) => {
            let (values, w) = crate::losses::masked_terms(what, values, m);
            ((&values * &w).sum_all(), w.sum_all())
        }
    };
    Tensor::stack(&[&total, &count], 0)
}

/// Which accuracy to compute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AccuracyKind {
    /// Predicted class (argmax) equals the integer label.
    SparseCategorical,
    /// Argmax of predictions equals argmax of one-hot targets.
    Categorical,
    /// `prediction > threshold` equals the 0/1 target.
    Binary { threshold: f64 },
    /// The integer label is among the `k` highest predictions (ties count as in).
    SparseTopK { k: usize },
    /// The one-hot target's class is among the `k` highest predictions.
    TopK { k: usize },
}

impl AccuracyKind {
    /// The accuracy Keras picks for `"accuracy"` with this loss.
    pub fn for_loss(loss: Loss) -> AccuracyKind {
        match loss {
            Loss::SparseCategoricalCrossentropy { .. } => AccuracyKind::SparseCategorical,
            Loss::CategoricalCrossentropy { .. } => AccuracyKind::Categorical,
            Loss::BinaryCrossentropy { from_logits: true } => AccuracyKind::Binary { threshold: 0.0 },
            _ => AccuracyKind::Binary { threshold: 0.5 },
        }
    }

    /// The fraction of correct predictions in a batch (an f32 scalar tensor).
    #[track_caller]
    pub fn batch_value(self, y_true: &Tensor, y_pred: &Tensor) -> Tensor {
        self.hits(y_true, y_pred).cast(DType::F32).mean_all()
    }

    /// [`batch_value`](Self::batch_value) over the entries `mask` marks true only (the
    /// steps of masked sequence outputs that hold data).
    #[track_caller]
    pub fn batch_value_masked(self, y_true: &Tensor, y_pred: &Tensor, mask: Option<&Tensor>) -> Tensor {
        match mask {
            None => self.batch_value(y_true, y_pred),
            Some(m) => crate::losses::masked_mean("accuracy", &self.hits(y_true, y_pred).cast(DType::F32), m),
        }
    }

    /// Whether each prediction is right: one bool per example (per step for sequences;
    /// per output for binary accuracy).
    #[track_caller]
    pub(crate) fn hits(self, y_true: &Tensor, y_pred: &Tensor) -> Tensor {
        match self {
            AccuracyKind::SparseCategorical => {
                let (labels, pred) = sparse_pair(y_true, y_pred);
                labels.eq(&pred)
            }
            AccuracyKind::Categorical => y_true.argmax(-1).eq(y_pred.argmax(-1)),
            AccuracyKind::Binary { threshold } => {
                let t = if y_true.rank() + 1 == y_pred.rank() { y_true.expand_dims(-1) } else { y_true.clone() };
                y_pred.gt(threshold).eq(t.cast(y_pred.dtype()).gt(0.5))
            }
            AccuracyKind::SparseTopK { k } => in_top_k(&sparse_targets(y_true, y_pred), y_pred, k),
            AccuracyKind::TopK { k } => in_top_k(&y_true.argmax(-1), y_pred, k),
        }
    }
}

/// Whether each row's `labels` class is among its `k` highest `scores`
/// (`tf.math.in_top_k`): fewer than `k` scores are strictly higher than the label's, the
/// row is finite and the label in range.
#[track_caller]
fn in_top_k(labels: &Tensor, scores: &Tensor, k: usize) -> Tensor {
    let classes = scores.dims()[scores.rank() - 1];
    // The label's score by a one-hot mask, not a gather: a label out of range reads 0
    // instead of a neighbour, and is a miss below.
    let mask = labels.one_hot(classes, scores.dtype());
    let target = (scores * &mask).sum(-1, true);
    let higher = scores.gt(&target).cast(DType::I64).sum(-1, false);
    let finite = (scores * 0.0).eq(0.0).all(-1, false);
    let in_range = labels.ge(0).logical_and(labels.lt(classes as i64));
    higher.lt(k as i64).logical_and(finite).logical_and(in_range)
}

/// A streaming accuracy: `update_state` per batch, `result` over everything seen.
#[derive(Clone, Debug)]
pub struct Accuracy {
    kind: AccuracyKind,
    inner: Mean,
}

impl Accuracy {
    pub fn new(kind: AccuracyKind) -> Accuracy {
        Accuracy { kind, inner: Mean::new() }
    }

    /// Adds a batch. Errors when the values cannot be read (e.g. called while tracing).
    pub fn update_state(&mut self, y_true: &Tensor, y_pred: &Tensor) -> crate::Result<()> {
        let n = y_pred.dims().first().copied().unwrap_or(1) as f64;
        // Computed where the tensors live; the one value read back.
        let v = self.kind.batch_value(y_true, y_pred).to(Device::Cpu)?.to_scalar::<f32>()?;
        self.inner.add(v as f64 * n, n);
        Ok(())
    }

    pub fn result(&self) -> f64 {
        self.inner.result()
    }

    pub fn reset(&mut self) {
        self.inner.reset()
    }
}

/// A running (weighted) mean.
#[derive(Clone, Debug, Default)]
pub struct Mean {
    total: f64,
    count: f64,
}

impl Mean {
    pub fn new() -> Mean {
        Mean::default()
    }

    /// Adds every element of `values`.
    pub fn update_state(&mut self, values: &Tensor) -> crate::Result<()> {
        let v = values.cast(DType::F64).to(Device::Cpu)?.to_vec::<f64>()?;
        self.add(v.iter().sum(), v.len() as f64);
        Ok(())
    }

    /// Adds `sum` over `count` items.
    pub fn add(&mut self, sum: f64, count: f64) {
        self.total += sum;
        self.count += count;
    }

    /// The mean so far (0 before any update).
    pub fn result(&self) -> f64 {
        if self.count == 0.0 {
            0.0
        } else {
            self.total / self.count
        }
    }

    pub fn reset(&mut self) {
        *self = Mean::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorjit_runtime::random;

    #[test]
    fn accuracies_count_hits() {
        let logits = random::normal([50, 4], 0.0, 1.0, DType::F32, Some(11));
        let labels = random::uniform([50], 0.0, 4.0, DType::F32, Some(12)).floor().cast(DType::I64);
        let (l, lab) = (logits.to_vec::<f32>().unwrap(), labels.to_vec::<i64>().unwrap());
        let hits = (0..50)
            .filter(|&i| {
                let row = &l[i * 4..i * 4 + 4];
                let best = (0..4).fold(0, |b, j| if row[j] > row[b] { j } else { b });
                best as i64 == lab[i]
            })
            .count();
        let mut acc = Accuracy::new(AccuracyKind::SparseCategorical);
        acc.update_state(&labels, &logits).unwrap();
        assert!((acc.result() - hits as f64 / 50.0).abs() < 1e-6);
        let cat = AccuracyKind::Categorical.batch_value(&labels.one_hot(4, DType::F32), &logits);
        assert!((cat.to_scalar::<f32>().unwrap() as f64 - hits as f64 / 50.0).abs() < 1e-6);
        // Top-k: fewer than k scores strictly above the label's (ties count as in).
        for k in [1, 2, 3] {
            let hits = (0..50)
                .filter(|&i| {
                    let row = &l[i * 4..i * 4 + 4];
                    row.iter().filter(|&&v| v > row[lab[i] as usize]).count() < k
                })
                .count();
            let sparse = AccuracyKind::SparseTopK { k }.batch_value(&labels, &logits).to_scalar::<f32>().unwrap();
            assert!((sparse as f64 - hits as f64 / 50.0).abs() < 1e-6, "k = {k}");
            let one_hot = AccuracyKind::TopK { k }.batch_value(&labels.one_hot(4, DType::F32), &logits);
            assert_eq!(one_hot.to_scalar::<f32>().unwrap(), sparse);
        }
        let mut m = Mean::new();
        m.update_state(&Tensor::from_vec(vec![1.0f32, 2.0, 6.0], [3]).unwrap()).unwrap();
        assert_eq!(m.result(), 3.0);
    }

    #[test]
    fn top_k_counts_ties_in_and_non_finite_rows_or_bad_labels_as_misses() {
        let scores = Tensor::from_vec(
            vec![0.5f32, 0.9, 0.9, 0.1, 0.2, f32::NAN, 0.8, 0.3, 0.4, f32::INFINITY, 0.1, 0.2, 0.3, 0.2, 0.1, 0.0],
            [4, 4],
        )
        .unwrap();
        let hit = |labels: Vec<i64>, k: usize| {
            let labels = Tensor::from_vec(labels, [4]).unwrap();
            in_top_k(&labels, &scores, k).to_vec::<bool>().unwrap()
        };
        // Row 0: 0.9 twice, then 0.5 — with k = 1 both tied 0.9s are in.
        assert_eq!(hit(vec![1, 0, 0, 1], 1), [true, false, false, false]);
        assert_eq!(hit(vec![2, 2, 3, 1], 2), [true, false, false, true]);
        assert_eq!(hit(vec![0, 0, 0, 3], 3), [true, false, false, false]);
        assert_eq!(hit(vec![3, 0, 0, 3], 4), [true, false, false, true]);
        // A label out of range is a miss, whatever k.
        assert_eq!(hit(vec![4, -1, 7, 9], 4), [false; 4]);
        assert_eq!(Metric::SparseTopKCategoricalAccuracy { k: 5 }.name(), "sparse_top_k_categorical_accuracy");
    }
}
