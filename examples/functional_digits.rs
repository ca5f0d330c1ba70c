//! Keras' functional API on the 8×8 handwritten digits (UCI, via scikit-learn;
//! examples/data/README.md): a model of two inputs — the 64 pixels, and a 16-number ink
//! profile (the sums of each row and each column) — with a residual block on the pixels,
//! the two branches joined by `Concatenate`. Trained once with `run_eagerly = true` and
//! once traced from the same initial weights; the two runs must agree.
//!
//! `cargo run --release --example functional_digits` (`-- --device cuda` on a GPU).

mod common;

use tensorjit::nn::data::{load_digits, train_test_split};
use tensorjit::nn::functional::{Functional, Input, SymbolicTensor};
use tensorjit::nn::layers::ActivationLayer;
use tensorjit::nn::prelude::*;
use tensorjit::{random, Device, Tensor};

const EPOCHS: usize = 20;

fn build(device: Device) -> tensorjit::nn::Result<Functional> {
    // The same seed before each build: both runs start from the same weights.
    random::set_seed(42);
    tensorjit::nn::reset_names();
    let pixels = Input::named("pixels", &[Some(64)]);
    let profile = Input::named("profile", &[Some(16)]);
    let h = pixels.apply(Dense::new(64).activation(Activation::Relu));
    // A residual block: h + f(h), then the nonlinearity (He et al.'s ResNet block).
    let f = h.apply(Dense::new(64).activation(Activation::Relu)).apply(Dense::new(64));
    let h = (&h + &f).apply(ActivationLayer::new(Activation::Relu));
    let p = profile.apply(Dense::new(16).activation(Activation::Relu));
    let joined = SymbolicTensor::merge(Concatenate::new(), &[&h, &p]);
    let logits = joined.apply(Dropout::new(0.1).with_seed(1)).apply(Dense::new(10));
    Ok(Functional::named("two_inputs", &[&pixels, &profile], &logits).on_device(device)?.built())
}

/// The 16 ink sums of each image: its 8 row sums, then its 8 column sums.
fn ink_profile(x: &Tensor) -> Tensor {
    let images = x.reshape([-1, 8, 8]);
    Tensor::concat(&[&images.sum(2, false), &images.sum(1, false)], 1) / 8.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = common::device_flag()?;
    let (x, y) = load_digits(common::data_file("digits.csv.gz"))?;
    let (x_train, y_train, x_test, y_test) = train_test_split(&x, &y, 0.2, 0)?;
    let (p_train, p_test) = (ink_profile(&x_train), ink_profile(&x_test));
    println!("digits: {} train / {} test examples, two inputs, on {device}", x_train.dims()[0], x_test.dims()[0]);

    let mut runs = Vec::new();
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
            validation_data: Some((vec![x_test.clone(), p_test.clone()].into(), y_test.clone().into())),
            verbose: false,
            ..FitOptions::default()
        };
        let history = model.fit([&x_train, &p_train], &y_train, &opts)?;
        // The first epoch includes tracing and compiling; steady state is the median.
        let median = history.median_seconds();
        let last = |k: &str| history.get(k).last().copied().unwrap_or(f64::NAN);
        let mode = if run_eagerly { "eager" } else { "traced" };
        println!(
            "{mode}: median {:.1} ms per epoch (first {:.1} ms), loss {:.4}, val_accuracy {:.4}",
            median * 1e3,
            history.seconds[0] * 1e3,
            last("loss"),
            last("val_accuracy")
        );
        let predictions = model.predict([&x_test, &p_test], 128)?.to_vec::<f32>()?;
        runs.push((median, history.get("loss"), predictions));
    }
    let (eager, traced) = (&runs[0], &runs[1]);
    println!(
        "time per epoch: run_eagerly=true {:.1} ms, run_eagerly=false {:.1} ms ({:.1}x)",
        eager.0 * 1e3,
        traced.0 * 1e3,
        eager.0 / traced.0
    );
    if eager.1 != traced.1 || eager.2 != traced.2 {
        return Err("the eager and traced runs differ".into());
    }
    println!("eager and traced runs agree: every epoch's loss and every prediction, bit for bit");
    Ok(())
}
