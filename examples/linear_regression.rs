//! The TF2 custom-model example: fit y = W·x + b to 1000 points of y = 3x + 2 + noise
//! with GradientTape and `assign_sub`, eagerly and traced, and compare; then the Keras
//! variant: `Sequential([Dense(1)])` (kernel 5.0, bias 0.0), SGD 0.1, MSE, 100 full-batch
//! epochs with `compile` + `fit`, again with `run_eagerly` on and off.
//!
//! `cargo run --release --example linear_regression`

use std::time::Instant;

use tensorjit::nn::prelude::{Dense, FitOptions, Initializer, Loss, Module, Sequential, SGD};
use tensorjit::prelude::*;

/// One epoch: a full-batch gradient step on the mean squared error. Returns the loss.
#[tf_function]
fn train_step(w: &Variable, b: &Variable, x: &Tensor, y: &Tensor, lr: f64) -> Tensor {
    let tape = GradientTape::new();
    let loss = (x * w + b - y).square().mean_all();
    let grads = tape.gradient(&loss, &[w, b]);
    if let [Some(dw), Some(db)] = grads.as_slice() {
        w.assign_sub(dw * lr);
        b.assign_sub(db * lr);
    }
    loss
}

fn train(x: &Tensor, y: &Tensor) -> (f32, f32, f64) {
    let w = Variable::new(Tensor::scalar(5.0f32), "w");
    let b = Variable::new(Tensor::scalar(0.0f32), "b");
    let start = Instant::now();
    for _ in 0..100 {
        train_step(&w, &b, x, y, 0.1);
    }
    let per_epoch_us = start.elapsed().as_secs_f64() * 1e6 / 100.0;
    let read = |v: &Variable| v.read().to_scalar::<f32>().unwrap_or(f32::NAN);
    (read(&w), read(&b), per_epoch_us)
}

/// The Keras variant; returns (W, b, µs per epoch).
fn keras(x: &Tensor, y: &Tensor, run_eagerly: bool) -> Result<(f32, f32, f64), tensorjit::nn::Error> {
    let layer =
        Dense::new(1).kernel_initializer(Initializer::Constant(5.0)).bias_initializer(Initializer::Constant(0.0));
    let model = Sequential::new(vec![layer.clone().boxed()]).with_input_shape(&[1]);
    model.compile(SGD::new(0.1), Loss::MeanSquaredError, &[], run_eagerly);
    let n = x.dims()[0];
    let opts = FitOptions { epochs: 100, batch_size: n, shuffle: None, verbose: false, ..FitOptions::default() };
    let history = model.fit(x.reshape([-1, 1]), y, &opts)?;
    let per_epoch_us = history.seconds.iter().skip(1).sum::<f64>() * 1e6 / 99.0;
    let read = |v: Option<Variable>| v.and_then(|v| v.read().to_vec::<f32>().ok()).map_or(f32::NAN, |v| v[0]);
    Ok((read(layer.kernel()), read(layer.bias()), per_epoch_us))
}

fn main() -> Result<(), tensorjit::nn::Error> {
    let x = random::normal([1000], 0.0, 1.0, DType::F32, Some(1));
    let noise = random::normal([1000], 0.0, 1.0, DType::F32, Some(2));
    let y = &x * 3.0 + 2.0 + &noise;

    config::run_functions_eagerly(true);
    let (we, be, te) = train(&x, &y);
    config::run_functions_eagerly(false);
    let (wt, bt, tt) = train(&x, &y);

    println!("eager: W={we} b={be}");
    println!("traced: W={wt} b={bt}");
    println!("time per epoch: eager {te:.1} µs, traced {tt:.1} µs (traces: {})", train_step::tracing_count());
    println!("identical: {}", we.to_bits() == wt.to_bits() && be.to_bits() == bt.to_bits());

    let (wk, bk, tk) = keras(&x, &y, true)?;
    let (wk2, bk2, tk2) = keras(&x, &y, false)?;
    println!("keras fit, run_eagerly=true: W={wk} b={bk} ({tk:.1} µs per epoch)");
    println!("keras fit, run_eagerly=false: W={wk2} b={bk2} ({tk2:.1} µs per epoch)");
    println!("keras identical: {}", wk.to_bits() == wk2.to_bits() && bk.to_bits() == bk2.to_bits());
    Ok(())
}
