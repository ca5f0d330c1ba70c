//! GPU ops at the edges of the kernels' shapes: permutes, broadcasts and slices (and
//! their gradients) of up to nine axes (runs of axes merged, or several launches),
//! matmuls whose operands' batches broadcast to each other, and problems with nothing to read (empty results,
//! reductions, matmuls and convolutions over nothing). On a GPU each gives the CPU's
//! result, stays there, and none is computed on the host (`host_fallbacks`). Without a
//! GPU these tests say so and pass: the kernels' walks and launch plans are checked on
//! every machine by tests/ptx_emulated.rs and the unit tests of `ptx::permute` and
//! `cuda::empty`.

use crate::common::gpu::{close_f64, first_gpu, same};
use crate::common::rand_f32;
use tensorjit::prelude::*;
use tensorjit_jit::cuda::backend::host_fallbacks;

#[test]
fn permutes_and_broadcasts_of_many_axes_run_on_the_gpu() {
    let Some(gpu) = first_gpu("GPU permutes of many axes") else { return };
    let on = |t: &Tensor| t.to(gpu).unwrap();
    let before = host_fallbacks();
    let x = rand_f32(1, &[2, 3, 2, 3, 2, 3, 2, 2], -4.0, 4.0);
    let (gx, i, b) = (on(&x), x.cast(DType::I64), x.gt(0.0));
    let (gi, gb) = (on(&i), on(&b));
    let reversed = [7, 6, 5, 4, 3, 2, 1, 0];
    let interleaved = [1, 3, 5, 7, 0, 2, 4, 6];
    let merged = [0, 1, 2, 6, 7, 3, 4, 5];
    for perm in [reversed, interleaved, merged] {
        same(&format!("f32 permute by {perm:?}"), &gx.permute(&perm), &x.permute(&perm));
        same(&format!("i64 permute by {perm:?}"), &gi.permute(&perm), &i.permute(&perm));
        same(&format!("bool permute by {perm:?}"), &gb.permute(&perm), &b.permute(&perm));
    }
    // Seven alternating runs of repeated and read axes.
    let y = rand_f32(2, &[2, 1, 2, 1, 2, 1, 2], -4.0, 4.0);
    let out = [2, 3, 2, 3, 2, 3, 2];
    same("f32 broadcast of seven runs", &on(&y).broadcast_to(out), &y.broadcast_to(out));
    let yb = y.gt(0.0);
    same("bool broadcast of seven runs", &on(&yb).broadcast_to(out), &yb.broadcast_to(out));
    // A binary op whose operand broadcasts in seven runs (materialised first).
    let z = rand_f32(3, &out, -4.0, 4.0);
    same("add with a seven-run broadcast", &(&on(&z) + &on(&y)), &(&z + &y));
    // A reduction over scattered axes of a rank-8 tensor (permuted first).
    let cpu = x.max(&[0, 2, 4, 6][..], false);
    same("max over every other axis", &gx.max(&[0, 2, 4, 6][..], false), &cpu);
    assert_eq!(host_fallbacks(), before, "every op above ran on the GPU");
}

#[test]
fn slices_cut_on_every_axis_of_eight_and_their_gradients_run_on_the_gpu() {
    let Some(gpu) = first_gpu("GPU slices of many axes") else { return };
    let on = |t: &Tensor| t.to(gpu).unwrap();
    let before = host_fallbacks();
    let x = rand_f32(5, &[3, 4, 3, 4, 3, 4, 3, 4], -4.0, 4.0);
    // Every axis cut (a run of its own): more runs than one launch walks.
    let s: Vec<SliceArg> = (0..8)
        .map(|k| match k % 3 {
            0 => SliceArg::new(Some(1), None, 1),
            1 => SliceArg::new(None, None, -2),
            _ => SliceArg::new(Some(0), Some(2), 1),
        })
        .collect();
    same("f32 slice cut on eight axes", &on(&x).slice(&s), &x.slice(&s));
    let i = x.cast(DType::I32);
    same("i32 slice cut on eight axes", &on(&i).slice(&s), &i.slice(&s));
    let grad = |x: &Tensor| {
        let v = Variable::new(x.clone(), "x");
        let tape = GradientTape::new();
        let y = v.read().slice(&s).tanh().sum_all();
        tape.gradient(&y, &[&v]).remove(0).expect("a gradient")
    };
    same("the gradient of a slice cut on eight axes", &grad(&on(&x)), &grad(&x));
    assert_eq!(host_fallbacks(), before, "every op above ran on the GPU");
}

