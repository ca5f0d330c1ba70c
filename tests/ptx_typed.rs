//! The typed and index PTX kernels' *results*, on every machine: comparisons, logical
//! ops, `where`, casts, integer and f64 arithmetic, `floor`/`ceil`/`pow`/`sin`/`cos`,
//! `one_hot`, `gather`, arg-reductions, slices, permutes and concatenation run on the
//! reference PTX interpreter and give the CPU's eager results byte for byte (special values included: NaN, ±∞, ±0, integers at their limits,
//! out-of-range indices, ties). Reductions, fills and random draws:
//! tests/ptx_reductions_draws.rs; scatters and argsort: tests/ptx_sort_scatter.rs. ptxas (tests/ptx.rs) checks that the same text
//! assembles; a GPU (tests/gpu/typed.rs) checks the rest.

mod common;

use common::emulated::{random, run, run_into};
use common::{element_bytes as bytes, gather_or_zeros, rand_f32, rand_vec, run_op};
use tensorjit::ops::{ArgOp, Op};
use tensorjit::prelude::*;
use tensorjit_jit::kernel::Access;
use tensorjit_jit::ptx::{
    render_arg_reduce, render_gather, render_one_hot, render_scan, render_typed, Elem, TypedKernel, TypedOp,
};

/// The dims of an operand read with `a` for an output of `rows × cols`.
fn dims_for(a: Access, (rows, cols): (usize, usize)) -> Vec<usize> {
    match a {
        Access::Full => vec![rows, cols],
        Access::Row => vec![cols],
        Access::Col => vec![rows, 1],
        Access::Scalar => vec![],
    }
}

#[test]
fn every_typed_op_gives_the_cpus_bytes_under_every_access_pattern() {
    let patterns = [Access::Full, Access::Row, Access::Col, Access::Scalar];
    let (rows, cols) = (5, 7);
    let mut checked = 0;
    for (k, op) in TypedOp::all().into_iter().enumerate() {
        let types = op.operands();
        // Unary ops read their operand whole; the others each operand under each pattern.
        let variants = if types.len() == 1 { 1 } else { patterns.len() };
        for v in 0..variants {
            let inputs: Vec<Access> = (0..types.len()).map(|j| patterns[(v + j) % patterns.len()]).collect();
            let tensors: Vec<Tensor> = types
                .iter()
                .zip(&inputs)
                .enumerate()
                .map(|(j, (t, a))| random(*t, 100 * k as u64 + 10 * v as u64 + j as u64, &dims_for(*a, (rows, cols))))
                .collect();
            let refs: Vec<&Tensor> = tensors.iter().collect();
            let mut want = run_op(&op.op(), &refs);
            if want.dims() != [rows, cols] {
                want = run_op(&Op::BroadcastTo(Shape::new(&[rows, cols])), &[&want]);
            }
            let kernel = TypedKernel { op, inputs };
            let got = run(
                &render_typed(&kernel, "k"),
                tensors.iter().map(bytes).collect(),
                rows * cols * op.result().bytes(),
                &[rows * cols, cols],
            );
            assert_eq!(got, bytes(&want), "{kernel}: operands {tensors:?}");
            checked += 1;
        }
    }
    // (4 × 7 + 3) comparisons and wheres, 2 × 8 integer binary ops, f32 pow, floor
    // division and floormod, 9 f64 binary ops under 4 variants; 25 casts, 2 logical ops
    // under 4 variants, not, 2 rounding ops, sin, cos and erf, 2 × 5 integer and 17 f64
    // unary ops.
    assert_eq!(
        checked,
        (4 * 7 + 3 + 2 * 8 + 3 + 9) * 4 + 25 + 2 * 4 + 1 + 2 + 3 + 2 * 5 + 17,
        "every typed op was checked"
    );
}

