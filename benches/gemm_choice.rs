//! Why tensorjit's matmul uses `matrixmultiply`: f32 GEMM with the `gemm` crate (Rayon)
//! vs tensorjit's matmul (`matrixmultiply` on one column range per Rayon thread), 512³
//! and 2048³. Run each in its own process
//! so the two thread pools never compete for the cores:
//!
//! `cargo bench --bench gemm_choice -- gemm_crate` then `... -- matrixmultiply`

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tensorjit::Tensor;

fn choice(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_choice");
    for n in [512usize, 2048] {
        let a = common::uniform(41, &[n, n], -1.0, 1.0).to_vec::<f32>().expect("f32");
        let b = common::uniform(42, &[n, n], -1.0, 1.0).to_vec::<f32>().expect("f32");
        let mut dst = vec![0f32; n * n];
        g.throughput(Throughput::Elements((2 * n * n * n) as u64))
            .sample_size(10)
            .measurement_time(Duration::from_secs(5));
        g.bench_function(format!("gemm_crate {n}"), |bch| {
            bch.iter(|| unsafe {
                gemm::gemm(
                    n,
                    n,
                    n,
                    dst.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    n as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(0),
                )
            })
        });
        // tensorjit's matmul: matrixmultiply on one column range per rayon thread.
        let (ta, tb) =
            (Tensor::from_vec(a.clone(), [n, n]).expect("a"), Tensor::from_vec(b.clone(), [n, n]).expect("b"));
        g.bench_function(format!("matrixmultiply {n}"), |bch| bch.iter(|| ta.matmul(&tb)));
    }
    g.finish();
}

criterion_group!(benches, choice);
criterion_main!(benches);
