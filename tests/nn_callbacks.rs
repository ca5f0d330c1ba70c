//! fit's callbacks: EarlyStopping (patience, min_delta, mode, baseline, restoring the
//! best epoch's weights, eager and traced alike) and a user-written callback.

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

fn model() -> Sequential {
    Sequential::new(vec![
        Dense::new(8).activation(Activation::Tanh).kernel_initializer(Initializer::Constant(0.2)).boxed(),
        Dense::new(1).kernel_initializer(Initializer::Constant(-0.1)).boxed(),
    ])
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
        values.iter().enumerate().map(|(e, &v)| stop.on_epoch_end(e, &logs(key, v), &m)).collect::<Vec<_>>()
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
            validation_data: Some((vx.clone(), vy.clone())),
            verbose: false,
            callbacks: vec![stop.clone()],
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
    fn on_epoch_end(&self, epoch: usize, logs: &Logs, _model: &Sequential) -> Control {
        assert!(logs.get("loss").is_some());
        self.0.fetch_add(1, Ordering::SeqCst);
        if epoch == 2 {
            Control::Stop
        } else {
            Control::Continue
        }
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