#[test]
fn one_hot_gives_the_cpus_rows_for_every_index_and_output_type() {
    let depth = 5;
    for index in [Elem::I32, Elem::I64] {
        for (k, out) in [Elem::F32, Elem::F64, Elem::I32, Elem::I64, Elem::Bool].into_iter().enumerate() {
            // Indices in −2 … depth + 2: some outside the range (rows of zeros).
            let raw = rand_vec(40 + k as u64, 3 * 4, -2.0, depth as f64 + 2.0);
            let idx = match index {
                Elem::I32 => Tensor::from_vec(raw.iter().map(|x| x.floor() as i32).collect::<Vec<_>>(), vec![3, 4]),
                _ => Tensor::from_vec(raw.iter().map(|x| x.floor() as i64).collect::<Vec<_>>(), vec![3, 4]),
            }
            .unwrap();
            let want = run_op(&Op::OneHot { depth, dtype: out.dtype() }, &[&idx]);
            let total = want.numel();
            let got =
                run(&render_one_hot(index, out, "one_hot"), vec![bytes(&idx)], total * out.bytes(), &[total, depth]);
            assert_eq!(got, bytes(&want), "one_hot of {index:?} indices into {out:?}");
        }
    }
}

#[test]
fn gather_gives_the_cpus_elements_along_every_axis() {
    let dims = [3, 6, 4];
    for (k, elem) in [Elem::F32, Elem::F64, Elem::I32, Elem::I64, Elem::Bool].into_iter().enumerate() {
        let params = random(elem, 60 + k as u64, &dims);
        for axis in 0..dims.len() {
            for index in [Elem::I32, Elem::I64] {
                let n = dims[axis];
                // −1 … n + 1: out-of-range indices gather zeros.
                let raw = rand_vec(70 + 10 * k as u64 + axis as u64, 2 * 3, -1.0, n as f64 + 1.0);
                let idx = match index {
                    Elem::I32 => Tensor::from_vec(raw.iter().map(|x| x.floor() as i32).collect::<Vec<_>>(), vec![2, 3]),
                    _ => Tensor::from_vec(raw.iter().map(|x| x.floor() as i64).collect::<Vec<_>>(), vec![2, 3]),
                }
                .unwrap();
                let want = gather_or_zeros(&params, &idx, axis);
                let inner: usize = dims[axis + 1..].iter().product();
                let total = want.numel();
                let got = run(
                    &render_gather(elem, index, "gather"),
                    vec![bytes(&params), bytes(&idx)],
                    total * elem.bytes(),
                    &[total, n, idx.numel(), inner],
                );
                assert_eq!(got, bytes(&want), "gather of {elem:?} along axis {axis} with {index:?} indices {idx:?}");
            }
        }
    }
}

#[test]
fn arg_reductions_keep_the_first_best_and_the_first_nan() {
    let dims = [4, 9, 3];
    for (k, elem) in [Elem::F32, Elem::F64, Elem::I32, Elem::I64].into_iter().enumerate() {
        let x = match elem {
            // Few distinct values (ties) and a NaN in some lines.
            Elem::F32 => {
                let mut v: Vec<f32> = rand_f32(80 + k as u64, &dims, -2.0, 2.0).to_vec::<f32>().unwrap();
                v.iter_mut().for_each(|x| *x = x.round());
                for at in [4, 40, 41, 100] {
                    v[at] = f32::NAN;
                }
                Tensor::from_vec(v, dims.to_vec()).unwrap()
            }
            _ => random(elem, 80 + k as u64, &dims),
        };
        for axis in 0..dims.len() {
            for op in ArgOp::ALL {
                let want = run_op(&Op::ArgReduce { op, axis }, &[&x]);
                let (n, inner) = (dims[axis], dims[axis + 1..].iter().product::<usize>());
                let total = want.numel();
                let ptx = render_arg_reduce(elem, op == ArgOp::ArgMax, "arg");
                let got = run(&ptx, vec![bytes(&x)], total * 8, &[total, n, inner]);
                assert_eq!(got, bytes(&want), "{op:?} of {elem:?} along axis {axis}");
            }
        }
    }
}

