//! Norm clipping (`tf.clip_by_norm`, `tf.clip_by_global_norm`), as optimizers apply it
//! to gradients: compositions, so they trace, run on GPUs and differentiate.

use std::panic::Location;

use crate::error::OpError;
use crate::shape::Axes;
use crate::tensor::Tensor;

/// Raises unless `clip_norm` is a positive finite number.
#[track_caller]
fn positive_or_raise(op: &'static str, clip_norm: f64, operands: &[&Tensor]) {
    if !(clip_norm > 0.0 && clip_norm.is_finite()) {
        OpError::new(op, format!("clip_norm must be a positive finite number, got {clip_norm}"))
            .with_operands(operands.iter().map(|t| (t.dtype(), t.shape())))
            .raise(Location::caller())
    }
}

impl Tensor {
    /// Rescales `self` so that its L2 norm over `axes` is at most `clip_norm`
    /// (`tf.clip_by_norm`): `x · clip_norm / max(‖x‖, clip_norm)`. A slice whose norm is
    /// already within the bound is unchanged up to that rounding, a zero slice stays
    /// zero (no 0/0). Float tensors only.
    #[track_caller]
    pub fn clip_by_norm(&self, clip_norm: f64, axes: impl Into<Axes>) -> Tensor {
        self.float_or_raise("clip_by_norm");
        positive_or_raise("clip_by_norm", clip_norm, &[self]);
        let squares = self.square().sum(axes, true);
        // √0 has an infinite gradient: take the root of 1 instead where the sum is 0.
        let nonzero = squares.gt(0.0);
        let norm = Tensor::where_(&nonzero, Tensor::where_(&nonzero, &squares, 1.0).sqrt(), &squares);
        (self * clip_norm) / norm.maximum(clip_norm)
    }

    /// Scales every tensor of `tensors` by one factor so that the L2 norm of all of them
    /// together, `√Σᵢ‖tᵢ‖²`, is at most `clip_norm` (`tf.clip_by_global_norm`); returns
    /// the scaled tensors and that global norm (before scaling, in the first tensor's
    /// dtype). When the global norm is not finite, every scaled element is NaN
    /// (TensorFlow). Float tensors only; the norm is summed in the first one's dtype.
    #[track_caller]
    pub fn clip_by_global_norm(tensors: &[&Tensor], clip_norm: f64) -> (Vec<Tensor>, Tensor) {
        let Some(first) = tensors.first() else {
            OpError::new("clip_by_global_norm", "needs at least one tensor").raise(Location::caller())
        };
        positive_or_raise("clip_by_global_norm", clip_norm, tensors);
        for t in tensors {
            t.float_or_raise("clip_by_global_norm");
        }
        let dtype = first.dtype();
        let squares: Vec<Tensor> = tensors.iter().map(|t| t.square().sum_all().cast(dtype)).collect();
        let refs: Vec<&Tensor> = squares.iter().collect();
        let global = Tensor::stack(&refs, 0).sum_all().sqrt();
        // clip · min(1/‖g‖, 1/clip): 1 when within the bound (also for ‖g‖ = 0, as
        // 1/0 = ∞); `+ 0·‖g‖` turns the factor into NaN for an infinite norm.
        let scale = (1.0f64 / &global).minimum(1.0 / clip_norm) * clip_norm + &global * 0.0;
        let scaled = tensors.iter().map(|t| *t * &scale.cast(t.dtype())).collect();
        (scaled, global)
    }
}

#[cfg(test)]
mod tests {
    use crate::tensor::Tensor;

    #[test]
    fn the_documented_behaviour() {
        let x = Tensor::from_vec(vec![3.0f64, 4.0, 0.0, 0.0], [2, 2]).unwrap();
        assert_eq!(x.clip_by_norm(1.0, 1).to_vec::<f64>().unwrap(), [0.6, 0.8, 0.0, 0.0]);
        assert_eq!(x.clip_by_norm(10.0, 1).to_vec::<f64>().unwrap(), [3.0, 4.0, 0.0, 0.0]);
        let y = Tensor::from_vec(vec![12.0f64], [1]).unwrap();
        let (scaled, norm) = Tensor::clip_by_global_norm(&[&x, &y], 6.5);
        assert_eq!(norm.to_scalar::<f64>().unwrap(), 13.0);
        assert_eq!(scaled[0].to_vec::<f64>().unwrap(), [1.5, 2.0, 0.0, 0.0]);
        assert_eq!(scaled[1].to_vec::<f64>().unwrap(), [6.0]);
    }
}
