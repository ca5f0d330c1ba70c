//! Callbacks of `fit` (Keras' `keras.callbacks`): code run at the start and end of
//! training and after each epoch, which may stop training; and `EarlyStopping`.

use std::sync::Mutex;

use tensorjit_runtime::Tensor;

use crate::error::raise;
use crate::layers::Sequential;
use crate::model::Logs;
use crate::module::Module;

/// Whether `fit` goes on after an epoch (Keras' `model.stop_training`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// Hooks `fit` calls, in the order the callbacks are listed in `FitOptions::callbacks`.
pub trait Callback: Send + Sync {
    /// Before the first epoch.
    fn on_train_begin(&self, _model: &Sequential) {}
    /// After epoch `epoch` (0-based) with its logs (validation included); `Stop` ends
    /// training after this epoch (the other callbacks still see it).
    fn on_epoch_end(&self, _epoch: usize, _logs: &Logs, _model: &Sequential) -> Control {
        Control::Continue
    }
    /// After the last epoch.
    fn on_train_end(&self, _model: &Sequential) {}
}

/// Which way the monitored value improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Min,
    Max,
    /// `Max` for accuracies (a name containing "acc"), `Min` otherwise (Keras' "auto").
    Auto,
}

/// Stops training when `monitor` has not improved by more than `min_delta` for
/// `patience` epochs (Keras' `EarlyStopping`); with `restore_best_weights` the model
/// ends with the weights of its best epoch.
pub struct EarlyStopping {
    monitor: String,
    min_delta: f64,
    patience: usize,
    mode: Mode,
    baseline: Option<f64>,
    restore_best_weights: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    wait: usize,
    best: Option<f64>,
    best_epoch: Option<usize>,
    best_weights: Option<Vec<Tensor>>,
    stopped_epoch: Option<usize>,
}

impl EarlyStopping {
    /// Watches `monitor` (e.g. `"val_loss"`) with patience 0, min_delta 0, mode Auto.
    pub fn new(monitor: &str) -> EarlyStopping {
        EarlyStopping {
            monitor: monitor.to_string(),
            min_delta: 0.0,
            patience: 0,
            mode: Mode::Auto,
            baseline: None,
            restore_best_weights: false,
            state: Mutex::new(State::default()),
        }
    }

    /// Epochs without improvement before stopping.
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// The least change that counts as an improvement (non-negative).
    #[track_caller]
    pub fn min_delta(mut self, delta: f64) -> Self {
        if delta.is_nan() || delta < 0.0 {
            raise("EarlyStopping", format!("min_delta must be >= 0, got {delta}"))
        }
        self.min_delta = delta;
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// A value the monitor must beat: until it does, epochs count against patience.
    pub fn baseline(mut self, value: f64) -> Self {
        self.baseline = Some(value);
        self
    }

    /// Ends training with the weights of the best epoch (all of the model's variables).
    pub fn restore_best_weights(mut self, on: bool) -> Self {
        self.restore_best_weights = on;
        self
    }

    /// The epoch after which training stopped (0-based), if it did.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.lock().stopped_epoch
    }

    /// The best epoch (0-based) and its value, once there is one.
    pub fn best(&self) -> Option<(usize, f64)> {
        let st = self.lock();
        st.best_epoch.zip(st.best)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn maximises(&self) -> bool {
        match self.mode {
            Mode::Max => true,
            Mode::Min => false,
            Mode::Auto => self.monitor.contains("acc"),
        }
    }

    /// Whether `current` beats `reference` by more than `min_delta`.
    fn improves(&self, current: f64, reference: f64) -> bool {
        if self.maximises() {
            current - self.min_delta > reference
        } else {
            current + self.min_delta < reference
        }
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&self, _model: &Sequential) {
        *self.lock() = State::default();
    }

    fn on_epoch_end(&self, epoch: usize, logs: &Logs, model: &Sequential) -> Control {
        let Some(current) = logs.get(&self.monitor) else {
            let names: Vec<&str> = logs.0.iter().map(|(k, _)| k.as_str()).collect();
            tracing::warn!(
                "EarlyStopping monitors `{}`, which fit does not log (it logs {}): not stopping",
                self.monitor,
                names.join(", ")
            );
            return Control::Continue;
        };
        let mut st = self.lock();
        if self.restore_best_weights && st.best_weights.is_none() {
            st.best_weights = Some(snapshot(model));
            st.best_epoch = Some(epoch);
        }
        st.wait += 1;
        if st.best.is_none_or(|best| self.improves(current, best)) {
            st.best = Some(current);
            st.best_epoch = Some(epoch);
            if self.restore_best_weights {
                st.best_weights = Some(snapshot(model));
            }
            if self.baseline.is_none_or(|b| self.improves(current, b)) {
                st.wait = 0;
            }
            return Control::Continue;
        }
        if st.wait >= self.patience && epoch > 0 {
            st.stopped_epoch = Some(epoch);
            return Control::Stop;
        }
        Control::Continue
    }

    fn on_train_end(&self, model: &Sequential) {
        let st = self.lock();
        if let (true, Some(weights)) = (self.restore_best_weights, &st.best_weights) {
            for (v, w) in model.variables().iter().zip(weights) {
                v.assign(w);
            }
        }
    }
}

/// The values of every variable of `model` now (tensors are immutable: assignments
/// replace a variable's tensor, so these stay as they are).
fn snapshot(model: &Sequential) -> Vec<Tensor> {
    model.variables().iter().map(|v| v.read()).collect()
}