#[test]
fn cumsum_and_cumprod_give_the_cpus_bits_along_every_axis_with_every_option() {
    let dims = [3, 7, 5];
    for (k, elem) in [Elem::F32, Elem::F64, Elem::I32, Elem::I64].into_iter().enumerate() {
        // Products of these overflow, reach ±0, ±∞ and NaN, and wrap (integers).
        let x = random(elem, 90 + k as u64, &dims);
        for product in [false, true] {
            let ptx = render_scan(elem, product, "scan");
            for axis in 0..dims.len() {
                for (exclusive, reverse) in [(false, false), (true, false), (false, true), (true, true)] {
                    let op = if product {
                        Op::Cumprod { axis, exclusive, reverse }
                    } else {
                        Op::Cumsum { axis, exclusive, reverse }
                    };
                    let want = run_op(&op, &[&x]);
                    let (n, inner) = (dims[axis], dims[axis + 1..].iter().product::<usize>());
                    let flags = [usize::from(exclusive), usize::from(reverse)];
                    let values = [x.numel(), n, inner, flags[0], flags[1]];
                    let got = run(&ptx, vec![bytes(&x)], x.numel() * elem.bytes(), &values);
                    assert_eq!(got, bytes(&want), "{op:?} of {elem:?}");
                }
            }
        }
    }
}

#[test]
fn slices_permutes_and_their_scatters_move_the_cpus_elements() {
    use tensorjit::ops::SliceAxis;
    use tensorjit_jit::ptx::{permute_dims, render_strided, slice_dims};
    let dims = [4, 5, 6];
    // (start, step, len) per axis: plain, strided, reversed, a single element.
    let slices: [[(usize, i64, usize); 3]; 4] = [
        [(1, 1, 2), (0, 1, 5), (2, 1, 3)],
        [(0, 2, 2), (4, -1, 5), (5, -2, 3)],
        [(3, -1, 4), (1, 3, 2), (0, 1, 6)],
        [(2, 1, 1), (3, 1, 1), (5, -1, 1)],
    ];
    for (k, elem) in [Elem::F32, Elem::F64, Elem::I32, Elem::I64, Elem::Bool].into_iter().enumerate() {
        let x = random(elem, 200 + k as u64, &dims);
        for (j, s) in slices.iter().enumerate() {
            let axes: Vec<SliceAxis> = s.iter().map(|&(start, step, len)| SliceAxis { start, step, len }).collect();
            let want = run_op(&Op::Slice(axes.clone()), &[&x]);
            let out: Vec<usize> = s.iter().map(|a| a.2).collect();
            let starts: Vec<(usize, i64)> = s.iter().map(|a| (a.0, a.1)).collect();
            let (base, p) = slice_dims(&dims, &starts, &out).expect("rank 3");
            let total = want.numel();
            let values: Vec<usize> = [total, base as usize].into_iter().chain(p.iter().map(|v| *v as usize)).collect();
            let got = run(&render_strided(elem, false, "slice"), vec![bytes(&x)], total * elem.bytes(), &values);
            assert_eq!(got, bytes(&want), "slice {j} of {elem:?}");
            // The gradient: the slice's elements scattered back into zeros of x's shape.
            let dy = random(elem, 300 + 10 * k as u64 + j as u64, &out);
            let grad = run_op(&Op::SliceGrad { input: Shape::new(&dims), slice: axes }, &[&dy]);
            let zeros = vec![0u8; x.numel() * elem.bytes()];
            let got = run_into(&render_strided(elem, true, "slice_grad"), vec![bytes(&dy)], zeros, &values);
            assert_eq!(got, bytes(&grad), "slice {j} gradient of {elem:?}");
        }
        let p = permute_dims(&dims, &[2, 0, 1]).expect("a permutation");
        let values: Vec<usize> = [x.numel(), 0].into_iter().chain(p.iter().map(|v| *v as usize)).collect();
        let got = run(&render_strided(elem, false, "permute"), vec![bytes(&x)], x.numel() * elem.bytes(), &values);
        assert_eq!(got, bytes(&run_op(&Op::Permute([2, 0, 1].into_iter().collect()), &[&x])), "permute {elem:?}");
    }
}

