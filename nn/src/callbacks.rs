//! Callbacks of `fit` (Keras' `keras.callbacks`): code run at the start and end of
//! training and around each epoch, which may stop training; and Keras' `EarlyStopping`,
//! `ModelCheckpoint`, `ReduceLROnPlateau`, `LearningRateScheduler`, `CsvLogger` and
//! `TensorBoard`.

mod csv_logger;
mod events;
mod tensorboard;

use std::sync::Mutex;

use tensorjit_runtime::Tensor;

use crate::error::{raise, Error, Result};
use crate::model::{Logs, Model};

pub use csv_logger::CsvLogger;
pub use events::{read_scalars, Scalar};
pub use tensorboard::TensorBoard;

/// Whether `fit` goes on after an epoch (Keras' `model.stop_training`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// Hooks `fit` calls, in the order the callbacks are listed in `FitOptions::callbacks`.
pub trait Callback: Send + Sync {
    /// Before the first epoch.
    fn on_train_begin(&self, _model: &dyn Model) {}
    /// Before epoch `epoch` (0-based); an error ends `fit` with it.
    fn on_epoch_begin(&self, _epoch: usize, _model: &dyn Model) -> Result<()> {
        Ok(())
    }
    /// After epoch `epoch` (0-based) with its logs (validation included); `Stop` ends
    /// training after this epoch (the other callbacks still see it); an error ends `fit`
    /// with it.
    fn on_epoch_end(&self, _epoch: usize, _logs: &Logs, _model: &dyn Model) -> Result<Control> {
        Ok(Control::Continue)
    }
    /// After the last epoch.
    fn on_train_end(&self, _model: &dyn Model) {}
}

/// Which way the monitored value improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Min,
    Max,
    /// `Max` for accuracies, precision, recall and AUC (a name containing "acc",
    /// "precision", "recall" or "auc"), `Min` otherwise (Keras' "auto").
    Auto,
}

/// A logged value watched for improvement: its name, direction and least change.
#[derive(Clone, Debug)]
struct Monitor {
    key: String,
    mode: Mode,
    min_delta: f64,
}

impl Monitor {
    fn new(key: &str, min_delta: f64) -> Monitor {
        Monitor { key: key.to_string(), mode: Mode::Auto, min_delta }
    }

