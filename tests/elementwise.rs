//! Elementwise ops: hand-computed values, broadcasting, scalars, dtype rules.

mod common;
use common::*;
use tensorjit::prelude::*;

#[test]
fn arithmetic_with_broadcasting_and_scalars() {
    let a = t32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = t32(&[10.0, 20.0, 30.0], &[3]);
    assert_eq!(f32s(&(&a + &b)), vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
    assert_eq!(f32s(&(&a - &b)), vec![-9.0, -18.0, -27.0, -6.0, -15.0, -24.0]);
    let col = t32(&[2.0, 4.0], &[2, 1]);
    assert_eq!(f32s(&(&a / &col)), vec![0.5, 1.0, 1.5, 1.0, 1.25, 1.5]);
    assert_eq!(f32s(&(&a * 2.0 + 1.0)), vec![3.0, 5.0, 7.0, 9.0, 11.0, 13.0]);
    assert_eq!(f32s(&(10.0 - &a)), vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0]);
    assert_eq!(f32s(&(1.0 / &col)), vec![0.5, 0.25]);
    assert_eq!((&a * 2.0).dtype(), DType::F32, "a Rust scalar takes the tensor's dtype");
    let outer = &t32(&[1.0, 2.0], &[2, 1]) * &t32(&[1.0, 10.0, 100.0], &[1, 3]);
    assert_eq!(outer.dims(), &[2, 3]);
    assert_eq!(f32s(&outer), vec![1.0, 10.0, 100.0, 2.0, 20.0, 200.0]);
    let mut acc = a.clone();
    acc += 1.0;
    acc *= &a;
    assert_eq!(f32s(&acc), vec![2.0, 6.0, 12.0, 20.0, 30.0, 42.0]);
}

#[test]
fn unary_math_matches_references() {
    let x = rand_f64(1, &[783], -5.0, 5.0);
    let xv = f64s(&x);
    let check = |t: Tensor, f: fn(f64) -> f64, tol: f64| {
        let want: Vec<f64> = xv.iter().map(|&v| f(v)).collect();
        assert_close(&f64s(&t), &want, tol);
    };
    check(x.exp(), f64::exp, 1e-15);
    check(x.abs().log(), |v| v.abs().ln(), 1e-15);
    check(x.tanh(), f64::tanh, 1e-15);
    check(x.sigmoid(), |v| 1.0 / (1.0 + (-v).exp()), 1e-15);
    check(x.softplus(), |v| v.exp().ln_1p(), 1e-14);
    check(x.sin(), f64::sin, 1e-15);
    check(x.cos(), f64::cos, 1e-15);
    check(x.abs().sqrt(), |v| v.abs().sqrt(), 0.0);
    check(x.abs().rsqrt(), |v| 1.0 / v.abs().sqrt(), 0.0);
    check(x.square(), |v| v * v, 0.0);
    check(x.neg(), |v| -v, 0.0);
    check(x.floor(), f64::floor, 0.0);
    check(x.ceil(), f64::ceil, 0.0);
    check(x.relu(), |v| v.max(0.0), 0.0);
    check(x.sign(), |v| if v == 0.0 { 0.0 } else { v.signum() }, 0.0);
}

#[test]
fn relu_sign_abs_at_zero_and_nan() {
    let x = t32(&[0.0, -0.0, f32::NAN, -2.0, 3.0], &[5]);
    let r = f32s(&x.relu());
    assert_eq!(r[..2], [0.0, 0.0]);
    assert!(r[2].is_nan());
    assert_eq!(r[3..], [0.0, 3.0]);
    assert_eq!(f32s(&x.sign())[..2], [0.0, 0.0]);
}

