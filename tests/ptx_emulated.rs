//! The PTX kernels' *results*, on every machine: the renderer's modules run on the
//! reference PTX interpreter (`tensorjit_jit::ptx::emulate`, one thread after another)
//! and are compared with the CPU's eager ops — bit for bit for elementwise kernels
//! (every fusible op, every broadcast, the fused kernels of W2 and a dense layer),
//! exactly for the row and column reductions (against their fixed orders) and im2col. ptxas (tests/ptx.rs) checks that the same text
//! assembles; a GPU (tests/gpu/main.rs) checks the rest.

mod common;
#[path = "../benches/common/mod.rs"]
mod workloads;

use common::emulated::{emulate, emulated_plan};
use common::{f32s, kernels_of, rand_f32, run_op};
use tensorjit::ops::{BinaryOp, Conv2dParams, Op, UnaryOp};
use tensorjit::prelude::*;
use tensorjit::trace::backend::conv2d_geometry;
use tensorjit_jit::cuda::backend::single_op_kernel;
use tensorjit_jit::kernel::{fusible_binary, fusible_unary, Access};
use tensorjit_jit::ptx::emulate::{Arg, Program};
use tensorjit_jit::ptx::{render_col2im, render_col_reduce, render_im2col, render_row_reduce, Elem, RowReduce, BLOCK};

/// Equal bits, or both NaN (payloads are not part of the contract).
fn same(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "{what}: element {i}: PTX {g} vs CPU {w}");
    }
}

/// Random values with the special ones mixed in.
fn values(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    let mut v = f32s(&rand_f32(seed, &[n], lo, hi));
    let specials = [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-40, -3e38, 88.5, -104.0, 0.5];
    for (i, s) in specials.iter().enumerate() {
        if i * 7 < n {
            v[i * 7] = *s;
        }
    }
    v
}

#[test]
fn every_fusible_unary_op_gives_the_cpus_bits() {
    for (k, u) in UnaryOp::ALL.into_iter().filter(|u| fusible_unary(*u)).enumerate() {
        for (j, n) in [1usize, 3, 50, 783, 4096].into_iter().enumerate() {
            let x = values(100 * k as u64 + j as u64, n, -12.0, 12.0);
            let kernel = single_op_kernel(&Op::Unary(u), &[Access::Full]).expect("a fusible op has a kernel");
            let got = emulate(&kernel, std::slice::from_ref(&x), 1, n, 2);
            let want = run_op(&Op::Unary(u), &[&Tensor::from_vec(x, [n]).unwrap()]);
            same(&format!("{} over {n}", u.name()), &got[0], &f32s(&want));
        }
    }
}

/// The exponential family across its whole range — every reduction step `k`, both
/// clamps, subnormal results — and random bit patterns: the CPU's bits (both fuse the
/// same multiply-adds; `sigmoid`/`softplus` skip a clamp their argument never reaches;
/// `tanh`/`sigmoid` divide without the range check, `ptx::division`).
#[test]
fn the_exponential_family_gives_the_cpus_bits_across_its_range() {
    let n = 6000;
    let mut x: Vec<f32> = (0..n / 2).map(|i| -120.0 + 220.0 * i as f32 / (n / 2) as f32).collect();
    x.extend(common::rand_vec(77, n / 2, 0.0, 1.0).iter().map(|u| f32::from_bits((u * u32::MAX as f64) as u32)));
    for u in [UnaryOp::Exp, UnaryOp::Sigmoid, UnaryOp::Softplus, UnaryOp::Tanh] {
        let kernel = single_op_kernel(&Op::Unary(u), &[Access::Full]).expect("a fusible op has a kernel");
        let got = emulate(&kernel, std::slice::from_ref(&x), 1, n, 2);
        let want = run_op(&Op::Unary(u), &[&Tensor::from_vec(x.clone(), [n]).unwrap()]);
        same(&format!("{} across its range", u.name()), &got[0], &f32s(&want));
    }
}

