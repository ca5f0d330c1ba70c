//! Keras' training API on `Sequential` and `Functional` models: `compile`, `fit`,
//! `evaluate`, `predict`.
//!
//! `compile` makes three traced functions (train, test and predict steps) that close
//! over the model, the optimizer and the loss; with `run_eagerly` the same functions
//! run eagerly. `fit` walks the data in (optionally shuffled) batches, calls the train
//! step, and shows a progress bar per epoch with the running loss and metrics.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use tensorjit_runtime::{DType, Device, Function, GradientTape, Tensor, Variable};

use crate::data::{shuffled_indices, Dataset};
use crate::error::{Error, Result};
use crate::functional::Functional;
use crate::layers::Sequential;
use crate::losses::Loss;
use crate::metrics::{Mean, Metric};
use crate::module::{shape_spec, Module, ShapeSpec};
use crate::optimizers::{Optimizer, OptimizerRef};

type Step = Function<(Vec<Tensor>, Tensor), Vec<Tensor>>;

/// The inputs of a model for `fit`, `evaluate` and `predict`: one tensor, or one per
/// `Input` of a [`Functional`] model (in the order of its inputs), each with the
/// examples on axis 0. Made from `&x`, `x`, `vec![a, b]`, `[&a, &b]` or `&[a, b]`.
#[derive(Clone, Debug)]
pub struct Inputs(pub Vec<Tensor>);

impl From<&Tensor> for Inputs {
    fn from(x: &Tensor) -> Inputs {
        Inputs(vec![x.clone()])
    }
}

impl From<Tensor> for Inputs {
    fn from(x: Tensor) -> Inputs {
        Inputs(vec![x])
    }
}

impl From<Vec<Tensor>> for Inputs {
    fn from(xs: Vec<Tensor>) -> Inputs {
        Inputs(xs)
    }
}

impl From<&[Tensor]> for Inputs {
    fn from(xs: &[Tensor]) -> Inputs {
        Inputs(xs.to_vec())
    }
}

impl<const N: usize> From<[&Tensor; N]> for Inputs {
    fn from(xs: [&Tensor; N]) -> Inputs {
        Inputs(xs.into_iter().cloned().collect())
    }
}

impl<const N: usize> From<[Tensor; N]> for Inputs {
    fn from(xs: [Tensor; N]) -> Inputs {
        Inputs(xs.into())
    }
}

/// A model as callbacks see it: a [`Sequential`] or a [`Functional`] being trained.
pub trait Model: Module {
    /// The compiled optimizer (`None` before `compile`).
    fn optimizer(&self) -> Option<OptimizerRef>;
}

/// What the shared training code needs of a model.
pub(crate) trait Trainable: Model + Clone + 'static {
    fn compiled_slot(&self) -> &Mutex<Option<Arc<Compiled>>>;
    /// Where the weights live, and where each batch is copied.
    fn home(&self) -> Device;
}

/// What `compile` set up.
pub(crate) struct Compiled {
    optimizer: OptimizerRef,
    loss: Loss,
    metrics: Vec<Metric>,
    train_step: Step,
    test_step: Step,
    predict_step: Function<Vec<Tensor>, Tensor>,
}