#[test]
fn comparisons_logic_and_where() {
    let a = t32(&[1.0, 5.0, 3.0], &[3]);
    let b = t32(&[2.0, 5.0, 1.0], &[3]);
    assert_eq!(a.lt(&b).to_vec::<bool>().unwrap(), vec![true, false, false]);
    assert_eq!(a.le(&b).to_vec::<bool>().unwrap(), vec![true, true, false]);
    assert_eq!(a.eq(&b).to_vec::<bool>().unwrap(), vec![false, true, false]);
    assert_eq!(a.ne(5.0).to_vec::<bool>().unwrap(), vec![true, false, true]);
    assert_eq!(a.gt(2.0).logical_and(a.lt(4.0)).to_vec::<bool>().unwrap(), vec![false, false, true]);
    assert_eq!(a.gt(2.0).logical_or(a.lt(2.0)).logical_not().to_vec::<bool>().unwrap(), vec![false, false, false]);
    let w = Tensor::where_(&a.gt(&b), &a, &b);
    assert_eq!(f32s(&w), vec![2.0, 5.0, 3.0]);
    let w = Tensor::where_(&a.gt(2.0), 1.0, 0.0);
    assert_eq!(w.dtype(), DType::F32);
    let cond = Tensor::from_vec(vec![true, false], [2, 1]).unwrap();
    let w = Tensor::where_(&cond, &a, -1.0);
    assert_eq!(w.dims(), &[2, 3]);
    assert_eq!(f32s(&w), vec![1.0, 5.0, 3.0, -1.0, -1.0, -1.0]);
    assert_eq!(f32s(&a.maximum(&b)), vec![2.0, 5.0, 3.0]);
    assert_eq!(f32s(&a.minimum(2.0)), vec![1.0, 2.0, 2.0]);
    let n = t32(&[f32::NAN, 1.0], &[2]);
    assert!(f32s(&n.maximum(0.0))[0].is_nan() && f32s(&t32(&[0.0], &[1]).maximum(f32::NAN))[0].is_nan());
}

#[test]
fn integer_semantics_follow_tensorflow() {
    let a = Tensor::from_vec(vec![7i32, -7, 7, -7, 5], [5]).unwrap();
    let b = Tensor::from_vec(vec![2i32, 2, -2, -2, 0], [5]).unwrap();
    assert_eq!((&a / &b).to_vec::<i32>().unwrap(), vec![3, -4, -4, 3, 0], "integer division floors");
    assert_eq!(a.floordiv(&b).to_vec::<i32>().unwrap(), vec![3, -4, -4, 3, 0]);
    assert_eq!((&a * 3).to_vec::<i32>().unwrap(), vec![21, -21, 21, -21, 15]);
    let p =
        Tensor::from_vec(vec![2i64, 3, -2, 1], [4]).unwrap().pow(Tensor::from_vec(vec![10i64, 3, 3, -1], [4]).unwrap());
    assert_eq!(p.to_vec::<i64>().unwrap(), vec![1024, 27, -8, 1]);
    let f = t32(&[7.0, -7.0], &[2]);
    assert_eq!(f32s(&f.floordiv(2.0)), vec![3.0, -4.0]);
    assert_eq!(f32s(&(&f / 2.0)), vec![3.5, -3.5]);
}

#[test]
fn pow_follows_ieee_special_cases() {
    let x = t32(&[2.0, -2.0, -2.0, 0.0, 4.0], &[5]);
    let y = t32(&[3.0, 3.0, 0.5, -1.0, 0.5], &[5]);
    let p = f32s(&x.pow(&y));
    assert_eq!(p[0], 8.0);
    assert_eq!(p[1], -8.0);
    assert!(p[2].is_nan());
    assert_eq!(p[3], f32::INFINITY);
    assert_eq!(p[4], 2.0);
    // (−∞)^y: ±∞ for y > 0 and ±0 for y < 0, the sign negative only for odd integers
    // (IEEE 754, C's pow, NumPy); not NaN, whatever y's fraction.
    let neg_inf = t32(&[f32::NEG_INFINITY; 6], &[6]);
    let y = t32(&[0.5, -0.5, 3.0, -3.0, 2.0, 2.7], &[6]);
    let p = f32s(&neg_inf.pow(&y));
    let want = [f32::INFINITY, 0.0, f32::NEG_INFINITY, -0.0, f32::INFINITY, f32::INFINITY];
    assert_eq!(p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.map(f32::to_bits).to_vec(), "{p:?}");
    let traced = function("pow", |v: Vec<Tensor>| v[0].pow(&v[1]));
    let jit = traced.try_call(vec![neg_inf.cast(DType::F64), y.cast(DType::F64)]).expect("traced pow");
    assert_eq!(f64s(&jit), want.map(f64::from).to_vec());
}

