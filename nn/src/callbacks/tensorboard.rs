//! `TensorBoard`: each epoch's logs as scalar summaries in TensorFlow event files, which
//! TensorBoard reads (Keras' `TensorBoard(log_dir)`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::events::EventWriter;
use super::{Callback, Control};
use crate::error::Result;
use crate::model::{Logs, Model};

/// Writes every epoch's logs where TensorBoard finds them, as Keras does:
/// `<log_dir>/train` holds `epoch_loss`, `epoch_<metric>` and `epoch_learning_rate`, and
/// `<log_dir>/validation` the `val_` logs under the same tags, each at step = the epoch
/// (0-based). Each `fit` writes new event files beside earlier ones (TensorBoard shows
/// them as one run per directory); each epoch is flushed as it ends.
/// `tensorboard --logdir <log_dir>` shows them; [`read_scalars`](super::read_scalars)
/// reads them back.
pub struct TensorBoard {
    log_dir: PathBuf,
    writers: Mutex<Writers>,
}

/// The event files of the current `fit`, opened as their first values arrive.
#[derive(Default)]
struct Writers {
    train: Option<EventWriter>,
    validation: Option<EventWriter>,
}

impl TensorBoard {
    pub fn new(log_dir: impl AsRef<Path>) -> TensorBoard {
        TensorBoard { log_dir: log_dir.as_ref().to_path_buf(), writers: Mutex::new(Writers::default()) }
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }
}

/// Writes `scalars` at `step` to the writer in `slot`, opening it in `dir` first.
fn write(slot: &mut Option<EventWriter>, dir: &Path, step: usize, scalars: &[(String, f32)]) -> Result<()> {
    if scalars.is_empty() {
        return Ok(());
    }
    let w = match slot {
        Some(w) => w,
        None => slot.insert(EventWriter::create(dir)?),
    };
    w.scalars(step as i64, scalars)
}

impl Callback for TensorBoard {
    fn on_train_begin(&self, _model: &dyn Model) {
        *self.writers.lock().unwrap_or_else(|p| p.into_inner()) = Writers::default();
    }

    fn on_epoch_end(&self, epoch: usize, logs: &Logs, model: &dyn Model) -> Result<Control> {
        let tag = |k: &str| format!("epoch_{k}");
        let mut train: Vec<(String, f32)> = Vec::new();
        let mut validation: Vec<(String, f32)> = Vec::new();
        for (k, v) in &logs.0 {
            match k.strip_prefix("val_") {
                Some(name) => validation.push((tag(name), *v as f32)),
                None => train.push((tag(k), *v as f32)),
            }
        }
        if let Some(opt) = model.optimizer() {
            train.push((tag("learning_rate"), opt.learning_rate() as f32));
        }
        let mut w = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        write(&mut w.train, &self.log_dir.join("train"), epoch, &train)?;
        write(&mut w.validation, &self.log_dir.join("validation"), epoch, &validation)?;
        Ok(Control::Continue)
    }

    fn on_train_end(&self, _model: &dyn Model) {
        *self.writers.lock().unwrap_or_else(|p| p.into_inner()) = Writers::default();
    }
}
