//! Keras' training API on `Sequential` and `Functional` models: `compile`, `fit`,
//! `evaluate`, `predict`.
//!
//! `compile` makes three traced functions (train, test and predict steps) that close
//! over the model, the optimizer and the loss; with `run_eagerly` the same functions
//! run eagerly. `fit` walks the data in (optionally shuffled) batches, calls the train
//! step, and shows a progress bar per epoch with the running loss and metrics.

mod epochs;
mod steps;

use std::sync::{Arc, Mutex};

use tensorjit_runtime::{Device, Function, Tensor};

use crate::data::Dataset;
use crate::error::{raise, Error, Result};
use crate::functional::Functional;
use crate::layers::Sequential;
use crate::losses::Loss;
use crate::metrics::Metric;
use crate::module::{Module, ShapeSpec};
use crate::optimizers::{Optimizer, OptimizerRef};
use steps::{ensure_built, forward, make_steps, Objective};

/// A train or test step: inputs, targets, and the examples' weights (if any).
type Step = Function<(Vec<Tensor>, Vec<Tensor>, Vec<Tensor>), Vec<Tensor>>;

/// The inputs or the targets of a model for `fit`, `evaluate` and `predict`: one tensor,
/// or one per `Input` (per output) of a [`Functional`] model, in its order, each with
/// the examples on axis 0. Made from `&x`, `x`, `vec![a, b]`, `[&a, &b]` or `&[a, b]`.
#[derive(Clone, Debug)]
pub struct Tensors(pub Vec<Tensor>);

impl From<&Tensor> for Tensors {
    fn from(x: &Tensor) -> Tensors {
        Tensors(vec![x.clone()])
    }
}

impl From<Tensor> for Tensors {
    fn from(x: Tensor) -> Tensors {
        Tensors(vec![x])
    }
}

impl From<Vec<Tensor>> for Tensors {
    fn from(xs: Vec<Tensor>) -> Tensors {
        Tensors(xs)
    }
}

impl From<&[Tensor]> for Tensors {
    fn from(xs: &[Tensor]) -> Tensors {
        Tensors(xs.to_vec())
    }
}

impl<const N: usize> From<[&Tensor; N]> for Tensors {
    fn from(xs: [&Tensor; N]) -> Tensors {
        Tensors(xs.into_iter().cloned().collect())
    }
}

impl<const N: usize> From<[Tensor; N]> for Tensors {
    fn from(xs: [Tensor; N]) -> Tensors {
        Tensors(xs.into())
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
    /// Every output and its mask for one batch of inputs.
    fn outputs(&self, xs: &[Tensor], training: bool) -> Vec<(Tensor, Option<Tensor>)>;
    /// The outputs' shapes for inputs of shapes `inputs`.
    fn output_specs(&self, inputs: &[ShapeSpec]) -> Vec<ShapeSpec>;
    /// The outputs' names in the logs of a model of several.
    fn output_names(&self) -> Vec<String>;
}

impl Trainable for Sequential {
    fn compiled_slot(&self) -> &Mutex<Option<Arc<Compiled>>> {
        &self.inner.compiled
    }

    fn home(&self) -> Device {
        self.device()
    }

    fn outputs(&self, xs: &[Tensor], training: bool) -> Vec<(Tensor, Option<Tensor>)> {
        vec![forward(self, xs, training)]
    }

    fn output_specs(&self, inputs: &[ShapeSpec]) -> Vec<ShapeSpec> {
        vec![self.output_shape_inputs(inputs)]
    }

    fn output_names(&self) -> Vec<String> {
        vec![self.name().to_string()]
    }
}

impl Trainable for Functional {
    fn compiled_slot(&self) -> &Mutex<Option<Arc<Compiled>>> {
        &self.inner.compiled
    }

    fn home(&self) -> Device {
        self.device()
    }

    fn outputs(&self, xs: &[Tensor], training: bool) -> Vec<(Tensor, Option<Tensor>)> {
        self.call_outputs(xs, &vec![None; xs.len()], training)
    }

    fn output_specs(&self, _inputs: &[ShapeSpec]) -> Vec<ShapeSpec> {
        self.output_shapes()
    }

