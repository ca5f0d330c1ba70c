//! Keras' training API on `Sequential`: `compile`, `fit`, `evaluate`, `predict`.
//!
//! `compile` makes three traced functions (train, test and predict steps) that close
//! over the model, the optimizer and the loss; with `run_eagerly` the same functions
//! run eagerly. `fit` walks the data in (optionally shuffled) batches, calls the train
//! step, and shows a progress bar per epoch with the running loss and metrics.

use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use tensorjit_runtime::{DType, Device, Function, GradientTape, Tensor, Variable};

use crate::data::{shuffled_indices, Dataset};
use crate::error::{Error, Result};
use crate::layers::Sequential;
use crate::losses::Loss;
use crate::metrics::{Mean, Metric};
use crate::module::{shape_spec, Module};
use crate::optimizers::{Optimizer, OptimizerRef};

type Step = Function<(Tensor, Tensor), Vec<Tensor>>;

/// What `compile` set up.
pub(crate) struct Compiled {
    optimizer: OptimizerRef,
    loss: Loss,
    metrics: Vec<Metric>,
    train_step: Step,
    test_step: Step,
    predict_step: Function<Tensor, Tensor>,
}

/// Options of [`Sequential::fit`] (Keras' keyword arguments).
#[derive(Clone)]
pub struct FitOptions {
    pub epochs: usize,
    pub batch_size: usize,
    /// Shuffle the examples before each epoch, from this seed (`None`: in order).
    pub shuffle: Option<u64>,
    /// Evaluated after each epoch (`val_loss`, `val_<metric>`).
    pub validation_data: Option<(Tensor, Tensor)>,
    /// Progress bar and one line per epoch.
    pub verbose: bool,
    /// Called at the start, after each epoch (which may stop training) and at the end
    /// (Keras' `callbacks=[…]`), in this order.
    pub callbacks: Vec<std::sync::Arc<dyn crate::callbacks::Callback>>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: Some(0),
            validation_data: None,
            verbose: true,
            callbacks: Vec::new(),
        }
    }
}

/// Named values of one epoch or evaluation (`loss`, `accuracy`, `val_loss`, …), in
/// Keras' order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logs(pub Vec<(String, f64)>);

impl Logs {
    /// The value named `key`.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    fn line(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}: {v:.4}")).collect::<Vec<_>>().join(" - ")
    }
}

/// What `fit` returns: the logs of every epoch and the time each took.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub epochs: Vec<Logs>,
    pub seconds: Vec<f64>,
}

impl History {
    /// One value per epoch (`history.get("loss")`), Keras' `history.history[key]`.
    pub fn get(&self, key: &str) -> Vec<f64> {
        self.epochs.iter().filter_map(|l| l.get(key)).collect()
    }
}

fn make_steps(model: &Sequential, optimizer: &OptimizerRef, loss: Loss, metrics: &[Metric]) -> (Step, Step) {
    let metrics: Arc<[Metric]> = metrics.into();
    let (m, opt, ms) = (model.clone(), optimizer.clone(), metrics.clone());
    let train = tensorjit_runtime::function("train_step", move |(x, y): (Tensor, Tensor)| {
        ensure_built(&m, &x);
        let vars = m.trainable_variables();
        let tape = GradientTape::new();
        let (pred, mask) = m.forward_with_mask(&x, None, true);
        let l = with_penalties(loss.compute_masked(&y, &pred, mask.as_ref()), &m);
        let grads = tape.gradient(&l, &vars);
        tape.stop_recording();
        let pairs: Vec<(Option<Tensor>, Variable)> = grads.into_iter().zip(vars).collect();
        opt.apply_gradients(&pairs);
        let stats = ms.iter().map(|k| k.batch_stats(loss, &y, &pred, mask.as_ref()));
        std::iter::once(l).chain(stats).collect::<Vec<_>>()
    });
    let m = model.clone();
    let test = tensorjit_runtime::function("test_step", move |(x, y): (Tensor, Tensor)| {
        ensure_built(&m, &x);
        let (pred, mask) = m.forward_with_mask(&x, None, false);
        let mask = mask.as_ref();
        std::iter::once(with_penalties(loss.compute_masked(&y, &pred, mask), &m))
            .chain(metrics.iter().map(|k| k.batch_stats(loss, &y, &pred, mask)))
            .collect()
    });
    (train, test)
}

