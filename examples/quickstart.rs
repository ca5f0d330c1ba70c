//! tensorjit quickstart: a small model trained with a traced training step.
//!
//! A two-layer MLP learns y = sin(3x) + x/2 from 256 noisy points. The training step
//! (forward, GradientTape, SGD update) is a `#[tf_function]`: traced once into a graph,
//! then run from the graph on every call. The same step run eagerly (the run-eagerly
//! switch) gives the very same numbers.
//!
//! `cargo run --release --example quickstart`

use std::time::Instant;

use tensorjit::prelude::*;

struct Mlp {
    w1: Variable,
    b1: Variable,
    w2: Variable,
    b2: Variable,
}

impl Mlp {
    fn new(hidden: usize) -> Mlp {
        Mlp {
            w1: Variable::new(random::glorot_uniform([1, hidden], DType::F32, Some(1)), "mlp/dense_1/kernel"),
            b1: Variable::new(Tensor::zeros([hidden], DType::F32), "mlp/dense_1/bias"),
            w2: Variable::new(random::glorot_uniform([hidden, 1], DType::F32, Some(2)), "mlp/dense_2/kernel"),
            b2: Variable::new(Tensor::zeros([1], DType::F32), "mlp/dense_2/bias"),
        }
    }

    fn vars(&self) -> (&Variable, &Variable, &Variable, &Variable) {
        (&self.w1, &self.b1, &self.w2, &self.b2)
    }
}

const WARMUP: usize = 50;

/// One step of gradient descent on the mean squared error; returns the loss.
#[tf_function]
fn train_step(w1: &Variable, b1: &Variable, w2: &Variable, b2: &Variable, x: &Tensor, y: &Tensor) -> Tensor {
    let tape = GradientTape::new();
    let h = (x.matmul(&w1.read()) + b1).tanh();
    let pred = h.matmul(&w2.read()) + b2;
    let loss = (pred - y).square().mean_all();
    let params = [w1, b1, w2, b2];
    for (v, g) in params.iter().zip(tape.gradient(&loss, &params)) {
        if let Some(g) = g {
            v.assign_sub(&g * 0.1);
        }
    }
    loss
}

/// Trains a fresh model for `steps` steps; returns the losses and the µs per step after
/// a 50-step warm-up (the first traced step includes tracing; early steps pay for cold
/// caches and the buffer pool filling).
fn train(x: &Tensor, y: &Tensor, steps: usize, print: bool) -> (Vec<f32>, f64) {
    let model = Mlp::new(32);
    let (w1, b1, w2, b2) = model.vars();
    let mut start = Instant::now();
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps {
        if step == WARMUP {
            start = Instant::now();
        }
        let loss = train_step(w1, b1, w2, b2, x, y).to_scalar::<f32>().unwrap_or(f32::NAN);
        if print && step % 50 == 0 {
            println!("step {step:>3}  loss {loss:.5}");
        }
        losses.push(loss);
    }
    (losses, start.elapsed().as_secs_f64() * 1e6 / (steps - WARMUP) as f64)
}

fn main() {
    let x = random::uniform([256, 1], -2.0, 2.0, DType::F32, Some(10));
    let noise = random::normal([256, 1], 0.0, 0.05, DType::F32, Some(11));
    let y = (&x * 3.0).sin() + &x * 0.5 + &noise;

    println!("tensorjit quickstart: 2-layer MLP (1 → 32 → 1, tanh) fitting sin(3x) + x/2");
    // The eager baseline first (the first run in a process also pays start-up costs:
    // page faults, thread pools), then the traced training with its log.
    config::run_functions_eagerly(true);
    let (eager, t_eager) = train(&x, &y, 401, false);
    config::run_functions_eagerly(false);
    println!("traced training step (#[tf_function]):");
    let (traced, t_traced) = train(&x, &y, 401, true);
    println!("  traces: {} (one per input signature)", train_step::tracing_count());

    println!("loss went from {:.4} to {:.4}", traced[0], traced[traced.len() - 1]);
    println!("time per step: traced {t_traced:.1} µs, eager {t_eager:.1} µs");
    let same = traced.iter().zip(&eager).all(|(a, b)| a.to_bits() == b.to_bits());
    println!("run_functions_eagerly(true) gives the same losses, bit for bit: {same}");
    println!(
        "the traced graph:\n{}",
        train_step::concrete_functions()[0].ir_text().lines().take(12).collect::<Vec<_>>().join("\n")
    );
    println!("  …");
}
