//! fit's callbacks: EarlyStopping (patience, min_delta, mode, baseline, restoring the
//! best epoch's weights, eager and traced alike), ModelCheckpoint, ReduceLROnPlateau,
//! CsvLogger and a user-written callback.

mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tensorjit::nn::model::Logs;
use tensorjit::nn::prelude::*;
use tensorjit::prelude::*;

fn data() -> (Tensor, Tensor, Tensor, Tensor) {
    let x = rand_f32(1, &[64, 4], -1.0, 1.0);
    let y = (x.sum(-1, true) * 0.5).sin();
    let (vx, vy) = (rand_f32(2, &[32, 4], -1.0, 1.0), rand_f32(3, &[32, 1], -0.5, 0.5));
    (x, y, vx, vy)
}

/// The same names every time: weight files are matched by name.
fn model() -> Sequential {
    Sequential::named(
        "net",
        vec![
            Dense::new(8)
                .activation(Activation::Tanh)
                .kernel_initializer(Initializer::Constant(0.2))
                .with_name("hidden")
                .boxed(),
            Dense::new(1).kernel_initializer(Initializer::Constant(-0.1)).with_name("out").boxed(),
        ],
    )
    .with_input_shape(&[4])
}

fn logs(key: &str, v: f64) -> Logs {
    Logs(vec![(key.to_string(), v)])
}

#[test]
fn early_stopping_counts_epochs_without_improvement() {
    let m = model();
    let feed = |stop: &EarlyStopping, values: &[f64], key: &str| {
        stop.on_train_begin(&m);
        values.iter().enumerate().map(|(e, &v)| stop.on_epoch_end(e, &logs(key, v), &m).unwrap()).collect::<Vec<_>>()
    };
    use Control::{Continue as C, Stop as S};
    // Loss (minimised): two epochs without a new best stop training.
    let stop = EarlyStopping::new("loss").patience(2);
    assert_eq!(feed(&stop, &[1.0, 0.8, 0.9, 0.85, 0.7], "loss"), [C, C, C, S, C]);
    assert_eq!(stop.stopped_epoch(), Some(3));
    assert_eq!(stop.best(), Some((4, 0.7)), "the callback keeps counting if asked again");
    // Accuracies are maximised ("auto"); min_delta must be beaten.
    let stop = EarlyStopping::new("val_accuracy").patience(1).min_delta(0.05);
    assert_eq!(feed(&stop, &[0.5, 0.53, 0.6], "val_accuracy"), [C, S, C]);
    // A baseline to beat: improvements that do not beat it leave the count running (as
    // in Keras, an improving epoch itself never stops training).
    let stop = EarlyStopping::new("loss").patience(2).baseline(0.1);
    assert_eq!(feed(&stop, &[1.0, 0.9, 0.95], "loss"), [C, C, S]);
    let stop = EarlyStopping::new("loss").patience(2);
    assert_eq!(feed(&stop, &[1.0, 0.9, 0.95], "loss"), [C, C, C]);
    // Patience 0 stops at the first epoch after the first without a new best.
    let stop = EarlyStopping::new("loss").mode(tensorjit::nn::callbacks::Mode::Max);
    assert_eq!(feed(&stop, &[1.0, 0.5], "loss"), [C, S]);
    // A value fit does not log never stops training.
    let stop = EarlyStopping::new("val_loss");
    assert_eq!(feed(&stop, &[1.0, 2.0, 3.0], "loss"), [C, C, C]);
}

