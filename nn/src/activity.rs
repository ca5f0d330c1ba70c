//! Activity regularization (Keras' `activity_regularizer` and `add_loss` of a call): the
//! penalties on layers' outputs that a model's latest call recorded. A model clears its
//! record when it is called and adds each penalised layer's penalty as the layer
//! returns; [`Module::losses`](crate::Module::losses) gives them with the weights'
//! penalties, so the training step that called the model adds them to its loss — in a
//! traced step too, where they are values of that trace.

use std::sync::Mutex;

use tensorjit_runtime::Tensor;

use crate::module::Module;

/// The activity penalties of a model's latest call.
#[derive(Default)]
pub(crate) struct ActivityLosses(Mutex<Vec<Tensor>>);

impl ActivityLosses {
    /// Forgets the previous call's penalties (at the start of a call).
    pub(crate) fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Records the penalty of `layer`'s output `y`, if the layer has an activity
    /// regularizer.
    pub(crate) fn record(&self, layer: &dyn Module, y: &Tensor) {
        if let Some(r) = layer.output_regularizer() {
            let p = r.activity_penalty(y);
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(p);
        }
    }

    /// The latest call's penalties. Those of a traced call are values of its trace: out
    /// of any trace they mean nothing and are left out.
    pub(crate) fn current(&self) -> Vec<Tensor> {
        let tracing = tensorjit_runtime::trace::is_tracing();
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().filter(|t| tracing || !t.is_symbolic()).cloned().collect()
    }
}
