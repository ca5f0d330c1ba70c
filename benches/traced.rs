//! Traced (interpreter) benchmarks: W1, W2 and W7 of shared/WORKLOADS.md, eager beside
//! traced in the same run. `cargo bench --bench traced`

mod common;

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use tensorjit::prelude::*;

fn mlp_forward(x: &Tensor, p: &[Tensor]) -> Tensor {
    common::mlp_logits(x, p).softmax(-1)
}

fn bench(c: &mut Criterion) {
    let x1 = common::uniform(1, &[4], -2.0, 2.0);
    let w1 = function("w1", |(x,): (Tensor,)| common::dispatch(&x));
    assert_eq!(w1.call((x1.clone(),)).to_vec::<f32>().unwrap(), common::dispatch(&x1).to_vec::<f32>().unwrap());
    c.bench_function("W1_dispatch eager", |b| b.iter(|| common::dispatch(&x1)));
    c.bench_function("W1_dispatch traced", |b| b.iter(|| w1.call((x1.clone(),))));

    let (x2, y2) = (common::uniform(2, &[64], -2.0, 2.0), common::uniform(3, &[64], -2.0, 2.0));
    let w2 = function("w2", |(x, y): (Tensor, Tensor)| common::chain(&x, &y));
    assert!((common::checksum(&w2.call((x2.clone(), y2.clone()))) - 37.732_863_8).abs() < 1e-3);
    c.bench_function("W2_small_chain eager", |b| b.iter(|| common::chain(&x2, &y2)));
    c.bench_function("W2_small_chain traced", |b| b.iter(|| w2.call((x2.clone(), y2.clone()))));

    // W7: a fresh function, first call per batch size 1..=10 (trace + first run), then
    // steady state cycling the batch sizes.
    let params = common::mlp_params();
    let xall = common::uniform(21, &[128, 784], 0.0, 1.0);
    let xs: Vec<Tensor> = (1..=10).map(|b| xall.narrow(0, 0, b)).collect();
    let w7 = function("w7", |(x, p): (Tensor, Vec<Tensor>)| mlp_forward(&x, &p));
    let mut first_ms = Vec::new();
    for x in &xs {
        let t = Instant::now();
        let y = w7.call((x.clone(), params.clone()));
        first_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!((common::checksum(&y) - x.dims()[0] as f64).abs() < 1e-3);
    }
    first_ms.sort_by(f64::total_cmp);
    println!("W7 trace + first call per new shape: median {:.3} ms, max {:.3} ms", first_ms[5], first_ms[9]);
    let mut k = 0;
    c.bench_function("W7_retrace steady traced (b=1..10 round robin)", |b| {
        b.iter(|| {
            k = (k + 1) % 10;
            w7.call((xs[k].clone(), params.clone()))
        })
    });
    // The same with one trace for every batch size (input_signature with a None dim).
    let w7s = function("w7_sig", |(x, p): (Tensor, Vec<Tensor>)| mlp_forward(&x, &p)).with_input_signature(vec![
        TensorSpec::new(DType::F32, &[None, Some(784)]),
        TensorSpec::new(DType::F32, &[Some(784), Some(512)]),
        TensorSpec::new(DType::F32, &[Some(512)]),
        TensorSpec::new(DType::F32, &[Some(512), Some(512)]),
        TensorSpec::new(DType::F32, &[Some(512)]),
        TensorSpec::new(DType::F32, &[Some(512), Some(10)]),
        TensorSpec::new(DType::F32, &[Some(10)]),
    ]);
    let t = Instant::now();
    for x in &xs {
        w7s.call((x.clone(), params.clone()));
    }
    println!(
        "W7 with input_signature [None,784]: {} trace(s) for 10 batch sizes, {:.3} ms for the 10 first calls",
        w7s.tracing_count(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut k = 0;
    c.bench_function("W7_retrace steady traced, input_signature (b=1..10 round robin)", |b| {
        b.iter(|| {
            k = (k + 1) % 10;
            w7s.call((xs[k].clone(), params.clone()))
        })
    });
    let mut k = 0;
    c.bench_function("W7_retrace steady eager (b=1..10 round robin)", |b| {
        b.iter(|| {
            k = (k + 1) % 10;
            mlp_forward(&xs[k], &params)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
