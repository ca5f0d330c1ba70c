//! Optimizers whose state lives in variables (so a training step that applies
//! gradients traces into one graph): SGD (momentum, Nesterov), Adam, Adagrad, RMSprop.
//!
//! The learning rate and the step counter are variables too: changing the learning rate
//! does not retrace. Slots (momenta, accumulators) are created on the first update of
//! each variable, under `init_scope`, named `<optimizer>/<variable>/<slot>`.

mod rules;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::raise;
use tensorjit_runtime::{init_scope, GradientTape, Tensor, Variable, VariableId};

pub use rules::{Adagrad, Adam, RMSprop, SGD};

/// What an optimizer's update rule needs besides the gradient.
pub struct Step<'a> {
    /// The learning rate, in the variable's dtype.
    pub lr: &'a Tensor,
    /// The 1-based step number `t`, in the variable's dtype.
    pub t: &'a Tensor,
    /// This variable's slots, in the order of `slot_names`.
    pub slots: &'a [Variable],
}

/// An update rule plus the shared bookkeeping in [`OptimizerState`].
pub trait Optimizer: Send + Sync {
    /// Keras' name (`Adam`), also the prefix of slot names.
    fn name(&self) -> &'static str;
    /// The slots each variable gets, with their initial values.
    fn slot_names(&self) -> &'static [(&'static str, f64)];
    /// Updates `var` by `grad` (variable assignments, so it traces).
    fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>);
    /// The learning rate, step counter and slots.
    fn state(&self) -> &OptimizerState;

    /// Applies one update per `(gradient, variable)`; `None` gradients are skipped (the
    /// variable did not influence the loss). Advances the step counter once.
    #[track_caller]
    fn apply_gradients(&self, grads_and_vars: &[(Option<Tensor>, Variable)]) {
        let st = self.state();
        let t = st.iterations.read() + 1;
        for (g, v) in grads_and_vars {
            let Some(g) = g else { continue };
            let slots = st.slots_for(self.name(), v, self.slot_names());
            let (lr, t) = (st.lr.read().cast(v.dtype()), t.cast(v.dtype()));
            self.update(v, g, &Step { lr: &lr, t: &t, slots: &slots });
        }
        st.iterations.assign_add(1i64);
    }

    /// Computes `loss_fn()` under a tape, applies its gradients to `var_list`, and
    /// returns the loss (Keras' `minimize`).
    #[track_caller]
    fn minimize(&self, loss_fn: &dyn Fn() -> Tensor, var_list: &[Variable]) -> Tensor {
        let tape = GradientTape::new();
        let loss = loss_fn();
        let grads = tape.gradient(&loss, var_list);
        let pairs: Vec<(Option<Tensor>, Variable)> = grads.into_iter().zip(var_list.iter().cloned()).collect();
        self.apply_gradients(&pairs);
        loss
    }

    /// The learning rate now (kept in f64, cast to each variable's dtype).
    fn learning_rate(&self) -> f64 {
        self.state().lr.read().to_scalar::<f64>().unwrap_or(f64::NAN)
    }

    /// Sets the learning rate (a variable assignment: traced steps see it, no retrace).
    fn set_learning_rate(&self, lr: f64) {
        self.state().lr.assign(lr);
    }

    /// The step counter and every slot created so far.
    fn variables(&self) -> Vec<Variable> {
        let st = self.state();
        let mut out = vec![st.iterations.clone()];
        let slots = st.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut ordered: Vec<&(usize, Vec<Variable>)> = slots.values().collect();
        ordered.sort_by_key(|(order, _)| *order);
        out.extend(ordered.into_iter().flat_map(|(_, s)| s.iter().cloned()));
        out
    }
}

/// The learning rate and step counter (variables) and the slots by variable.
pub struct OptimizerState {
    lr: Variable,
    iterations: Variable,
    /// Slots by variable, with the order of first use.
    slots: Mutex<HashMap<VariableId, (usize, Vec<Variable>)>>,
}

impl OptimizerState {
    pub fn new(name: &str, learning_rate: f64) -> OptimizerState {
        init_scope(|| OptimizerState {
            lr: Variable::with_trainable(Tensor::scalar(learning_rate), format!("{name}/learning_rate"), false),
            iterations: Variable::with_trainable(Tensor::scalar(0i64), format!("{name}/iterations"), false),
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// The number of updates applied so far.
    pub fn iterations(&self) -> &Variable {
        &self.iterations
    }

    fn slots_for(&self, opt: &str, v: &Variable, names: &[(&str, f64)]) -> Vec<Variable> {
        let mut map = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let order = map.len();
        map.entry(v.id())
            .or_insert_with(|| {
                let slots = init_scope(|| {
                    names
                        .iter()
                        .map(|&(slot, init)| {
                            let value = Tensor::full(v.shape().clone(), init, v.dtype());
                            // Beside the variable (its device was checked when it was made).
                            let value =
                                value.to(v.device()).unwrap_or_else(|e| raise(&format!("slot of '{}'", v.name()), e));
                            Variable::with_trainable(value, format!("{opt}/{}/{slot}", v.name()), false)
                        })
                        .collect()
                });
                (order, slots)
            })
            .1
            .clone()
    }
}

/// A shared optimizer, as `compile` holds it.
pub type OptimizerRef = Arc<dyn Optimizer>;
