//! The traced steps `compile` makes, and the epoch's running totals of their outputs.

use std::sync::Arc;

use tensorjit_runtime::{DType, Device, GradientTape, Tensor, Variable};

use super::{Compiled, Logs, Step, Trainable};
use crate::error::Result;
use crate::losses::Loss;
use crate::metrics::{Mean, Metric};
use crate::module::{shape_spec, Module, ShapeSpec};
use crate::optimizers::OptimizerRef;

/// What a step computes: each output's loss (weighted into the total), and each
/// output's metric statistics.
#[derive(Clone)]
pub(super) struct Objective {
    pub(super) losses: Vec<Loss>,
    pub(super) weights: Vec<f64>,
    /// Each output's metrics.
    pub(super) metrics: Arc<[Vec<Metric>]>,
    /// Whether the per-output losses are step outputs too (models of several outputs).
    pub(super) per_output: bool,
}

impl Objective {
    /// `[total, (each output's loss,) each output's metric statistics…]` for
    /// predictions `outs` of targets `ys` and the examples' `weights` (none, one for
    /// every output, or one per output); the total includes the model's penalties.
    fn compute(
        &self,
        m: &dyn Module,
        ys: &[Tensor],
        weights: &[Tensor],
        outs: &[(Tensor, Option<Tensor>)],
    ) -> Vec<Tensor> {
        let weight = |i: usize| if weights.len() == 1 { weights.first() } else { weights.get(i) };
        let per: Vec<Tensor> = self
            .losses
            .iter()
            .zip(outs.iter().zip(ys))
            .enumerate()
            .map(|(i, (loss, ((pred, mask), y)))| match weight(i) {
                Some(w) => loss.compute_weighted(y, pred, w, mask.as_ref()),
                None => loss.compute_masked(y, pred, mask.as_ref()),
            })
            .collect();
        // A weight of 1 adds no product, so a model of one output computes what it
        // always did.
        let weighted = per.iter().zip(&self.weights).map(|(l, &w)| if w == 1.0 { l.clone() } else { l * w });
        let total = weighted.reduce(|a, b| &a + &b).unwrap_or_else(|| Tensor::scalar(0.0f32));
        let total = with_penalties(total, m);
        let stats = outs.iter().zip(ys).zip(self.losses.iter().zip(self.metrics.iter())).flat_map(
            |(((pred, mask), y), (loss, metrics))| {
                metrics.iter().map(move |k| k.batch_stats(*loss, y, pred, mask.as_ref()))
            },
        );
        let per = if self.per_output { per } else { Vec::new() };
        std::iter::once(total).chain(per).chain(stats).collect()
    }
}

pub(super) fn make_steps<M: Trainable>(model: &M, optimizer: &OptimizerRef, objective: Objective) -> (Step, Step) {
    let (m, opt, obj) = (model.clone(), optimizer.clone(), objective.clone());
    let train =
        tensorjit_runtime::function("train_step", move |(xs, ys, w): (Vec<Tensor>, Vec<Tensor>, Vec<Tensor>)| {
            ensure_built(&m, &xs);
            let vars = m.trainable_variables();
            let tape = GradientTape::new();
            let outs = m.outputs(&xs, true);
            let out = obj.compute(&m, &ys, &w, &outs);
            let grads = tape.gradient(&out[0], &vars);
            tape.stop_recording();
            let pairs: Vec<(Option<Tensor>, Variable)> = grads.into_iter().zip(vars).collect();
            opt.apply_gradients(&pairs);
            out
        });
    let m = model.clone();
    let test = tensorjit_runtime::function("test_step", move |(xs, ys, w): (Vec<Tensor>, Vec<Tensor>, Vec<Tensor>)| {
        ensure_built(&m, &xs);
        let outs = m.outputs(&xs, false);
        objective.compute(&m, &ys, &w, &outs)
    });
    (train, test)
}

/// The output and its mask for one batch of inputs, from a model of one output.
pub(super) fn forward(m: &dyn Module, xs: &[Tensor], training: bool) -> (Tensor, Option<Tensor>) {
    let masks = vec![None; xs.len()];
    m.forward_inputs(xs, &masks, training)
}

/// The loss plus the model's regularization penalties (Keras' `compute_loss`: the loss
/// `fit` minimises and reports, and `evaluate` reports).
fn with_penalties(loss: Tensor, model: &dyn Module) -> Tensor {
    model.losses().into_iter().fold(loss, |total, p| &total + &p.cast(total.dtype()))
}

pub(super) fn specs(xs: &[Tensor]) -> Vec<ShapeSpec> {
    xs.iter().map(shape_spec).collect()
}

pub(super) fn ensure_built(m: &dyn Module, xs: &[Tensor]) {
    if !m.is_built() {
        m.build_inputs("", &specs(xs));
    }
}

/// The epoch's totals of the step outputs: the losses' means weighted by batch size,
/// and each metric's statistics summed (the metric computed from the sums, so masked
/// steps and uneven batches weigh what they hold, as in Keras).
pub(super) struct Running {
    /// `loss`, then `<output>_loss` for each output of a model of several.
    losses: Vec<(String, Mean)>,
    /// `accuracy`, or `<output>_accuracy` for each output of a model of several.
    metrics: Vec<(String, Metric, Vec<f64>)>,
}

impl Running {
    pub(super) fn new(c: &Compiled) -> Running {
        let names: Vec<String> = if c.names.len() > 1 { c.names.clone() } else { Vec::new() };
        let losses = std::iter::once("loss".to_string())
            .chain(names.iter().map(|n| format!("{n}_loss")))
            .map(|k| (k, Mean::new()))
            .collect();
        let prefixes: Vec<String> =
            if names.is_empty() { vec![String::new()] } else { names.iter().map(|n| format!("{n}_")).collect() };
        let metrics = prefixes
            .iter()
            .zip(c.metrics.iter())
            .flat_map(|(p, ms)| ms.iter().map(move |m| (format!("{p}{}", m.name()), *m, Vec::new())))
            .collect();
        Running { losses, metrics }
    }

    pub(super) fn add(&mut self, outputs: &[Tensor], n: usize) -> Result<()> {
        let read = |t: &Tensor| -> Result<Vec<f64>> { Ok(t.to(Device::Cpu)?.cast(DType::F64).to_vec::<f64>()?) };
        let (losses, stats) = outputs.split_at(self.losses.len().min(outputs.len()));
        for ((_, mean), t) in self.losses.iter_mut().zip(losses) {
            let l = read(t)?.first().copied().unwrap_or(f64::NAN);
            mean.add(l * n as f64, n as f64);
        }
        for ((_, _, sums), t) in self.metrics.iter_mut().zip(stats) {
            let batch = read(t)?;
            sums.resize(batch.len(), 0.0);
            sums.iter_mut().zip(batch).for_each(|(s, b)| *s += b);
        }
        Ok(())
    }

    pub(super) fn logs(&self, prefix: &str) -> Logs {
        let losses = self.losses.iter().map(|(k, mean)| (format!("{prefix}{k}"), mean.result()));
        let metrics = self.metrics.iter().map(|(k, m, s)| (format!("{prefix}{k}"), m.result_of(s)));
        Logs(losses.chain(metrics).collect())
    }
}
