//! The TF2 custom-model example: fit y = W·x + b to 1000 points of y = 3x + 2 + noise
//! with GradientTape and `assign_sub`, eagerly and traced, and compare.
//!
//! `cargo run --release --example linear_regression`

use std::time::Instant;

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

fn main() {
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
}
