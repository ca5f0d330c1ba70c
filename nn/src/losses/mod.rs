//! Losses (Keras' `keras.losses`): the cross-entropies (with label smoothing), the
//! regression losses (squared, absolute, percentage and squared-log errors, Huber,
//! log-cosh, Poisson), KL divergence, cosine similarity and the hinges. Each is the mean
//! over the batch of a per-example loss.

mod pointwise;

use tensorjit_runtime::{DType, Device, Tensor};

use crate::error::raise;

/// Keras' clipping epsilon for cross-entropies of probabilities.
const EPSILON: f64 = 1e-7;

/// A loss function (Keras' `loss=`). "Mean" losses average over the last axis per
/// example; the others reduce it as their formula says; then the batch is averaged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// mean((y − ŷ)²).
    MeanSquaredError,
    /// mean(|y − ŷ|).
    MeanAbsoluteError,
    /// 100 · mean(|y − ŷ| / max(|y|, ε)).
    MeanAbsolutePercentageError,
    /// mean((log(max(ŷ, ε) + 1) − log(max(y, ε) + 1))²).
    MeanSquaredLogarithmicError,
    /// mean of ½e² where |e| ≤ δ, δ|e| − ½δ² elsewhere (e = ŷ − y): squared near 0,
    /// absolute beyond δ (Keras' default δ = 1).
    Huber { delta: f64 },
    /// mean(log cosh(ŷ − y)), computed as e + softplus(−2e) − log 2.
    LogCosh,
    /// mean(ŷ − y·log(ŷ + ε)) for counts predicted as rates.
    Poisson,
    /// Σ y·log(y/ŷ) over the last axis, both clipped to [ε, 1].
    KLDivergence,
    /// −Σ ŷ·y / (‖ŷ‖‖y‖) over the last axis: −1 for the same direction (a loss to
    /// minimise, as Keras').
    CosineSimilarity,
    /// mean(max(1 − y·ŷ, 0)); labels in {0, 1} become {−1, 1} first.
    Hinge,
    /// mean(max(1 − y·ŷ, 0)²); labels in {0, 1} become {−1, 1} first.
    SquaredHinge,
    /// max(max((1 − y)·ŷ) − Σ y·ŷ + 1, 0) over the last axis, for one-hot targets.
    CategoricalHinge,
    /// A cross-entropy against smoothed targets (Keras' `label_smoothing = s`): one-hot
    /// targets become `y·(1 − s) + s/classes`, binary ones `y·(1 − s) + s/2`. Made by
    /// [`Loss::label_smoothing`].
    LabelSmoothed { binary: bool, from_logits: bool, label_smoothing: f64 },
    /// Binary cross-entropy of probabilities (clipped to [ε, 1−ε]) or, `from_logits`,
    /// of logits (computed stably as max(x, 0) − x·y + log(1 + e^{−|x|})).
    BinaryCrossentropy { from_logits: bool },
    /// Cross-entropy against one-hot (or soft) targets on the last axis.
    CategoricalCrossentropy { from_logits: bool },
    /// Cross-entropy against integer class labels (`[batch]` or `[batch, 1]`).
    SparseCategoricalCrossentropy { from_logits: bool },
}