    fn maximises(&self) -> bool {
        match self.mode {
            Mode::Max => true,
            Mode::Min => false,
            Mode::Auto => ["acc", "precision", "recall", "auc"].iter().any(|k| self.key.contains(k)),
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

    /// The value in `logs`; `None`, with a warning naming `who`, when fit does not log it.
    fn value(&self, logs: &Logs, who: &str) -> Option<f64> {
        let v = logs.get(&self.key);
        if v.is_none() {
            let names: Vec<&str> = logs.0.iter().map(|(k, _)| k.as_str()).collect();
            tracing::warn!("{who} monitors `{}`, which fit does not log (it logs {})", self.key, names.join(", "));
        }
        v
    }
}

/// Raises unless `delta` is a non-negative number.
#[track_caller]
fn check_min_delta(who: &str, delta: f64) {
    if delta.is_nan() || delta < 0.0 {
        raise(who, format!("min_delta must be >= 0, got {delta}"))
    }
}

/// Stops training when `monitor` has not improved by more than `min_delta` for
/// `patience` epochs (Keras' `EarlyStopping`); with `restore_best_weights` the model
/// ends with the weights of its best epoch.
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
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
            monitor: Monitor::new(monitor, 0.0),
            patience: 0,
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
        check_min_delta("EarlyStopping", delta);
        self.monitor.min_delta = delta;
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
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

    fn improves(&self, current: f64, reference: f64) -> bool {
        self.monitor.improves(current, reference)
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&self, _model: &dyn Model) {
        *self.lock() = State::default();
    }

    fn on_epoch_end(&self, epoch: usize, logs: &Logs, model: &dyn Model) -> Result<Control> {
        let Some(current) = self.monitor.value(logs, "EarlyStopping") else { return Ok(Control::Continue) };
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
            return Ok(Control::Continue);
        }
        if st.wait >= self.patience && epoch > 0 {
            st.stopped_epoch = Some(epoch);
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&self, model: &dyn Model) {
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
fn snapshot(model: &dyn Model) -> Vec<Tensor> {
    model.variables().iter().map(|v| v.read()).collect()
}

/// Saves the model's weights (safetensors, by name) after each epoch, or only after
/// epochs that improve `monitor` (Keras' `ModelCheckpoint` with
/// `save_weights_only=True`). `{epoch}` in the path becomes the 1-based epoch number.
pub struct ModelCheckpoint {
    path: String,
    monitor: Monitor,
    save_best_only: bool,
    best: Mutex<Option<f64>>,
}

impl ModelCheckpoint {
    /// Saves every epoch to `path`; `monitor` is `val_loss` for
    /// [`save_best_only`](Self::save_best_only).
    pub fn new(path: &str) -> ModelCheckpoint {
        ModelCheckpoint {
            path: path.to_string(),
            monitor: Monitor::new("val_loss", 0.0),
            save_best_only: false,
            best: Mutex::new(None),
        }
    }

    /// The logged value that decides which epoch is best.
    pub fn monitor(mut self, key: &str) -> Self {
        self.monitor.key = key.to_string();
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// Saves only after an epoch that improves on every earlier one.
    pub fn save_best_only(mut self, on: bool) -> Self {
        self.save_best_only = on;
        self
    }
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&self, _model: &dyn Model) {
        *self.best.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn on_epoch_end(&self, epoch: usize, logs: &Logs, model: &dyn Model) -> Result<Control> {
        if self.save_best_only {
            let Some(current) = self.monitor.value(logs, "ModelCheckpoint") else { return Ok(Control::Continue) };
            let mut best = self.best.lock().unwrap_or_else(|p| p.into_inner());
            if best.is_some_and(|b| !self.monitor.improves(current, b)) {
                return Ok(Control::Continue);
            }
            *best = Some(current);
        }
        crate::io::save_weights(self.path.replace("{epoch}", &(epoch + 1).to_string()), &model.variables())?;
        Ok(Control::Continue)
    }
}

/// Multiplies the optimizer's learning rate by `factor` (down to `min_lr`) when
/// `monitor` has not improved for `patience` epochs, then waits `cooldown` epochs
/// (Keras' `ReduceLROnPlateau`). The rate is a variable: traced steps see the change
/// without retracing. Setting it replaces a learning-rate schedule.
pub struct ReduceLROnPlateau {
    monitor: Monitor,
    factor: f64,
    patience: usize,
    cooldown: usize,
    min_lr: f64,
    state: Mutex<Plateau>,
}

#[derive(Default)]
struct Plateau {
    wait: usize,
    cooldown_left: usize,
    best: Option<f64>,
}

impl ReduceLROnPlateau {
    /// Watches `monitor` with Keras' defaults: factor 0.1, patience 10, min_delta 1e-4,
    /// no cooldown, min_lr 0.
    pub fn new(monitor: &str) -> ReduceLROnPlateau {
        ReduceLROnPlateau {
            monitor: Monitor::new(monitor, 1e-4),
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_lr: 0.0,
            state: Mutex::new(Plateau::default()),
        }
    }

    /// The factor in (0, 1) the rate is multiplied by.
    #[track_caller]
    pub fn factor(mut self, factor: f64) -> Self {
        if !(factor > 0.0 && factor < 1.0) {
            raise("ReduceLROnPlateau", format!("factor must be in (0, 1), got {factor}"))
        }
        self.factor = factor;
        self
    }

    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// Epochs after a reduction during which no other is made.
    pub fn cooldown(mut self, epochs: usize) -> Self {
        self.cooldown = epochs;
        self
    }

    pub fn min_lr(mut self, lr: f64) -> Self {
        self.min_lr = lr;
        self
    }

    #[track_caller]
    pub fn min_delta(mut self, delta: f64) -> Self {
        check_min_delta("ReduceLROnPlateau", delta);
        self.monitor.min_delta = delta;
        self
    }

    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&self, _model: &dyn Model) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Plateau::default();
    }

    fn on_epoch_end(&self, _epoch: usize, logs: &Logs, model: &dyn Model) -> Result<Control> {
        let Some(current) = self.monitor.value(logs, "ReduceLROnPlateau") else { return Ok(Control::Continue) };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.cooldown_left > 0 {
            st.cooldown_left -= 1;
            st.wait = 0;
        }
        if st.best.is_none_or(|b| self.monitor.improves(current, b)) {
            st.best = Some(current);
            st.wait = 0;
        } else if st.cooldown_left == 0 {
            st.wait += 1;
            if st.wait >= self.patience {
                let opt = model.optimizer().ok_or(Error::NotCompiled("ReduceLROnPlateau"))?;
                let lr = opt.learning_rate();
                if lr > self.min_lr {
                    opt.set_learning_rate((lr * self.factor).max(self.min_lr));
                    st.cooldown_left = self.cooldown;
                    st.wait = 0;
                }
            }
        }
        Ok(Control::Continue)
    }
}

/// Sets the optimizer's learning rate before each epoch to `schedule(epoch, rate)`
/// (Keras' `LearningRateScheduler`; `epoch` 0-based, `rate` the current one). The rate
/// is a variable: traced steps see it without retracing. Setting it replaces a
/// learning-rate schedule.
pub struct LearningRateScheduler {
    schedule: Box<dyn Fn(usize, f64) -> f64 + Send + Sync>,
}

impl LearningRateScheduler {
    pub fn new(schedule: impl Fn(usize, f64) -> f64 + Send + Sync + 'static) -> LearningRateScheduler {
        LearningRateScheduler { schedule: Box::new(schedule) }
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(&self, epoch: usize, model: &dyn Model) -> Result<()> {
        let opt = model.optimizer().ok_or(Error::NotCompiled("LearningRateScheduler"))?;
        let lr = (self.schedule)(epoch, opt.learning_rate());
        if !lr.is_finite() {
            return Err(Error::invalid(
                "LearningRateScheduler",
                format!("the schedule gave a learning rate of {lr} for epoch {epoch}"),
            ));
        }
        opt.set_learning_rate(lr);
        Ok(())
    }
}
