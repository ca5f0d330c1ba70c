//! tile, repeat, pad (constant, reflect, symmetric), reverse, split/chunks and the
//! statistics reductions (variance, std, norm, l2_normalize, any, all): eager results
//! against index arithmetic, traced (with an unknown batch dim) bit-identical to eager,
//! and the errors a user can cause.

mod common;
use common::*;
use tensorjit::prelude::*;

fn bits(t: &Tensor) -> Vec<u32> {
    f32s(t).iter().map(|v| v.to_bits()).collect()
}

/// Row-major index of `idx` in `dims`.
fn flat(dims: &[usize], idx: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Every index of `dims`, row-major.
fn indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = dims.iter().product();
    (0..n)
        .map(|mut f| {
            let mut idx = vec![0; dims.len()];
            for d in (0..dims.len()).rev() {
                idx[d] = f % dims[d];
                f /= dims[d];
            }
            idx
        })
        .collect()
}

#[test]
fn tile_and_repeat_follow_index_arithmetic() {
    let dims = [3, 4, 5];
    let x = rand_f32(1, &dims, -1.0, 1.0);
    let xv = f32s(&x);
    let t = x.tile(&[2, 1, 3]);
    assert_eq!(t.dims(), &[6, 4, 15]);
    let tv = f32s(&t);
    for idx in indices(t.dims()) {
        let src: Vec<usize> = idx.iter().zip(&dims).map(|(&i, &d)| i % d).collect();
        assert_eq!(tv[flat(t.dims(), &idx)], xv[flat(&dims, &src)], "tile at {idx:?}");
    }
    for axis in 0..3 {
        let r = x.repeat(3, axis as i64 - 3);
        let mut want_dims = dims.to_vec();
        want_dims[axis] *= 3;
        assert_eq!(r.dims(), &want_dims[..]);
        let rv = f32s(&r);
        for idx in indices(r.dims()) {
            let mut src = idx.clone();
            src[axis] /= 3;
            assert_eq!(rv[flat(r.dims(), &idx)], xv[flat(&dims, &src)], "repeat axis {axis} at {idx:?}");
        }
    }
    assert_eq!(x.tile(&[1, 0, 1]).dims(), &[3, 0, 5]);
}

#[test]
fn pad_modes_follow_tensorflow() {
    let dims = [4, 5];
    let x = rand_f32(2, &dims, -1.0, 1.0);
    let xv = f32s(&x);
    let pads = [(2, 1), (3, 4)];
    // Source index of padded position p along an axis of length n.
    let reflect = |p: i64, n: i64| {
        if p < 0 {
            -p
        } else if p >= n {
            2 * n - 2 - p
        } else {
            p
        }
    };
    let symmetric = |p: i64, n: i64| {
        if p < 0 {
            -p - 1
        } else if p >= n {
            2 * n - 1 - p
        } else {
            p
        }
    };
    for mode in [PadMode::Constant(0.25), PadMode::Reflect, PadMode::Symmetric] {
        let y = x.pad(&pads, mode);
        assert_eq!(y.dims(), &[7, 12]);
        let yv = f32s(&y);
        for idx in indices(y.dims()) {
            let p: Vec<i64> = idx.iter().zip(&pads).map(|(&i, &(b, _))| i as i64 - b as i64).collect();
            let inside = p.iter().zip(&dims).all(|(&q, &n)| (0..n as i64).contains(&q));
            let want = match mode {
                PadMode::Constant(c) if !inside => c as f32,
                PadMode::Constant(_) => xv[flat(&dims, &[p[0] as usize, p[1] as usize])],
                PadMode::Reflect => xv[flat(&dims, &[reflect(p[0], 4) as usize, reflect(p[1], 5) as usize])],
                PadMode::Symmetric => xv[flat(&dims, &[symmetric(p[0], 4) as usize, symmetric(p[1], 5) as usize])],
            };
            assert_eq!(yv[flat(y.dims(), &idx)], want, "{mode:?} at {idx:?}");
        }
    }
    // Integer tensors and an infinite constant keep their values exactly.
    let i = Tensor::from_vec(vec![7i64, -3], [2]).unwrap();
    assert_eq!(i.pad(&[(1, 2)], PadMode::Constant(-1.0)).to_vec::<i64>().unwrap(), [-1, 7, -3, -1, -1]);
    let inf = x.pad(&[(0, 0), (1, 0)], PadMode::Constant(f64::NEG_INFINITY));
    assert_eq!(f32s(&inf)[0], f32::NEG_INFINITY);
}

