//! Losses: mean squared error and the cross-entropies. Each is the mean over the batch.

use tensorjit_runtime::{DType, Device, Tensor};

use crate::error::raise;

/// Keras' clipping epsilon for cross-entropies of probabilities.
const EPSILON: f64 = 1e-7;

/// A loss function (Keras' `loss=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// mean((y − ŷ)²).
    MeanSquaredError,
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
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
        }
    }

    /// The loss of a batch (a scalar): the mean over examples. A sparse label outside
    /// the classes is an error when the labels are host values (see
    /// [`check_labels`](Self::check_labels)).
    #[track_caller]
    pub fn compute(self, y_true: &Tensor, y_pred: &Tensor) -> Tensor {
        match self {
            Loss::SparseCategoricalCrossentropy { from_logits } => {
                let labels = sparse_labels(self, y_true, y_pred);
                let depth = y_pred.dims()[y_pred.rank() - 1];
                if let Err(message) = self.check_labels(&labels, depth) {
                    raise(self.name(), message)
                }
                let onehot = labels.one_hot(depth, y_pred.dtype());
                let logp = log_probs(y_pred, from_logits);
                -(&onehot * &logp).sum(-1, false).mean_all()
            }
            Loss::MeanSquaredError => (y_pred - &dense_targets(self, y_true, y_pred)).square().mean_all(),
            Loss::BinaryCrossentropy { from_logits: true } => {
                let y = dense_targets(self, y_true, y_pred);
                (y_pred.relu() - y_pred * &y + y_pred.abs().neg().softplus()).mean_all()
            }
            Loss::BinaryCrossentropy { from_logits: false } => {
                let y = dense_targets(self, y_true, y_pred);
                let p = y_pred.maximum(EPSILON).minimum(1.0 - EPSILON);
                let ll = &y * &p.log() + (1.0f64 - &y) * (1.0f64 - &p).log();
                -ll.mean_all()
            }
            Loss::CategoricalCrossentropy { from_logits } => {
                let y = dense_targets(self, y_true, y_pred);
                -(&y * &log_probs(y_pred, from_logits)).sum(-1, false).mean_all()
            }
        }
    }
}

impl Loss {
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

/// Targets of the same shape and dtype as the predictions.
#[track_caller]
fn dense_targets(loss: Loss, y_true: &Tensor, y_pred: &Tensor) -> Tensor {
    if y_true.dims() == y_pred.dims() {
        return y_true.cast(y_pred.dtype());
    }
    // `[batch]` targets for `[batch, 1]` predictions, as Keras accepts.
    if y_pred.rank() == 2 && y_pred.dims()[1] == 1 && y_true.rank() == 1 && y_true.dims()[0] == y_pred.dims()[0] {
        return y_true.cast(y_pred.dtype()).reshape([-1, 1]);
    }
    raise(loss.name(), format!("targets {} do not match predictions {}", y_true.type_string(), y_pred.type_string()))
}

/// Integer labels of shape `[batch]`.
#[track_caller]
fn sparse_labels(loss: Loss, y_true: &Tensor, y_pred: &Tensor) -> Tensor {
    let batch = y_pred.dims().first().copied().unwrap_or(0);
    let flat_ok = y_true.numel() == batch && (y_true.rank() == 1 || (y_true.rank() == 2 && y_true.dims()[1] == 1));
    if y_pred.rank() != 2 || !flat_ok || y_true.dtype() == DType::Bool {
        raise(
            loss.name(),
            format!(
                "needs predictions [batch, classes] and integer labels [batch] (or [batch, 1]); got labels {} and \
                 predictions {}",
                y_true.type_string(),
                y_pred.type_string()
            ),
        )
    }
    let labels = if y_true.rank() == 2 { y_true.reshape([-1]) } else { y_true.clone() };
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
        assert!(msg.contains("losses.rs"), "{msg}");
    }
}
