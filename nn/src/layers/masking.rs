//! `Masking`: marks the steps of a sequence whose features all equal a padding value.

use std::sync::Arc;

use tensorjit_runtime::Tensor;

use super::{core_methods, with_name};
use crate::module::{LayerCore, Module, ShapeSpec};

/// Marks as padding every step of `[batch, steps, features]` whose features all equal
/// `mask_value` (Keras' `Masking`, default 0): the output's mask is true where some
/// feature differs, and those padded steps are set to 0 in the output. The layers after it
/// (LSTM, GRU, attention, global average pooling, the loss) skip them.
#[derive(Clone)]
pub struct Masking {
    mask_value: f64,
    core: Arc<LayerCore>,
}

impl Masking {
    pub fn new(mask_value: f64) -> Masking {
        Masking { mask_value, core: LayerCore::new("Masking") }
    }

    with_name!();

    #[track_caller]
    fn mask_of(&self, x: &Tensor) -> Tensor {
        if x.rank() < 2 {
            self.core.incompatible(x, "[batch, steps, …] with a features axis last");
        }
        x.ne(self.mask_value).any(-1, false)
    }
}

impl Default for Masking {
    fn default() -> Self {
        Masking::new(0.0)
    }
}

impl Module for Masking {
    core_methods!();

    fn supports_masking(&self) -> bool {
        true
    }

    fn build(&self, scope: &str, _input: &[Option<usize>]) {
        self.core.build(scope, |_| {});
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        x * &self.mask_of(x).expand_dims(-1).cast(x.dtype())
    }

    /// Its own mask, whatever came before (Keras' `Masking` ignores the input's).
    #[track_caller]
    fn compute_mask(&self, x: &Tensor, _mask: Option<&Tensor>) -> Option<Tensor> {
        Some(self.mask_of(x))
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        input.to_vec()
    }
}