#[test]
fn concatenations_place_every_part_where_the_cpu_does() {
    use tensorjit_jit::ptx::render_concat_part;
    for (k, elem) in [Elem::F32, Elem::F64, Elem::I32, Elem::I64, Elem::Bool].into_iter().enumerate() {
        for axis in 0..3 {
            let mut part_dims = [[2, 3, 4], [2, 3, 4], [2, 3, 4]];
            for (j, d) in part_dims.iter_mut().enumerate() {
                d[axis] = j + 1;
            }
            let parts: Vec<Tensor> =
                part_dims.iter().enumerate().map(|(j, d)| random(elem, 400 + 10 * k as u64 + j as u64, d)).collect();
            let refs: Vec<&Tensor> = parts.iter().collect();
            let want = run_op(&Op::Concat { axis }, &refs);
            let wide: usize = want.dims()[axis..].iter().product();
            let mut out = vec![0xab; want.numel() * elem.bytes()];
            let mut at = 0;
            for p in &parts {
                let w: usize = p.dims()[axis..].iter().product();
                let inner: usize = p.dims()[axis + 1..].iter().product();
                out = run_into(&render_concat_part(elem, "concat"), vec![bytes(p)], out, &[p.numel(), w, wide, at]);
                at += p.dims()[axis] * inner;
            }
            assert_eq!(out, bytes(&want), "concat of {elem:?} along axis {axis}");
        }
    }
}

#[test]
fn pow_gives_the_cpus_bits_across_its_domain_and_special_cases() {
    let n = 600;
    let xs = rand_vec(700, n, 0.0, 10.0);
    let ys = rand_vec(701, n, -6.0, 6.0);
    let mut x: Vec<f32> = xs.iter().map(|v| *v as f32).collect();
    let mut y: Vec<f32> = ys.iter().map(|v| *v as f32).collect();
    // Negative bases with integer and fractional exponents, zeros, infinities, NaN,
    // overflow, subnormal results and bases.
    let special: [(f32, f32); 22] = [
        (-1.0, f32::INFINITY),
        (-1.0, f32::NEG_INFINITY),
        (0.0, -1.0),
        (-0.0, -3.0),
        (-0.0, 3.0),
        (-8.0, 1.0 / 3.0),
        (-2.0, 3.0),
        (-2.0, 4.0),
        (2.0, 1024.0),
        (2.0, -140.0),
        (1e-40, 0.5),
        (f32::INFINITY, -2.0),
        (f32::NEG_INFINITY, 3.0),
        (f32::NAN, 0.0),
        (1.0, f32::NAN),
        (f32::NAN, 2.0),
        (0.5, f32::INFINITY),
        (3.0, f32::NEG_INFINITY),
        (-3.0, 1e10),
        (0.9, 0.9),
        (0.999, 1e6),
        (-7.5, -2.0),
    ];
    for (i, (a, b)) in special.into_iter().enumerate() {
        x[i * 3] = a;
        y[i * 3] = b;
    }
    let (tx, ty) = (Tensor::from_vec(x, [n]).unwrap(), Tensor::from_vec(y, [n]).unwrap());
    let want = run_op(&Op::Binary(tensorjit::ops::BinaryOp::Pow), &[&tx, &ty]);
    let k = TypedKernel { op: TypedOp::Pow, inputs: vec![Access::Full, Access::Full] };
    let got = run(&render_typed(&k, "pow"), vec![bytes(&tx), bytes(&ty)], n * 4, &[n, n]);
    assert_eq!(got, bytes(&want), "pow");
}