#[test]
fn cast_truncates_saturates_and_maps_bools() {
    let x = t32(&[1.9, -1.9, 3e10, f32::NAN, 0.0], &[5]);
    assert_eq!(x.cast(DType::I32).to_vec::<i32>().unwrap(), vec![1, -1, i32::MAX, 0, 0]);
    assert_eq!(x.cast(DType::Bool).to_vec::<bool>().unwrap(), vec![true, true, true, true, false]);
    let b = Tensor::from_vec(vec![true, false], [2]).unwrap();
    assert_eq!(b.cast(DType::F64).to_vec::<f64>().unwrap(), vec![1.0, 0.0]);
    assert_eq!(Tensor::scalar(3i64).cast(DType::F32).to_scalar::<f32>().unwrap(), 3.0);
}

#[test]
fn large_elementwise_is_parallel_and_exact() {
    // Above the parallel threshold: every element must equal the scalar algorithm.
    let n = 1_000_003;
    let x = rand_f32(7, &[n], -10.0, 10.0);
    let y = x.tanh();
    let xv = f32s(&x);
    let yv = f32s(&y);
    for i in (0..n).step_by(997) {
        assert_eq!(yv[i].to_bits(), tensorjit::math::tanh_f32(xv[i]).to_bits());
    }
    let z = &x * &x + 1.0;
    assert_eq!(f32s(&z)[n - 1], xv[n - 1] * xv[n - 1] + 1.0);
}

#[test]
fn zero_sized_and_scalar_tensors() {
    let e = Tensor::zeros([0, 3], DType::F32);
    let r = &e + &t32(&[1.0, 2.0, 3.0], &[3]);
    assert_eq!(r.dims(), &[0, 3]);
    assert_eq!(e.sum_all().to_scalar::<f32>().unwrap(), 0.0);
    let s = Tensor::scalar(2.0f64);
    assert_eq!((&s * &s).to_scalar::<f64>().unwrap(), 4.0);
    assert_eq!(s.rank(), 0);
}

/// Ulps between two floats of one sign (`u64::MAX` across signs, NaNs equal).
fn ulps(a: f64, b: f64) -> u64 {
    if a.is_nan() && b.is_nan() {
        return 0;
    }
    if a.is_sign_negative() != b.is_sign_negative() {
        return if a == b { 0 } else { u64::MAX };
    }
    a.abs().to_bits().abs_diff(b.abs().to_bits())
}

/// sin/cos stay accurate far from zero (TensorFlow, JAX and PyTorch reduce large
/// arguments exactly too): random magnitudes up to the dtype's largest, against glibc's
/// f64 `sin`/`cos`; a traced function gives the eager bits.
#[test]
fn sin_and_cos_of_large_arguments_match_libm_eager_and_traced() {
    let n = 600;
    let exps = rand_vec(31, n, 20.0, 127.9);
    let mut x32: Vec<f32> =
        exps.iter().enumerate().map(|(i, e)| (if i % 2 == 0 { 1.0 } else { -1.0 }) * e.exp2() as f32).collect();
    x32.extend([f32::MAX, f32::MIN, 1e10, 3e38, f32::INFINITY, f32::NAN]);
    let exps = rand_vec(32, n, 20.0, 1023.9);
    let mut x64: Vec<f64> =
        exps.iter().enumerate().map(|(i, e)| (if i % 2 == 0 { 1.0 } else { -1.0 }) * e.exp2()).collect();
    // And below 2^20, the doubles nearest multiples of π/2 (found with mpmath).
    x64.extend([f64::MAX, 1e22, f64::NEG_INFINITY, 642615.9188844458, -321307.9594422229, 871790.3905748408]);
    let (t32, t64) =
        (Tensor::from_vec(x32.clone(), [x32.len()]).unwrap(), Tensor::from_vec(x64.clone(), [x64.len()]).unwrap());
    for (name, op, reference) in
        [("sin", Tensor::sin as fn(&Tensor) -> Tensor, f64::sin as fn(f64) -> f64), ("cos", Tensor::cos, f64::cos)]
    {
        let got32 = f32s(&op(&t32));
        for (&x, &g) in x32.iter().zip(&got32) {
            let want = reference(x as f64) as f32;
            // f32 ulps: the f64 distance of two f32 values of one binade over 2^29.
            assert!(ulps(g as f64, want as f64) <= 2 << 29, "{name}({x:e}) = {g:e}, libm {want:e}");
        }
        let got64 = f64s(&op(&t64));
        for (&x, &g) in x64.iter().zip(&got64) {
            assert!(ulps(g, reference(x)) <= 2, "{name}({x:e}) = {g:e}, libm {:e}", reference(x));
        }
        // The double nearest a multiple of π/2 (Kahan–McDonald): its cosine's relative
        // accuracy needs every bit of the reduction. glibc is 8 ulp off here; the
        // reference is the correctly rounded value (mpmath at 4000 bits).
        let hardest = Tensor::from_vec(vec![6_381_956_970_095_103.0 * 2f64.powi(797)], [1]).unwrap();
        let want = if name == "sin" { 1.0 } else { -4.687_165_924_254_628e-19 };
        assert!(ulps(f64s(&op(&hardest))[0], want) <= 1, "{name} of the hardest case: {:?}", f64s(&op(&hardest)));
        let traced = function(name, move |v: Vec<Tensor>| op(&v[0]));
        for t in [&t32, &t64] {
            let eager = op(t);
            let jit = traced.try_call(vec![t.clone()]).expect("traced trig");
            assert_eq!(element_bytes(&jit), element_bytes(&eager), "traced {name} of {:?}", t.dtype());
        }
    }
}