#[test]
fn every_fusible_binary_op_and_broadcast_gives_the_cpus_bits() {
    let (rows, cols) = (7usize, 37usize);
    let shape_of = |a: Access| -> Vec<usize> {
        match a {
            Access::Full => vec![rows, cols],
            Access::Row => vec![cols],
            Access::Col => vec![rows, 1],
            Access::Scalar => vec![],
        }
    };
    let all = [Access::Full, Access::Row, Access::Col, Access::Scalar];
    for (k, b) in BinaryOp::ALL.into_iter().filter(|b| fusible_binary(*b)).enumerate() {
        for (j, (a0, a1)) in all.iter().flat_map(|a| all.iter().map(move |c| (*a, *c))).enumerate() {
            let (s0, s1) = (shape_of(a0), shape_of(a1));
            let n0: usize = s0.iter().product();
            let n1: usize = s1.iter().product();
            let x = values(1000 + 50 * k as u64 + j as u64, n0, -5.0, 5.0);
            let y = values(2000 + 50 * k as u64 + j as u64, n1, -5.0, 5.0);
            let (tx, ty) =
                (Tensor::from_vec(x.clone(), s0.clone()).unwrap(), Tensor::from_vec(y.clone(), s1.clone()).unwrap());
            let want = run_op(&Op::Binary(b), &[&tx, &ty]);
            if want.dims() != [rows, cols] {
                continue; // scalar ∘ row etc. do not make a rows × cols output
            }
            let kernel = single_op_kernel(&Op::Binary(b), &[a0, a1]).expect("a fusible op has a kernel");
            let got = emulate(&kernel, &[x, y], rows, cols, 1);
            same(&format!("{} {a0:?} {a1:?}", b.name()), &got[0], &f32s(&want));
        }
    }
}

#[test]
fn the_fused_w2_kernel_gives_the_jits_bits() {
    for (seed, n) in [(1u64, 64usize), (3, 783), (5, 4099)] {
        let w2 = function("w2", |(x, y): (Tensor, Tensor)| workloads::chain(&x, &y));
        let (x, y) = (workloads::uniform(seed, &[n], -4.0, 4.0), workloads::uniform(seed + 1, &[n], -4.0, 4.0));
        let cpu = w2.call((x.clone(), y.clone()));
        let kernels = kernels_of(&w2.concrete_functions()[0]);
        assert_eq!(kernels.len(), 1, "W2 is one kernel");
        let got = emulate(&kernels[0], &[f32s(&x), f32s(&y)], 1, n, 2);
        same(&format!("W2 over {n}"), &got[0], &f32s(&cpu));
    }
}

#[test]
fn the_fused_bias_relu_kernel_of_a_dense_layer_gives_the_cpus_bits() {
    // relu(x·w + b): the kernel after the matmul reads the product in full and b by row.
    let f = function("dense", |(x, w, b): (Tensor, Tensor, Tensor)| (x.matmul(&w) + &b).relu());
    let (x, w, b) =
        (rand_f32(7, &[9, 20], -1.0, 1.0), rand_f32(8, &[20, 33], -1.0, 1.0), rand_f32(9, &[33], -1.0, 1.0));
    let cpu = f.call((x.clone(), w.clone(), b.clone()));
    let kernels = kernels_of(&f.concrete_functions()[0]);
    assert_eq!(kernels.len(), 1, "{kernels:?}");
    assert_eq!(kernels[0].inputs, vec![Access::Full, Access::Row]);
    let got = emulate(&kernels[0], &[f32s(&x.matmul(&w)), f32s(&b)], 9, 33, 1);
    same("bias + relu", &got[0], &f32s(&cpu));
}

#[test]
fn softmax_kernels_as_device_plans_launch_them() {
    // softmax = exp(x − max) / Σ: the planner fuses the exp with its row sum; a device
    // plan launches the kernel with the summed expression as one more output and
    // reduces that with the row reduction.
    let (rows, cols) = (19usize, 70usize);
    let f = function("softmax", |x: Tensor| x.softmax(-1));
    let x = rand_f32(60, &[rows, cols], -4.0, 4.0);
    let cpu = f.call(x.clone());
    let kernels = kernels_of(&f.concrete_functions()[0]);
    let fused = kernels.iter().find(|k| k.reduce.is_some()).expect("a kernel ending in a row sum");
    assert_eq!(fused.inputs, vec![Access::Full, Access::Col]);
    let (launched, reduce) = fused.reduce_as_output();
    assert!(reduce.is_some_and(|r| !r.mean));
    let max = x.max(-1, true);
    let outs = emulate(&launched, &[f32s(&x), f32s(&max)], rows, cols, 2);
    let e = (&x - &max).exp();
    assert_eq!(outs.len(), 2);
    same("exp(x − max)", &outs[0], &f32s(&e));
    same("the summed expression", &outs[1], &f32s(&e));
    let program = Program::parse(&render_row_reduce(RowReduce::Sum, "r")).expect("the emulator reads it");
    let mut buffers = vec![outs[1].clone(), vec![f32::NAN; rows]];
    let args = [Arg::Buffer(0), Arg::Buffer(1), Arg::U64(rows as u64), Arg::U64(cols as u64)];
    program.run(1, BLOCK, &args, &mut buffers).expect("the reduction runs");
    let divide = kernels.iter().find(|k| k.reduce.is_none() && k.inputs == [Access::Full, Access::Col]);
    let divide = divide.expect("the division kernel");
    let probs = emulate(divide, &[outs[0].clone(), buffers[1].clone()], rows, cols, 1);
    for (i, (g, c)) in probs[0].iter().zip(f32s(&cpu)).enumerate() {
        assert!((g - c).abs() <= 1e-6, "softmax element {i}: emulated PTX {g} vs CPU {c}");
    }
}

