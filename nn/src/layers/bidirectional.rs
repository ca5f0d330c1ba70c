//! `Bidirectional`: a recurrent layer over the steps and another over them reversed.

use std::sync::Arc;

use tensorjit_runtime::{Tensor, Variable};

use super::{with_name, RecurrentLayer};
use crate::activity::ActivityLosses;
use crate::error::raise;
use crate::module::{fmt_spec, LayerCore, Module, ModuleRef, ShapeSpec};

/// Runs one recurrent layer forward and another over the reversed steps, and joins
/// their outputs on the last axis (Keras' `Bidirectional` with `merge_mode="concat"`
/// and a `backward_layer`): with `return_sequences`, the backward outputs are put back
/// in the steps' order first. Both layers must agree on `return_sequences`.
#[derive(Clone)]
pub struct Bidirectional {
    forward: ModuleRef,
    backward: ModuleRef,
    core: Arc<LayerCore>,
    /// The wrapped layers' activity penalties of the latest call.
    activity: Arc<ActivityLosses>,
}

impl Bidirectional {
    /// `forward` reads the steps in order, `backward` from the last to the first (two
    /// layers: their weights are their own).
    pub fn new(forward: impl Module + 'static, backward: impl Module + 'static) -> Bidirectional {
        Bidirectional {
            forward: forward.boxed(),
            backward: backward.boxed(),
            core: LayerCore::new("Bidirectional"),
            activity: Arc::default(),
        }
    }

    /// Keras' `Bidirectional(layer)`: two twins of `layer` (the same configuration, each
    /// with its own weights), named `forward_<name>` and `backward_<name>`. The layer
    /// must read forwards: the backward twin is given the reversed steps.
    #[track_caller]
    pub fn of<L: RecurrentLayer>(layer: L) -> Bidirectional {
        if layer.goes_backwards() {
            raise(
                &format!("Bidirectional of {} '{}'", layer.kind(), layer.name()),
                "the layer goes backwards; give one that reads the steps forwards (the backward twin reverses them)",
            )
        }
        let name = layer.name().to_string();
        let (forward, backward) = (layer.twin(&format!("forward_{name}")), layer.twin(&format!("backward_{name}")));
        Bidirectional::new(forward, backward)
    }

    with_name!();
}

impl Module for Bidirectional {
    fn name(&self) -> &str {
        &self.core.name
    }

    fn kind(&self) -> &'static str {
        self.core.kind
    }

    fn is_built(&self) -> bool {
        self.forward.is_built() && self.backward.is_built()
    }

    fn output_regularizer(&self) -> Option<crate::regularizers::Regularizer> {
        self.core.activity
    }

    /// The wrapped layers' weight penalties and their activity penalties of the latest
    /// call.
    fn losses(&self) -> Vec<Tensor> {
        let weights = [&self.forward, &self.backward].into_iter().flat_map(|l| l.losses()).collect::<Vec<_>>();
        weights.into_iter().chain(self.activity.current()).collect()
    }

    /// The forward layer's weights, then the backward one's.
    fn variables(&self) -> Vec<Variable> {
        let mut v = self.forward.variables();
        v.extend(self.backward.variables());
        v
    }

    fn layers(&self) -> Vec<ModuleRef> {
        vec![self.forward.clone(), self.backward.clone()]
    }

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let (f, b) = (self.forward.output_shape(input), self.backward.output_shape(input));
        if f.len() != b.len() || f[..f.len().saturating_sub(1)] != b[..b.len().saturating_sub(1)] {
            raise(
                &format!("Bidirectional '{}'", self.core.name),
                format!(
                    "its layers give outputs of shapes {} and {}, which cannot be joined (return_sequences must agree)",
                    fmt_spec(&f),
                    fmt_spec(&b)
                ),
            )
        }
        let scope = if scope.is_empty() { self.core.name.clone() } else { format!("{scope}/{}", self.core.name) };
        self.forward.build(&scope, input);
        self.backward.build(&scope, input);
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, training: bool) -> Tensor {
        self.forward_masked(x, None, training)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    /// The forward layer's: the mask with sequences, none with last outputs.
    fn compute_mask(&self, x: &Tensor, mask: Option<&Tensor>) -> Option<Tensor> {
        self.forward.compute_mask(x, mask)
    }

    /// With a mask, the backward layer reads the reversed mask too (right padding comes
    /// first, so it starts from the zero state at the last real step), and padded steps
    /// of both outputs are 0 (Keras forces `zero_output_for_mask` on sequences).
    #[track_caller]
    fn forward_masked(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> Tensor {
        self.activity.clear();
        let ahead = self.forward.forward_masked(x, mask, training);
        let reversed_mask = mask.map(|m| m.reverse(&[1]));
        let back = self.backward.forward_masked(&x.reverse(&[1]), reversed_mask.as_ref(), training);
        self.activity.record(self.forward.as_ref(), &ahead);
        self.activity.record(self.backward.as_ref(), &back);
        // Sequences: the backward layer's step i read x's step n−1−i.
        let (ahead, back) = match (back.rank(), mask) {
            (3, Some(m)) => {
                let keep = m.expand_dims(-1);
                (ahead.select(&keep, 0.0), back.reverse(&[1]).select(&keep, 0.0))
            }
            (3, None) => (ahead, back.reverse(&[1])),
            _ => (ahead, back),
        };
        Tensor::concat(&[&ahead, &back], -1)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        let (mut f, b) = (self.forward.output_shape(input), self.backward.output_shape(input));
        if let (Some(last), Some(other)) = (f.last_mut(), b.last()) {
            *last = last.zip(*other).map(|(x, y)| x + y);
        }
        f
    }
}