/// erf against its known values (f64 to the last digit, f32 rounded from them), odd
/// symmetry, ±1 at ±∞, NaN kept; eager and traced agree byte for byte.
#[test]
fn erf_matches_known_values_eager_and_traced() {
    // erf at 0.1, 0.5, 1, 2, 3.5 and 5.9 (tables: Abramowitz & Stegun, checked with mpmath).
    let xs = [0.1f64, 0.5, 1.0, 2.0, 3.5, 5.9];
    let want = [
        0.1124629160182849,
        0.5204998778130465,
        0.8427007929497149,
        0.9953222650189527,
        0.9999992569016276,
        0.9999999999999999,
    ];
    let mut v: Vec<f64> = xs.iter().flat_map(|x| [*x, -x]).collect();
    v.extend([0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-300, 40.0]);
    let t = Tensor::from_vec(v.clone(), [v.len()]).unwrap();
    let got = f64s(&t.erf());
    for (k, w) in want.iter().enumerate() {
        assert!(
            ulps(got[2 * k], *w) <= 1 && got[2 * k + 1] == -got[2 * k],
            "erf({}) = {}, want {w}",
            xs[k],
            got[2 * k]
        );
    }
    let n = 2 * xs.len();
    assert_eq!(got[n].to_bits(), 0);
    assert_eq!(got[n + 1].to_bits(), (-0.0f64).to_bits());
    assert_eq!((got[n + 2], got[n + 3]), (1.0, -1.0));
    assert!(got[n + 4].is_nan());
    assert_eq!((got[n + 5], got[n + 6]), (1.1283791670955126e-300, 1.0));
    let t32 = t.cast(DType::F32);
    let got32 = f32s(&t32.erf());
    for (k, w) in want.iter().enumerate() {
        // The f32 argument differs from the f64 one by up to half an f32 ulp.
        assert!(
            (got32[2 * k] as f64 - w).abs() <= 2.0 * f32::EPSILON as f64 * w,
            "f32 erf({}) = {}",
            xs[k],
            got32[2 * k]
        );
    }
    let traced = function("erf", |v: Vec<Tensor>| v[0].erf());
    for t in [&t, &t32] {
        assert_eq!(element_bytes(&traced.call(vec![t.clone()])), element_bytes(&t.erf()), "{:?}", t.dtype());
    }
    let err = std::panic::catch_unwind(|| Tensor::from_vec(vec![1i32], [1]).unwrap().erf()).expect_err("int erf");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("erf: needs a float tensor"), "{msg}");
}