impl Loss {
    /// Keras' name for the loss.
    pub fn name(self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::MeanAbsolutePercentageError => "mean_absolute_percentage_error",
            Loss::MeanSquaredLogarithmicError => "mean_squared_logarithmic_error",
            Loss::Huber { .. } => "huber_loss",
            Loss::LogCosh => "log_cosh",
            Loss::Poisson => "poisson",
            Loss::KLDivergence => "kl_divergence",
            Loss::CosineSimilarity => "cosine_similarity",
            Loss::Hinge => "hinge",
            Loss::SquaredHinge => "squared_hinge",
            Loss::CategoricalHinge => "categorical_hinge",
            Loss::BinaryCrossentropy { .. } | Loss::LabelSmoothed { binary: true, .. } => "binary_crossentropy",
            Loss::CategoricalCrossentropy { .. } | Loss::LabelSmoothed { binary: false, .. } => {
                "categorical_crossentropy"
            }
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
        }
    }

    /// This cross-entropy against smoothed targets (Keras' `label_smoothing`, in
    /// [0, 1]): `Loss::CategoricalCrossentropy { from_logits: true }.label_smoothing(0.1)`.
    /// Binary and categorical cross-entropies only (Keras' sparse one has none).
    #[track_caller]
    pub fn label_smoothing(self, amount: f64) -> Loss {
        if !(0.0..=1.0).contains(&amount) {
            raise(self.name(), format!("label_smoothing must be in [0, 1], got {amount}"))
        }
        match self {
            Loss::BinaryCrossentropy { from_logits } | Loss::LabelSmoothed { binary: true, from_logits, .. } => {
                Loss::LabelSmoothed { binary: true, from_logits, label_smoothing: amount }
            }
            Loss::CategoricalCrossentropy { from_logits } | Loss::LabelSmoothed { binary: false, from_logits, .. } => {
                Loss::LabelSmoothed { binary: false, from_logits, label_smoothing: amount }
            }
            other => raise(
                other.name(),
                "label smoothing applies to BinaryCrossentropy and CategoricalCrossentropy (one-hot targets) only",
            ),
        }
    }

    /// The loss of a batch (a scalar): the mean over examples (and over steps, for
    /// sequences `[batch, steps, …]`). A sparse label outside the classes is an error
    /// when the labels are host values (see [`check_labels`](Self::check_labels)).
    #[track_caller]
    pub fn compute(self, y_true: &Tensor, y_pred: &Tensor) -> Tensor {
        match self.unreduced(y_true, y_pred) {
            Unreduced::PerElement(l) | Unreduced::PerExample(l) => l.mean_all(),
        }
    }

    /// [`compute`](Self::compute) over the entries `mask` marks true only (Keras' loss of
    /// a masked output: the mean over the steps that hold data; 0 if none does). `mask`
    /// has the shape of the per-example losses: `[batch, steps]` for sequence outputs.
    #[track_caller]
    pub fn compute_masked(self, y_true: &Tensor, y_pred: &Tensor, mask: Option<&Tensor>) -> Tensor {
        let Some(mask) = mask else { return self.compute(y_true, y_pred) };
        let losses = self.per_example(y_true, y_pred);
        masked_mean(self.name(), &losses, mask)
    }

    /// [`compute_masked`](Self::compute_masked) with a weight per example (Keras'
    /// `sample_weight`): the mean over the examples (and over the steps `mask` keeps) of
    /// each example's loss times its weight. `sample_weight` is `[batch]`; an example of
    /// weight 0 adds nothing to the sum but still counts in the mean, as in Keras'
    /// `sum_over_batch_size` reduction.
    #[track_caller]
    pub fn compute_weighted(
        self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: &Tensor,
        mask: Option<&Tensor>,
    ) -> Tensor {
        let losses = self.per_example(y_true, y_pred);
        let batch = losses.dims().first().copied();
        if sample_weight.rank() != 1 || batch != sample_weight.dims().first().copied() {
            raise(
                self.name(),
                format!(
                    "sample weights {} do not fit the per-example losses {}: give one weight per example",
                    sample_weight.type_string(),
                    losses.type_string()
                ),
            )
        }
        // [batch] → [batch, 1, …] against per-step losses.
        let w = (1..losses.rank()).fold(sample_weight.cast(losses.dtype()), |w, _| w.expand_dims(-1));
        let weighted = &losses * &w;
        match mask {
            Some(mask) => masked_mean(self.name(), &weighted, mask),
            None => weighted.mean_all(),
        }
    }

    /// The loss of each example (of each step, for sequences): Keras' losses before the
    /// batch mean. Squared errors and binary cross-entropies are averaged over the last
    /// axis; cross-entropies sum over the classes.
    #[track_caller]
    pub fn per_example(self, y_true: &Tensor, y_pred: &Tensor) -> Tensor {
        match self.unreduced(y_true, y_pred) {
            Unreduced::PerElement(l) if l.rank() >= 2 => l.mean(-1, false),
            Unreduced::PerElement(l) | Unreduced::PerExample(l) => l,
        }
    }

    #[track_caller]
    fn unreduced(self, y_true: &Tensor, y_pred: &Tensor) -> Unreduced {
        match self {
            Loss::SparseCategoricalCrossentropy { from_logits } => {
                let labels = sparse_labels(self, y_true, y_pred);
                let depth = y_pred.dims()[y_pred.rank() - 1];
                if let Err(message) = self.check_labels(&labels, depth) {
                    raise(self.name(), message)
                }
                let onehot = labels.one_hot(depth, y_pred.dtype());
                let logp = log_probs(y_pred, from_logits);
                Unreduced::PerExample(-(&onehot * &logp).sum(-1, false))
            }
            Loss::BinaryCrossentropy { from_logits: true } => {
                let y = dense_targets(self, y_true, y_pred);
                Unreduced::PerElement(y_pred.relu() - y_pred * &y + y_pred.abs().neg().softplus())
            }
            Loss::BinaryCrossentropy { from_logits: false } => {
                let y = dense_targets(self, y_true, y_pred);
                let p = y_pred.maximum(EPSILON).minimum(1.0 - EPSILON);
                let ll = &y * &p.log() + (1.0f64 - &y) * (1.0f64 - &p).log();
                Unreduced::PerElement(-ll)
            }
            Loss::CategoricalCrossentropy { from_logits } => {
                let y = dense_targets(self, y_true, y_pred);
                Unreduced::PerExample(-(&y * &log_probs(y_pred, from_logits)).sum(-1, false))
            }
            Loss::LabelSmoothed { binary, from_logits, label_smoothing: s } => {
                let y = dense_targets(self, y_true, y_pred);
                let classes = if binary { 2.0 } else { y_pred.dims().last().copied().unwrap_or(1) as f64 };
                let smoothed = &y * (1.0 - s) + s / classes;
                let plain = if binary {
                    Loss::BinaryCrossentropy { from_logits }
                } else {
                    Loss::CategoricalCrossentropy { from_logits }
                };
                plain.unreduced(&smoothed, y_pred)
            }
            other => {
                let y = dense_targets(self, y_true, y_pred);
                pointwise::unreduced(other, &y, y_pred)
            }
        }
    }
}