#[test]
fn sin_cos_and_erf_give_the_cpus_bits_over_their_ranges() {
    let n = 2000;
    let mut x: Vec<f32> = rand_vec(720, n, -400.0, 400.0).iter().map(|v| *v as f32).collect();
    use std::f32::consts::{FRAC_PI_2, FRAC_PI_4, PI};
    let special = [0.0, -0.0, 1e-30, -1e-30, FRAC_PI_4, FRAC_PI_2, PI, 8192.0, -1e5, 1e10, 3e38, -3e38];
    for (i, s) in special.iter().chain(&[f32::INFINITY, f32::NEG_INFINITY, f32::NAN]).enumerate() {
        x[i * 5] = *s;
    }
    for (i, v) in x.iter_mut().enumerate().skip(1000) {
        *v = (i as f32 - 1500.0) * 0.003; // densely around 0
    }
    // Large arguments, reduced with the bits of 2/π (the kernel's branch): magnitudes
    // log-uniform over 2^28..2^128 with either sign, and the floats next to 2^29.
    let exponents = rand_vec(721, 300, 28.0, 128.0);
    for (k, (v, e)) in x[100..400].iter_mut().zip(exponents).enumerate() {
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        *v = (sign * e.exp2()) as f32;
    }
    let two29 = (1u32 << 29) as f32;
    x[400..403].copy_from_slice(&[f32::from_bits(two29.to_bits() - 1), two29, f32::from_bits(two29.to_bits() + 1)]);
    let tx = Tensor::from_vec(x, [n]).unwrap();
    for u in [tensorjit::ops::UnaryOp::Sin, tensorjit::ops::UnaryOp::Cos, tensorjit::ops::UnaryOp::Erf] {
        let want = run_op(&Op::Unary(u), &[&tx]);
        let k = TypedKernel { op: TypedOp::F32ViaF64(u), inputs: vec![Access::Full] };
        let got = run(&render_typed(&k, "trig"), vec![bytes(&tx)], n * 4, &[n, n]);
        assert_eq!(got, bytes(&want), "{}", u.name());
    }
}

#[test]
fn integer_floor_division_rounds_down_and_never_traps() {
    use tensorjit::ops::BinaryOp;
    // Every sign combination, exact and inexact, by 0, and MIN / −1 (wraps to MIN).
    let pairs: [(i64, i64); 14] = [
        (7, 2),
        (-7, 2),
        (7, -2),
        (-7, -2),
        (6, 3),
        (-6, 3),
        (5, 0),
        (0, 0),
        (-5, 0),
        (i64::MIN, -1),
        (i64::MIN, 1),
        (i64::MAX, -1),
        (i64::MIN, 7),
        (3, i64::MIN),
    ];
    for elem in [Elem::I32, Elem::I64] {
        let (a, b): (Vec<i64>, Vec<i64>) = pairs
            .iter()
            .map(|&(a, b)| match elem {
                // The same cases at i32's limits.
                Elem::I32 => (a.clamp(i32::MIN as i64, i32::MAX as i64), b.clamp(i32::MIN as i64, i32::MAX as i64)),
                _ => (a, b),
            })
            .unzip();
        let t = |v: &[i64]| match elem {
            Elem::I32 => Tensor::from_vec(v.iter().map(|&x| x as i32).collect::<Vec<_>>(), [v.len()]).unwrap(),
            _ => Tensor::from_vec(v.to_vec(), [v.len()]).unwrap(),
        };
        let (ta, tb) = (t(&a), t(&b));
        for op in [BinaryOp::FloorDiv, BinaryOp::Div, BinaryOp::Mod] {
            let want = run_op(&Op::Binary(op), &[&ta, &tb]);
            let typed = TypedOp::of(&Op::Binary(op), &[elem.dtype(), elem.dtype()], elem.dtype()).expect("typed");
            let k = TypedKernel { op: typed, inputs: vec![Access::Full, Access::Full] };
            let n = pairs.len();
            let got = run(&render_typed(&k, "div"), vec![bytes(&ta), bytes(&tb)], n * elem.bytes(), &[n, n]);
            assert_eq!(got, bytes(&want), "{} of {elem:?}: {a:?} by {b:?}", op.name());
        }
    }
}