#[test]
fn the_column_reduction_gives_the_cpus_bits() {
    for (seed, rows, cols) in [(11u64, 1usize, 5usize), (12, 33, 7), (13, 128, 300), (14, 5, 1)] {
        let x = rand_f32(seed, &[rows, cols], -3.0, 3.0);
        // Sums: the rows added in order, as the kernel promises (the CPU's eager sum
        // groups them its own way, so it agrees to rounding only); max and min: exact.
        let v = f32s(&x);
        let in_order: Vec<f32> = (0..cols).map(|c| (0..rows).fold(0.0f32, |acc, r| acc + v[r * cols + c])).collect();
        let sum = Tensor::from_vec(in_order, [cols]).unwrap();
        let in_order: Vec<f32> = (0..cols).map(|c| (0..rows).fold(1.0f32, |acc, r| acc * v[r * cols + c])).collect();
        let prod = Tensor::from_vec(in_order, [cols]).unwrap();
        for (op, eager_op) in [
            (RowReduce::Sum, sum),
            (RowReduce::Prod, prod),
            (RowReduce::Max, x.max(0, false)),
            (RowReduce::Min, x.min(0, false)),
        ] {
            let program = Program::parse(&render_col_reduce(op, "c")).expect("the emulator reads it");
            let mut buffers = vec![f32s(&x), vec![f32::NAN; cols]];
            let args = [Arg::Buffer(0), Arg::Buffer(1), Arg::U64(rows as u64), Arg::U64(cols as u64)];
            program.run(1, BLOCK, &args, &mut buffers).expect("the reduction runs");
            same(&format!("{op:?} over the rows of {rows} × {cols}"), &buffers[1], &f32s(&eager_op));
        }
    }
}

type Combine = fn(f32, f32) -> f32;

/// A warp-shuffle tree over `lanes` (shfl.down: a lane past the end reads its own value),
/// as the row reduction runs it; lane 0's result.
fn shuffle_tree(mut lanes: Vec<f32>, width: usize, combine: Combine) -> f32 {
    let mut off = width / 2;
    while off > 0 {
        let prev = lanes.clone();
        for (l, v) in lanes.iter_mut().enumerate() {
            let y = if l + off < 32 { prev[l + off] } else { prev[l] };
            *v = combine(prev[l], y);
        }
        off /= 2;
    }
    lanes[0]
}

/// The row reduction's order, from its definition: thread t combines elements t, t +
/// 256, … in order; each warp's 32 partials go through a shuffle tree; warp 0 combines
/// the 8 warp totals with a tree of width 8.
fn block_reduce(row: &[f32], identity: f32, combine: Combine) -> f32 {
    let block = BLOCK as usize;
    let partial: Vec<f32> =
        (0..block).map(|t| row.iter().skip(t).step_by(block).fold(identity, |acc, x| combine(acc, *x))).collect();
    let totals: Vec<f32> = partial.chunks(32).map(|w| shuffle_tree(w.to_vec(), 32, combine)).collect();
    let mut lanes = vec![identity; 32];
    lanes[..totals.len()].copy_from_slice(&totals);
    shuffle_tree(lanes, block / 32, combine)
}