/// A loss before its batch mean.
enum Unreduced {
    /// One value per prediction element (squared errors, binary cross-entropies).
    PerElement(Tensor),
    /// One value per example: the class axis already summed.
    PerExample(Tensor),
}

/// The mean of `values` where `mask` holds (0 where it never does); `values` may have
/// one more axis than `mask` (a last axis of per-element values), which is averaged
/// first. `what` names the loss or metric in errors.
#[track_caller]
pub(crate) fn masked_mean(what: &str, values: &Tensor, mask: &Tensor) -> Tensor {
    let (values, w) = masked_terms(what, values, mask);
    (&values * &w).sum_all() / w.sum_all().maximum(1.0)
}

/// `values` with the mask's shape (a trailing per-element axis averaged) and the mask as
/// weights of their dtype; an error naming `what` when they do not fit.
#[track_caller]
pub(crate) fn masked_terms(what: &str, values: &Tensor, mask: &Tensor) -> (Tensor, Tensor) {
    let values = if values.rank() == mask.rank() + 1 { values.mean(-1, false) } else { values.clone() };
    if mask.dtype() != DType::Bool || values.rank() != mask.rank() {
        raise(
            what,
            format!(
                "the mask {} does not fit per-example values {}: a mask marks the steps of sequence outputs \
                 [batch, steps, …]; make the output a sequence, or end the mask before it (a layer without masking)",
                mask.type_string(),
                values.type_string()
            ),
        )
    }
    let w = mask.cast(values.dtype());
    (values, w)
}

impl Loss {
    /// Refuses targets whose shape this loss cannot take for predictions of shape `pred`
    /// (batch first, `None` where unknown), with the message the loss itself raises:
    /// `fit` and `evaluate` check each output's targets before any step.
    pub fn check_target_shape(self, y_true: &Tensor, pred: &[Option<usize>]) -> Result<(), String> {
        let shown = crate::module::fmt_spec(pred);
        let sparse = matches!(self, Loss::SparseCategoricalCrossentropy { .. });
        let fits = if sparse {
            sparse_fit(y_true.dims(), pred).is_some() && y_true.dtype() != DType::Bool
        } else {
            dense_fit(y_true.dims(), pred).is_some()
        };
        match (fits, sparse) {
            (true, _) => Ok(()),
            (false, true) => Err(sparse_mismatch(y_true, &shown)),
            (false, false) => Err(mismatch(y_true, &shown)),
        }
    }