#[test]
fn integer_powers_and_unary_ops_wrap_as_the_cpus() {
    use tensorjit::ops::{BinaryOp, UnaryOp};
    let n = 96;
    let r = rand_vec(71, 2 * n, 0.0, 1.0);
    // Small bases (odd ones keep nonzero low bits through every squaring), some large;
    // exponents negative, small, and up to the type's maximum (every exponent bit).
    let base = |i: usize| -> i64 {
        match i % 4 {
            0 | 1 => (r[i] * 11.0) as i64 - 5,
            2 => (r[i] * 2e12) as i64 - 1_000_000_000_000,
            _ => [i64::MIN, i64::MAX, 1, -1, 0, 3][i / 4 % 6],
        }
    };
    let exp = |i: usize, max: i64| -> i64 {
        let u = r[n + i];
        match i % 3 {
            0 => (u * 9.0) as i64 - 4,
            1 => (u * max as f64) as i64,
            _ => -((u * max as f64) as i64) - 1,
        }
    };
    for elem in [Elem::I32, Elem::I64] {
        let max = if elem == Elem::I32 { i32::MAX as i64 } else { i64::MAX };
        let t = |v: Vec<i64>| match elem {
            Elem::I32 => Tensor::from_vec(v.iter().map(|&x| x as i32).collect::<Vec<_>>(), [n]).unwrap(),
            _ => Tensor::from_vec(v, [n]).unwrap(),
        };
        let (a, b) = (t((0..n).map(base).collect()), t((0..n).map(|i| exp(i, max)).collect()));
        let pow = TypedOp::of(&Op::Binary(BinaryOp::Pow), &[elem.dtype(); 2], elem.dtype()).expect("a typed pow");
        let k = TypedKernel { op: pow, inputs: vec![Access::Full, Access::Full] };
        let got = run(&render_typed(&k, "ipow"), vec![bytes(&a), bytes(&b)], n * elem.bytes(), &[n, n]);
        assert_eq!(got, bytes(&run_op(&Op::Binary(BinaryOp::Pow), &[&a, &b])), "{k}: {a:?} ^ {b:?}");
        for u in [UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Sign, UnaryOp::Square, UnaryOp::Relu] {
            let op = TypedOp::of(&Op::Unary(u), &[elem.dtype()], elem.dtype()).expect("a typed unary op");
            let k = TypedKernel { op, inputs: vec![Access::Full] };
            let got = run(&render_typed(&k, "iu"), vec![bytes(&a)], n * elem.bytes(), &[n, n]);
            assert_eq!(got, bytes(&run_op(&Op::Unary(u), &[&a])), "{k}: {a:?}");
        }
    }
}

