//! Optimizers whose state lives in variables (so a training step that applies
//! gradients traces into one graph): SGD (momentum, Nesterov), Adam (AMSGrad), AdamW,
//! Adamax, Nadam, Lion, Adagrad, Adadelta, RMSprop (momentum, centered), in Keras 3's
//! formulation. Each can clip the gradients first (Keras' `clipnorm`, `clipvalue`,
//! `global_clipnorm`) and decay the weights (Keras' decoupled `weight_decay`:
//! `w ← w − w·wd·lr` before the update, with `exclude_from_weight_decay`).
//!
//! The learning rate and the step counter are variables too: changing the learning rate
//! does not retrace. Slots (momenta, accumulators) are created on the first update of
//! each variable, under `init_scope`, named `<optimizer>/<variable>/<slot>`.

mod adam;
mod rules;
mod schedule;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::raise;
use tensorjit_runtime::{init_scope, Axes, GradientTape, Tensor, Variable, VariableId};

pub use adam::{Adam, AdamW, Adamax, Lion, Nadam};
pub use rules::{Adadelta, Adagrad, RMSprop, SGD};
pub use schedule::LearningRateSchedule;

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
    /// Runs once per update, before the variables' updates, with the 1-based step
    /// number (i64): for state shared by all variables (Nadam's momentum schedule).
    fn begin_step(&self, _t: &Tensor) {}

    /// Applies one update per `(gradient, variable)`; `None` gradients are skipped (the
    /// variable did not influence the loss). Advances the step counter once.
    #[track_caller]
    fn apply_gradients(&self, grads_and_vars: &[(Option<Tensor>, Variable)]) {
        let st = self.state();
        let step = st.iterations.read();
        let t = &step + 1;
        let lr = st.learning_rate_at(&step);
        let grads = st.clipped(grads_and_vars);
        st.decay_weights(grads_and_vars, &lr);
        self.begin_step(&t);
        for (g, (_, v)) in grads.iter().zip(grads_and_vars) {
            let Some(g) = g else { continue };
            let slots = st.slots_for(self.name(), v, self.slot_names());
            let (lr, t) = (lr.cast(v.dtype()), t.cast(v.dtype()));
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

    /// Clips each gradient to an L2 norm of at most `max_norm` before the update
    /// (Keras' `clipnorm`; `tf.clip_by_norm` of each gradient).
    #[track_caller]
    fn clipnorm(self, max_norm: f64) -> Self
    where
        Self: Sized,
    {
        self.state().set_clipping(self.name(), Clipping::Norm(max_norm));
        self
    }

    /// Clips every gradient element to `[-max_value, max_value]` before the update
    /// (Keras' `clipvalue`).
    #[track_caller]
    fn clipvalue(self, max_value: f64) -> Self
    where
        Self: Sized,
    {
        self.state().set_clipping(self.name(), Clipping::Value(max_value));
        self
    }

    /// Scales all gradients of an update by one factor so that their joint L2 norm is
    /// at most `max_norm` (Keras' `global_clipnorm`; `tf.clip_by_global_norm`).
    #[track_caller]
    fn global_clipnorm(self, max_norm: f64) -> Self
    where
        Self: Sized,
    {
        self.state().set_clipping(self.name(), Clipping::GlobalNorm(max_norm));
        self
    }

    /// Decays every updated variable by `w ← w − w·rate·lr` before its update (Keras'
    /// decoupled `weight_decay`; `AdamW` starts with 0.004). Variables named in
    /// [`exclude_from_weight_decay`](Self::exclude_from_weight_decay) keep their values.
    #[track_caller]
    fn weight_decay(self, rate: f64) -> Self
    where
        Self: Sized,
    {
        if !(rate >= 0.0 && rate.is_finite()) {
            raise(self.name(), format!("weight_decay must be a finite number ≥ 0, got {rate}"));
        }
        *self.state().decay.lock().unwrap_or_else(|p| p.into_inner()) = (rate > 0.0).then_some(rate);
        self
    }

    /// Leaves the variables whose names contain one of `names` out of the weight decay
    /// (Keras' `exclude_from_weight_decay(var_names=…)`; `["bias", "gamma", "beta"]` is
    /// the usual choice).
    fn exclude_from_weight_decay(self, names: &[&str]) -> Self
    where
        Self: Sized,
    {
        self.state()
            .decay_exclude
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// The weight decay rate, if any.
    fn weight_decay_rate(&self) -> Option<f64> {
        *self.state().decay.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How gradients are clipped before each update.
    fn clipping(&self) -> Clipping {
        *self.state().clipping.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The learning rate of the next update (kept in f64, cast to each variable's
    /// dtype): the schedule's value at the step counter when there is one.
    fn learning_rate(&self) -> f64 {
        let st = self.state();
        st.learning_rate_at(&st.iterations.read()).to_scalar::<f64>().unwrap_or(f64::NAN)
    }

    /// Sets a fixed learning rate (a variable assignment: traced steps see it, no
    /// retrace — unless they were traced with a schedule, which this removes; a traced
    /// step keeps what it was traced with).
    fn set_learning_rate(&self, lr: f64) {
        let st = self.state();
        *st.schedule.lock().unwrap_or_else(|p| p.into_inner()) = None;
        st.lr.assign(lr);
    }

    /// Computes the learning rate of each update from the step counter (Keras'
    /// `learning_rate=schedule`), inside traced steps too.
    #[track_caller]
    fn learning_rate_schedule(self, schedule: LearningRateSchedule) -> Self
    where
        Self: Sized,
    {
        schedule.check();
        *self.state().schedule.lock().unwrap_or_else(|p| p.into_inner()) = Some(schedule);
        self
    }

    /// The step counter, the optimizer's own scalars (Nadam's) and every slot created
    /// so far.
    fn variables(&self) -> Vec<Variable> {
        let st = self.state();
        let mut out = vec![st.iterations.clone()];
        out.extend(st.scalars.iter().cloned());
        let slots = st.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut ordered: Vec<&(usize, Vec<Variable>)> = slots.values().collect();
        ordered.sort_by_key(|(order, _)| *order);
        out.extend(ordered.into_iter().flat_map(|(_, s)| s.iter().cloned()));
        out
    }
}

/// How an optimizer clips gradients before its update rule sees them (at most one
/// kind, as in Keras).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Clipping {
    /// Gradients are used as they are.
    #[default]
    None,
    /// Each gradient rescaled to an L2 norm of at most this (`clipnorm`).
    Norm(f64),
    /// Each element clipped to `[-v, v]` (`clipvalue`).
    Value(f64),
    /// All gradients of an update scaled together to a joint norm of at most this
    /// (`global_clipnorm`).
    GlobalNorm(f64),
}

impl Clipping {
    fn name(self) -> &'static str {
        match self {
            Clipping::None => "none",
            Clipping::Norm(_) => "clipnorm",
            Clipping::Value(_) => "clipvalue",
            Clipping::GlobalNorm(_) => "global_clipnorm",
        }
    }
}

/// The learning rate and step counter (variables) and the slots by variable.
pub struct OptimizerState {
    lr: Variable,
    iterations: Variable,
    /// Scalars of the optimizer shared by all variables (f64).
    scalars: Vec<Variable>,
    clipping: Mutex<Clipping>,
    decay: Mutex<Option<f64>>,
    decay_exclude: Mutex<Vec<String>>,
    schedule: Mutex<Option<LearningRateSchedule>>,
    /// Slots by variable, with the order of first use.
    slots: Mutex<HashMap<VariableId, (usize, Vec<Variable>)>>,
}

impl OptimizerState {
    pub fn new(name: &str, learning_rate: f64) -> OptimizerState {
        Self::with_scalars(name, learning_rate, &[])
    }

    /// With scalars of the optimizer's own (`(name, initial value)`, f64 variables named
    /// `<optimizer>/<name>`), read back by [`scalar`](Self::scalar).
    pub fn with_scalars(name: &str, learning_rate: f64, scalars: &[(&str, f64)]) -> OptimizerState {
        let var = |value: Tensor, what: &str| Variable::with_trainable(value, format!("{name}/{what}"), false);
        init_scope(|| OptimizerState {
            lr: var(Tensor::scalar(learning_rate), "learning_rate"),
            iterations: var(Tensor::scalar(0i64), "iterations"),
            scalars: scalars.iter().map(|&(what, init)| var(Tensor::scalar(init), what)).collect(),
            slots: Mutex::new(HashMap::new()),
            clipping: Mutex::new(Clipping::None),
            decay: Mutex::new(None),
            decay_exclude: Mutex::new(Vec::new()),
            schedule: Mutex::new(None),
        })
    }

    /// The `i`-th scalar given to [`with_scalars`](Self::with_scalars).
    pub fn scalar(&self, i: usize) -> &Variable {
        &self.scalars[i]
    }

    /// `w ← w − w·wd·lr` for each variable with a gradient that the decay applies to.
    fn decay_weights(&self, grads_and_vars: &[(Option<Tensor>, Variable)], lr: &Tensor) {
        let Some(rate) = *self.decay.lock().unwrap_or_else(|p| p.into_inner()) else { return };
        let exclude = self.decay_exclude.lock().unwrap_or_else(|p| p.into_inner());
        for (_, v) in grads_and_vars.iter().filter(|(g, _)| g.is_some()) {
            if !v.dtype().is_float() || exclude.iter().any(|n| v.name().contains(n.as_str())) {
                continue;
            }
            let (w, lr) = (v.read(), lr.cast(v.dtype()));
            v.assign(&w - &(&(&w * rate) * &lr));
        }
    }

    /// The learning rate (f64 scalar) for the update after `step` updates.
    fn learning_rate_at(&self, step: &Tensor) -> Tensor {
        match &*self.schedule.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(s) => s.at(step),
            None => self.lr.read(),
        }
    }

    #[track_caller]
    fn set_clipping(&self, optimizer: &str, clipping: Clipping) {
        let (Clipping::Norm(v) | Clipping::Value(v) | Clipping::GlobalNorm(v)) = clipping else { return };
        if !(v > 0.0 && v.is_finite()) {
            raise(optimizer, format!("{} must be a positive finite number, got {v}", clipping.name()));
        }
        let mut current = self.clipping.lock().unwrap_or_else(|p| p.into_inner());
        if *current != Clipping::None && current.name() != clipping.name() {
            raise(
                optimizer,
                format!(
                    "only one of clipnorm, clipvalue and global_clipnorm can be set; {} is set already",
                    current.name()
                ),
            );
        }
        *current = clipping;
    }

    /// The gradients of one update, clipped as asked.
    fn clipped(&self, grads_and_vars: &[(Option<Tensor>, Variable)]) -> Vec<Option<Tensor>> {
        let grads = grads_and_vars.iter().map(|(g, _)| g.clone());
        match *self.clipping.lock().unwrap_or_else(|p| p.into_inner()) {
            Clipping::None => grads.collect(),
            Clipping::Norm(c) => grads.map(|g| g.map(|g| g.clip_by_norm(c, Axes::All))).collect(),
            Clipping::Value(v) => grads.map(|g| g.map(|g| g.clip(-v, v))).collect(),
            Clipping::GlobalNorm(c) => {
                let present: Vec<&Tensor> = grads_and_vars.iter().filter_map(|(g, _)| g.as_ref()).collect();
                if present.is_empty() {
                    return grads.collect();
                }
                let mut scaled = Tensor::clip_by_global_norm(&present, c).0.into_iter();
                grads.map(|g| g.and_then(|_| scaled.next())).collect()
            }
        }
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
