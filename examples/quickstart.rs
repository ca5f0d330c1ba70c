//! tensorjit quickstart: a small model with variables, trained with `GradientTape`.
//!
//! A two-layer MLP learns y = sin(3x) + x/2 from 256 noisy points with plain gradient
//! descent. Every op runs eagerly through tensorjit's single op layer; the tracing issue
//! turns `train_step` into a `#[tf_function]` without changing its body.
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

    fn forward(&self, x: &Tensor) -> Tensor {
        let h = (x.matmul(&self.w1.read()) + &self.b1).tanh();
        h.matmul(&self.w2.read()) + &self.b2
    }

    fn variables(&self) -> [&Variable; 4] {
        [&self.w1, &self.b1, &self.w2, &self.b2]
    }
}

/// One step of gradient descent on the mean squared error; returns the loss.
fn train_step(model: &Mlp, x: &Tensor, y: &Tensor, lr: f32) -> f32 {
    let tape = GradientTape::new();
    let loss = (model.forward(x) - y).square().mean_all();
    let grads = tape.gradient(&loss, &model.variables());
    for (v, g) in model.variables().into_iter().zip(grads) {
        if let Some(g) = g {
            v.assign_sub(&g * lr);
        }
    }
    loss.to_scalar::<f32>().unwrap_or(f32::NAN)
}

fn main() {
    random::set_seed(0);
    let x = random::uniform([256, 1], -2.0, 2.0, DType::F32, Some(10));
    let noise = random::normal([256, 1], 0.0, 0.05, DType::F32, Some(11));
    let y = (&x * 3.0).sin() + &x * 0.5 + &noise;

    let model = Mlp::new(32);
    println!("tensorjit quickstart: 2-layer MLP (1 → 32 → 1, tanh) fitting sin(3x) + x/2");
    let start = Instant::now();
    let mut first = None;
    let mut last = 0.0;
    for step in 0..=400 {
        last = train_step(&model, &x, &y, 0.1);
        first.get_or_insert(last);
        if step % 50 == 0 {
            println!("step {step:>3}  loss {last:.5}");
        }
    }
    let per_step = start.elapsed().as_secs_f64() * 1e6 / 401.0;
    println!("loss went from {:.4} to {last:.4}; {per_step:.1} µs per eager training step", first.unwrap_or(last));
    println!("first-layer kernel: {}", model.w1.read().slice(&[SliceArg::full(), (0..4).into()]));
}