#[test]
fn f64_ops_give_the_cpus_bits_across_their_ranges() {
    use tensorjit::ops::{BinaryOp, UnaryOp};
    // A sweep through every branch of the runtime's f64 algorithms: tiny, around tanh's
    // 0.625 switch, many periods of sin/cos, exp's overflow and underflow, and specials.
    let mut v: Vec<f64> = (0..400).map(|i| (i as f64 - 200.0) * 0.173).collect();
    v.extend((0..64).map(|i| 0.55 + i as f64 * 0.0025));
    v.extend([1e-300, -1e-310, 700.0, 710.0, -745.0, -750.0, 1e6, -3e7, f64::MAX, f64::MIN_POSITIVE]);
    v.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0]);
    // sin/cos past 2^20 (the exact reduction): log-uniform magnitudes up to 2^1023, the
    // floats next to 2^20, and the double closest to a multiple of π/2
    // (6381956970095103·2^797).
    v.extend(
        rand_vec(409, 120, 19.0, 1023.0).iter().enumerate().map(|(k, e)| if k % 2 == 0 { e.exp2() } else { -e.exp2() }),
    );
    let two20 = 1_048_576.0f64;
    v.extend([f64::from_bits(two20.to_bits() - 1), two20, f64::from_bits(two20.to_bits() + 1)]);
    v.push(6_381_956_970_095_103.0 * 2f64.powi(797));
    // Below 2^20, doubles so near a multiple of π/2 that the result is redone exactly.
    v.extend([642615.9188844458, -321307.9594422229, 871790.3905748408, 229174.47169039503]);
    let n = v.len();
    let x = Tensor::from_vec(v.clone(), [n]).unwrap();
    let y = Tensor::from_vec(v.iter().rev().map(|a| a * 0.37 - 1.0).collect::<Vec<_>>(), [n]).unwrap();
    let check = |op: TypedOp, inputs: &[&Tensor]| {
        let k = TypedKernel { op, inputs: vec![Access::Full; inputs.len()] };
        let got = run(&render_typed(&k, "f64op"), inputs.iter().map(|t| bytes(t)).collect(), n * 8, &[n, n]);
        let want = run_op(&op.op(), inputs);
        assert_eq!(got, bytes(&want), "{k}");
    };
    for u in UnaryOp::ALL.into_iter().filter(|u| *u != UnaryOp::LogicalNot) {
        check(TypedOp::F64Unary(u), &[&x]);
    }
    for b in [BinaryOp::Pow, BinaryOp::FloorDiv, BinaryOp::Mod, BinaryOp::Maximum, BinaryOp::Minimum, BinaryOp::Div] {
        check(TypedOp::F64(b), &[&x, &y]);
    }
}

/// Every elementwise op and operand dtypes the runtime accepts has a GPU kernel: a
/// typed op, or (all f32) a single-op fused kernel — none is left to the host.
#[test]
fn every_elementwise_op_the_runtime_accepts_has_a_gpu_kernel() {
    use tensorjit::ops::{BinaryOp, UnaryOp};
    use tensorjit_jit::cuda::backend::single_op_kernel;
    let dtypes = [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool];
    let elems = [Elem::F32, Elem::F64, Elem::I32, Elem::I64, Elem::Bool];
    let operand = |k: usize, seed: u64| random(elems[k], seed, &[3]);
    let (mut accepted, mut missing) = (0, Vec::new());
    let mut check = |op: Op, ins: &[usize], seed: u64| {
        let x: Vec<Tensor> = ins.iter().enumerate().map(|(j, &k)| operand(k, seed + j as u64)).collect();
        let refs: Vec<&Tensor> = x.iter().collect();
        let Ok((out, _)) = op.infer(&refs) else { return };
        accepted += 1;
        let ds: Vec<DType> = ins.iter().map(|&k| dtypes[k]).collect();
        let fused = ds.iter().all(|&d| d == DType::F32)
            && out == DType::F32
            && single_op_kernel(&op, &vec![Access::Full; ins.len()]).is_some();
        if TypedOp::of(&op, &ds, out).is_none() && !fused {
            missing.push(format!("{} of {ds:?}", op.name()));
        }
    };
    for (i, &u) in UnaryOp::ALL.iter().enumerate() {
        for k in 0..5 {
            check(Op::Unary(u), &[k], 900 + i as u64);
        }
    }
    for (i, &b) in BinaryOp::ALL.iter().enumerate() {
        for k in 0..5 {
            for j in 0..5 {
                check(Op::Binary(b), &[k, j], 950 + i as u64);
            }
        }
    }
    for k in 0..5 {
        for (j, &to) in dtypes.iter().enumerate() {
            check(Op::Select, &[k, j, j], 990);
            check(Op::Cast(to), &[k], 991);
        }
    }
    assert!(accepted > 100, "the runtime accepts many of them ({accepted})");
    assert!(missing.is_empty(), "no GPU kernel for: {missing:?}");
}

