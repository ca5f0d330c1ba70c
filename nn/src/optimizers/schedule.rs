//! Learning-rate schedules (Keras' `keras.optimizers.schedules`): the learning rate as a
//! function of the optimizer's step counter, computed with tensor ops from the counter
//! variable, so a traced training step follows the schedule without retracing.

use std::f64::consts::PI;

use tensorjit_runtime::{DType, Tensor};

use crate::error::raise;

/// A learning rate that changes with the step (Keras' `LearningRateSchedule`s); `step`
/// is the number of updates applied before this one (Keras' `optimizer.iterations`).
#[derive(Clone, Debug, PartialEq)]
pub enum LearningRateSchedule {
    /// `initial · rate^(step / steps)`; with `staircase` the exponent is floored.
    ExponentialDecay { initial: f64, decay_steps: usize, decay_rate: f64, staircase: bool },
    /// `initial / (1 + rate · step / steps)`; with `staircase` the ratio is floored.
    InverseTimeDecay { initial: f64, decay_steps: usize, decay_rate: f64, staircase: bool },
    /// `initial · ((1 − alpha) · ½(1 + cos(π · min(step, steps) / steps)) + alpha)`.
    CosineDecay { initial: f64, decay_steps: usize, alpha: f64 },
    /// `values[i]` while `boundaries[i-1] < step ≤ boundaries[i]` (`values[0]` up to
    /// `boundaries[0]`, the last value after the last boundary); one more value than
    /// boundaries, which increase.
    PiecewiseConstantDecay { boundaries: Vec<usize>, values: Vec<f64> },
}

impl LearningRateSchedule {
    /// Raises unless the parameters describe a schedule (positive steps, increasing
    /// boundaries with one more value).
    #[track_caller]
    pub(crate) fn check(&self) {
        // Raised here, not in a closure: the location is this #[track_caller] fn's caller's.
        if let Err(msg) = self.problem() {
            raise("LearningRateSchedule", msg)
        }
    }

    fn problem(&self) -> Result<(), String> {
        match self {
            LearningRateSchedule::ExponentialDecay { decay_steps: 0, .. }
            | LearningRateSchedule::InverseTimeDecay { decay_steps: 0, .. }
            | LearningRateSchedule::CosineDecay { decay_steps: 0, .. } => {
                Err(format!("{self:?}: decay_steps must be positive"))
            }
            LearningRateSchedule::PiecewiseConstantDecay { boundaries, values }
                if values.len() != boundaries.len() + 1 =>
            {
                Err(format!(
                    "PiecewiseConstantDecay needs one more value than boundaries, got {} values for {} boundaries",
                    values.len(),
                    boundaries.len()
                ))
            }
            LearningRateSchedule::PiecewiseConstantDecay { boundaries, .. }
                if boundaries.windows(2).any(|w| w[0] >= w[1]) =>
            {
                Err(format!("PiecewiseConstantDecay's boundaries must increase, got {boundaries:?}"))
            }
            _ => Ok(()),
        }
    }

    /// The learning rate at `step` (an i64 scalar tensor), as an f64 scalar tensor.
    pub(crate) fn at(&self, step: &Tensor) -> Tensor {
        let s = step.cast(DType::F64);
        match self {
            LearningRateSchedule::ExponentialDecay { initial, decay_steps, decay_rate, staircase } => {
                let p = ratio(&s, *decay_steps, *staircase);
                Tensor::scalar(*decay_rate).pow(&p) * *initial
            }
            LearningRateSchedule::InverseTimeDecay { initial, decay_steps, decay_rate, staircase } => {
                let p = ratio(&s, *decay_steps, *staircase);
                *initial / &(p * *decay_rate + 1.0)
            }
            LearningRateSchedule::CosineDecay { initial, decay_steps, alpha } => {
                let done = s.minimum(*decay_steps as f64) / *decay_steps as f64;
                let cosine = ((done * PI).cos() + 1.0) * 0.5;
                (cosine * (1.0 - alpha) + *alpha) * *initial
            }
            LearningRateSchedule::PiecewiseConstantDecay { boundaries, values } => {
                // From the last piece back: each boundary passed selects the next value.
                let mut lr = Tensor::scalar(values[values.len() - 1]);
                for (b, v) in boundaries.iter().zip(values).rev() {
                    lr = Tensor::where_(&s.le(*b as f64), *v, &lr);
                }
                lr
            }
        }
    }
}

/// `step / steps`, floored with `staircase`.
fn ratio(step: &Tensor, steps: usize, staircase: bool) -> Tensor {
    let r = step / steps as f64;
    if staircase {
        r.floor()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &LearningRateSchedule, step: i64) -> f64 {
        s.at(&Tensor::scalar(step)).to_scalar::<f64>().unwrap()
    }

    #[test]
    fn schedules_follow_their_formulas() {
        let close = |a: f64, b: f64| assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        let exp =
            LearningRateSchedule::ExponentialDecay { initial: 0.1, decay_steps: 10, decay_rate: 0.5, staircase: false };
        close(at(&exp, 0), 0.1);
        close(at(&exp, 15), 0.1 * 0.5f64.powf(1.5));
        let stairs =
            LearningRateSchedule::ExponentialDecay { initial: 0.1, decay_steps: 10, decay_rate: 0.5, staircase: true };
        close(at(&stairs, 19), 0.05);
        let inv =
            LearningRateSchedule::InverseTimeDecay { initial: 1.0, decay_steps: 4, decay_rate: 2.0, staircase: false };
        close(at(&inv, 6), 1.0 / (1.0 + 2.0 * 1.5));
        let cos = LearningRateSchedule::CosineDecay { initial: 2.0, decay_steps: 100, alpha: 0.1 };
        close(at(&cos, 0), 2.0);
        close(at(&cos, 50), 2.0 * (0.9 * 0.5 + 0.1));
        close(at(&cos, 500), 0.2);
        let pieces =
            LearningRateSchedule::PiecewiseConstantDecay { boundaries: vec![5, 10], values: vec![1.0, 0.5, 0.1] };
        let got: Vec<f64> = [0, 5, 6, 10, 11, 100].iter().map(|&t| at(&pieces, t)).collect();
        assert_eq!(got, [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]);
    }
}