/// The loss plus the model's regularization penalties (Keras' `compute_loss`: the loss
/// `fit` minimises and reports, and `evaluate` reports).
fn with_penalties(loss: Tensor, model: &Sequential) -> Tensor {
    model.losses().into_iter().fold(loss, |total, p| &total + &p.cast(total.dtype()))
}

fn ensure_built(m: &Sequential, x: &Tensor) {
    if !m.is_built() {
        m.build("", &shape_spec(x));
    }
}

/// The epoch's totals of the step outputs: the loss's mean weighted by batch size, and
/// each metric's statistics summed (the metric computed from the sums, so masked steps
/// and uneven batches weigh what they hold, as in Keras).
struct Running {
    metrics: Vec<Metric>,
    loss: Mean,
    sums: Vec<Vec<f64>>,
}

impl Running {
    fn new(metrics: &[Metric]) -> Running {
        Running { metrics: metrics.to_vec(), loss: Mean::new(), sums: vec![Vec::new(); metrics.len()] }
    }

    fn add(&mut self, outputs: &[Tensor], n: usize) -> Result<()> {
        let read = |t: &Tensor| -> Result<Vec<f64>> { Ok(t.to(Device::Cpu)?.cast(DType::F64).to_vec::<f64>()?) };
        if let Some(l) = outputs.first() {
            let l = read(l)?.first().copied().unwrap_or(f64::NAN);
            self.loss.add(l * n as f64, n as f64);
        }
        for (sums, t) in self.sums.iter_mut().zip(outputs.iter().skip(1)) {
            let batch = read(t)?;
            sums.resize(batch.len(), 0.0);
            sums.iter_mut().zip(batch).for_each(|(s, b)| *s += b);
        }
        Ok(())
    }

    fn logs(&self, prefix: &str) -> Logs {
        let metrics =
            self.metrics.iter().zip(&self.sums).map(|(m, s)| (format!("{prefix}{}", m.name()), m.result_of(s)));
        Logs(std::iter::once((format!("{prefix}loss"), self.loss.result())).chain(metrics).collect())
    }
}

fn check_pair(op: &'static str, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<usize> {
    let n = x.dims().first().copied().unwrap_or(0);
    if x.rank() == 0 || y.rank() == 0 || y.dims()[0] != n {
        return Err(Error::invalid(
            op,
            format!(
                "x and y need the same number of examples on axis 0, got x {} and y {}",
                x.type_string(),
                y.type_string()
            ),
        ));
    }
    if n == 0 || batch_size == 0 {
        return Err(Error::invalid(
            op,
            format!("needs at least one example and batch_size >= 1 (got {n} examples, batch_size {batch_size})"),
        ));
    }
    Ok(n)
}

/// Rows `idx` of `t`, on `device` (the model's): gathered where `t` lives, then moved.
fn batch_rows(t: &Tensor, idx: &[i64], device: Device) -> Result<Tensor> {
    Ok(crate::data::take_rows(t, idx)?.to(device)?)
}

fn progress(verbose: bool, len: usize, prefix: String) -> ProgressBar {
    if !verbose {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64).with_prefix(prefix);
    if let Ok(style) = ProgressStyle::with_template("{prefix} {pos:>4}/{len} [{bar:30}] {elapsed} - {msg}") {
        pb.set_style(style.progress_chars("=>."));
    }
    pb
}

impl Sequential {
    /// Sets the optimizer, loss and metrics and makes the traced train/test/predict steps
    /// (Keras' `compile`). `run_eagerly` runs them as plain Rust code instead, with the
    /// same results; so does the global `config::run_functions_eagerly(true)`.
    #[track_caller]
    pub fn compile(&self, optimizer: impl Optimizer + 'static, loss: Loss, metrics: &[Metric], run_eagerly: bool) {
        self.compile_shared(Arc::new(optimizer), loss, metrics, run_eagerly)
    }

