//! `TimeDistributed`: a layer applied to every step of a sequence.

use std::sync::Arc;

use tensorjit_runtime::shape::UNKNOWN;
use tensorjit_runtime::{Tensor, Variable};

use super::with_name;
use crate::activity::ActivityLosses;
use crate::error::raise;
use crate::module::{fmt_spec, LayerCore, Module, ModuleRef, ShapeSpec};

/// Applies `layer` to each step of `[batch, steps, …]` alone (Keras' `TimeDistributed`):
/// the batch and step axes are merged into one batch axis of `batch·steps` examples, the
/// layer runs once on all of them, and the axes are split again. One set of weights for
/// every step. The layer sees examples `[…]`, so `TimeDistributed(Conv2D)` runs a
/// convolution on every frame of `[batch, frames, height, width, channels]`. A mask of
/// padded steps passes through. Traced, the batch or the number of steps may be
/// unknown, not both.
#[derive(Clone)]
pub struct TimeDistributed {
    layer: ModuleRef,
    core: Arc<LayerCore>,
    /// The wrapped layer's activity penalty of the latest call.
    activity: Arc<ActivityLosses>,
}

impl TimeDistributed {
    pub fn new(layer: impl Module + 'static) -> TimeDistributed {
        TimeDistributed { layer: layer.boxed(), core: LayerCore::new("TimeDistributed"), activity: Arc::default() }
    }

    with_name!();

    fn what(&self) -> String {
        format!("TimeDistributed '{}'", self.core.name)
    }

    /// The shape the wrapped layer sees: `[None, …]` without the steps.
    #[track_caller]
    fn inner_input(&self, input: &[Option<usize>]) -> ShapeSpec {
        if input.len() < 3 {
            raise(
                &self.what(),
                format!("needs inputs [batch, steps, …] of rank 3 or more, got shape {}", fmt_spec(input)),
            )
        }
        std::iter::once(None).chain(input[2..].iter().copied()).collect()
    }
}

impl Module for TimeDistributed {
    fn name(&self) -> &str {
        &self.core.name
    }

    fn kind(&self) -> &'static str {
        self.core.kind
    }

    fn is_built(&self) -> bool {
        self.layer.is_built()
    }

    fn variables(&self) -> Vec<Variable> {
        self.layer.variables()
    }

    fn layers(&self) -> Vec<ModuleRef> {
        vec![self.layer.clone()]
    }

    fn output_regularizer(&self) -> Option<crate::regularizers::Regularizer> {
        self.core.activity
    }

    /// The wrapped layer's weight penalties and its activity penalty of the latest call
    /// (over the `batch·steps` examples it saw, as Keras divides it).
    fn losses(&self) -> Vec<Tensor> {
        self.layer.losses().into_iter().chain(self.activity.current()).collect()
    }

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let inner = self.inner_input(input);
        let scope = if scope.is_empty() { self.core.name.clone() } else { format!("{scope}/{}", self.core.name) };
        self.layer.build(&scope, &inner);
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, training: bool) -> Tensor {
        let dims = x.dims();
        if dims.len() < 3 {
            self.core.incompatible(x, "[batch, steps, …] of rank 3 or more");
        }
        let (batch, steps) = (dims[0], dims[1]);
        if batch == UNKNOWN && steps == UNKNOWN {
            self.core.incompatible(x, "a known batch or number of steps (both are unknown in this trace)");
        }
        let as_i64 = |d: usize| if d == UNKNOWN { -1 } else { d as i64 };
        let merged: Vec<i64> = std::iter::once(-1).chain(dims[2..].iter().map(|&d| as_i64(d))).collect();
        if merged[1..].contains(&-1) {
            self.core.incompatible(x, "known sizes after the steps axis");
        }
        let y = self.layer.forward(&x.reshape(merged), training);
        self.activity.clear();
        self.activity.record(self.layer.as_ref(), &y);
        let split: Vec<i64> =
            [as_i64(batch), as_i64(steps)].into_iter().chain(y.dims()[1..].iter().map(|&d| as_i64(d))).collect();
        y.reshape(split)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        if input.len() < 3 {
            return input.to_vec();
        }
        let inner = self.layer.output_shape(&self.inner_input(input));
        input[..2].iter().copied().chain(inner.into_iter().skip(1)).collect()
    }
}
