//! `CsvLogger`: each epoch's logs as a row of a CSV file (Keras' `CSVLogger`).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Callback, Control};
use crate::error::{Error, Result};
use crate::model::{Logs, Model};

/// Writes `epoch` and every logged value of each epoch as a row of a CSV file (Keras'
/// `CSVLogger`): a header of `epoch` and the log names in alphabetical order, then one
/// row per epoch (0-based, as Keras numbers them), written and flushed as the epoch
/// ends, so a long run can be watched. A value an epoch does not log is `NA`. The file
/// is replaced at the start of each `fit`, or, with [`append`](Self::append), added to
/// (the header only when the file is new or empty).
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    open: Mutex<Option<Open>>,
}

/// The file of the current `fit` and its columns.
struct Open {
    out: BufWriter<File>,
    keys: Vec<String>,
}

impl CsvLogger {
    pub fn new(path: impl AsRef<Path>) -> CsvLogger {
        CsvLogger { path: path.as_ref().to_path_buf(), separator: ',', append: false, open: Mutex::new(None) }
    }

    /// The column separator (`,` unless set).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Adds to an existing file instead of replacing it.
    pub fn append(mut self, on: bool) -> Self {
        self.append = on;
        self
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io { path: self.path.display().to_string(), source }
    }

    /// Opens the file for the first epoch of a `fit` and writes its header.
    fn start(&self, logs: &Logs) -> Result<Open> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        let is_new = file.metadata().map_err(|e| self.io(e))?.len() == 0;
        let mut keys: Vec<String> = logs.0.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        let mut open = Open { out: BufWriter::new(file), keys };
        if is_new {
            let header: Vec<&str> = std::iter::once("epoch").chain(open.keys.iter().map(String::as_str)).collect();
            writeln!(open.out, "{}", header.join(&self.separator.to_string())).map_err(|e| self.io(e))?;
        }
        Ok(open)
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&self, _model: &dyn Model) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn on_epoch_end(&self, epoch: usize, logs: &Logs, _model: &dyn Model) -> Result<Control> {
        let mut guard = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let open = match guard.as_mut() {
            Some(open) => open,
            None => guard.insert(self.start(logs)?),
        };
        let values = open.keys.iter().map(|k| logs.get(k).map_or_else(|| "NA".to_string(), |v| v.to_string()));
        let row: Vec<String> = std::iter::once(epoch.to_string()).chain(values).collect();
        writeln!(open.out, "{}", row.join(&self.separator.to_string())).map_err(|e| self.io(e))?;
        open.out.flush().map_err(|e| self.io(e))?;
        Ok(Control::Continue)
    }

    fn on_train_end(&self, _model: &dyn Model) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