    fn output_names(&self) -> Vec<String> {
        Functional::output_names(self)
    }
}

/// What `compile` set up.
pub(crate) struct Compiled {
    optimizer: OptimizerRef,
    /// One per output.
    losses: Vec<Loss>,
    /// Each output's metrics.
    metrics: Vec<Vec<Metric>>,
    /// The outputs' names (the logs name each output's loss and metrics when there are
    /// several).
    names: Vec<String>,
    train_step: Step,
    test_step: Step,
    predict_step: Function<Vec<Tensor>, Vec<Tensor>>,
}

/// Options of [`Sequential::fit`] (Keras' keyword arguments).
#[derive(Clone)]
pub struct FitOptions {
    pub epochs: usize,
    pub batch_size: usize,
    /// Shuffle the examples before each epoch, from this seed (`None`: in order).
    pub shuffle: Option<u64>,
    /// Evaluated after each epoch (`val_loss`, `val_<metric>`): the inputs and the
    /// targets (`(x.into(), y.into())`).
    pub validation_data: Option<(Tensors, Tensors)>,
    /// The validation examples' weights (Keras' third element of `validation_data`):
    /// `val_loss` is weighted as `evaluate_weighted` weighs it.
    pub validation_sample_weight: Option<Tensors>,
    /// A weight per example (Keras' `sample_weight`, `[n]`): each example's loss is
    /// multiplied by it (the metrics are not weighted, as Keras' `metrics`). One tensor
    /// (`Some((&w).into())`) weighs every output's loss; a model of several outputs may
    /// take one per output (`Some([&wa, &wb].into())`).
    pub sample_weight: Option<Tensors>,
    /// A weight per class (Keras' `class_weight`, indexed by class): each example's loss
    /// is multiplied by its label's weight (times its sample weight), for models of one
    /// output whose targets are class indices, one-hot rows or binary labels.
    pub class_weight: Option<Vec<f64>>,
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
            validation_sample_weight: None,
            sample_weight: None,
            class_weight: None,
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