    /// For a sparse cross-entropy, refuses a label outside `[0, classes)`, naming it and
    /// its example, as Keras does: its one-hot row would be all zeros and the example's
    /// loss a silent 0. Only labels held on the host are read (a device's would be
    /// copied back, a traced function's exist only when it runs); `fit` and `evaluate`
    /// check theirs before the first step. Other losses take any targets.
    pub fn check_labels(self, y_true: &Tensor, classes: usize) -> Result<(), String> {
        if !matches!(self, Loss::SparseCategoricalCrossentropy { .. })
            || y_true.is_symbolic()
            || y_true.device() != Device::Cpu
        {
            return Ok(());
        }
        // Float labels are truncated to integers, as the loss itself does.
        let labels: Vec<i64> = match y_true.dtype() {
            DType::I32 => y_true.to_vec::<i32>().map(|v| v.into_iter().map(i64::from).collect()),
            DType::I64 => y_true.to_vec::<i64>(),
            DType::F32 => y_true.to_vec::<f32>().map(|v| v.into_iter().map(|x| i64::from(x as i32)).collect()),
            DType::F64 => y_true.to_vec::<f64>().map(|v| v.into_iter().map(|x| i64::from(x as i32)).collect()),
            DType::Bool => return Ok(()),
        }
        .map_err(|e| e.to_string())?;
        match labels.iter().position(|&l| l < 0 || l >= classes as i64) {
            None => Ok(()),
            Some(i) => Err(format!(
                "label {} (example {i}) is outside the valid range [0, {classes}): sparse labels are class indices \
                 below the number of outputs ({classes})",
                labels[i]
            )),
        }
    }
}

/// Log-probabilities on the last axis from logits or from (renormalised, clipped)
/// probabilities.
fn log_probs(y_pred: &Tensor, from_logits: bool) -> Tensor {
    if from_logits {
        y_pred.log_softmax(-1)
    } else {
        let p = y_pred / &y_pred.sum(-1, true);
        p.maximum(EPSILON).minimum(1.0 - EPSILON).log()
    }
}

/// Whether targets of dims `y` fit predictions `pred` (`None`: any size) as dense
/// targets: the same shape, or `[batch]` for `[batch, 1]` as Keras accepts. `Some(true)`
/// when they are that `[batch]` case.
fn dense_fit(y: &[usize], pred: &[Option<usize>]) -> Option<bool> {
    let same = |a: usize, b: Option<usize>| b.is_none_or(|b| a == b);
    if y.len() == pred.len() && y.iter().zip(pred).all(|(&a, &b)| same(a, b)) {
        return Some(false);
    }
    let column = pred.len() == 2 && pred[1] == Some(1) && y.len() == 1 && same(y[0], pred[0]);
    column.then_some(true)
}

/// Whether integer labels of dims `y` fit predictions `pred`: their shape without the
/// class axis, or that with a trailing 1. `Some(true)` when the trailing 1 is there.
fn sparse_fit(y: &[usize], pred: &[Option<usize>]) -> Option<bool> {
    let lead = &pred[..pred.len().checked_sub(1).filter(|&r| r >= 1)?];
    let same = |ys: &[usize]| ys.len() == lead.len() && ys.iter().zip(lead).all(|(&a, b)| b.is_none_or(|b| a == b));
    if same(y) {
        return Some(false);
    }
    let with_one = y.split_last().is_some_and(|(&last, rest)| last == 1 && same(rest));
    with_one.then_some(true)
}

/// The dims of `t` as a spec of known sizes.
fn known(t: &Tensor) -> Vec<Option<usize>> {
    t.dims().iter().map(|&d| Some(d)).collect()
}

/// Targets of the same shape and dtype as the predictions.
#[track_caller]
fn dense_targets(loss: Loss, y_true: &Tensor, y_pred: &Tensor) -> Tensor {
    match dense_fit(y_true.dims(), &known(y_pred)) {
        Some(false) => y_true.cast(y_pred.dtype()),
        Some(true) => y_true.cast(y_pred.dtype()).reshape([-1, 1]),
        None => raise(loss.name(), mismatch(y_true, &y_pred.type_string())),
    }
}

fn mismatch(y_true: &Tensor, predictions: &str) -> String {
    format!("targets {} do not match predictions {predictions}", y_true.type_string())
}

fn sparse_mismatch(y_true: &Tensor, predictions: &str) -> String {
    format!(
        "needs predictions [batch, classes] (or [batch, steps, classes]) and integer labels of their shape without \
         the class axis ([batch], or [batch, 1]); got labels {} and predictions {predictions}",
        y_true.type_string()
    )
}

