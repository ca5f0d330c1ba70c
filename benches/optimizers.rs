//! The update rules' cost: one training step of a 784→512→10 MLP (W5's sizes, batch
//! 128) with each optimizer, eager beside traced, and with an L2 regularizer on both
//! kernels. `cargo bench --bench optimizers`
//!
//! The learning rates are tiny: thousands of steps on one batch would otherwise
//! memorise it, and the time would measure the denormal numbers that drives into the
//! softmax and the optimizer slots, not the update rules (BENCHMARKS.md, "Denormals").

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tensorjit::nn::prelude::*;
use tensorjit::nn::Module;
use tensorjit::{function, random, DType, GradientTape, Tensor};

fn model(l2: bool) -> Sequential {
    let dense = |units: usize| {
        let d = Dense::new(units);
        if l2 {
            d.kernel_regularizer(Regularizer::L2(1e-4))
        } else {
            d
        }
    };
    Sequential::new(vec![dense(512).activation(Activation::Relu).boxed(), dense(10).boxed()]).with_input_shape(&[784])
}

/// A fresh optimizer per run.
type MakeOptimizer = Box<dyn Fn() -> Arc<dyn Optimizer>>;

/// The loss (plus penalties) and one update.
fn step(m: &Sequential, opt: &dyn Optimizer, x: &Tensor, y: &Tensor) -> Tensor {
    let vars = m.trainable_variables();
    let tape = GradientTape::new();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true }.compute(y, &m.call(x, true));
    let loss = m.losses().iter().fold(loss, |l, p| &l + p);
    let grads = tape.gradient(&loss, &vars);
    opt.apply_gradients(&grads.into_iter().zip(vars).collect::<Vec<_>>());
    loss
}

fn bench(c: &mut Criterion) {
    let x = random::uniform([128, 784], 0.0, 1.0, DType::F32, Some(1));
    let y = random::uniform([128], 0.0, 10.0, DType::F32, Some(2)).floor().cast(DType::I64);
    let optimizers: Vec<(&str, MakeOptimizer, bool)> = vec![
        ("SGD", Box::new(|| Arc::new(SGD::new(1e-5))), false),
        ("SGD momentum", Box::new(|| Arc::new(SGD::new(1e-5).momentum(0.9))), false),
        ("Adam", Box::new(|| Arc::new(Adam::new(1e-7))), false),
        ("AdamW", Box::new(|| Arc::new(AdamW::new(1e-7))), false),
        ("Nadam", Box::new(|| Arc::new(Nadam::new(1e-7))), false),
        ("Lion", Box::new(|| Arc::new(Lion::new(1e-8))), false),
        ("RMSprop centered", Box::new(|| Arc::new(RMSprop::new(1e-7).centered(true))), false),
        ("Adam + L2", Box::new(|| Arc::new(Adam::new(1e-7))), true),
    ];
    let mut group = c.benchmark_group("train_step");
    group.sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    for (name, make, l2) in &optimizers {
        for traced in [false, true] {
            let (m, opt) = (model(*l2), make());
            m.call(&x, false);
            let (mm, o) = (m.clone(), opt.clone());
            let f = function("opt_step", move |(x, y): (Tensor, Tensor)| step(&mm, o.as_ref(), &x, &y))
                .with_run_eagerly(!traced);
            f.call((x.clone(), y.clone()));
            let mode = if traced { "traced" } else { "eager" };
            group.bench_function(format!("{name} {mode}"), |b| b.iter(|| f.call((x.clone(), y.clone()))));
        }
    }
    // A batch learned by heart: 2,000 Adam steps at 1e-3 on the same 128 examples make
    // the softmax probabilities of the other classes tiny (denormal, below 1.2e-38), and
    // the gradients that flow into both weight GEMMs with them; the measured steps go on
    // training. (BENCHMARKS.md, "Denormals".)
    let (m, opt) = (model(true), Arc::new(Adam::new(1e-3)) as Arc<dyn Optimizer>);
    m.call(&x, false);
    let (mm, o) = (m.clone(), opt.clone());
    let traced = function("opt_step", move |(x, y): (Tensor, Tensor)| step(&mm, o.as_ref(), &x, &y));
    for _ in 0..2000 {
        traced.call((x.clone(), y.clone()));
    }
    group.bench_function("Adam + L2 memorised batch traced", |b| b.iter(|| traced.call((x.clone(), y.clone()))));
    let eager =
        function("opt_step", move |(x, y): (Tensor, Tensor)| step(&m, opt.as_ref(), &x, &y)).with_run_eagerly(true);
    group.bench_function("Adam + L2 memorised batch eager", |b| b.iter(|| eager.call((x.clone(), y.clone()))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
