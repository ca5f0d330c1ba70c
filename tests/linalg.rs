//! matmul: 2-D, batched with broadcasting, transpose flags, integers; GEMM determinism.

mod common;
use common::*;
use tensorjit::prelude::*;

fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    c
}

#[test]
fn matmul_2d_hand_computed() {
    let a = t32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = t32(&[7.0, 8.0, 9.0, 10.0, 11.0, 12.0], &[3, 2]);
    assert_eq!(f32s(&a.matmul(&b)), vec![58.0, 64.0, 139.0, 154.0]);
    assert_eq!(f32s(&a.matmul_t(&a, false, true)), vec![14.0, 32.0, 32.0, 77.0]);
    assert_eq!(f32s(&a.matmul_t(&a, true, false))[..3], [17.0, 22.0, 27.0]);
    assert_eq!(f32s(&b.matmul_t(&a, true, true)), f32s(&a.matmul(&b).t()));
}

#[test]
fn matmul_random_odd_sizes_vs_naive() {
    for (seed, &(m, k, n)) in [(1, 1, 1), (3, 50, 7), (50, 3, 783), (17, 129, 33)].iter().enumerate() {
        let a = rand_f64(seed as u64 * 2 + 100, &[m, k], -1.0, 1.0);
        let b = rand_f64(seed as u64 * 2 + 101, &[k, n], -1.0, 1.0);
        assert_close(&f64s(&a.matmul(&b)), &naive(&f64s(&a), &f64s(&b), m, k, n), 1e-12);
    }
}

#[test]
fn batched_matmul_broadcasts_batch_dims() {
    let a = rand_f64(21, &[2, 1, 3, 4], -1.0, 1.0);
    let b = rand_f64(22, &[3, 4, 5], -1.0, 1.0);
    let c = a.matmul(&b);
    assert_eq!(c.dims(), &[2, 3, 3, 5]);
    let (av, bv, cv) = (f64s(&a), f64s(&b), f64s(&c));
    for i in 0..2 {
        for j in 0..3 {
            let want = naive(&av[i * 12..(i + 1) * 12], &bv[j * 20..(j + 1) * 20], 3, 4, 5);
            assert_close(&cv[(i * 3 + j) * 15..][..15], &want, 1e-12);
        }
    }
}

/// A shared right operand (`x[b, t, d] @ w[d, e]`, a Dense layer over a sequence) is
/// one GEMM over all b·t rows: the bits of the 2-D matmul of the merged rows, and the
/// values of the per-batch products.
#[test]
fn a_shared_right_operand_is_one_gemm_over_all_rows() {
    for (seed, (b, t, d, e)) in [(30, (4, 5, 7, 3)), (31, (3, 40, 33, 17)), (32, (1, 6, 5, 4))] {
        let x = rand_f32(seed, &[b, t, d], -1.0, 1.0);
        for w in [rand_f32(seed + 100, &[d, e], -1.0, 1.0), rand_f32(seed + 200, &[1, d, e], -1.0, 1.0)] {
            let got = x.matmul(&w);
            assert_eq!(got.dims(), &[b, t, e]);
            let merged = x.reshape([-1, d as i64]).matmul(&w.reshape([d as i64, e as i64]));
            let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&merged));
            let per_batch: Vec<f64> = (0..b)
                .flat_map(|i| {
                    f32s(&x.narrow(0, i, 1).reshape([t as i64, d as i64]).matmul(&w.reshape([d as i64, e as i64])))
                })
                .map(f64::from)
                .collect();
            assert_close(&f32s(&got).iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), &per_batch, 1e-5);
        }
    }
    // Transposed or broadcast left operands keep one GEMM per batch.
    let (a, w) = (rand_f64(33, &[2, 4, 3], -1.0, 1.0), rand_f64(34, &[4, 5], -1.0, 1.0));
    let got = f64s(&a.matmul_t(&w, true, false));
    for i in 0..2 {
        assert_close(&got[i * 15..][..15], &f64s(&a.narrow(0, i, 1).reshape([4, 3]).matmul_t(&w, true, false)), 1e-12);
    }
}