#[test]
fn the_row_reduction_follows_its_fixed_order() {
    let ops: [(RowReduce, f32, Combine); 4] = [
        (RowReduce::Sum, 0.0, |a, b| a + b),
        (RowReduce::Prod, 1.0, |a, b| a * b),
        (RowReduce::Max, f32::NEG_INFINITY, f32::max),
        (RowReduce::Min, f32::INFINITY, f32::min),
    ];
    for (seed, rows, cols) in [(21u64, 1usize, 1usize), (22, 3, 5), (23, 17, 300), (24, 5, 1000), (25, 2, 4103)] {
        let x = rand_f32(seed, &[rows, cols], -3.0, 3.0);
        let v = f32s(&x);
        for (op, identity, combine) in ops {
            let program = Program::parse(&render_row_reduce(op, "r")).expect("the emulator reads it");
            let mut buffers = vec![v.clone(), vec![f32::NAN; rows]];
            let args = [Arg::Buffer(0), Arg::Buffer(1), Arg::U64(rows as u64), Arg::U64(cols as u64)];
            // Two blocks: rows are shared out between them.
            program.run(2, BLOCK, &args, &mut buffers).expect("the reduction runs");
            let want: Vec<f32> = v.chunks(cols).map(|row| block_reduce(row, identity, combine)).collect();
            same(&format!("{op:?} of {rows} × {cols}"), &buffers[1], &want);
            if op == RowReduce::Prod {
                // Checked against the CPU on factors near 1 below.
            } else if op != RowReduce::Sum {
                let cpu = if op == RowReduce::Max { x.max(1, false) } else { x.min(1, false) };
                same(&format!("{op:?} of {rows} × {cols} against the CPU"), &buffers[1], &f32s(&cpu));
            } else {
                // Another order than the CPU's: equal to rounding (relative to Σ|x|).
                let cpu = f32s(&x.sum(1, false));
                for ((g, c), row) in buffers[1].iter().zip(&cpu).zip(v.chunks(cols)) {
                    let scale: f32 = row.iter().map(|x| x.abs()).sum();
                    assert!((g - c).abs() <= 1e-6 * scale, "sum of {rows} × {cols}: {g} vs CPU {c}");
                }
            }
        }
    }
}

