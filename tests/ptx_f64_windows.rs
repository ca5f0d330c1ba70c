//! conv2d's im2col and col2im and pooling with its gradients on f64 tensors, on every
//! machine: the PTX entries run on the reference interpreter and give the CPU's bytes
//! (the GEMM between im2col and the result is cuBLAS's dgemm on a GPU, the CPU's here).
//! ptxas (tests/ptx.rs) checks that the same text assembles; a GPU (tests/gpu/typed.rs)
//! checks the rest.

mod common;

use common::element_bytes as bytes;
use common::emulated::run;
use common::{rand_f64, run_op};
use tensorjit::ops::{Conv2dParams, Op, PoolParams};
use tensorjit::prelude::*;
use tensorjit::trace::backend::{conv2d_geometry, pool2d_geometry};
use tensorjit_jit::ptx::{
    render_avg_pool, render_avg_pool_grad, render_col2im, render_im2col, render_max_pool, render_max_pool_grad,
    render_max_pool_grad_grad, Elem,
};

/// One check: its name, the entry's PTX, the op's operands, the op, the entry's values.
type Check<'a> = (&'static str, String, Vec<&'a Tensor>, Op, Vec<usize>);

#[test]
fn f64_pooling_and_its_gradients_give_the_cpus_bytes() {
    for (seed, xs, ksize, strides, padding) in [
        (0u64, [2, 8, 8, 3], [2, 2], [2, 2], Padding::Valid),
        (1, [1, 9, 7, 2], [3, 3], [2, 2], Padding::Same),
        (2, [2, 6, 5, 4], [3, 2], [1, 1], Padding::Same),
    ] {
        // Few distinct values (ties: the first maximum decides), a NaN.
        let mut v: Vec<f64> = common::f64s(&rand_f64(190 + seed, &xs, -3.0, 3.0)).iter().map(|x| x.round()).collect();
        v[5] = f64::NAN;
        let x = Tensor::from_vec(v, xs).unwrap();
        let smooth = rand_f64(240 + seed, &xs, -3.0, 3.0);
        let p = PoolParams { ksize, strides, padding };
        let g = pool2d_geometry(x.shape(), &p).expect("a valid pooling");
        let (outs, ins) = (g.n * g.out_h * g.out_w * g.c, g.n * g.h * g.w * g.c);
        let over_outputs =
            [g.c, g.out_w, g.out_h * g.out_w, g.h, g.w, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left];
        let over_inputs = [g.c, g.w, g.h, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h, g.out_w];
        let with = |total: usize, dims: &[usize]| [&[total][..], dims].concat();
        let dy = rand_f64(195 + seed, &[g.n, g.out_h, g.out_w, g.c], -1.0, 1.0);
        let what = format!("{xs:?} {ksize:?} {strides:?} {padding:?}");
        let checks: [Check<'_>; 5] = [
            ("max_pool", render_max_pool(Elem::F64, "k"), vec![&x], Op::MaxPool2d(p), with(outs, &over_outputs)),
            (
                "max_pool gradient",
                render_max_pool_grad(Elem::F64, "k"),
                vec![&x, &dy],
                Op::MaxPool2dGrad(p),
                with(ins, &over_inputs),
            ),
            (
                "max_pool second-order gradient",
                render_max_pool_grad_grad(Elem::F64, "k"),
                vec![&x, &smooth],
                Op::MaxPool2dGradGrad(p),
                with(outs, &over_outputs),
            ),
            ("avg_pool", render_avg_pool(Elem::F64, "k"), vec![&smooth], Op::AvgPool2d(p), with(outs, &over_outputs)),
            (
                "avg_pool gradient",
                render_avg_pool_grad(Elem::F64, "k"),
                vec![&dy],
                Op::AvgPool2dGrad { params: p, input: x.shape().clone() },
                with(ins, &over_inputs),
            ),
        ];
        for (name, ptx, inputs, op, values) in checks {
            let want = run_op(&op, &inputs);
            let got = run(&ptx, inputs.iter().map(|t| bytes(t)).collect(), want.numel() * 8, &values);
            assert_eq!(got, bytes(&want), "f64 {name} {what}");
        }
    }
}

#[test]
fn f64_im2col_and_col2im_give_the_cpus_layout_and_sums() {
    for (seed, xs, fs, strides, padding) in [
        (0u64, [2, 9, 7, 3], [3, 3, 3, 5], [1, 1], Padding::Same),
        (1, [1, 10, 6, 4], [4, 2, 4, 3], [3, 2], Padding::Valid),
        (2, [2, 5, 5, 1], [5, 5, 1, 2], [1, 1], Padding::Same),
    ] {
        // f32-representable values: im2col of f64 moves the same values as im2col of f32.
        let x = rand_f64(300 + seed, &xs, -1.0, 1.0).cast(DType::F32);
        let f = rand_f64(310 + seed, &fs, -1.0, 1.0);
        let p = Conv2dParams { strides, padding };
        let g = conv2d_geometry(x.shape(), f.shape(), &p).expect("a valid conv");
        let (m, kk, o) = (g.n * g.out_h * g.out_w, g.kh * g.kw * g.c, fs[3]);
        let geometry = [
            m * kk,
            kk,
            g.c,
            g.kw,
            g.out_h * g.out_w,
            g.out_w,
            g.h,
            g.w,
            g.stride_h,
            g.stride_w,
            g.pad_top,
            g.pad_left,
        ];
        let as_f32 = run(&render_im2col(Elem::F32, "k"), vec![bytes(&x)], m * kk * 4, &geometry);
        let as_f64 = run(&render_im2col(Elem::F64, "k"), vec![bytes(&x.cast(DType::F64))], m * kk * 8, &geometry);
        let narrowed: Vec<u8> =
            as_f64.chunks(8).flat_map(|c| (f64::from_le_bytes(c.try_into().unwrap()) as f32).to_le_bytes()).collect();
        assert_eq!(narrowed, as_f32, "f64 im2col {xs:?} * {fs:?}: the f32 layout");
        // col2im after the GEMM (the CPU's here): the CPU's input gradient, bit for bit.
        let dy = rand_f64(320 + seed, &[g.n, g.out_h, g.out_w, o], -1.0, 1.0);
        let dcols = run_op(
            &Op::MatMul { transpose_a: false, transpose_b: true },
            &[&dy.reshape([m as i64, o as i64]), &f.reshape([kk as i64, o as i64])],
        );
        let total = g.n * g.h * g.w * g.c;
        let dims =
            [total, g.c, g.w, g.h, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h, g.out_w, kk];
        let dx = run(&render_col2im(Elem::F64, "k"), vec![bytes(&dcols)], total * 8, &dims);
        let cpu = run_op(&Op::Conv2dBackpropInput { params: p, input: x.shape().clone() }, &[&dy, &f]);
        assert_eq!(dx, bytes(&cpu), "f64 conv2d input gradient {xs:?} * {fs:?} {strides:?} {padding:?}");
    }
}