/// Many small products (the per-head scores of attention) run in parallel over the
/// batch: each is still the 2-D matmul of its own operands, bit for bit.
#[test]
fn many_small_products_give_each_products_bits() {
    // 8000 products of 5×7·7×6: over the parallel threshold (2^20 multiply-adds).
    let (a, b) = (rand_f32(40, &[2, 4000, 5, 7], -1.0, 1.0), rand_f32(41, &[4000, 7, 6], -1.0, 1.0));
    let bt = b.transpose(-1, -2);
    let got = f32s(&a.matmul_t(&bt, false, true));
    for i in (0..8000).step_by(137) {
        let ai = a.reshape([8000, 5, 7]).narrow(0, i, 1).reshape([5, 7]);
        let bi = bt.narrow(0, i % 4000, 1).reshape([6, 7]);
        let want = f32s(&ai.matmul_t(&bi, false, true));
        assert_eq!(got[i * 30..(i + 1) * 30], want[..], "product {i}");
    }
}

#[test]
fn integer_matmul() {
    let a = Tensor::from_vec(vec![1i64, 2, 3, 4], [2, 2]).unwrap();
    assert_eq!(a.matmul(&a).to_vec::<i64>().unwrap(), vec![7, 10, 15, 22]);
}

/// The GEMM's threads split the output's columns (or, for a narrow product, its rows),
/// never k; runs with one and with three threads (child processes with
/// RAYON_NUM_THREADS set) must give the same bits, for a wide and a narrow product.
#[test]
fn gemm_result_independent_of_thread_count() {
    let a = rand_f32(31, &[512, 300], -1.0, 1.0);
    let b = rand_f32(32, &[300, 520], -1.0, 1.0);
    let (tall, narrow) = (rand_f32(33, &[900, 200], -1.0, 1.0), rand_f32(34, &[200, 24], -1.0, 1.0));
    let mut bits: Vec<u32> = f32s(&a.matmul(&b)).iter().map(|v| v.to_bits()).collect();
    bits.extend(f32s(&tall.matmul(&narrow)).iter().map(|v| v.to_bits()));
    let digest = bits.iter().fold(0u64, |h, &b| h.rotate_left(5) ^ b as u64);
    if std::env::var_os("TJ_GEMM_CHILD").is_some() {
        println!("DIGEST {digest}");
        return;
    }
    for threads in ["1", "3"] {
        let out = child_stdout(
            "gemm_result_independent_of_thread_count",
            &[("TJ_GEMM_CHILD", "1"), ("RAYON_NUM_THREADS", threads)],
        );
        let child = out.lines().find_map(|l| l.split("DIGEST ").nth(1)).expect("child printed its digest");
        assert_eq!(child, digest.to_string(), "a {threads}-thread GEMM differs from this process's");
    }
}

/// On x86-64 a matmul reads denormal operands as 0 and flushes denormal results to 0,
/// as TensorFlow's CPU kernels do (BENCHMARKS.md, "Denormals": they cost ~100× per
/// multiply-add); eagerly and in a traced function alike, few rows or many. Elementwise
/// ops keep IEEE denormals.
#[test]
fn matmul_flushes_denormals_to_zero_on_x86() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let tiny = f32::MIN_POSITIVE / 16.0;
    for m in [2usize, 40] {
        // Row 0 of `a` is denormal; row 1 is 1e-20, whose products with 1e-20 are 1e-40.
        let mut a = vec![tiny; 3];
        a.extend(std::iter::repeat_n(1e-20f32, 3));
        a.extend(f32s(&rand_f32(7, &[m - 2, 3], 1.0, 2.0)));
        let a = t32(&a, &[m, 3]);
        let b = t32(&[1e-20, 1e-20, 0.0, 2.0, 0.0, 0.0], &[3, 2]);
        let traced = function("denormal_matmul", |(a, b): (Tensor, Tensor)| a.matmul(&b));
        for y in [a.matmul(&b), traced.call((a.clone(), b.clone()))] {
            let y = f32s(&y);
            assert_eq!(&y[..2], &[0.0, 0.0], "m = {m}: denormal operands read as 0");
            // 1e-20·1e-20 = 1e-40 (IEEE: a denormal) is flushed.
            assert_eq!(y[2..4], [0.0, 1e-20f32 * 2.0], "m = {m}: a denormal result is 0");
            assert!(y[4..].iter().all(|v| v.is_normal()), "m = {m}");
        }
    }
    let d = t32(&[tiny], &[1]) * 2.0;
    assert_eq!(f32s(&d), [tiny * 2.0], "elementwise ops keep denormals");
}
