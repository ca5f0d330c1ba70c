//! Convolutions' cost, forward and backward: a 3×3 `conv2d` (32 → 32 channels), the 3×3
//! `depthwise_conv2d` of 32 channels (built from strided slices and fused products),
//! and a separable convolution (the depthwise one, then a 1×1 `conv2d` to 32), on a
//! batch of 32 images of 32×32, `same` padding; eager beside traced.
//! `cargo bench --bench convolutions`; the JAX peer is `benches/peers/jax_convolutions.py`.

use criterion::{criterion_group, criterion_main, Criterion};
use tensorjit::{function, random, DType, GradientTape, Padding, Tensor};

type Conv = fn(&Tensor, &[Tensor]) -> Tensor;

fn conv(x: &Tensor, w: &[Tensor]) -> Tensor {
    x.conv2d(&w[0], [1, 1], Padding::Same)
}

fn depthwise(x: &Tensor, w: &[Tensor]) -> Tensor {
    x.depthwise_conv2d(&w[0], [1, 1], Padding::Same)
}

fn separable(x: &Tensor, w: &[Tensor]) -> Tensor {
    x.depthwise_conv2d(&w[0], [1, 1], Padding::Same).conv2d(&w[1], [1, 1], Padding::Valid)
}

/// `Σ f(x)·r` and its gradients with respect to `x` and the filters.
fn value_and_grads(f: Conv, x: &Tensor, w: &[Tensor], r: &Tensor) -> Vec<Tensor> {
    let tape = GradientTape::new();
    tape.watch(x);
    w.iter().for_each(|w| tape.watch(w));
    let y = (f(x, w) * r).sum_all();
    let mut targets = vec![x.clone()];
    targets.extend(w.iter().cloned());
    let grads = tape.gradient(&y, &targets);
    std::iter::once(y).chain(grads.into_iter().flatten()).collect()
}

fn bench(c: &mut Criterion) {
    let normal = |dims: &[usize], seed| random::normal(dims.to_vec(), 0.0, 1.0, DType::F32, Some(seed));
    let x = normal(&[32, 32, 32, 32], 1);
    let r = normal(&[32, 32, 32, 32], 2);
    let cases: [(&str, Conv, Vec<Tensor>); 3] = [
        ("conv2d 3x3", conv, vec![normal(&[3, 3, 32, 32], 3)]),
        ("depthwise 3x3", depthwise, vec![normal(&[3, 3, 32, 1], 4)]),
        ("separable 3x3", separable, vec![normal(&[3, 3, 32, 1], 5), normal(&[1, 1, 32, 32], 6)]),
    ];
    let mut group = c.benchmark_group("convolutions");
    group.sample_size(20);
    for (name, f, w) in cases {
        let traced = function(name, move |(x, w, r): (Tensor, Vec<Tensor>, Tensor)| value_and_grads(f, &x, &w, &r));
        let eager = value_and_grads(f, &x, &w, &r);
        let once = traced.call((x.clone(), w.clone(), r.clone()));
        assert_eq!(once[0].to_vec::<f32>().unwrap(), eager[0].to_vec::<f32>().unwrap(), "{name}: traced == eager");
        group.bench_function(format!("{name} eager"), |b| b.iter(|| value_and_grads(f, &x, &w, &r)));
        group.bench_function(format!("{name} traced"), |b| b.iter(|| traced.call((x.clone(), w.clone(), r.clone()))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