    /// The median time of an epoch in seconds (NaN with no epochs): the steady state,
    /// which the first epoch's tracing and compiling do not move, to compare eager and
    /// traced training.
    pub fn median_seconds(&self) -> f64 {
        let mut secs = self.seconds.clone();
        secs.sort_by(f64::total_cmp);
        secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

#[track_caller]
fn compile_shared<M: Trainable>(
    m: &M,
    optimizer: OptimizerRef,
    losses: &[Loss],
    loss_weights: &[f64],
    metrics: &[&[Metric]],
    run_eagerly: bool,
) {
    for k in metrics.iter().flat_map(|ms| ms.iter()) {
        k.check();
    }
    let names = m.output_names();
    let what = format!("compile of {} '{}'", m.kind(), m.name());
    if losses.len() != names.len() && losses.len() != 1 {
        raise(&what, format!("{} loss(es) for {} output(s): give one, or one per output", losses.len(), names.len()))
    }
    if !loss_weights.is_empty() && loss_weights.len() != names.len() {
        raise(&what, format!("{} loss weight(s) for {} output(s)", loss_weights.len(), names.len()))
    }
    if metrics.len() > 1 && metrics.len() != names.len() {
        raise(&what, format!("metrics for {} output(s), the model has {}", metrics.len(), names.len()))
    }
    if let Some(w) = loss_weights.iter().find(|w| !w.is_finite()) {
        raise(&what, format!("loss weights must be finite, got {w}"))
    }
    // One loss for several outputs applies to each (Keras).
    let n = names.len();
    let losses: Vec<Loss> = match losses {
        [one] => vec![*one; n],
        each => each.to_vec(),
    };
    let weights = if loss_weights.is_empty() { vec![1.0; n] } else { loss_weights.to_vec() };
    tensorjit_jit::install();
    // One list of metrics (or none) for several outputs applies to each.
    let metrics: Vec<Vec<Metric>> = match metrics {
        [] => vec![Vec::new(); n],
        [one] => vec![one.to_vec(); n],
        each => each.iter().map(|ms| ms.to_vec()).collect(),
    };
    let objective =
        Objective { losses: losses.clone(), weights, metrics: metrics.clone().into(), per_output: names.len() > 1 };
    let (train, test) = make_steps(m, &optimizer, objective);
    let model = m.clone();
    let predict = tensorjit_runtime::function("predict_step", move |xs: Vec<Tensor>| {
        ensure_built(&model, &xs);
        model.outputs(&xs, false).into_iter().map(|(y, _)| y).collect::<Vec<_>>()
    });
    // `run_eagerly = false` follows the global switch (`config::run_functions_eagerly`
    // still turns every traced function eager for debugging, as in Keras).
    let (train, test, predict) = if run_eagerly {
        (train.with_run_eagerly(true), test.with_run_eagerly(true), predict.with_run_eagerly(true))
    } else {
        (train, test, predict)
    };
    let c = Compiled { optimizer, losses, metrics, names, train_step: train, test_step: test, predict_step: predict };
    *m.compiled_slot().lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(c));
}

fn compiled<M: Trainable>(m: &M, op: &'static str) -> Result<Arc<Compiled>> {
    m.compiled_slot().lock().unwrap_or_else(|p| p.into_inner()).clone().ok_or(Error::NotCompiled(op))
}

/// Keras' training methods on a model type, over the shared code above.
macro_rules! training_api {
    ($t:ty) => {
        impl Model for $t {
            fn optimizer(&self) -> Option<OptimizerRef> {
                compiled(self, "optimizer").ok().map(|c| c.optimizer.clone())
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
                compile_shared(self, Arc::new(optimizer), &[loss], &[], &[metrics], run_eagerly)
            }

            /// `compile` with an optimizer shared with other code.
            #[track_caller]
            pub fn compile_shared(&self, optimizer: OptimizerRef, loss: Loss, metrics: &[Metric], run_eagerly: bool) {
                compile_shared(self, optimizer, &[loss], &[], &[metrics], run_eagerly)
            }

            /// `compile` for a model of several outputs (Keras' `loss=[…]`,
            /// `loss_weights=[…]`, `metrics=[[…], […]]`): one loss per output (or one for
            /// all), the weights of their sum (empty: all 1), and each output's metrics
            /// (one list for all, or none: `&[]`). The logs
            /// hold the weighted total (`loss`), each output's loss (`<name>_loss`) and
            /// metrics (`<name>_<metric>`), named after the layers that make the outputs.
            #[track_caller]
            pub fn compile_outputs(
                &self,
                optimizer: impl Optimizer + 'static,
                losses: &[Loss],
                loss_weights: &[f64],
                metrics: &[&[Metric]],
                run_eagerly: bool,
            ) {
                compile_shared(self, Arc::new(optimizer), losses, loss_weights, metrics, run_eagerly)
            }

            /// The layer named `name` among the model's own layers (Keras' `get_layer`;
            /// the layers of a nested model are that model's).
            pub fn get_layer(&self, name: &str) -> Option<crate::module::ModuleRef> {
                self.layers().into_iter().find(|l| l.name() == name)
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
            /// input of a functional model) and targets `y` (`&y`, or one per output)
            /// (Keras' `fit`).
            pub fn fit(&self, x: impl Into<Tensors>, y: impl Into<Tensors>, opts: &FitOptions) -> Result<History> {
                epochs::fit(self, &x.into().0, &y.into().0, opts)
            }

            /// `fit` over a dataset whose elements are the inputs then the targets
            /// (`(x, y)` pairs for a model of one input and one output).
            pub fn fit_dataset(&self, data: &Dataset, opts: &FitOptions) -> Result<History> {
                epochs::fit_dataset(self, data, opts)
            }

            /// The loss and metrics on `x`, `y` in inference mode (Keras' `evaluate`).
            pub fn evaluate(&self, x: impl Into<Tensors>, y: impl Into<Tensors>, batch_size: usize) -> Result<Logs> {
                let c = compiled(self, "evaluate")?;
                let data = epochs::Data { xs: &x.into().0, ys: &y.into().0, weights: &[] };
                epochs::evaluate_with(self, &c, data, batch_size, "")
            }

            /// [`evaluate`](Self::evaluate) with a weight per example (Keras'
            /// `evaluate(x, y, sample_weight=w)`): the losses are weighted as `fit`'s
            /// (one `[n]` tensor for every output, or one per output); the metrics are
            /// not.
            pub fn evaluate_weighted(
                &self,
                x: impl Into<Tensors>,
                y: impl Into<Tensors>,
                sample_weight: impl Into<Tensors>,
                batch_size: usize,
            ) -> Result<Logs> {
                let c = compiled(self, "evaluate")?;
                let (xs, ys) = (x.into().0, y.into().0);
                let weights = epochs::evaluation_weights("evaluate", &xs, &ys, &sample_weight.into().0)?;
                epochs::evaluate_with(self, &c, epochs::Data { xs: &xs, ys: &ys, weights: &weights }, batch_size, "")
            }

            /// The model's output for `x`, in batches, in inference mode (Keras'
            /// `predict`), on the host (like Keras' NumPy result) wherever the model runs.
            /// A model of several outputs gives them with `predict_outputs`.
            pub fn predict(&self, x: impl Into<Tensors>, batch_size: usize) -> Result<Tensor> {
                let mut outs = epochs::predict_outputs(self, &x.into().0, batch_size)?;
                match outs.len() {
                    1 => Ok(outs.swap_remove(0)),
                    n => Err(Error::invalid("predict", format!("the model has {n} outputs: call predict_outputs"))),
                }
            }

            /// Every output of the model for `x`, in batches, in inference mode, on the
            /// host (Keras' `predict` of a model of several outputs).
            pub fn predict_outputs(&self, x: impl Into<Tensors>, batch_size: usize) -> Result<Vec<Tensor>> {
                epochs::predict_outputs(self, &x.into().0, batch_size)
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

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn the_median_epoch_ignores_a_slow_first_one() {
        let h = History { epochs: Vec::new(), seconds: vec![9.0, 0.3, 0.1, 0.2] };
        assert_eq!(h.median_seconds(), 0.3);
        let h = History { epochs: Vec::new(), seconds: vec![9.0, 0.2, 0.1] };
        assert_eq!(h.median_seconds(), 0.2);
        assert!(History::default().median_seconds().is_nan());
    }
}