#[test]
fn reverse_split_and_chunks() {
    let x = rand_f32(3, &[3, 4, 2], -1.0, 1.0);
    let xv = f32s(&x);
    let r = x.reverse(&[0, -1]);
    let rv = f32s(&r);
    for idx in indices(&[3, 4, 2]) {
        assert_eq!(rv[flat(&[3, 4, 2], &idx)], xv[flat(&[3, 4, 2], &[2 - idx[0], idx[1], 1 - idx[2]])]);
    }
    let parts = x.split(&[1, 0, 3], 1);
    assert_eq!(
        parts.iter().map(|p| p.dims().to_vec()).collect::<Vec<_>>(),
        [vec![3, 1, 2], vec![3, 0, 2], vec![3, 3, 2]]
    );
    let refs: Vec<&Tensor> = parts.iter().collect();
    assert_eq!(bits(&Tensor::concat(&refs, 1)), bits(&x));
    let halves = x.chunks(2, -2);
    assert_eq!(bits(&halves[1]), bits(&x.narrow(1, 2, 2)));
}

#[test]
fn statistics_reductions() {
    let x = rand_f64(4, &[6, 7], -3.0, 3.0);
    let xv = f64s(&x);
    let col = |j: usize| (0..6).map(|i| xv[i * 7 + j]).collect::<Vec<_>>();
    let var: Vec<f64> = (0..7)
        .map(|j| {
            let c = col(j);
            let m = c.iter().sum::<f64>() / 6.0;
            c.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 6.0
        })
        .collect();
    assert_close(&f64s(&x.variance(0, false)), &var, 1e-12);
    assert_close(&f64s(&x.std(0, false)), &var.iter().map(|v| v.sqrt()).collect::<Vec<_>>(), 1e-12);
    let norms: Vec<f64> = (0..7).map(|j| col(j).iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
    assert_close(&f64s(&x.norm(0, false)), &norms, 1e-12);
    let unit = f64s(&x.l2_normalize(0, 1e-12));
    for j in 0..7 {
        for i in 0..6 {
            assert!((unit[i * 7 + j] - xv[i * 7 + j] / norms[j]).abs() < 1e-12);
        }
    }
    // A zero vector stays zero (the epsilon), not NaN.
    assert_eq!(f64s(&Tensor::zeros([3], DType::F64).l2_normalize(0, 1e-12)), [0.0; 3]);

    let b = x.gt(1.0);
    let bv = b.to_vec::<bool>().unwrap();
    let any: Vec<bool> = (0..6).map(|i| bv[i * 7..(i + 1) * 7].iter().any(|&v| v)).collect();
    let all: Vec<bool> = (0..7).map(|j| (0..6).all(|i| bv[i * 7 + j])).collect();
    assert_eq!(b.any(1, false).to_vec::<bool>().unwrap(), any);
    assert_eq!(
        x.gt(-2.0).all(0, false).to_vec::<bool>().unwrap(),
        (0..7).map(|j| col(j).iter().all(|&v| v > -2.0)).collect::<Vec<_>>()
    );
    assert_eq!(b.all(0, false).to_vec::<bool>().unwrap(), all);
    assert_eq!(b.all(0, true).dims(), &[1, 7]);
    let empty = Tensor::zeros([0, 3], DType::Bool);
    assert_eq!(empty.any(0, false).to_vec::<bool>().unwrap(), [false; 3]);
    assert_eq!(empty.all(0, false).to_vec::<bool>().unwrap(), [true; 3]);
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, Some(5), Some(3)])])]
fn arrange_everything(x: &Tensor) -> Tensor {
    arrange_body(x)
}

fn arrange_body(x: &Tensor) -> Tensor {
    let padded = x.pad(&[(0, 0), (2, 1), (1, 1)], PadMode::Reflect);
    let constant = x.pad(&[(0, 0), (1, 0), (2, 0)], PadMode::Constant(-2.5));
    let tiled = x.tile(&[1, 2, 1]).repeat(2, 2);
    let parts = padded.chunks(2, 1);
    let spread = x.std(1, true) + x.norm(-1, true) + x.l2_normalize(-1, 1e-12);
    let flags = x.gt(0.5).any(-1, false).cast(DType::F32).sum_all();
    (parts[1].reverse(&[1, 2]).sum(1, false).sum_all() + constant.sum_all() + tiled.mean_all() + spread.sum_all())
        * flags
}

#[test]
fn traced_with_an_unknown_batch_dim_matches_eager() {
    for n in [1, 4, 9] {
        let x = rand_f32(10 + n as u64, &[n, 5, 3], -1.0, 1.0);
        let traced = arrange_everything(&x);
        let eager = arrange_body(&x);
        assert_eq!(bits(&traced), bits(&eager), "batch {n}");
    }
    assert_eq!(arrange_everything::tracing_count(), 1);
}

