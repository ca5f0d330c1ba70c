//! Eager-mode benchmarks (criterion): W1 dispatch, W2 small chain, W3 large elementwise,
//! W8 reduction, f32 GEMM 512³ / 2048³, `sin` of 1M f32 (moderate and huge arguments),
//! `erf`/`tanh`/`floormod` of 1M f32, row-wise max/argmax/softmax, transpose and select
//! of 1024² f32, matmuls sharing their right operand and einsum contractions, and a
//! 256 MiB copy (the bandwidth limit). See BENCHMARKS.md for results.
//!
//! `cargo bench --bench eager_ops`

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tensorjit::Tensor;

fn workloads(c: &mut Criterion) {
    let x1 = common::uniform(1, &[4], -2.0, 2.0);
    let s = common::checksum(&common::dispatch(&x1));
    assert!((s - 5.809_121_1).abs() < 1e-5, "W1 checksum {s}");
    c.bench_function("W1_dispatch eager x*2+1 [4]", |b| b.iter(|| common::dispatch(&x1)));

    let (x2, y2) = (common::uniform(2, &[64], -2.0, 2.0), common::uniform(3, &[64], -2.0, 2.0));
    let s = common::checksum(&common::chain(&x2, &y2));
    assert!((s - 37.732_863_8).abs() < 1e-3, "W2 checksum {s}");
    c.bench_function("W2_small_chain eager [64]", |b| b.iter(|| common::chain(&x2, &y2)));

    let n = 4_000_000;
    let (x3, y3) = (common::uniform(2, &[n], -2.0, 2.0), common::uniform(3, &[n], -2.0, 2.0));
    let s = common::checksum(&common::chain(&x3, &y3));
    assert!((s - 2_533_226.54).abs() < 1.0, "W3 checksum {s}");
    let mut g = c.benchmark_group("W3_large_elementwise");
    g.throughput(Throughput::Bytes(12 * n as u64)).sample_size(20).measurement_time(Duration::from_secs(4));
    g.bench_function("eager [4M]", |b| b.iter(|| common::chain(&x3, &y3)));
    g.finish();

    let a = common::uniform(31, &[4096, 1024], 0.0, 1.0);
    let m = a.sum(1, false).mean_all().to_scalar::<f32>().expect("scalar");
    assert!((m as f64 - 511.961_76).abs() < 1e-2, "W8 checksum {m}");
    let mut g = c.benchmark_group("W8_reduction");
    g.throughput(Throughput::Bytes(16 << 20)).sample_size(30);
    g.bench_function("eager mean(sum(a,1))", |b| b.iter(|| a.sum(1, false).mean_all()));
    g.finish();
}

/// `sin` of 1M f32: arguments in [−100, 100] (the branch-free short reduction) and
/// magnitudes 2^30..2^120 (every element through the exact reduction).
fn transcendental(c: &mut Criterion) {
    let n = 1 << 20;
    let moderate = common::uniform(51, &[n], -100.0, 100.0);
    let huge = (&common::uniform(52, &[n], 30.0, 120.0) * std::f32::consts::LN_2).exp();
    let mut g = c.benchmark_group("sin_1M_f32");
    g.throughput(Throughput::Elements(n as u64)).sample_size(20);
    g.bench_function("|x| <= 100", |b| b.iter(|| moderate.sin()));
    g.bench_function("|x| in 2^30..2^120", |b| b.iter(|| huge.sin()));
    g.finish();
    // erf (in f64, rounded) and floormod (exact: libm's fmodf) over the same 1M.
    let divisors = common::uniform(53, &[n], 0.5, 3.0);
    let mut g = c.benchmark_group("other_1M_f32");
    g.throughput(Throughput::Elements(n as u64)).sample_size(20);
    g.bench_function("erf |x| <= 100", |b| b.iter(|| moderate.erf()));
    g.bench_function("tanh |x| <= 100", |b| b.iter(|| moderate.tanh()));
    g.bench_function("floormod by [0.5, 3]", |b| b.iter(|| &moderate % &divisors));
    g.bench_function("pow [0.5, 3]^x", |b| b.iter(|| divisors.pow(&moderate)));
    let wide = moderate.cast(tensorjit::DType::F64);
    for (name, f) in [
        ("f64 exp", tensorjit::Tensor::exp as fn(&tensorjit::Tensor) -> tensorjit::Tensor),
        ("f64 tanh", tensorjit::Tensor::tanh),
        ("f64 sigmoid", tensorjit::Tensor::sigmoid),
        ("f64 softplus", tensorjit::Tensor::softplus),
        ("f64 log", tensorjit::Tensor::log),
        ("f64 sin", tensorjit::Tensor::sin),
    ] {
        g.bench_function(name, |b| b.iter(|| f(&wide)));
    }
    g.finish();
}