#[test]
fn matmuls_whose_batches_broadcast_run_on_the_gpu() {
    let Some(gpu) = first_gpu("GPU batch-broadcast matmuls") else { return };
    let on = |t: &Tensor| t.to(gpu).unwrap();
    let before = host_fallbacks();
    let cases: [(&[usize], &[usize]); 3] =
        [(&[2, 1, 4, 5], &[3, 5, 6]), (&[3, 4, 5], &[2, 1, 5, 6]), (&[2, 1, 3, 4, 5], &[1, 2, 1, 5, 6])];
    for (seed, (da, db)) in cases.into_iter().enumerate() {
        let (a, b) = (rand_f32(10 + seed as u64, da, -1.0, 1.0), rand_f32(20 + seed as u64, db, -1.0, 1.0));
        let (a, b) = (a.cast(DType::F64), b.cast(DType::F64));
        let what = format!("f64 matmul {da:?} · {db:?}");
        close_f64(&what, &on(&a).matmul(&on(&b)), &a.matmul(&b), 1e-13);
        // f32 through sgemm: within the GEMM tolerance.
        let (a, b) = (a.cast(DType::F32), b.cast(DType::F32));
        let got = on(&a).matmul(&on(&b));
        assert_eq!(got.device(), gpu);
        close_f64(&format!("f32 {what}"), &got.cast(DType::F64), &a.matmul(&b).cast(DType::F64), 1e-4);
    }
    assert_eq!(host_fallbacks(), before, "every matmul above ran on the GPU");
}

#[test]
fn problems_with_nothing_to_read_are_answered_on_the_gpu() {
    let Some(gpu) = first_gpu("GPU empty problems") else { return };
    let on = |t: &Tensor| t.to(gpu).unwrap();
    let before = host_fallbacks();
    let x = Tensor::zeros([3, 0], DType::F32);
    let gx = on(&x);
    same("sum over nothing", &gx.sum(1, false), &x.sum(1, false));
    same("mean over nothing", &gx.mean(1, true), &x.mean(1, true));
    same("prod over nothing", &gx.prod(1, false), &x.prod(1, false));
    same("max over nothing", &gx.max(1, false), &x.max(1, false));
    let i = Tensor::zeros([0, 4], DType::I64);
    same("i64 min over nothing", &on(&i).min(0, false), &i.min(0, false));
    same("i64 mean over nothing", &on(&i).mean(0, false), &i.mean(0, false));
    let d = Tensor::zeros([2, 0, 3], DType::F64);
    same("f64 sum over nothing", &on(&d).sum(1, false), &d.sum(1, false));
    // Contractions over nothing: zeros.
    let (a, b) = (Tensor::zeros([4, 0], DType::F32), Tensor::zeros([0, 5], DType::F32));
    same("matmul over nothing", &on(&a).matmul(&on(&b)), &a.matmul(&b));
    // Empty results: no launch.
    let e = rand_f32(4, &[0, 3], -1.0, 1.0);
    same("an empty sum", &(&on(&e) + &on(&e)), &(&e + &e));
    same("an empty permute", &on(&e).permute(&[1, 0]), &e.permute(&[1, 0]));
    same("an empty reduction", &on(&e).sum(1, false), &e.sum(1, false));
    assert_eq!(host_fallbacks(), before, "every op above ran on the GPU");
}