#[test]
fn errors_name_the_op_and_the_problem() {
    let x = rand_f32(5, &[2, 3], -1.0, 1.0);
    let msg = panic_message(|| drop(x.pad(&[(0, 0), (3, 0)], PadMode::Reflect)));
    assert!(msg.contains("pad: paddings (3, 0) of axis 1 exceed 2") && msg.contains("f32[2,3]"), "{msg}");
    assert!(msg.contains("arrange_ops.rs"), "{msg}");
    let msg = panic_message(|| drop(x.pad(&[(1, 1)], PadMode::Symmetric)));
    assert!(msg.contains("pad: 1 paddings given for a tensor of rank 2"), "{msg}");
    let msg = panic_message(|| drop(x.split(&[1, 1], 1)));
    assert!(msg.contains("split: sizes [1, 1] do not add up to 3"), "{msg}");
    let msg = panic_message(|| drop(x.chunks(2, 1)));
    assert!(msg.contains("cannot be split into 2 equal parts"), "{msg}");
    let msg = panic_message(|| drop(x.tile(&[2])));
    assert!(msg.contains("tile: 1 multiples given for a tensor of rank 2"), "{msg}");
    let msg = panic_message(|| drop(x.repeat(2, 2)));
    assert!(msg.contains("repeat: axis 2 is out of range for rank 2") && msg.contains("arrange_ops.rs"), "{msg}");
    let msg = panic_message(|| drop(x.any(0, false)));
    assert!(msg.contains("reduce_any") && msg.contains("bool"), "{msg}");
    let msg = panic_message(|| drop(x.cast(DType::I32).variance(0, false)));
    assert!(msg.contains("reduce_variance") && msg.contains("float"), "{msg}");
}

#[test]
fn triangles_eye_and_linspace() {
    let dims = [2, 4, 5];
    let x = rand_f32(60, &dims, -1.0, 1.0);
    let xv = f32s(&x);
    for k in -2..=2i64 {
        let (lo, up) = (f32s(&x.tril(k)), f32s(&x.triu(k)));
        for idx in indices(&dims) {
            let (r, c) = (idx[1] as i64, idx[2] as i64);
            let at = flat(&dims, &idx);
            assert_eq!(lo[at], if c - r <= k { xv[at] } else { 0.0 }, "tril({k}) at {idx:?}");
            assert_eq!(up[at], if c - r >= k { xv[at] } else { 0.0 }, "triu({k}) at {idx:?}");
        }
    }
    // Other dtypes, and an off-triangle NaN becomes 0 (a select, not a product).
    let mask = x.gt(0.0).tril(0).cast(DType::I32).sum_all().to_scalar::<i32>().unwrap();
    let want = indices(&dims).iter().filter(|i| i[2] <= i[1] && xv[flat(&dims, i)] > 0.0).count();
    assert_eq!(mask as usize, want);
    let nan = Tensor::full([2, 2], f32::NAN, DType::F32);
    assert!(f32s(&nan.triu(1))[2] == 0.0 && f32s(&nan.triu(1))[1].is_nan());
    // Traced over unknown dims: the same bits.
    let f = tensorjit::function("triangles", |x: Tensor| x.tril(-1) + x.triu(2))
        .with_input_signature(vec![TensorSpec::new(DType::F32, &[None, None, None])]);
    for d in [[2, 4, 5], [1, 1, 3], [3, 6, 2]] {
        let x = rand_f32(61, &d, -1.0, 1.0);
        assert_eq!(bits(&f.call(x.clone())), bits(&(x.tril(-1) + x.triu(2))), "{d:?}");
    }
    assert_eq!(f.tracing_count(), 1);
    assert_eq!(
        f64s(&Tensor::eye(3, DType::F64).matmul(&rand_f64(62, &[3, 2], -1.0, 1.0))),
        f64s(&rand_f64(62, &[3, 2], -1.0, 1.0))
    );
    let l = f64s(&Tensor::linspace(-1.0, 2.0, 7, DType::F64).unwrap());
    assert_eq!((l[0], l[6], l.len()), (-1.0, 2.0, 7));
    assert!(l.windows(2).all(|w| (w[1] - w[0] - 0.5).abs() < 1e-15));
    assert_eq!(Tensor::linspace(0.0, 1.0, 0, DType::F32).unwrap().dims(), &[0]);
    assert!(Tensor::linspace(0.0, 1.0, 3, DType::I32).unwrap_err().to_string().contains("needs a float dtype"));
    let msg = panic_message(|| drop(rand_f32(63, &[4], -1.0, 1.0).tril(0)));
    assert!(msg.contains("tril: needs a tensor of rank >= 2, got rank 1") && msg.contains("arrange_ops.rs"), "{msg}");
}
