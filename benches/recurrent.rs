//! Recurrent layers: the loss and gradients of `Embedding(21, 16) → Bidirectional(LSTM(16),
//! LSTM(16)) → Dense(1)` with a binary cross-entropy, on a batch of 64 id sequences
//! padded to 24 steps (lengths 4 to 24), with and without the mask of padded steps,
//! eager beside traced. `benches/peers/jax_lstm.py` runs the same step in JAX.
//! `cargo bench --bench recurrent`

use criterion::{criterion_group, criterion_main, Criterion};
use tensorjit::nn::prelude::*;
use tensorjit::prelude::*;

const BATCH: usize = 64;
const STEPS: usize = 24;

/// A batch of padded id sequences and their labels (splitmix64, fixed seed).
fn batch() -> (Tensor, Tensor) {
    let mut state = 7u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut ids = Vec::with_capacity(BATCH * STEPS);
    for _ in 0..BATCH {
        let len = 4 + (next() % (STEPS as u64 - 3)) as usize;
        ids.extend((0..STEPS).map(|s| if s < len { 1 + (next() % 20) as i64 } else { 0 }));
    }
    let labels: Vec<f32> = (0..BATCH).map(|_| (next() % 2) as f32).collect();
    (Tensor::from_vec(ids, [BATCH, STEPS]).unwrap(), Tensor::from_vec(labels, [BATCH, 1]).unwrap())
}

fn model(mask_zero: bool) -> Sequential {
    Sequential::new(vec![
        Embedding::new(21, 16).mask_zero(mask_zero).boxed(),
        Bidirectional::new(LSTM::new(16), LSTM::new(16)).boxed(),
        Dense::new(1).boxed(),
    ])
    .with_input_shape(&[STEPS])
}

/// The loss and every weight's gradient.
fn step(m: &Sequential, x: &Tensor, y: &Tensor) -> Vec<Tensor> {
    let vars = m.trainable_variables();
    let tape = GradientTape::new();
    let loss = Loss::BinaryCrossentropy { from_logits: true }.compute(y, &m.call(x, true));
    let grads = tape.gradient(&loss, &vars);
    std::iter::once(loss).chain(grads.into_iter().flatten()).collect()
}

fn bench(c: &mut Criterion) {
    let (x, y) = batch();
    let mut group = c.benchmark_group("lstm_train_step");
    for mask_zero in [true, false] {
        let m = model(mask_zero);
        let mm = m.clone();
        let traced = tensorjit::function("lstm_step", move |(x, y): (Tensor, Tensor)| step(&mm, &x, &y));
        let (e, t) = (step(&m, &x, &y), traced.call((x.clone(), y.clone())));
        for (a, b) in e.iter().zip(&t) {
            assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap(), "traced == eager");
        }
        let what = if mask_zero { "masked" } else { "unmasked" };
        group.bench_function(format!("{what} eager"), |b| b.iter(|| step(&m, &x, &y)));
        group.bench_function(format!("{what} traced"), |b| b.iter(|| traced.call((x.clone(), y.clone()))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