/// Integer labels of the predictions' shape without the class axis (`[batch]`, or
/// `[batch, steps]` for sequences); a trailing axis of 1 is dropped.
#[track_caller]
fn sparse_labels(loss: Loss, y_true: &Tensor, y_pred: &Tensor) -> Tensor {
    let fit = sparse_fit(y_true.dims(), &known(y_pred)).filter(|_| y_true.dtype() != DType::Bool);
    let Some(with_one) = fit else { raise(loss.name(), sparse_mismatch(y_true, &y_pred.type_string())) };
    let labels = if with_one { y_true.squeeze(&[-1]) } else { y_true.clone() };
    if labels.dtype().is_float() {
        labels.cast(DType::I32)
    } else {
        labels
    }
}

/// Integer labels `[batch]` checked against `[batch, classes]` predictions.
pub(crate) fn sparse_targets(y_true: &Tensor, y_pred: &Tensor) -> Tensor {
    sparse_labels(Loss::SparseCategoricalCrossentropy { from_logits: true }, y_true, y_pred)
}

/// Predicted class indices `[batch]` of `[batch, classes]` scores and the labels as
/// the same integer type (for accuracy).
pub(crate) fn sparse_pair(y_true: &Tensor, y_pred: &Tensor) -> (Tensor, Tensor) {
    let labels = sparse_labels(Loss::SparseCategoricalCrossentropy { from_logits: true }, y_true, y_pred);
    let pred = y_pred.argmax(-1).cast(labels.dtype());
    (labels, pred)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorjit_runtime::random;

    fn approx(a: f32, b: f64) {
        assert!((a as f64 - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }

    #[test]
    fn sparse_labels_are_checked_against_the_classes() {
        let sparse = Loss::SparseCategoricalCrossentropy { from_logits: true };
        let labels = Tensor::from_vec(vec![2i32, 0, 3, 1], [4]).unwrap();
        assert_eq!(sparse.check_labels(&labels, 4), Ok(()));
        let msg = sparse.check_labels(&labels, 3).unwrap_err();
        assert!(msg.starts_with("label 3 (example 2) is outside the valid range [0, 3)"), "{msg}");
        let floats = Tensor::from_vec(vec![0.5f32, -1.0, 2.9], [3]).unwrap();
        assert!(
            sparse.check_labels(&floats, 3).unwrap_err().starts_with("label -1 (example 1)"),
            "truncated as the loss does"
        );
        assert_eq!(Loss::MeanSquaredError.check_labels(&floats, 1), Ok(()), "only sparse labels are classes");
        // Computed on host labels, the loss refuses them itself.
        let logits =
            Tensor::from_vec(vec![0.3f32, -0.2, 0.1, 0.7, 0.0, -0.4, 0.2, 0.9, -0.1, 0.4, 0.5, -0.3], [4, 3]).unwrap();
        let r = std::panic::catch_unwind(|| sparse.compute(&labels, &logits));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("sparse_categorical_crossentropy: label 3 (example 2)"), "{msg}");
    }

    #[test]
    fn losses_match_hand_computed_values() {
        let logits = random::normal([5, 3], 0.0, 2.0, DType::F32, Some(3));
        let labels = Tensor::from_vec(vec![0i32, 2, 1, 1, 0], [5]).unwrap();
        let l = logits.to_vec::<f32>().unwrap();
        let lab = [0usize, 2, 1, 1, 0];
        let mut want = 0.0f64;
        for (i, &c) in lab.iter().enumerate() {
            let row: Vec<f64> = (0..3).map(|j| l[i * 3 + j] as f64).collect();
            let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
            want += lse - row[c];
        }
        let got = Loss::SparseCategoricalCrossentropy { from_logits: true }.compute(&labels, &logits);
        approx(got.to_scalar::<f32>().unwrap(), want / 5.0);
        let onehot = labels.one_hot(3, DType::F32);
        let got = Loss::CategoricalCrossentropy { from_logits: true }.compute(&onehot, &logits);
        approx(got.to_scalar::<f32>().unwrap(), want / 5.0);
        let probs = logits.softmax(-1);
        let got = Loss::CategoricalCrossentropy { from_logits: false }.compute(&onehot, &probs);
        approx(got.to_scalar::<f32>().unwrap(), want / 5.0);
    }

    #[test]
    fn sequence_predictions_take_labels_per_step() {
        let logits = random::normal([2, 3, 4], 0.0, 2.0, DType::F32, Some(8));
        let lab = [3i64, 0, 1, 2, 2, 0];
        let l = logits.to_vec::<f32>().unwrap();
        let want: Vec<f64> = (0..6)
            .map(|k| {
                let row: Vec<f64> = (0..4).map(|j| f64::from(l[k * 4 + j])).collect();
                row.iter().map(|x| x.exp()).sum::<f64>().ln() - row[lab[k] as usize]
            })
            .collect();
        let sparse = Loss::SparseCategoricalCrossentropy { from_logits: true };
        for shape in [vec![2, 3], vec![2, 3, 1]] {
            let labels = Tensor::from_vec(lab.to_vec(), shape.as_slice()).unwrap();
            let per = sparse.per_example(&labels, &logits);
            assert_eq!(per.dims(), &[2, 3]);
            for (g, w) in per.to_vec::<f32>().unwrap().iter().zip(&want) {
                approx(*g, *w);
            }
            approx(sparse.compute(&labels, &logits).to_scalar::<f32>().unwrap(), want.iter().sum::<f64>() / 6.0);
            let mask = Tensor::from_vec(vec![true, true, false, true, false, false], [2, 3]).unwrap();
            let masked = sparse.compute_masked(&labels, &logits, Some(&mask)).to_scalar::<f32>().unwrap();
            approx(masked, (want[0] + want[1] + want[3]) / 3.0);
        }
        // Squared errors are averaged over the last axis per example.
        let (p, t) = (
            random::normal([2, 3], 0.0, 1.0, DType::F32, Some(9)),
            random::normal([2, 3], 0.0, 1.0, DType::F32, Some(10)),
        );
        let per = Loss::MeanSquaredError.per_example(&t, &p).to_vec::<f32>().unwrap();
        let (pv, tv) = (p.to_vec::<f32>().unwrap(), t.to_vec::<f32>().unwrap());
        for (i, g) in per.iter().enumerate() {
            approx(*g, (0..3).map(|j| f64::from(pv[i * 3 + j] - tv[i * 3 + j]).powi(2)).sum::<f64>() / 3.0);
        }
        let r = std::panic::catch_unwind(|| sparse.compute(&Tensor::from_vec(vec![1i64; 3], [3]).unwrap(), &logits));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("[batch, steps, classes]") && msg.contains("i64[3]"), "{msg}");
    }

    #[test]
    fn binary_cross_entropy_of_logits_equals_that_of_probabilities() {
        let x = random::normal([64, 1], 0.0, 3.0, DType::F32, Some(4));
        let y = random::uniform([64, 1], 0.0, 1.0, DType::F32, Some(5)).gt(0.5).cast(DType::F32);
        let a = Loss::BinaryCrossentropy { from_logits: true }.compute(&y, &x).to_scalar::<f32>().unwrap();
        let b = Loss::BinaryCrossentropy { from_logits: false }.compute(&y, &x.sigmoid()).to_scalar::<f32>().unwrap();
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        let (xs, ys) = (x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
        let want: f64 = xs
            .iter()
            .zip(&ys)
            .map(|(&x, &y)| {
                let p = 1.0 / (1.0 + (-(x as f64)).exp());
                -(y as f64 * p.ln() + (1.0 - y as f64) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / 64.0;
        approx(a, want);
    }

    #[test]
    fn mse_accepts_flat_targets_for_one_output() {
        let p = random::normal([8, 1], 0.0, 1.0, DType::F32, Some(6));
        let t = random::normal([8], 0.0, 1.0, DType::F32, Some(7));
        let (pv, tv) = (p.to_vec::<f32>().unwrap(), t.to_vec::<f32>().unwrap());
        let want = pv.iter().zip(&tv).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / 8.0;
        approx(Loss::MeanSquaredError.compute(&t, &p).to_scalar::<f32>().unwrap(), want);
    }

    #[test]
    fn mismatched_targets_name_the_loss_and_shapes() {
        let p = Tensor::zeros([4, 3], DType::F32);
        let t = Tensor::zeros([4, 2], DType::F32);
        let err = std::panic::catch_unwind(|| Loss::MeanSquaredError.compute(&t, &p)).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("mean_squared_error: targets f32[4,2] do not match predictions f32[4,3]"), "{msg}");
        assert!(msg.contains("losses/mod.rs"), "{msg}");
    }
}
