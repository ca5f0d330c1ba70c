//! Metrics: accuracy (binary, categorical, sparse categorical) and a running mean.
//! Batch values are computed with tensor ops (inside the traced step); the running
//! totals are kept on the host.

use tensorjit_runtime::{DType, Device, Tensor};

use crate::losses::{sparse_pair, Loss};

/// A metric asked for in `compile` (Keras' `metrics=[…]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// The accuracy that fits the loss: sparse categorical for integer labels,
    /// categorical for one-hot targets, binary (threshold 0.5, or 0 on logits) otherwise.
    Accuracy,
}

impl Metric {
    pub fn name(self) -> &'static str {
        "accuracy"
    }
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
        let hits = match self {
            AccuracyKind::SparseCategorical => {
                let (labels, pred) = sparse_pair(y_true, y_pred);
                labels.eq(&pred)
            }
            AccuracyKind::Categorical => y_true.argmax(-1).eq(y_pred.argmax(-1)),
            AccuracyKind::Binary { threshold } => {
                let t = if y_true.rank() + 1 == y_pred.rank() { y_true.expand_dims(-1) } else { y_true.clone() };
                y_pred.gt(threshold).eq(t.cast(y_pred.dtype()).gt(0.5))
            }
        };
        hits.cast(DType::F32).mean_all()
    }
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
        let mut m = Mean::new();
        m.update_state(&Tensor::from_vec(vec![1.0f32, 2.0, 6.0], [3]).unwrap()).unwrap();
        assert_eq!(m.result(), 3.0);
    }
}