/// The im2col matrix, straight from its definition.
fn naive_im2col(x: &[f32], g: &tensorjit::trace::backend::WindowGeometry) -> Vec<f32> {
    let kk = g.kh * g.kw * g.c;
    let mut out = vec![0.0; g.n * g.out_h * g.out_w * kk];
    for n in 0..g.n {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let row = (n * g.out_h + oy) * g.out_w + ox;
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let iy = (oy * g.stride_h + ky) as isize - g.pad_top as isize;
                        let ix = (ox * g.stride_w + kx) as isize - g.pad_left as isize;
                        if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                            continue;
                        }
                        for ch in 0..g.c {
                            let src = ((n * g.h + iy as usize) * g.w + ix as usize) * g.c + ch;
                            out[row * kk + (ky * g.kw + kx) * g.c + ch] = x[src];
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn im2col_lays_out_the_windows_as_the_cpu_does() {
    let program = Program::parse(&render_im2col(Elem::F32, "im2col")).expect("the emulator reads it");
    for (seed, xs, fs, strides, padding) in [
        (0u64, [2, 9, 7, 3], [3, 3, 3, 5], [1, 1], Padding::Same),
        (1, [3, 8, 8, 2], [2, 3, 2, 4], [2, 2], Padding::Same),
        (2, [1, 10, 6, 4], [4, 2, 4, 3], [3, 2], Padding::Valid),
    ] {
        let x = rand_f32(40 + seed, &xs, -1.0, 1.0);
        let f = rand_f32(50 + seed, &fs, -1.0, 1.0);
        let p = Conv2dParams { strides, padding };
        let g = conv2d_geometry(x.shape(), f.shape(), &p).expect("a valid conv");
        let kk = g.kh * g.kw * g.c;
        let total = g.n * g.out_h * g.out_w * kk;
        let dims =
            [total, kk, g.c, g.kw, g.out_h * g.out_w, g.out_w, g.h, g.w, g.stride_h, g.stride_w, g.pad_top, g.pad_left];
        let cols = run_entry(&program, vec![f32s(&x)], total, &dims);
        let want = naive_im2col(&f32s(&x), &g);
        same(&format!("im2col {xs:?} * {fs:?}"), &cols, &want);
        // And the GEMM of it with the filter is the CPU's conv2d.
        let cols = Tensor::from_vec(cols, [g.n * g.out_h * g.out_w, kk]).unwrap();
        let conv = cols.matmul(&f.reshape([kk as i64, fs[3] as i64]));
        let cpu = x.conv2d(&f, strides, padding);
        same("im2col · filter", &f32s(&conv), &f32s(&cpu));
    }
}

#[test]
fn col2im_sums_the_input_gradient_in_the_cpus_order() {
    let program = Program::parse(&render_col2im(Elem::F32, "col2im")).expect("the emulator reads it");
    for (seed, xs, fs, strides, padding) in [
        (0u64, [2, 9, 7, 3], [3, 3, 3, 5], [1, 1], Padding::Same),
        (1, [3, 8, 8, 2], [2, 3, 2, 4], [2, 2], Padding::Same),
        (2, [1, 10, 6, 4], [4, 2, 4, 3], [3, 2], Padding::Valid),
        (3, [2, 5, 5, 1], [5, 5, 1, 2], [1, 1], Padding::Same),
    ] {
        let f = rand_f32(70 + seed, &fs, -1.0, 1.0);
        let p = Conv2dParams { strides, padding };
        let input = tensorjit::Shape::new(&xs);
        let g = conv2d_geometry(&input, f.shape(), &p).expect("a valid conv");
        let (m, kk, o) = (g.n * g.out_h * g.out_w, g.kh * g.kw * g.c, fs[3]);
        let dy = rand_f32(80 + seed, &[g.n, g.out_h, g.out_w, o], -1.0, 1.0);
        // The GEMM half, as the GPU computes it (cuBLAS there, the CPU's GEMM here).
        let dcols = run_op(
            &Op::MatMul { transpose_a: false, transpose_b: true },
            &[&dy.reshape([m as i64, o as i64]), &f.reshape([kk as i64, o as i64])],
        );
        let total = g.n * g.h * g.w * g.c;
        let dims =
            [total, g.c, g.w, g.h, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h, g.out_w, kk];
        let dx = run_entry(&program, vec![f32s(&dcols)], total, &dims);
        let cpu = run_op(&Op::Conv2dBackpropInput { params: p, input: input.clone() }, &[&dy, &f]);
        same(&format!("conv2d input gradient {xs:?} * {fs:?} {strides:?} {padding:?}"), &dx, &f32s(&cpu));
    }
}

#[test]
fn device_plans_with_ptx_kernels_give_the_cpus_bits_for_w4_and_w5() {
    use tensorjit::trace::backend::Executable;
    // W4: the MLP's forward with softmax (bias+relu kernels, the fused exp + row sum).
    let w4 = function("w4", |(x, p): (Tensor, Vec<Tensor>)| workloads::mlp_logits(&x, &p).softmax(-1));
    let (x, params) = (rand_f32(120, &[32, 784], 0.0, 1.0), workloads::mlp_params());
    let cpu = w4.call((x.clone(), params.clone()));
    let plan = emulated_plan(&w4.concrete_functions()[0].graph);
    let mut inputs: Vec<&Tensor> = vec![&x];
    inputs.extend(params.iter());
    let out = plan.run(&inputs, &[]).expect("the plan runs");
    same("W4 through a device plan of PTX kernels", &f32s(&out[0]), &f32s(&cpu));

    // W5: a train step (log-softmax, the loss mean, six parameter updates) on variables.
    let (a, b) = (workloads::mlp_variables(&params), workloads::mlp_variables(&params));
    let a2 = a.clone();
    let step = function("w5", move |(x, y): (Tensor, Tensor)| workloads::mlp_train_step(&a2, &x, &y));
    let y = workloads::labels();
    let x = rand_f32(121, &[128, 784], 0.0, 1.0);
    let loss = step.call((x.clone(), y.clone()));
    // The same graph, bound to the other set of variables (they are captured).
    let traced = &step.concrete_functions()[0];
    let mut graph = traced.graph.clone();
    for r in graph.resources.iter_mut() {
        if let tensorjit::ir::Resource::Captured(v) = r {
            let j = a.iter().position(|w| w.id() == v.id()).expect("a captured MLP parameter");
            *r = tensorjit::ir::Resource::Captured(b[j].clone());
        }
    }
    let out = emulated_plan(&graph).run(&[&x, &y], &[]).expect("the plan runs");
    same("W5 loss through a device plan of PTX kernels", &f32s(&out[0]), &f32s(&loss));
    for (va, vb) in a.iter().zip(&b) {
        same(&format!("{} after the step", va.name()), &f32s(&vb.read()), &f32s(&va.read()));
    }
}

#[test]
fn permutes_move_every_element_where_the_cpu_does() {
    use tensorjit_jit::ptx::{permute_dims, render_permute};
    let program = Program::parse(&render_permute("permute")).expect("the emulator reads it");
    let cases: [(&[usize], &[usize]); 6] = [
        (&[7], &[0]),
        (&[37, 129], &[1, 0]),
        (&[3, 4, 5], &[2, 0, 1]),
        (&[2, 3, 4, 5], &[3, 1, 0, 2]),
        (&[2, 1, 3, 2, 4], &[4, 3, 2, 1, 0]),
        (&[2, 3, 1, 2, 3, 2], &[5, 0, 4, 1, 3, 2]),
    ];
    for (seed, (dims, perm)) in cases.into_iter().enumerate() {
        let x = rand_f32(130 + seed as u64, dims, -1.0, 1.0);
        let n = x.numel();
        let params = permute_dims(dims, perm).expect("a permutation within the rank");
        let values: Vec<usize> = std::iter::once(n).chain(params.iter().map(|d| *d as usize)).collect();
        let got = run_entry(&program, vec![f32s(&x)], n, &values);
        let cpu = run_op(&Op::Permute(perm.iter().copied().collect()), &[&x]);
        same(&format!("permute {dims:?} by {perm:?}"), &got, &f32s(&cpu));
    }
    assert!(permute_dims(&[2, 3, 2, 3, 2, 3, 2], &[6, 5, 4, 3, 2, 1, 0]).is_none(), "seven runs are beyond one launch");
    assert!(permute_dims(&[2, 3], &[0, 0]).is_none(), "not a permutation");
}

/// Permutes and broadcasts of up to 9 axes, as the GPU backend runs them: runs of
/// axes merged, and walks still too long split into launches (`permute_steps`,
/// `broadcast_steps`) — the CPU's elements in the CPU's places.
#[test]
fn permutes_and_broadcasts_of_many_axes_take_merged_walks_or_several_launches() {
    use tensorjit_jit::ptx::{broadcast_dims, broadcast_steps, permute_dims, permute_steps, render_permute};
    let program = Program::parse(&render_permute("permute")).expect("the emulator reads it");
    let launch = |x: &[f32], params: [u64; 12], total: usize| {
        let values: Vec<usize> = std::iter::once(total).chain(params.iter().map(|d| *d as usize)).collect();
        run_entry(&program, vec![x.to_vec()], total, &values)
    };
    let permutes: [(&[usize], &[usize]); 4] = [
        // Merges to three runs: one launch.
        (&[2, 3, 2, 2, 3, 2, 2], &[0, 1, 2, 5, 6, 3, 4]),
        (&[2, 1, 3, 1, 2, 1, 2, 3], &[7, 6, 5, 4, 3, 2, 1, 0]),
        (&[2, 3, 2, 3, 2, 3, 2], &[6, 5, 4, 3, 2, 1, 0]),
        (&[2, 2, 3, 2, 2, 3, 2, 2, 2], &[1, 3, 5, 7, 0, 2, 4, 6, 8]),
    ];
    let mut several = 0;
    for (seed, (dims, perm)) in permutes.into_iter().enumerate() {
        let x = rand_f32(700 + seed as u64, dims, -1.0, 1.0);
        let steps = permute_steps(dims, perm).expect("a permutation");
        several += usize::from(steps.len() > 1);
        let (mut cur, mut cur_dims) = (f32s(&x), dims.to_vec());
        for step in &steps {
            let params = permute_dims(&cur_dims, step).expect("each step is one launch");
            cur = launch(&cur, params, x.numel());
            cur_dims = step.iter().map(|&a| cur_dims[a]).collect();
        }
        let cpu = run_op(&Op::Permute(perm.iter().copied().collect()), &[&x]);
        same(&format!("permute {dims:?} by {perm:?} in {} launches", steps.len()), &cur, &f32s(&cpu));
    }
    let broadcasts: [(&[usize], &[usize]); 3] = [
        (&[1, 1, 4, 1, 1, 3, 2], &[2, 3, 4, 2, 2, 3, 2]),
        (&[2, 1, 2, 1, 2, 1, 2], &[2, 3, 2, 3, 2, 3, 2]),
        (&[3, 1, 2, 1, 3, 1, 2, 1], &[2, 3, 2, 2, 2, 3, 2, 2, 2]),
    ];
    for (seed, (dims, out)) in broadcasts.into_iter().enumerate() {
        let x = rand_f32(800 + seed as u64, dims, -1.0, 1.0);
        let steps = broadcast_steps(dims, out).expect("broadcasts");
        several += usize::from(steps.len() > 1);
        let (mut cur, mut cur_dims) = (f32s(&x), dims.to_vec());
        for step in &steps {
            let params = broadcast_dims(&cur_dims, step).expect("each step is one launch");
            cur = launch(&cur, params, step.iter().product());
            cur_dims = step.clone();
        }
        let cpu = run_op(&Op::BroadcastTo(Shape::from(out.to_vec())), &[&x]);
        same(&format!("broadcast {dims:?} to {out:?} in {} launches", steps.len()), &cur, &f32s(&cpu));
    }
    assert_eq!(several, 4, "two permutes and two broadcasts need more than one launch");
}

/// Runs a one-thread-per-output entry: `inputs` as its first pointer arguments, then an
/// output of `total` elements, then the u64 `values` (from `total` on); the output.
/// `broadcast_to` and binary ops whose broadcast no access pattern reads, as the GPU
/// backend runs them: the permute entry with stride 0 on repeated axes, then the op's
/// single-op kernel on full operands — the CPU's bits.
#[test]
fn general_broadcasts_give_the_cpus_bits() {
    use tensorjit_jit::ptx::{broadcast_dims, render_permute};
    let program = Program::parse(&render_permute("permute")).expect("the emulator reads it");
    let broadcast = |x: &[f32], dims: &[usize], out: &[usize]| {
        let params = broadcast_dims(dims, out).expect("broadcastable within the rank");
        let total: usize = out.iter().product();
        let values: Vec<usize> = std::iter::once(total).chain(params.iter().map(|d| *d as usize)).collect();
        run_entry(&program, vec![x.to_vec()], total, &values)
    };
    let cases: [(&[usize], &[usize]); 5] = [
        (&[4, 1, 6], &[4, 5, 6]),
        (&[1, 5, 1], &[4, 5, 6]),
        (&[3, 1], &[2, 3, 9]),
        (&[2, 1, 3, 1, 2, 1], &[2, 2, 3, 3, 2, 2]),
        (&[1], &[3, 1, 4]),
    ];
    for (seed, (dims, out)) in cases.into_iter().enumerate() {
        let n: usize = dims.iter().product();
        let x = values(3000 + seed as u64, n, -4.0, 4.0);
        let tx = Tensor::from_vec(x.clone(), dims.to_vec()).unwrap();
        let want = run_op(&Op::BroadcastTo(Shape::from(out.to_vec())), &[&tx]);
        same(&format!("broadcast {dims:?} to {out:?}"), &broadcast(&x, dims, out), &f32s(&want));
    }
    // [b, 1, c] ∘ [b, t, c] and [t, 1] ∘ [b, 1, c]: the mismatched operand broadcast
    // first, then the op on full operands.
    let pairs: [(&[usize], &[usize]); 2] = [(&[3, 1, 8], &[3, 5, 8]), (&[5, 1], &[3, 1, 8])];
    for (k, b) in BinaryOp::ALL.into_iter().filter(|b| fusible_binary(*b)).enumerate() {
        for (j, (d0, d1)) in pairs.into_iter().enumerate() {
            let seed = 3100 + 10 * k as u64 + j as u64;
            let (x, y) =
                (values(seed, d0.iter().product(), -5.0, 5.0), values(seed + 5, d1.iter().product(), -5.0, 5.0));
            let tx = Tensor::from_vec(x.clone(), d0.to_vec()).unwrap();
            let ty = Tensor::from_vec(y.clone(), d1.to_vec()).unwrap();
            let want = run_op(&Op::Binary(b), &[&tx, &ty]);
            let out = want.dims().to_vec();
            let (fx, fy) = (broadcast(&x, d0, &out), broadcast(&y, d1, &out));
            let cols = *out.last().unwrap();
            let kernel = single_op_kernel(&Op::Binary(b), &[Access::Full, Access::Full]).expect("a kernel");
            let got = emulate(&kernel, &[fx, fy], want.numel() / cols, cols, 2);
            same(&format!("{} {d0:?} {d1:?}", b.name()), &got[0], &f32s(&want));
        }
    }
}

fn run_entry(program: &Program, inputs: Vec<Vec<f32>>, total: usize, values: &[usize]) -> Vec<f32> {
    let n_in = inputs.len();
    let mut buffers = inputs;
    buffers.push(vec![f32::NAN; total]);
    let mut args: Vec<Arg> = (0..=n_in).map(Arg::Buffer).collect();
    args.extend(values.iter().map(|d| Arg::U64(*d as u64)));
    program.run(2, BLOCK, &args, &mut buffers).expect("the entry runs");
    buffers.pop().unwrap_or_default()
}

#[test]
fn pooling_and_its_gradients_give_the_cpus_bits() {
    use tensorjit::ops::PoolParams;
    use tensorjit::trace::backend::pool2d_geometry;
    use tensorjit_jit::ptx::{
        render_avg_pool, render_avg_pool_grad, render_max_pool, render_max_pool_grad, render_max_pool_grad_grad,
    };
    let parse = |ptx: String| Program::parse(&ptx).expect("the emulator reads it");
    let (max, max_grad) =
        (parse(render_max_pool(Elem::F32, "max_pool")), parse(render_max_pool_grad(Elem::F32, "max_pool_grad")));
    let max_grad_grad = parse(render_max_pool_grad_grad(Elem::F32, "max_pool_grad_grad"));
    let (avg, avg_grad) =
        (parse(render_avg_pool(Elem::F32, "avg_pool")), parse(render_avg_pool_grad(Elem::F32, "avg_pool_grad")));
    for (seed, xs, ksize, strides, padding) in [
        (0u64, [2, 8, 8, 3], [2, 2], [2, 2], Padding::Valid),
        (1, [1, 9, 7, 2], [3, 3], [2, 2], Padding::Same),
        (2, [2, 6, 5, 4], [3, 2], [1, 1], Padding::Same),
        (3, [1, 7, 7, 1], [4, 4], [3, 3], Padding::Same),
        (4, [1, 7, 7, 1], [4, 4], [3, 3], Padding::Valid),
    ] {
        // Few distinct values (ties: the first maximum takes the gradient), a NaN.
        let mut v: Vec<f32> = f32s(&rand_f32(90 + seed, &xs, -3.0, 3.0)).iter().map(|x| x.round()).collect();
        v[5] = f32::NAN;
        let x = Tensor::from_vec(v.clone(), xs).unwrap();
        let smooth = rand_f32(140 + seed, &xs, -3.0, 3.0);
        let p = PoolParams { ksize, strides, padding };
        let g = pool2d_geometry(x.shape(), &p).expect("a valid pooling");
        let (outs, ins) = (g.n * g.out_h * g.out_w * g.c, g.n * g.h * g.w * g.c);
        let over_outputs = [
            outs,
            g.c,
            g.out_w,
            g.out_h * g.out_w,
            g.h,
            g.w,
            g.kh,
            g.kw,
            g.stride_h,
            g.stride_w,
            g.pad_top,
            g.pad_left,
        ];
        let over_inputs =
            [ins, g.c, g.w, g.h, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h, g.out_w];
        let what = format!("{xs:?} {ksize:?} {strides:?} {padding:?}");
        let dy = rand_f32(95 + seed, &[g.n, g.out_h, g.out_w, g.c], -1.0, 1.0);

        let got = run_entry(&max, vec![v.clone()], outs, &over_outputs);
        same(&format!("max_pool {what}"), &got, &f32s(&run_op(&Op::MaxPool2d(p), &[&x])));
        let got = run_entry(&max_grad, vec![v.clone(), f32s(&dy)], ins, &over_inputs);
        same(&format!("max_pool {what} gradient"), &got, &f32s(&run_op(&Op::MaxPool2dGrad(p), &[&x, &dy])));
        let got = run_entry(&max_grad_grad, vec![v.clone(), f32s(&smooth)], outs, &over_outputs);
        let cpu = run_op(&Op::MaxPool2dGradGrad(p), &[&x, &smooth]);
        same(&format!("max_pool {what} second-order gradient"), &got, &f32s(&cpu));

        let got = run_entry(&avg, vec![f32s(&smooth)], outs, &over_outputs);
        same(&format!("avg_pool {what}"), &got, &f32s(&run_op(&Op::AvgPool2d(p), &[&smooth])));
        let got = run_entry(&avg_grad, vec![f32s(&dy)], ins, &over_inputs);
        let cpu = run_op(&Op::AvgPool2dGrad { params: p, input: x.shape().clone() }, &[&dy]);
        same(&format!("avg_pool {what} gradient"), &got, &f32s(&cpu));
    }
}

#[test]
fn products_over_rows_and_columns_agree_with_the_cpus_to_rounding() {
    for (seed, rows, cols) in [(31u64, 3usize, 700usize), (32, 40, 9)] {
        // Factors near 1: long products stay finite, and each order is within a few ulps
        // per factor of the CPU's.
        let x = rand_f32(seed, &[rows, cols], 0.9, 1.1);
        let v = f32s(&x);
        for (render, lines, cpu) in [
            (render_row_reduce as fn(RowReduce, &str) -> String, rows, x.prod(1, false)),
            (render_col_reduce, cols, x.prod(0, false)),
        ] {
            let program = Program::parse(&render(RowReduce::Prod, "p")).expect("the emulator reads it");
            let mut buffers = vec![v.clone(), vec![f32::NAN; lines]];
            let args = [Arg::Buffer(0), Arg::Buffer(1), Arg::U64(rows as u64), Arg::U64(cols as u64)];
            program.run(2, BLOCK, &args, &mut buffers).expect("the product runs");
            let n = (rows * cols / lines) as f32;
            for (g, c) in buffers[1].iter().zip(f32s(&cpu)) {
                assert!(
                    (g - c).abs() <= 4.0 * n * f32::EPSILON * c.abs(),
                    "product of {rows} × {cols}: {g} vs CPU {c}"
                );
            }
        }
    }
}
