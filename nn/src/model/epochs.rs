//! `fit`'s epoch loop, `evaluate` and `predict`, over batches of the inputs and targets,
//! and the checks of what the user passed them.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use tensorjit_runtime::{DType, Device, Tensor};

use super::steps::{specs, Running};
use super::{compiled, Compiled, FitOptions, History, Logs, Trainable};
use crate::data::{shuffled_indices, Dataset};
use crate::error::{Error, Result};
use crate::module::Module;

/// The number of examples, after checking that every input and target has it on axis 0
/// and that `xs` has one tensor per input of the model.
fn check_examples(op: &'static str, m: &dyn Module, xs: &[Tensor], ys: &[Tensor], batch_size: usize) -> Result<usize> {
    check_count(op, m, xs.len())?;
    m.check_inputs(xs).map_err(|msg| Error::invalid(op, msg))?;
    let n = xs[0].dims().first().copied().unwrap_or(0);
    if xs.iter().chain(ys).any(|t| t.rank() == 0 || t.dims()[0] != n) {
        let list = |ts: &[Tensor]| ts.iter().map(Tensor::type_string).collect::<Vec<_>>().join(", ");
        let subject = match (xs.len(), ys.len()) {
            (_, 0) => "the inputs",
            (1, 1) => "x and y",
            _ => "every input and target",
        };
        let y = if ys.is_empty() { String::new() } else { format!(" and y {}", list(ys)) };
        return Err(Error::invalid(
            op,
            format!("{subject} need the same number of examples on axis 0, got x {}{y}", list(xs)),
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

/// Refuses targets that do not fit the model's outputs: one per output, and host
/// labels the compiled loss cannot take (a sparse label outside the classes), before
/// any step runs.
fn check_targets<M: Trainable>(m: &M, c: &Compiled, op: &'static str, xs: &[Tensor], ys: &[Tensor]) -> Result<()> {
    check_count(op, m, xs.len())?;
    if ys.len() != c.losses.len() {
        return Err(Error::invalid(
            op,
            format!("{} '{}' has {} output(s), got {} target tensor(s)", m.kind(), m.name(), c.losses.len(), ys.len()),
        ));
    }
    for ((spec, y), loss) in m.output_specs(&specs(xs)).iter().zip(ys).zip(&c.losses) {
        loss.check_target_shape(y, spec).map_err(|msg| Error::invalid(op, format!("{}: {msg}", loss.name())))?;
        if let Some(&Some(classes)) = spec.last() {
            loss.check_labels(y, classes).map_err(|msg| Error::invalid(op, msg))?;
        }
    }
    Ok(())
}

/// One batch: the inputs, the targets and the examples' weights (none, one for every
/// output, or one per output).
type Batch = (Vec<Tensor>, Vec<Tensor>, Vec<Tensor>);

/// What `evaluate` reads: the inputs, the targets, and the examples' weights as
/// [`evaluation_weights`] makes them (none, one for every output, or one per output).
pub(super) struct Data<'a> {
    pub(super) xs: &'a [Tensor],
    pub(super) ys: &'a [Tensor],
    pub(super) weights: &'a [Tensor],
}

/// The weights of the `n` examples of targets `ys` (none, one for every output, or one
/// per output): `sample_weight` times the class weight of each example's label (Keras
/// multiplies them); empty when neither is given.
fn example_weights(
    op: &'static str,
    class_weight: Option<&[f64]>,
    ys: &[Tensor],
    n: usize,
    sample_weight: &[Tensor],
) -> Result<Vec<Tensor>> {
    if sample_weight.len() > 1 && sample_weight.len() != ys.len() {
        return Err(Error::invalid(
            op,
            format!(
                "sample_weight needs one tensor for every output or one per output ({}), got {}",
                ys.len(),
                sample_weight.len()
            ),
        ));
    }
    let mut all = Vec::with_capacity(sample_weight.len().max(1));
    for sw in sample_weight {
        if sw.rank() != 1 || sw.dims()[0] != n || !sw.dtype().is_float() {
            return Err(Error::invalid(
                op,
                format!("sample_weight must be one float per example ([{n}]), got {}", sw.type_string()),
            ));
        }
        all.push(sw.to(Device::Cpu)?.cast(DType::F64).to_vec::<f64>()?);
    }
    let as_tensor = |w: Vec<f64>| Tensor::from_vec(w.into_iter().map(|v| v as f32).collect::<Vec<f32>>(), [n]);
    let Some(table) = class_weight else {
        return Ok(all.into_iter().map(as_tensor).collect::<std::result::Result<_, _>>()?);
    };
    let [y] = ys else {
        return Err(Error::invalid(
            op,
            format!("class_weight applies to models of one output, this one has {}: give sample_weight", ys.len()),
        ));
    };
    let labels = class_labels(op, y)?;
    let per_class = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            usize::try_from(l).ok().and_then(|l| table.get(l).copied()).ok_or_else(|| {
                Error::invalid(
                    op,
                    format!("label {l} (example {i}) has no class weight: class_weight has {} entries", table.len()),
                )
            })
        })
        .collect::<Result<Vec<f64>>>()?;
    // One output: at most one sample weight, multiplied by the class weights.
    let weights = match all.pop() {
        Some(sw) => sw.iter().zip(&per_class).map(|(s, c)| s * c).collect(),
        None => per_class,
    };
    Ok(vec![as_tensor(weights)?])
}

/// The user's evaluation weights (`sample_weight` of `evaluate_weighted`, or
/// `validation_sample_weight`) checked against the examples of `xs` and `ys`, as the
/// steps take them.
pub(super) fn evaluation_weights(
    op: &'static str,
    xs: &[Tensor],
    ys: &[Tensor],
    raw: &[Tensor],
) -> Result<Vec<Tensor>> {
    let n = xs.first().and_then(|x| x.dims().first().copied()).unwrap_or(0);
    example_weights(op, None, ys, n, raw)
}

/// Each example's class, for `class_weight`: class indices `[n]` (or `[n, 1]`, binary
/// labels rounded), or the argmax of one-hot rows `[n, classes]`.
fn class_labels(op: &'static str, y: &Tensor) -> Result<Vec<i64>> {
    let y = y.to(Device::Cpu)?;
    let dims = y.dims().to_vec();
    let labels = match dims.as_slice() {
        [_] | [_, 1] => y.reshape([-1]),
        [_, _] => y.argmax(1),
        _ => {
            return Err(Error::invalid(
                op,
                format!(
                    "class_weight needs one label per example (class indices, one-hot rows or binary labels), got y {}",
                    y.type_string()
                ),
            ))
        }
    };
    let labels = if labels.dtype().is_float() { (labels + 0.5).floor() } else { labels };
    Ok(labels.cast(DType::I64).to_vec::<i64>()?)
}

/// Rows `idx` of each tensor, on `device` (the model's): gathered where each lives,
/// then moved.
fn batch_rows(ts: &[Tensor], idx: &[i64], device: Device) -> Result<Vec<Tensor>> {
    ts.iter().map(|t| Ok(crate::data::take_rows(t, idx)?.to(device)?)).collect()
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

pub(super) fn fit<M: Trainable>(m: &M, xs: &[Tensor], ys: &[Tensor], opts: &FitOptions) -> Result<History> {
    let c = compiled(m, "fit")?;
    let n = check_examples("fit", m, xs, ys, opts.batch_size)?;
    check_targets(m, &c, "fit", xs, ys)?;
    let sample_weight = opts.sample_weight.as_ref().map_or(&[][..], |w| &w.0[..]);
    let weights = example_weights("fit", opts.class_weight.as_deref(), ys, n, sample_weight)?;
    run_epochs(m, opts, |epoch| {
        let weights = weights.clone();
        let order = match opts.shuffle {
            Some(seed) => shuffled_indices(n, seed, epoch),
            None => (0..n as i64).collect(),
        };
        let batches: Vec<Vec<i64>> = order.chunks(opts.batch_size).map(<[i64]>::to_vec).collect();
        let dev = m.home();
        let batch = move |idx: Vec<i64>| {
            Ok((batch_rows(xs, &idx, dev)?, batch_rows(ys, &idx, dev)?, batch_rows(&weights, &idx, dev)?))
        };
        (batches.len(), batches.into_iter().map(batch))
    })
}

pub(super) fn fit_dataset<M: Trainable>(m: &M, data: &Dataset, opts: &FitOptions) -> Result<History> {
    let c = compiled(m, "fit_dataset")?;
    let dev = m.home();
    let inputs = m.input_count().unwrap_or(1);
    let outputs = c.losses.len();
    run_epochs(m, opts, |epoch| {
        let c = c.clone();
        let pairs = data.iter_epoch(epoch).map(move |mut item| {
            let given = item.len();
            let weights = given.checked_sub(inputs + outputs);
            if !weights.is_some_and(|w| w == 0 || w == 1 || w == outputs) {
                return Err(Error::invalid(
                    "fit_dataset",
                    format!(
                        "elements must be {inputs} input(s) and {outputs} target(s) ({} tensors), and optionally \
                         the examples' weights (one tensor, or one per output), got {given} tensors",
                        inputs + outputs,
                    ),
                ));
            }
            let sample_weight = item.split_off(inputs + outputs);
            let ys = item.split_off(inputs);
            check_targets(m, &c, "fit_dataset", &item, &ys)?;
            let n = ys.first().and_then(|y| y.dims().first().copied()).unwrap_or(0);
            let w = example_weights("fit_dataset", opts.class_weight.as_deref(), &ys, n, &sample_weight)?;
            let to_device = |ts: Vec<Tensor>| ts.iter().map(|t| t.to(dev)).collect::<Result<Vec<_>, _>>();
            Ok((to_device(item)?, to_device(ys)?, to_device(w)?))
        });
        (0, pairs)
    })
}

/// The epoch loop of `fit`: `batches(epoch)` gives the number of batches (0 when
/// unknown) and the batches.
fn run_epochs<M, I>(m: &M, opts: &FitOptions, mut batches: impl FnMut(u64) -> (usize, I)) -> Result<History>
where
    M: Trainable,
    I: Iterator<Item = Result<Batch>>,
{
    let c = compiled(m, "fit")?;
    // The validation weights, made once (and refused before any training).
    let validation_weights = match (&opts.validation_data, &opts.validation_sample_weight) {
        (Some((vx, vy)), Some(w)) => evaluation_weights("fit", &vx.0, &vy.0, &w.0)?,
        _ => Vec::new(),
    };
    let mut history = History::default();
    opts.callbacks.iter().for_each(|cb| cb.on_train_begin(m));
    for epoch in 0..opts.epochs {
        for cb in &opts.callbacks {
            cb.on_epoch_begin(epoch, m)?;
        }
        let start = Instant::now();
        let (len, it) = batches(epoch as u64);
        let pb = progress(opts.verbose, len, format!("Epoch {}/{}", epoch + 1, opts.epochs));
        let mut run = Running::new(&c);
        for batch in it {
            let (bx, by, w) = batch?;
            let n = bx.first().and_then(|x| x.dims().first().copied()).unwrap_or(1);
            let out = c.train_step.try_call((bx, by, w))?;
            run.add(&out, n)?;
            if len == 0 {
                pb.inc_length(1);
            }
            pb.inc(1);
            pb.set_message(run.logs("").line());
        }
        let mut logs = run.logs("");
        if let Some((vx, vy)) = &opts.validation_data {
            let data = Data { xs: &vx.0, ys: &vy.0, weights: &validation_weights };
            logs.0.extend(evaluate_with(m, &c, data, opts.batch_size, "val_")?.0);
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

pub(super) fn evaluate_with<M: Trainable>(
    m: &M,
    c: &Compiled,
    Data { xs, ys, weights }: Data<'_>,
    batch_size: usize,
    prefix: &str,
) -> Result<Logs> {
    let n = check_examples("evaluate", m, xs, ys, batch_size)?;
    check_targets(m, c, "evaluate", xs, ys)?;
    let mut run = Running::new(c);
    let all: Vec<i64> = (0..n as i64).collect();
    let dev = m.home();
    for idx in all.chunks(batch_size) {
        let batch = (batch_rows(xs, idx, dev)?, batch_rows(ys, idx, dev)?, batch_rows(weights, idx, dev)?);
        let out = c.test_step.try_call(batch)?;
        run.add(&out, idx.len())?;
    }
    Ok(run.logs(prefix))
}

/// Every output for `xs`, in batches, on the host.
pub(super) fn predict_outputs<M: Trainable>(m: &M, xs: &[Tensor], batch_size: usize) -> Result<Vec<Tensor>> {
    let c = compiled(m, "predict")?;
    let n = check_examples("predict", m, xs, &[], batch_size)?;
    let all: Vec<i64> = (0..n as i64).collect();
    let dev = m.home();
    let mut per_output: Vec<Vec<Tensor>> = vec![Vec::new(); c.losses.len()];
    for idx in all.chunks(batch_size) {
        let outs = c.predict_step.try_call(batch_rows(xs, idx, dev)?)?;
        for (acc, t) in per_output.iter_mut().zip(outs) {
            acc.push(t.to(Device::Cpu)?);
        }
    }
    Ok(per_output.iter().map(|parts| Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)).collect())
}