fn gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("sgemm");
    for n in [512usize, 2048] {
        let a = common::uniform(41, &[n, n], -1.0, 1.0);
        let b = common::uniform(42, &[n, n], -1.0, 1.0);
        g.throughput(Throughput::Elements((2 * n * n * n) as u64)).sample_size(10);
        if n == 2048 {
            g.measurement_time(Duration::from_secs(6));
        }
        g.bench_function(format!("matmul {n}^3"), |bch| bch.iter(|| a.matmul(&b)));
    }
    g.finish();
}

/// The machine's limit for W3-style streaming: a 256 MiB copy (bytes read + written).
fn copy_bandwidth(c: &mut Criterion) {
    let n = 64 << 20; // f32 elements = 256 MiB
    let src = vec![1.0f32; n];
    let mut dst = vec![0.0f32; n];
    let mut g = c.benchmark_group("L1_copy_256MB");
    g.throughput(Throughput::Bytes(2 * 4 * n as u64)).sample_size(10).measurement_time(Duration::from_secs(4));
    g.bench_function("copy_from_slice (read+write)", |b| b.iter(|| dst.copy_from_slice(&src)));
    g.finish();
}

/// Row-wise max / argmax / softmax, a transpose and a select over 1024 × 1024 f32 (the
/// kernels whose loops were scalar until 2026-12-07, see BENCHMARKS.md), and cumsum.
fn rows_and_layout(c: &mut Criterion) {
    let x = common::uniform(61, &[1024, 1024], -3.0, 3.0);
    let mask = x.lt(0.0);
    let mut g = c.benchmark_group("rows_1024x1024_f32");
    g.throughput(Throughput::Elements(1 << 20)).sample_size(20);
    g.bench_function("max axis 1", |b| b.iter(|| x.max(1, false)));
    g.bench_function("max axis 0", |b| b.iter(|| x.max(0, false)));
    g.bench_function("argmax axis 1", |b| b.iter(|| x.argmax(1)));
    g.bench_function("softmax axis 1", |b| b.iter(|| x.softmax(-1)));
    g.bench_function("sum axis 1 (reference)", |b| b.iter(|| x.sum(1, false)));
    g.bench_function("transpose", |b| b.iter(|| x.t()));
    g.bench_function("where(mask, x, 1)", |b| b.iter(|| x.select(&mask, 1.0)));
    g.bench_function("cumsum axis 1", |b| b.iter(|| x.cumsum(1)));
    g.bench_function("cumsum axis 0", |b| b.iter(|| x.cumsum(0)));
    g.bench_function("argsort axis 1", |b| b.iter(|| x.argsort(1, false)));
    g.bench_function("top_k 5", |b| b.iter(|| x.top_k(5)));
    g.finish();
}

/// Matmuls whose right operand is shared by every batch (a Dense layer over a
/// sequence), and einsum contractions against the matmuls they lower to.
fn contractions(c: &mut Criterion) {
    let mut g = c.benchmark_group("contractions_f32");
    g.sample_size(20);
    let (x, w) = (common::uniform(71, &[256, 16, 64], -1.0, 1.0), common::uniform(72, &[64, 64], -1.0, 1.0));
    g.bench_function("matmul x[256,16,64] @ w[64,64]", |b| b.iter(|| x.matmul(&w)));
    g.bench_function("einsum bti,io->bto x[256,16,64] w[64,64]", |b| {
        b.iter(|| Tensor::einsum("bti,io->bto", &[&x, &w]))
    });
    let (y, v) = (common::uniform(73, &[8, 512, 256], -1.0, 1.0), common::uniform(74, &[256, 256], -1.0, 1.0));
    g.bench_function("matmul x[8,512,256] @ w[256,256]", |b| b.iter(|| y.matmul(&v)));
    let (q, k) = (common::uniform(75, &[16, 128, 64], -1.0, 1.0), common::uniform(76, &[16, 128, 64], -1.0, 1.0));
    g.bench_function("matmul_t q[16,128,64] k^T", |b| b.iter(|| q.matmul_t(&k, false, true)));
    g.bench_function("einsum bqd,bkd->bqk q[16,128,64]", |b| b.iter(|| Tensor::einsum("bqd,bkd->bqk", &[&q, &k])));
    let (x, w) = (common::uniform(77, &[32, 64, 128], -1.0, 1.0), common::uniform(78, &[128, 8, 16], -0.1, 0.1));
    g.bench_function("einsum btd,dhk->bthk x[32,64,128] w[128,8,16]", |b| {
        b.iter(|| Tensor::einsum("btd,dhk->bthk", &[&x, &w]))
    });
    let mha = tensorjit::nn::layers::MultiHeadAttention::new(8, 16);
    let _ = tensorjit::nn::prelude::Module::call(&mha, &x, false);
    g.bench_function("MultiHeadAttention(8, 16) self-attention x[32,64,128]", |b| {
        b.iter(|| tensorjit::nn::prelude::Module::call(&mha, &x, false))
    });
    g.finish();
}

criterion_group!(benches, workloads, transcendental, rows_and_layout, contractions, gemm, copy_bandwidth);
criterion_main!(benches);