#[test]
fn fit_stops_early_and_restores_the_best_weights_eager_and_traced() {
    let (x, y, vx, vy) = data();
    let run = |run_eagerly: bool| {
        let m = model();
        // A learning rate high enough for the validation loss to move both ways.
        m.compile(SGD::new(0.9).momentum(0.9), Loss::MeanSquaredError, &[], run_eagerly);
        let stop = Arc::new(EarlyStopping::new("val_loss").patience(3).restore_best_weights(true));
        let opts = FitOptions {
            epochs: 40,
            batch_size: 16,
            shuffle: Some(4),
            validation_data: Some((vx.clone().into(), vy.clone().into())),
            verbose: false,
            callbacks: vec![stop.clone()],
            ..FitOptions::default()
        };
        let h = m.fit(&x, &y, &opts).unwrap();
        let val = h.get("val_loss");
        let (best_epoch, best) = stop.best().unwrap();
        let min = val.iter().cloned().fold(f64::INFINITY, f64::min);
        assert_eq!(best, min);
        assert_eq!(val[best_epoch], min);
        // The model ends with the weights that gave the best validation loss.
        let after = m.evaluate(&vx, &vy, 16).unwrap().get("loss").unwrap();
        assert_eq!(after, min, "restored weights give the best epoch's val_loss exactly");
        (val, stop.stopped_epoch())
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!(eager, traced);
    let (val, stopped) = eager;
    let stopped = stopped.expect("training stopped early");
    assert_eq!(val.len(), stopped + 1);
    assert!(val.len() < 40, "{val:?}");
}

/// A callback of one's own: counts epochs and stops after the third.
struct StopAfter(AtomicUsize);

impl Callback for StopAfter {
    fn on_epoch_end(&self, epoch: usize, logs: &Logs, _model: &dyn Model) -> tensorjit::nn::Result<Control> {
        assert!(logs.get("loss").is_some());
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(if epoch == 2 { Control::Stop } else { Control::Continue })
    }
}

#[test]
fn a_user_callback_sees_every_epoch_and_can_stop() {
    let (x, y, _, _) = data();
    let m = model();
    m.compile(Adam::new(0.01), Loss::MeanSquaredError, &[], false);
    let cb = Arc::new(StopAfter(AtomicUsize::new(0)));
    let opts = FitOptions { epochs: 10, verbose: false, callbacks: vec![cb.clone()], ..FitOptions::default() };
    let h = m.fit(&x, &y, &opts).unwrap();
    assert_eq!(h.epochs.len(), 3);
    assert_eq!(cb.0.load(Ordering::SeqCst), 3);
}

#[test]
fn a_negative_min_delta_is_refused() {
    let msg = panic_message(|| drop(EarlyStopping::new("loss").min_delta(-0.1)));
    assert!(
        msg.contains("EarlyStopping: min_delta must be >= 0, got -0.1") && msg.contains("nn_callbacks.rs"),
        "{msg}"
    );
}

#[test]
fn model_checkpoint_saves_the_best_epoch_or_every_epoch() {
    let (x, y, vx, vy) = data();
    let dir = std::env::temp_dir().join(format!("tensorjit-checkpoints-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let best_path = dir.join("best.safetensors");
    let every = dir.join("epoch_{epoch}.safetensors");
    let m = model();
    m.compile(SGD::new(0.9).momentum(0.9), Loss::MeanSquaredError, &[], false);
    let best = Arc::new(ModelCheckpoint::new(best_path.to_str().unwrap()).save_best_only(true));
    let each = Arc::new(ModelCheckpoint::new(every.to_str().unwrap()));
    let opts = FitOptions {
        epochs: 6,
        batch_size: 16,
        shuffle: Some(5),
        validation_data: Some((vx.clone().into(), vy.clone().into())),
        verbose: false,
        callbacks: vec![best, each],
        ..FitOptions::default()
    };
    let val = m.fit(&x, &y, &opts).unwrap().get("val_loss");
    // The best file holds the weights of the epoch with the lowest validation loss.
    let fresh = model();
    fresh.compile(SGD::new(0.1), Loss::MeanSquaredError, &[], false);
    fresh.predict(&vx, 32).unwrap();
    fresh.load_weights(&best_path).unwrap();
    let min = val.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(fresh.evaluate(&vx, &vy, 16).unwrap().get("loss").unwrap(), min);
    // One file per epoch, the last one the model's final weights.
    for e in 1..=6 {
        assert!(dir.join(format!("epoch_{e}.safetensors")).exists(), "epoch {e}");
    }
    fresh.load_weights(dir.join("epoch_6.safetensors")).unwrap();
    assert_eq!(fresh.evaluate(&vx, &vy, 16).unwrap().get("loss"), Some(val[5]));
    // A path that cannot be written ends fit with the error.
    let bad = Arc::new(ModelCheckpoint::new(dir.join("missing/dir/w.safetensors").to_str().unwrap()));
    let err = m.fit(&x, &y, &FitOptions { verbose: false, callbacks: vec![bad], ..FitOptions::default() }).unwrap_err();
    assert!(err.to_string().contains("missing/dir/w.safetensors"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reduce_lr_on_plateau_lowers_the_rate_after_patience_then_cools_down() {
    let m = model();
    m.compile(SGD::new(1.0), Loss::MeanSquaredError, &[], false);
    let cb = ReduceLROnPlateau::new("val_loss").factor(0.5).patience(2).cooldown(1).min_lr(0.2);
    cb.on_train_begin(&m);
    let opt = m.optimizer().unwrap();
    let mut rates = Vec::new();
    for (e, v) in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0].iter().enumerate() {
        cb.on_epoch_end(e, &logs("val_loss", *v), &m).unwrap();
        rates.push(opt.learning_rate());
    }
    // Two epochs without improvement halve it. The cooldown epoch after a reduction
    // ends in that same epoch and already counts (as in Keras), and min_lr is the floor.
    assert_eq!(rates, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]);
    // An improvement by more than min_delta resets the count.
    let cb = ReduceLROnPlateau::new("loss").factor(0.5).patience(2);
    m.optimizer().unwrap().set_learning_rate(1.0);
    cb.on_train_begin(&m);
    for (e, v) in [1.0, 1.0, 0.5, 0.5, 0.49999].iter().enumerate() {
        cb.on_epoch_end(e, &logs("loss", *v), &m).unwrap();
    }
    assert_eq!(opt.learning_rate(), 0.5, "0.49999 is within min_delta (1e-4) of 0.5");
}

#[test]
fn fit_with_reduce_lr_on_plateau_is_the_same_eager_and_traced_and_never_retraces() {
    let (x, y, vx, vy) = data();
    let run = |run_eagerly: bool| {
        let m = model();
        m.compile(SGD::new(0.9).momentum(0.9), Loss::MeanSquaredError, &[], run_eagerly);
        let cb = Arc::new(ReduceLROnPlateau::new("val_loss").factor(0.3).patience(1));
        let opts = FitOptions {
            epochs: 12,
            batch_size: 16,
            shuffle: Some(6),
            validation_data: Some((vx.clone().into(), vy.clone().into())),
            verbose: false,
            callbacks: vec![cb],
            ..FitOptions::default()
        };
        let h = m.fit(&x, &y, &opts).unwrap();
        (h.get("loss"), m.optimizer().unwrap().learning_rate(), m.train_tracing_count())
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!((&eager.0, eager.1), (&traced.0, traced.1));
    assert!(traced.1 < 0.9, "the rate was reduced: {}", traced.1);
    assert_eq!(traced.2, 1, "one batch shape, one trace, whatever the rate");
}

#[test]
fn a_factor_outside_0_1_is_refused() {
    let msg = panic_message(|| drop(ReduceLROnPlateau::new("loss").factor(1.5)));
    assert!(msg.contains("ReduceLROnPlateau: factor must be in (0, 1), got 1.5"), "{msg}");
}

/// Records the optimizer's rate at the end of each epoch.
struct RateLog(std::sync::Mutex<Vec<f64>>);

impl Callback for RateLog {
    fn on_epoch_end(&self, _epoch: usize, _logs: &Logs, model: &dyn Model) -> tensorjit::nn::Result<Control> {
        self.0.lock().unwrap().push(model.optimizer().unwrap().learning_rate());
        Ok(Control::Continue)
    }
}

#[test]
fn learning_rate_scheduler_sets_each_epochs_rate_eager_and_traced() {
    let (x, y, _, _) = data();
    let run = |run_eagerly: bool| {
        let m = model();
        m.compile(SGD::new(0.4), Loss::MeanSquaredError, &[], run_eagerly);
        let sched = Arc::new(LearningRateScheduler::new(|epoch, lr| if epoch < 2 { lr } else { lr * 0.5 }));
        let log = Arc::new(RateLog(std::sync::Mutex::new(Vec::new())));
        let opts = FitOptions {
            epochs: 4,
            batch_size: 16,
            verbose: false,
            callbacks: vec![sched, log.clone()],
            ..FitOptions::default()
        };
        let h = m.fit(&x, &y, &opts).unwrap();
        let rates = log.0.lock().unwrap().clone();
        (h.get("loss"), rates, m.train_tracing_count())
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!(eager.0, traced.0);
    assert_eq!(traced.1, [0.4, 0.4, 0.2, 0.1]);
    assert_eq!(traced.2, 1, "a new rate is a variable's value, not a new trace");
    // A schedule that gives no number ends fit with an error naming the epoch.
    let m = model();
    m.compile(SGD::new(0.4), Loss::MeanSquaredError, &[], false);
    let nan = Arc::new(LearningRateScheduler::new(|epoch, lr| if epoch == 1 { f64::NAN } else { lr }));
    let opts = FitOptions { epochs: 3, verbose: false, callbacks: vec![nan], ..FitOptions::default() };
    let err = m.fit(&x, &y, &opts).unwrap_err().to_string();
    assert!(err.contains("LearningRateScheduler: the schedule gave a learning rate of NaN for epoch 1"), "{err}");
}

#[test]
fn csv_logger_writes_a_row_per_epoch_and_appends_if_asked() {
    let (x, y, vx, vy) = data();
    let dir = std::env::temp_dir().join(format!("tensorjit-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("log.csv");
    let m = model();
    m.compile(SGD::new(0.5), Loss::MeanSquaredError, &[Metric::Accuracy], false);
    let fit = |logger: CsvLogger, epochs: usize| {
        let opts = FitOptions {
            epochs,
            batch_size: 16,
            shuffle: Some(2),
            validation_data: Some((vx.clone().into(), vy.clone().into())),
            verbose: false,
            callbacks: vec![Arc::new(logger)],
            ..FitOptions::default()
        };
        m.fit(&x, &y, &opts).unwrap()
    };
    let rows = |path: &std::path::Path| -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().map(|l| l.split(',').map(str::to_string).collect()).collect()
    };
    let first = fit(CsvLogger::new(&path), 3);
    let table = rows(&path);
    assert_eq!(table[0], ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]);
    assert_eq!(table.len(), 4);
    for (e, row) in table[1..].iter().enumerate() {
        assert_eq!(row[0], e.to_string());
        let value = |i: usize| row[i].parse::<f64>().unwrap();
        assert_eq!(value(2), first.get("loss")[e], "the logged values, exactly");
        assert_eq!(value(4), first.get("val_loss")[e]);
        assert_eq!(value(3), first.get("val_accuracy")[e]);
    }
    // Appending: two more rows, no second header; without append the file starts over.
    let second = fit(CsvLogger::new(&path).append(true), 2);
    let table = rows(&path);
    assert_eq!(table.len(), 6);
    assert_eq!(table[5][2].parse::<f64>().unwrap(), second.get("loss")[1]);
    fit(CsvLogger::new(&path).separator(';'), 1);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.starts_with("epoch;accuracy;loss;val_accuracy;val_loss\n0;"), "{text}");
    // A path that cannot be written ends fit with an error naming it.
    let bad = Arc::new(CsvLogger::new(dir.join("missing/log.csv")));
    let err = m.fit(&x, &y, &FitOptions { verbose: false, callbacks: vec![bad], ..FitOptions::default() }).unwrap_err();
    assert!(err.to_string().contains("missing/log.csv"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
