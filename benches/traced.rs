//! Traced benchmarks (the Cranelift JIT; `TENSORJIT_BACKEND=interp` for the
//! interpreter): W1–W8 of shared/WORKLOADS.md, eager beside traced in the same run.
//! `cargo bench --bench traced`

mod common;

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use tensorjit::prelude::*;

fn mlp_forward(x: &Tensor, p: &[Tensor]) -> Tensor {
    common::mlp_logits(x, p).softmax(-1)
}

/// W6 as a user writes it.
#[tf_function]
fn w6(x: &Tensor) -> Tensor {
    let mut x = x.clone();
    while x.sum_all().lt(1000.0) {
        x = &x * 1.5 + 1.0;
    }
    x
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

    let params = common::mlp_params();
    let xall = common::uniform(21, &[128, 784], 0.0, 1.0);
    let w4 = function("w4", |(x, p): (Tensor, Vec<Tensor>)| mlp_forward(&x, &p));
    assert!((common::checksum(&w4.call((xall.clone(), params.clone()))) - 128.0).abs() < 1e-3);
    let mut large = c.benchmark_group("large");
    large.sample_size(20);
    let n3 = 4_000_000;
    let (x3, y3) = (common::uniform(2, &[n3], -2.0, 2.0), common::uniform(3, &[n3], -2.0, 2.0));
    assert!((common::checksum(&w2.call((x3.clone(), y3.clone()))) - 2_533_226.54).abs() < 1.0);
    large.bench_function("W3_large_elementwise eager", |b| b.iter(|| common::chain(&x3, &y3)));
    large.bench_function("W3_large_elementwise traced", |b| b.iter(|| w2.call((x3.clone(), y3.clone()))));
    let a8 = common::uniform(31, &[4096, 1024], 0.0, 1.0);
    let red = |a: &Tensor| a.sum(1, false).mean_all();
    let w8 = function("w8", move |(a,): (Tensor,)| red(&a));
    assert!((common::checksum(&w8.call((a8.clone(),))) - 511.961_76).abs() < 1e-3);
    large.bench_function("W8_reduction eager", |b| b.iter(|| red(&a8)));
    large.bench_function("W8_reduction traced", |b| b.iter(|| w8.call((a8.clone(),))));
    large.bench_function("W4_mlp_forward eager", |b| b.iter(|| mlp_forward(&xall, &params)));
    large.bench_function("W4_mlp_forward traced", |b| b.iter(|| w4.call((xall.clone(), params.clone()))));
    let y5 = common::labels();
    for mode in ["eager", "traced"] {
        let vars: Vec<Variable> = common::mlp_variables(&params);
        let v2 = vars.clone();
        let w5 = function("w5", move |(x, y): (Tensor, Tensor)| common::mlp_train_step(&v2, &x, &y));
        large.bench_function(format!("W5_mlp_train_step {mode}"), |b| {
            b.iter(|| {
                if mode == "eager" {
                    common::mlp_train_step(&vars, &xall, &y5)
                } else {
                    w5.call((xall.clone(), y5.clone()))
                }
            })
        });
    }
    large.finish();

    // W6: a Rust `while` on a tensor condition (AutoGraph → one `while` node) against the
    // eager loop that reads the condition back every trip.
    let x6 = Tensor::ones([16], DType::F32);
    assert_eq!(common::checksum(&w6(&x6)), 1198.1875);
    c.bench_function("W6_while_loop eager", |b| {
        b.iter(|| {
            let mut x = x6.clone();
            while x.sum_all().to_scalar::<f32>().unwrap_or(f32::NAN) < 1000.0 {
                x = &x * 1.5 + 1.0;
            }
            x
        })
    });
    c.bench_function("W6_while_loop traced", |b| b.iter(|| w6(&x6)));

    // W7: a fresh function, first call per batch size 1..=10 (trace + first run), then
    // steady state cycling the batch sizes.
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