/// `floormod` / `%` take the divisor's sign (`tf.math.floormod`, Python), exactly — even
/// for quotients far beyond 2^53 — and never trap: an integer divisor of 0 gives 0, a float
/// one NaN. Traced calls give the eager bytes.
#[test]
fn floormod_follows_python_and_tensorflow() {
    let a = [7.0f64, -7.0, 7.0, -7.0, 5.5, -5.5, 1e20, -0.0, 6.0, -6.0, 2.0, -2.0];
    let b = [3.0f64, 3.0, -3.0, -3.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, f64::INFINITY, f64::INFINITY];
    // TensorFlow's `floormod` for each pair — Python's `%` too, but for a zero remainder,
    // which keeps a's sign as C's fmod does (Python: b's). 1e20 % 3 is exact: 10^20 ≡ 1.
    let want = [1.0, 2.0, -2.0, -1.0, 1.5, 0.5, 1.0, -0.0, 0.0, -0.0, 2.0, f64::INFINITY];
    let (ta, tb) = (Tensor::from_vec(a.to_vec(), [12]).unwrap(), Tensor::from_vec(b.to_vec(), [12]).unwrap());
    let got = f64s(&(&ta % &tb));
    assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.map(f64::to_bits).to_vec(), "{got:?}");
    let f32_got = f32s(&(&ta.cast(DType::F32) % &tb.cast(DType::F32)));
    assert_eq!(f32_got[..6], [1.0, 2.0, -2.0, -1.0, 1.5, 0.5]);
    assert_eq!(f32s(&(&ta.cast(DType::F32) % 2.5))[..2], [2.0, 0.5], "a Rust scalar divisor");
    let nan = f64s(&Tensor::from_vec(vec![3.0f64, f64::INFINITY], [2]).unwrap().floormod(0.0));
    assert!(nan.iter().all(|v| v.is_nan() && v.is_sign_positive()), "{nan:?}");

    let ia = Tensor::from_vec(vec![7i32, -7, 7, -7, 5, i32::MIN, i32::MIN, 0], [8]).unwrap();
    let ib = Tensor::from_vec(vec![3i32, 3, -3, -3, 0, -1, 3, -5], [8]).unwrap();
    assert_eq!((&ia % &ib).to_vec::<i32>().unwrap(), vec![1, 2, -2, -1, 0, 0, 1, 0]);
    // a == floordiv(a, b)·b + floormod(a, b) wherever b != 0.
    let (x, y) = (rand_f32(81, &[500], -1e3, 1e3).cast(DType::I64), rand_f32(82, &[500], -40.0, 40.0).cast(DType::I64));
    let y = y.select(&y.ne(0), 1);
    let back = &(&x.floordiv(&y) * &y) + &(&x % &y);
    assert_eq!(back.to_vec::<i64>().unwrap(), x.to_vec::<i64>().unwrap());

    let traced = function("floormod", |v: Vec<Tensor>| &v[0] % &v[1]);
    for (p, q) in [(ta.clone(), tb.clone()), (ta.cast(DType::F32), tb.cast(DType::F32)), (ia.clone(), ib.clone())] {
        assert_eq!(
            element_bytes(&traced.call(vec![p.clone(), q.clone()])),
            element_bytes(&(&p % &q)),
            "{:?}",
            p.dtype()
        );
    }
    let mut acc = ta.clone();
    acc %= 4.0;
    assert_eq!(f64s(&acc)[..2], [3.0, 1.0]);
}

#[test]
fn where_with_a_mask_per_row_or_per_column_of_a_square_matrix() {
    let a = rand_f32(90, &[6, 6], -1.0, 1.0);
    let b = rand_f32(91, &[6, 6], -1.0, 1.0);
    let flags = rand_f32(92, &[6], -1.0, 1.0).gt(0.0);
    let f = flags.to_vec::<bool>().unwrap();
    let (av, bv) = (f32s(&a), f32s(&b));
    for (mask, per_row) in [(flags.reshape([6, 1]), true), (flags.clone(), false)] {
        for scalar_b in [false, true] {
            let y = if scalar_b { Tensor::where_(&mask, &a, 0.5f32) } else { Tensor::where_(&mask, &a, &b) };
            let yv = f32s(&y);
            for i in 0..6 {
                for j in 0..6 {
                    let keep = if per_row { f[i] } else { f[j] };
                    let other = if scalar_b { 0.5 } else { bv[i * 6 + j] };
                    assert_eq!(yv[i * 6 + j], if keep { av[i * 6 + j] } else { other }, "({i}, {j}) per_row {per_row}");
                }
            }
        }
    }
}