/// Options of [`Sequential::fit`] (Keras' keyword arguments).
#[derive(Clone)]
pub struct FitOptions {
    pub epochs: usize,
    pub batch_size: usize,
    /// Shuffle the examples before each epoch, from this seed (`None`: in order).
    pub shuffle: Option<u64>,
    /// Evaluated after each epoch (`val_loss`, `val_<metric>`): the inputs (`x.into()`)
    /// and the targets.
    pub validation_data: Option<(Inputs, Tensor)>,
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

fn make_steps<M: Trainable>(model: &M, optimizer: &OptimizerRef, loss: Loss, metrics: &[Metric]) -> (Step, Step) {
    let metrics: Arc<[Metric]> = metrics.into();
    let (m, opt, ms) = (model.clone(), optimizer.clone(), metrics.clone());
    let train = tensorjit_runtime::function("train_step", move |(xs, y): (Vec<Tensor>, Tensor)| {
        ensure_built(&m, &xs);
        let vars = m.trainable_variables();
        let tape = GradientTape::new();
        let (pred, mask) = forward(&m, &xs, true);
        let l = with_penalties(loss.compute_masked(&y, &pred, mask.as_ref()), &m);
        let grads = tape.gradient(&l, &vars);
        tape.stop_recording();
        let pairs: Vec<(Option<Tensor>, Variable)> = grads.into_iter().zip(vars).collect();
        opt.apply_gradients(&pairs);
        let stats = ms.iter().map(|k| k.batch_stats(loss, &y, &pred, mask.as_ref()));
        std::iter::once(l).chain(stats).collect::<Vec<_>>()
    });
    let m = model.clone();
    let test = tensorjit_runtime::function("test_step", move |(xs, y): (Vec<Tensor>, Tensor)| {
        ensure_built(&m, &xs);
        let (pred, mask) = forward(&m, &xs, false);
        let mask = mask.as_ref();
        std::iter::once(with_penalties(loss.compute_masked(&y, &pred, mask), &m))
            .chain(metrics.iter().map(|k| k.batch_stats(loss, &y, &pred, mask)))
            .collect()
    });
    (train, test)
}

/// The output and its mask for one batch of inputs.
fn forward(m: &dyn Module, xs: &[Tensor], training: bool) -> (Tensor, Option<Tensor>) {
    let masks = vec![None; xs.len()];
    m.forward_inputs(xs, &masks, training)
}

/// The loss plus the model's regularization penalties (Keras' `compute_loss`: the loss
/// `fit` minimises and reports, and `evaluate` reports).
fn with_penalties(loss: Tensor, model: &dyn Module) -> Tensor {
    model.losses().into_iter().fold(loss, |total, p| &total + &p.cast(total.dtype()))
}

fn specs(xs: &[Tensor]) -> Vec<ShapeSpec> {
    xs.iter().map(shape_spec).collect()
}

fn ensure_built(m: &dyn Module, xs: &[Tensor]) {
    if !m.is_built() {
        m.build_inputs("", &specs(xs));
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

/// The number of examples, after checking that every input and `y` have it on axis 0
/// and that `xs` has one tensor per input of the model.
fn check_examples(
    op: &'static str,
    m: &dyn Module,
    xs: &[Tensor],
    y: Option<&Tensor>,
    batch_size: usize,
) -> Result<usize> {
    check_count(op, m, xs.len())?;
    let n = xs[0].dims().first().copied().unwrap_or(0);
    let all = xs.iter().chain(y);
    if all.clone().any(|t| t.rank() == 0 || t.dims()[0] != n) {
        let shown: Vec<String> = xs.iter().map(Tensor::type_string).collect();
        let subject = match (xs.len(), y.is_some()) {
            (1, true) => "x and y",
            (_, true) => "every input and y",
            _ => "the inputs",
        };
        let y = y.map_or(String::new(), |y| format!(" and y {}", y.type_string()));
        return Err(Error::invalid(
            op,
            format!("{subject} need the same number of examples on axis 0, got x {}{y}", shown.join(", ")),
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

/// Refuses `got` input tensors for a model of another number of inputs.
fn check_count(op: &'static str, m: &dyn Module, got: usize) -> Result<()> {
    let wanted = m.input_count().unwrap_or(got);
    if got == 0 || got != wanted {
        return Err(Error::invalid(
            op,
            format!("{} '{}' takes {wanted} input(s), got {got} input tensor(s)", m.kind(), m.name()),
        ));
    }
    Ok(())
}

/// Rows `idx` of each input, on `device` (the model's): gathered where each lives, then
/// moved.
fn batch_rows(xs: &[Tensor], idx: &[i64], device: Device) -> Result<Vec<Tensor>> {
    xs.iter().map(|t| Ok(crate::data::take_rows(t, idx)?.to(device)?)).collect()
}

fn batch_row(t: &Tensor, idx: &[i64], device: Device) -> Result<Tensor> {
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

#[track_caller]
fn compile_shared<M: Trainable>(m: &M, optimizer: OptimizerRef, loss: Loss, metrics: &[Metric], run_eagerly: bool) {
    for k in metrics {
        k.check();
    }
    tensorjit_jit::install();
    let (train, test) = make_steps(m, &optimizer, loss, metrics);
    let model = m.clone();
    let predict = tensorjit_runtime::function("predict_step", move |xs: Vec<Tensor>| {
        ensure_built(&model, &xs);
        forward(&model, &xs, false).0
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
    *m.compiled_slot().lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(c));
}

fn compiled<M: Trainable>(m: &M, op: &'static str) -> Result<Arc<Compiled>> {
    m.compiled_slot().lock().unwrap_or_else(|p| p.into_inner()).clone().ok_or(Error::NotCompiled(op))
}

fn fit<M: Trainable>(m: &M, xs: &[Tensor], y: &Tensor, opts: &FitOptions) -> Result<History> {
    let c = compiled(m, "fit")?;
    let n = check_examples("fit", m, xs, Some(y), opts.batch_size)?;
    check_labels(m, &c, "fit", xs, y)?;
    run_epochs(m, opts, |epoch| {
        let order = match opts.shuffle {
            Some(seed) => shuffled_indices(n, seed, epoch),
            None => (0..n as i64).collect(),
        };
        let batches: Vec<Vec<i64>> = order.chunks(opts.batch_size).map(<[i64]>::to_vec).collect();
        let dev = m.home();
        let batch = move |idx: Vec<i64>| Ok((batch_rows(xs, &idx, dev)?, batch_row(y, &idx, dev)?));
        (batches.len(), batches.into_iter().map(batch))
    })
}

fn fit_dataset<M: Trainable>(m: &M, data: &Dataset, opts: &FitOptions) -> Result<History> {
    let c = compiled(m, "fit_dataset")?;
    let dev = m.home();
    let inputs = m.input_count().unwrap_or(1);
    run_epochs(m, opts, |epoch| {
        let c = c.clone();
        let pairs = data.iter_epoch(epoch).map(move |mut item| {
            if item.len() != inputs + 1 {
                return Err(Error::invalid(
                    "fit_dataset",
                    format!(
                        "elements must be {inputs} input(s) and the targets ({} tensors), got {} tensors",
                        inputs + 1,
                        item.len()
                    ),
                ));
            }
            let y = item.pop().ok_or(Error::invalid("fit_dataset", "empty element"))?;
            check_labels(m, &c, "fit_dataset", &item, &y)?;
            let xs = item.iter().map(|x| x.to(dev)).collect::<Result<Vec<_>, _>>()?;
            Ok((xs, y.to(dev)?))
        });
        (0, pairs)
    })
}

/// The epoch loop of `fit`: `batches(epoch)` gives the number of batches (0 when
/// unknown) and the batches.
fn run_epochs<M, I>(m: &M, opts: &FitOptions, mut batches: impl FnMut(u64) -> (usize, I)) -> Result<History>
where
    M: Trainable,
    I: Iterator<Item = Result<(Vec<Tensor>, Tensor)>>,
{
    let c = compiled(m, "fit")?;
    let mut history = History::default();
    opts.callbacks.iter().for_each(|cb| cb.on_train_begin(m));
    for epoch in 0..opts.epochs {
        for cb in &opts.callbacks {
            cb.on_epoch_begin(epoch, m)?;
        }
        let start = Instant::now();
        let (len, it) = batches(epoch as u64);
        let pb = progress(opts.verbose, len, format!("Epoch {}/{}", epoch + 1, opts.epochs));
        let mut run = Running::new(&c.metrics);
        for batch in it {
            let (bx, by) = batch?;
            let n = by.dims().first().copied().unwrap_or(1);
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
            logs.0.extend(evaluate_with(m, &c, &vx.0, vy, opts.batch_size, "val_")?.0);
        }
        let secs = start.elapsed().as_secs_f64();
        end_epoch(&pb, opts, epoch, secs, &logs);
        // Every callback sees the epoch, also after one asked to stop.
        let controls = opts.callbacks.iter().map(|cb| cb.on_epoch_end(epoch, &logs, m)).collect::<Result<Vec<_>>>()?;
        let stop = controls.contains(&crate::callbacks::Control::Stop);
        history.epochs.push(logs);
        history.seconds.push(secs);
        if stop {
            break;
        }
    }
    opts.callbacks.iter().for_each(|cb| cb.on_train_end(m));
    Ok(history)
}

fn end_epoch(pb: &ProgressBar, opts: &FitOptions, epoch: usize, secs: f64, logs: &Logs) {
    if !opts.verbose {
        return;
    }
    if pb.is_hidden() {
        println!("Epoch {}/{} - {:.3}s - {}", epoch + 1, opts.epochs, secs, logs.line());
    } else {
        pb.finish_with_message(logs.line());
    }
}

/// Refuses host labels the compiled loss cannot take for this model's outputs on `xs`
/// (a sparse label outside the classes), before any step runs.
fn check_labels(m: &dyn Module, c: &Compiled, op: &'static str, xs: &[Tensor], y: &Tensor) -> Result<()> {
    check_count(op, m, xs.len())?;
    match m.output_shape_inputs(&specs(xs)).last() {
        Some(&Some(classes)) => c.loss.check_labels(y, classes).map_err(|msg| Error::invalid(op, msg)),
        _ => Ok(()),
    }
}

fn evaluate_with<M: Trainable>(
    m: &M,
    c: &Compiled,
    xs: &[Tensor],
    y: &Tensor,
    batch_size: usize,
    prefix: &str,
) -> Result<Logs> {
    let n = check_examples("evaluate", m, xs, Some(y), batch_size)?;
    check_labels(m, c, "evaluate", xs, y)?;
    let mut run = Running::new(&c.metrics);
    let all: Vec<i64> = (0..n as i64).collect();
    let dev = m.home();
    for idx in all.chunks(batch_size) {
        let out = c.test_step.try_call((batch_rows(xs, idx, dev)?, batch_row(y, idx, dev)?))?;
        run.add(&out, idx.len())?;
    }
    Ok(run.logs(prefix))
}

fn predict<M: Trainable>(m: &M, xs: &[Tensor], batch_size: usize) -> Result<Tensor> {
    let c = compiled(m, "predict")?;
    let n = check_examples("predict", m, xs, None, batch_size)?;
    let all: Vec<i64> = (0..n as i64).collect();
    let dev = m.home();
    let outs = all
        .chunks(batch_size)
        .map(|idx| Ok(c.predict_step.try_call(batch_rows(xs, idx, dev)?)?.to(Device::Cpu)?))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = outs.iter().collect();
    Ok(Tensor::concat(&refs, 0))
}

/// Keras' training methods on a model type, over the shared code above.
macro_rules! training_api {
    ($t:ty) => {
        impl Model for $t {
            fn optimizer(&self) -> Option<OptimizerRef> {
                compiled(self, "optimizer").ok().map(|c| c.optimizer.clone())
            }
        }

        impl Trainable for $t {
            fn compiled_slot(&self) -> &Mutex<Option<Arc<Compiled>>> {
                &self.inner.compiled
            }

            fn home(&self) -> Device {
                self.device()
            }
        }

        impl $t {
            /// Sets the optimizer, loss and metrics and makes the traced train/test/predict
            /// steps (Keras' `compile`). `run_eagerly` runs them as plain Rust code
            /// instead, with the same results; so does the global
            /// `config::run_functions_eagerly(true)`.
            #[track_caller]
            pub fn compile(
                &self,
                optimizer: impl Optimizer + 'static,
                loss: Loss,
                metrics: &[Metric],
                run_eagerly: bool,
            ) {
                compile_shared(self, Arc::new(optimizer), loss, metrics, run_eagerly)
            }

            /// `compile` with an optimizer shared with other code.
            #[track_caller]
            pub fn compile_shared(&self, optimizer: OptimizerRef, loss: Loss, metrics: &[Metric], run_eagerly: bool) {
                compile_shared(self, optimizer, loss, metrics, run_eagerly)
            }

            /// The compiled optimizer.
            pub fn optimizer(&self) -> Option<OptimizerRef> {
                Model::optimizer(self)
            }

            /// How many times the train step was traced (1 per distinct batch shape).
            pub fn train_tracing_count(&self) -> usize {
                compiled(self, "fit").map_or(0, |c| c.train_step.tracing_count())
            }

            /// Trains for `opts.epochs` epochs on inputs `x` (`&x`, or one tensor per
            /// input of a functional model) and targets `y` (Keras' `fit`).
            pub fn fit(&self, x: impl Into<Inputs>, y: &Tensor, opts: &FitOptions) -> Result<History> {
                fit(self, &x.into().0, y, opts)
            }

            /// `fit` over a dataset whose elements are the inputs then the targets
            /// (`(x, y)` pairs for a model of one input).
            pub fn fit_dataset(&self, data: &Dataset, opts: &FitOptions) -> Result<History> {
                fit_dataset(self, data, opts)
            }

            /// The loss and metrics on `x`, `y` in inference mode (Keras' `evaluate`).
            pub fn evaluate(&self, x: impl Into<Inputs>, y: &Tensor, batch_size: usize) -> Result<Logs> {
                let c = compiled(self, "evaluate")?;
                evaluate_with(self, &c, &x.into().0, y, batch_size, "")
            }

            /// The model's outputs for `x`, in batches, in inference mode (Keras'
            /// `predict`), on the host (like Keras' NumPy result) wherever the model runs.
            pub fn predict(&self, x: impl Into<Inputs>, batch_size: usize) -> Result<Tensor> {
                predict(self, &x.into().0, batch_size)
            }

            /// Saves every variable of the (built) model to a safetensors file.
            pub fn save_weights(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
                crate::io::save_weights(path, &self.variables())
            }

            /// Loads every variable of the (built) model from a safetensors file.
            pub fn load_weights(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
                if !self.is_built() {
                    return Err(Error::invalid("load_weights", "the model is not built: call it on data first"));
                }
                crate::io::load_weights(path, &self.variables())
            }
        }
    };
}

training_api!(Sequential);
training_api!(Functional);
