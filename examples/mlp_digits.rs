//! An MLP on the 8×8 handwritten digits (UCI, via scikit-learn; examples/data/README.md):
//! Keras' `Sequential` + `compile` + `fit`, trained once with `run_eagerly = true` and
//! once traced (JIT-compiled train step) from the same initial weights, then evaluated.
//!
//! `cargo run --release --example mlp_digits` (`-- --device cuda` trains on a GPU).

mod common;

use tensorjit::nn::data::{load_digits, train_test_split};
use tensorjit::nn::prelude::*;
use tensorjit::{random, Device};

const EPOCHS: usize = 30;

fn build(device: Device) -> tensorjit::nn::Result<Sequential> {
    // The same seed before each build: both runs start from the same weights.
    random::set_seed(42);
    tensorjit::nn::reset_names();
    Ok(Sequential::named(
        "mlp",
        vec![
            Dense::new(64).activation(Activation::Relu).boxed(),
            Dropout::new(0.1).with_seed(1).boxed(),
            Dense::new(64).activation(Activation::Relu).boxed(),
            Dense::new(10).boxed(),
        ],
    )
    .on_device(device)?
    .with_input_shape(&[64]))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device_flag()?;
    let (x, y) = load_digits(common::data_file("digits.csv.gz"))?;
    let (x_train, y_train, x_test, y_test) = train_test_split(&x, &y, 0.2, 0)?;
    println!("digits: {} train / {} test examples of 64 pixels, on {device}", x_train.dims()[0], x_test.dims()[0]);

    let mut per_epoch = Vec::new();
    let mut final_model = None;
    for run_eagerly in [true, false] {
        let model = build(device)?;
        if run_eagerly {
            println!("{}", model.summary());
        }
        let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
        model.compile(Adam::new(1e-3), loss, &[Metric::Accuracy], run_eagerly);
        let opts = FitOptions {
            epochs: EPOCHS,
            batch_size: 32,
            shuffle: Some(7),
            validation_data: Some((x_test.clone().into(), y_test.clone().into())),
            verbose: !run_eagerly,
            ..FitOptions::default()
        };
        let history = model.fit(&x_train, &y_train, &opts)?;
        // The first epoch includes tracing and compiling; steady state is the median.
        let median = history.median_seconds();
        let mode = if run_eagerly { "eager" } else { "traced" };
        println!(
            "{mode}: median {:.1} ms per epoch (first epoch {:.1} ms), final loss {:.4}",
            median * 1e3,
            history.seconds[0] * 1e3,
            history.get("loss").last().copied().unwrap_or(f64::NAN)
        );
        per_epoch.push(median);
        final_model = Some(model);
    }
    println!(
        "time per epoch: run_eagerly=true {:.1} ms, run_eagerly=false {:.1} ms ({:.1}x)",
        per_epoch[0] * 1e3,
        per_epoch[1] * 1e3,
        per_epoch[0] / per_epoch[1]
    );

    let model = final_model.ok_or("no model trained")?;
    let logs = model.evaluate(&x_test, &y_test, 128)?;
    println!("test_loss: {:.4}", logs.get("loss").unwrap_or(f64::NAN));
    println!("test_accuracy: {:.4}", logs.get("accuracy").unwrap_or(f64::NAN));
    Ok(())
}
