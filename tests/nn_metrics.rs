//! The regression, precision, recall and AUC metrics through `compile`/`evaluate`/`fit`:
//! computed over the whole data set whatever the batches (against hand computations from
//! `predict`), identical eager and traced, and their errors.

use tensorjit::nn::prelude::*;
use tensorjit::{random, DType, Tensor};

fn regression_model(eager: bool) -> (Sequential, Tensor, Tensor) {
    let x = random::normal([30, 4], 0.0, 1.0, DType::F32, Some(1));
    let y = random::normal([30, 2], 1.0, 1.0, DType::F32, Some(2));
    let model = Sequential::new(vec![Dense::new(2).kernel_initializer(Initializer::Constant(0.2)).boxed()])
        .with_input_shape(&[4]);
    model.compile(
        SGD::new(0.05),
        Loss::MeanSquaredError,
        &[
            Metric::MeanSquaredError,
            Metric::MeanAbsoluteError,
            Metric::RootMeanSquaredError,
            Metric::MeanAbsolutePercentageError,
        ],
        eager,
    );
    (model, x, y)
}

#[test]
fn regression_metrics_cover_the_whole_data_set() {
    let (model, x, y) = regression_model(false);
    let p = model.predict(&x, 30).unwrap().to_vec::<f32>().unwrap();
    let t = y.to_vec::<f32>().unwrap();
    let pairs = || p.iter().zip(&t).map(|(&p, &t)| (f64::from(p), f64::from(t)));
    let mse = pairs().map(|(p, t)| (p - t) * (p - t)).sum::<f64>() / 60.0;
    let mae = pairs().map(|(p, t)| (p - t).abs()).sum::<f64>() / 60.0;
    let mape = pairs().map(|(p, t)| 100.0 * ((t - p) / t.abs().max(1e-7)).abs()).sum::<f64>() / 60.0;
    // Batches of 7 (the last one of 2): the epoch's values are the data set's.
    let logs = model.evaluate(&x, &y, 7).unwrap();
    let close = |key: &str, want: f64| {
        let got = logs.get(key).unwrap();
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{key}: {got} vs {want}");
    };
    close("mean_squared_error", mse);
    close("loss", mse);
    close("mean_absolute_error", mae);
    close("root_mean_squared_error", mse.sqrt());
    close("mean_absolute_percentage_error", mape);
}

fn binary_model(eager: bool) -> (Sequential, Tensor, Tensor) {
    let x = random::normal([50, 3], 0.0, 1.0, DType::F32, Some(3));
    let noise = random::normal([50, 1], 0.0, 1.0, DType::F32, Some(4));
    let y = (x.sum(-1, true) + noise).gt(0.0).cast(DType::F32);
    let model = Sequential::new(vec![Dense::new(1)
        .activation(Activation::Sigmoid)
        .kernel_initializer(Initializer::Constant(0.3))
        .boxed()])
    .with_input_shape(&[3]);
    model.compile(
        Adam::new(0.05),
        Loss::BinaryCrossentropy { from_logits: false },
        &[Metric::Precision { threshold: 0.5 }, Metric::Recall { threshold: 0.5 }, Metric::auc()],
        eager,
    );
    (model, x, y)
}

#[test]
fn precision_recall_and_auc_match_hand_counts() {
    let (model, x, y) = binary_model(false);
    let opts = FitOptions { epochs: 3, batch_size: 8, verbose: false, ..FitOptions::default() };
    model.fit(&x, &y, &opts).unwrap();
    let p = model.predict(&x, 50).unwrap().to_vec::<f32>().unwrap();
    let t = y.to_vec::<f32>().unwrap();
    let count = |f: &dyn Fn(f32, f32) -> bool| p.iter().zip(&t).filter(|(&p, &t)| f(p, t)).count() as f64;
    let tp = count(&|p, t| p > 0.5 && t == 1.0);
    let fp = count(&|p, t| p > 0.5 && t == 0.0);
    let fne = count(&|p, t| p <= 0.5 && t == 1.0);
    let logs = model.evaluate(&x, &y, 9).unwrap();
    assert_eq!(logs.get("precision").unwrap(), tp / (tp + fp));
    assert_eq!(logs.get("recall").unwrap(), tp / (tp + fne));
    // The AUC against the rank statistic (200 thresholds: within a percent).
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, &ti) in t.iter().enumerate() {
        for (j, &tj) in t.iter().enumerate() {
            if ti == 1.0 && tj == 0.0 {
                pairs += 1.0;
                wins += if p[i] > p[j] {
                    1.0
                } else if p[i] == p[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    let auc = logs.get("auc").unwrap();
    assert!((auc - wins / pairs).abs() < 1e-2, "{auc} vs {}", wins / pairs);
    assert!(auc > 0.8, "a learnable problem: {auc}");
}

#[test]
fn metrics_are_identical_eager_and_traced() {
    let run = |eager: bool| {
        let (model, x, y) = binary_model(eager);
        let opts = FitOptions {
            epochs: 3,
            batch_size: 16,
            verbose: false,
            validation_data: Some((x.clone().into(), y.clone().into())),
            ..FitOptions::default()
        };
        let h = model.fit(&x, &y, &opts).unwrap();
        ["precision", "recall", "auc", "val_auc"].map(|k| h.get(k))
    };
    assert_eq!(run(true), run(false));
    let run = |eager: bool| {
        let (model, x, y) = regression_model(eager);
        let opts = FitOptions { epochs: 2, batch_size: 8, verbose: false, ..FitOptions::default() };
        let h = model.fit(&x, &y, &opts).unwrap();
        ["mean_absolute_error", "root_mean_squared_error"].map(|k| h.get(k))
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn bad_metric_parameters_are_refused_at_compile() {
    let model = Sequential::new(vec![Dense::new(1).boxed()]).with_input_shape(&[2]);
    let r = std::panic::catch_unwind(|| {
        model.compile(
            SGD::new(0.1),
            Loss::MeanSquaredError,
            &[Metric::AUC { num_thresholds: 1, from_logits: false }],
            false,
        )
    });
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("auc: num_thresholds must be at least 2, got 1"), "{msg}");
    assert!(msg.contains("nn_metrics.rs"), "{msg}");
}

#[test]
fn a_loss_as_a_metric_is_its_mean_over_the_epoch() {
    let (model, x, y) = regression_model(false);
    model.compile(
        SGD::new(0.05),
        Loss::MeanSquaredError,
        &[Metric::MeanOf(Loss::MeanSquaredError), Metric::MeanOf(Loss::Huber { delta: 0.5 })],
        false,
    );
    let logs = model.evaluate(&x, &y, 7).unwrap();
    let mse = logs.get("mean_squared_error").unwrap();
    assert!((mse - logs.get("loss").unwrap()).abs() < 1e-6 * mse, "the loss as a metric is the loss");
    let p = model.predict(&x, 30).unwrap().to_vec::<f32>().unwrap();
    let t = y.to_vec::<f32>().unwrap();
    let huber = p
        .iter()
        .zip(&t)
        .map(|(&p, &t)| {
            let e = f64::from(p) - f64::from(t);
            if e.abs() <= 0.5 {
                0.5 * e * e
            } else {
                0.5 * e.abs() - 0.125
            }
        })
        .sum::<f64>()
        / 60.0;
    let got = logs.get("huber_loss").unwrap();
    assert!((got - huber).abs() < 1e-5 * huber, "{got} vs {huber}");
}