    /// `compile` with an optimizer shared with other code.
    #[track_caller]
    pub fn compile_shared(&self, optimizer: OptimizerRef, loss: Loss, metrics: &[Metric], run_eagerly: bool) {
        for m in metrics {
            m.check();
        }
        tensorjit_jit::install();
        let (train, test) = make_steps(self, &optimizer, loss, metrics);
        let m = self.clone();
        let predict = tensorjit_runtime::function("predict_step", move |x: Tensor| {
            ensure_built(&m, &x);
            m.call(&x, false)
        });
        // `run_eagerly = false` follows the global switch (`config::run_functions_eagerly`
        // still turns every traced function eager for debugging, as in Keras).
        let (train, test, predict) = if run_eagerly {
            (train.with_run_eagerly(true), test.with_run_eagerly(true), predict.with_run_eagerly(true))
        } else {
            (train, test, predict)
        };
        let c = Compiled {
            optimizer,
            loss,
            metrics: metrics.to_vec(),
            train_step: train,
            test_step: test,
            predict_step: predict,
        };
        *self.inner.compiled.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(c));
    }

    fn compiled(&self, op: &'static str) -> Result<Arc<Compiled>> {
        self.inner.compiled.lock().unwrap_or_else(|p| p.into_inner()).clone().ok_or(Error::NotCompiled(op))
    }

    /// The compiled optimizer.
    pub fn optimizer(&self) -> Option<OptimizerRef> {
        self.compiled("optimizer").ok().map(|c| c.optimizer.clone())
    }

    /// How many times the train step was traced (1 per distinct batch shape).
    pub fn train_tracing_count(&self) -> usize {
        self.compiled("fit").map_or(0, |c| c.train_step.tracing_count())
    }

    /// Trains for `opts.epochs` epochs on `x`, `y` (Keras' `fit`).
    pub fn fit(&self, x: &Tensor, y: &Tensor, opts: &FitOptions) -> Result<History> {
        let c = self.compiled("fit")?;
        let n = check_pair("fit", x, y, opts.batch_size)?;
        self.check_labels(&c, "fit", x, y)?;
        self.run_epochs(opts, |epoch| {
            let order = match opts.shuffle {
                Some(seed) => shuffled_indices(n, seed, epoch),
                None => (0..n as i64).collect(),
            };
            let batches: Vec<Vec<i64>> = order.chunks(opts.batch_size).map(<[i64]>::to_vec).collect();
            let dev = self.device();
            let batch = move |idx: Vec<i64>| Ok((batch_rows(x, &idx, dev)?, batch_rows(y, &idx, dev)?));
            (batches.len(), batches.into_iter().map(batch))
        })
    }

    /// `fit` over a dataset of `(x, y)` batches (each element two tensors).
    pub fn fit_dataset(&self, data: &Dataset, opts: &FitOptions) -> Result<History> {
        let c = self.compiled("fit_dataset")?;
        let dev = self.device();
        self.run_epochs(opts, |epoch| {
            let c = c.clone();
            let pairs = data.iter_epoch(epoch).map(move |item| match <[Tensor; 2]>::try_from(item) {
                Ok([x, y]) => {
                    self.check_labels(&c, "fit_dataset", &x, &y)?;
                    Ok((x.to(dev)?, y.to(dev)?))
                }
                Err(item) => Err(Error::invalid(
                    "fit_dataset",
                    format!("elements must be (x, y) pairs, got {} tensors", item.len()),
                )),
            });
            (0, pairs)
        })
    }

    /// The epoch loop of `fit`: `batches(epoch)` gives the number of batches (0 when
    /// unknown) and the batches.
    fn run_epochs<I>(&self, opts: &FitOptions, mut batches: impl FnMut(u64) -> (usize, I)) -> Result<History>
    where
        I: Iterator<Item = Result<(Tensor, Tensor)>>,
    {
        let c = self.compiled("fit")?;
        let mut history = History::default();
        opts.callbacks.iter().for_each(|cb| cb.on_train_begin(self));
        for epoch in 0..opts.epochs {
            for cb in &opts.callbacks {
                cb.on_epoch_begin(epoch, self)?;
            }
            let start = Instant::now();
            let (len, it) = batches(epoch as u64);
            let pb = progress(opts.verbose, len, format!("Epoch {}/{}", epoch + 1, opts.epochs));
            let mut run = Running::new(&c.metrics);
            for batch in it {
                let (bx, by) = batch?;
                let n = bx.dims().first().copied().unwrap_or(1);
                let out = c.train_step.try_call((bx, by))?;
                run.add(&out, n)?;
                if len == 0 {
                    pb.inc_length(1);
                }
                pb.inc(1);
                pb.set_message(run.logs("").line());
            }
            let mut logs = run.logs("");
            if let Some((vx, vy)) = &opts.validation_data {
                logs.0.extend(self.evaluate_with(&c, vx, vy, opts.batch_size, "val_")?.0);
            }
            let secs = start.elapsed().as_secs_f64();
            self.end_epoch(&pb, opts, epoch, secs, &logs);
            // Every callback sees the epoch, also after one asked to stop.
            let controls =
                opts.callbacks.iter().map(|cb| cb.on_epoch_end(epoch, &logs, self)).collect::<Result<Vec<_>>>()?;
            let stop = controls.contains(&crate::callbacks::Control::Stop);
            history.epochs.push(logs);
            history.seconds.push(secs);
            if stop {
                break;
            }
        }
        opts.callbacks.iter().for_each(|cb| cb.on_train_end(self));
        Ok(history)
    }

    fn end_epoch(&self, pb: &ProgressBar, opts: &FitOptions, epoch: usize, secs: f64, logs: &Logs) {
        if !opts.verbose {
            return;
        }
        if pb.is_hidden() {
            println!("Epoch {}/{} - {:.3}s - {}", epoch + 1, opts.epochs, secs, logs.line());
        } else {
            pb.finish_with_message(logs.line());
        }
    }

    /// Refuses host labels the compiled loss cannot take for this model's outputs on `x`
    /// (a sparse label outside the classes), before any step runs.
    fn check_labels(&self, c: &Compiled, op: &'static str, x: &Tensor, y: &Tensor) -> Result<()> {
        match self.output_shape(&shape_spec(x)).last() {
            Some(&Some(classes)) => c.loss.check_labels(y, classes).map_err(|m| Error::invalid(op, m)),
            _ => Ok(()),
        }
    }

    /// The loss and metrics on `x`, `y` in inference mode (Keras' `evaluate`).
    pub fn evaluate(&self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Logs> {
        let c = self.compiled("evaluate")?;
        self.evaluate_with(&c, x, y, batch_size, "")
    }

    fn evaluate_with(&self, c: &Compiled, x: &Tensor, y: &Tensor, batch_size: usize, prefix: &str) -> Result<Logs> {
        let n = check_pair("evaluate", x, y, batch_size)?;
        self.check_labels(c, "evaluate", x, y)?;
        let mut run = Running::new(&c.metrics);
        let all: Vec<i64> = (0..n as i64).collect();
        let dev = self.device();
        for idx in all.chunks(batch_size) {
            let out = c.test_step.try_call((batch_rows(x, idx, dev)?, batch_rows(y, idx, dev)?))?;
            run.add(&out, idx.len())?;
        }
        Ok(run.logs(prefix))
    }

    /// The model's outputs for `x`, in batches, in inference mode (Keras' `predict`), on
    /// the host (like Keras' NumPy result) wherever the model runs.
    pub fn predict(&self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        let c = self.compiled("predict")?;
        let n = x.dims().first().copied().unwrap_or(0);
        if n == 0 || batch_size == 0 {
            return Err(Error::invalid(
                "predict",
                format!("needs examples on axis 0 and batch_size >= 1, got x {}", x.type_string()),
            ));
        }
        let all: Vec<i64> = (0..n as i64).collect();
        let dev = self.device();
        let outs = all
            .chunks(batch_size)
            .map(|idx| Ok(c.predict_step.try_call(batch_rows(x, idx, dev)?)?.to(Device::Cpu)?))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = outs.iter().collect();
        Ok(Tensor::concat(&refs, 0))
    }
}