/// `floormod` of f32 and f64 operands: PTX has no `fmod`, and the kernel's long division
/// of significands must give C's exact remainder everywhere — quotients up to 2^277
/// (f32) and 2^2098 (f64), subnormals, signed zeros, ±∞, NaN and zero divisors.
#[test]
fn floormod_gives_the_cpus_bits_across_the_exponent_range() {
    use tensorjit::ops::BinaryOp;
    // Magnitudes log-uniform over each type's whole range, either sign, then specials.
    let pairs = |seed: u64, lo: f64, hi: f64| -> Vec<(f64, f64)> {
        let (ea, eb) = (rand_vec(seed, 600, lo, hi), rand_vec(seed + 1, 600, lo, hi));
        ea.iter()
            .zip(&eb)
            .enumerate()
            .map(|(i, (a, b))| {
                let (sa, sb) = (if i % 2 == 0 { 1.0 } else { -1.0 }, if i % 3 == 0 { -1.0 } else { 1.0 });
                (sa * a.exp2(), sb * b.exp2())
            })
            .collect()
    };
    let specials = |tiny: f64, big: f64| {
        let mut v = vec![(7.0, 3.0), (-7.0, 3.0), (7.0, -3.0), (-7.0, -3.0), (5.5, 2.0), (-5.5, 2.0), (6.0, 3.0)];
        v.extend([(-6.0, 3.0), (0.0, 3.0), (-0.0, 3.0), (0.0, -3.0), (3.0, 0.0), (3.0, -0.0), (0.0, 0.0)]);
        v.extend([(f64::INFINITY, 2.0), (2.0, f64::INFINITY), (-2.0, f64::INFINITY), (2.0, f64::NEG_INFINITY)]);
        v.extend([
            (f64::NAN, 2.0),
            (2.0, f64::NAN),
            (big, tiny),
            (-big, tiny),
            (tiny, big),
            (big, 3.0),
            (tiny * 3.0, tiny),
        ]);
        v.extend([(1e20, 3.0), (0.1, 0.01), (tiny * 7.0, tiny * 2.0), (big, big * 0.75), (big, -tiny)]);
        v
    };
    let check = |elem: Elem, v: Vec<(f64, f64)>| {
        let (a, b): (Vec<f64>, Vec<f64>) = v.into_iter().unzip();
        let n = a.len();
        let t = |x: &[f64]| match elem {
            Elem::F32 => Tensor::from_vec(x.iter().map(|v| *v as f32).collect::<Vec<_>>(), [n]).unwrap(),
            _ => Tensor::from_vec(x.to_vec(), [n]).unwrap(),
        };
        let (ta, tb) = (t(&a), t(&b));
        let want = run_op(&Op::Binary(BinaryOp::Mod), &[&ta, &tb]);
        let typed = TypedOp::of(&Op::Binary(BinaryOp::Mod), &[elem.dtype(); 2], elem.dtype()).expect("typed");
        let k = TypedKernel { op: typed, inputs: vec![Access::Full, Access::Full] };
        let got = run(&render_typed(&k, "floormod"), vec![bytes(&ta), bytes(&tb)], n * elem.bytes(), &[n, n]);
        assert_eq!(got, bytes(&want), "{k}");
    };
    let mut f32s = pairs(731, -149.0, 127.9);
    f32s.extend(specials(f32::from_bits(1) as f64, f32::MAX as f64));
    check(Elem::F32, f32s);
    let mut f64s = pairs(733, -1074.0, 1023.9);
    f64s.extend(specials(f64::from_bits(1), f64::MAX));
    check(Elem::F64, f64s);
}
