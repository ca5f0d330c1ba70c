//! conv2d, pooling, softmax against hand-computed values and naive references.

mod common;
use common::*;
use tensorjit::prelude::*;

/// Direct convolution, TensorFlow semantics (SAME puts the extra pixel after).
fn naive_conv(
    x: &[f64],
    xs: [usize; 4],
    f: &[f64],
    fs: [usize; 4],
    s: [usize; 2],
    same: bool,
) -> (Vec<f64>, [usize; 4]) {
    let [n, h, w, c] = xs;
    let [kh, kw, _, o] = fs;
    let out = |i: usize, k: usize, st: usize| if same { i.div_ceil(st) } else { (i - k) / st + 1 };
    let (oh, ow) = (out(h, kh, s[0]), out(w, kw, s[1]));
    let pad =
        |i: usize, k: usize, st: usize, on: usize| if same { ((on - 1) * st + k).saturating_sub(i) / 2 } else { 0 };
    let (pt, pl) = (pad(h, kh, s[0], oh), pad(w, kw, s[1], ow));
    let mut y = vec![0.0; n * oh * ow * o];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for oc in 0..o {
                    let mut acc = 0.0;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * s[0] + ky) as isize - pt as isize;
                            let ix = (ox * s[1] + kx) as isize - pl as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            for ic in 0..c {
                                acc += x[((b * h + iy as usize) * w + ix as usize) * c + ic]
                                    * f[((ky * kw + kx) * c + ic) * o + oc];
                            }
                        }
                    }
                    y[((b * oh + oy) * ow + ox) * o + oc] = acc;
                }
            }
        }
    }
    (y, [n, oh, ow, o])
}

#[test]
fn conv2d_matches_direct_convolution() {
    for (seed, &(xs, fs, st, same)) in [
        ([1, 5, 5, 1], [3, 3, 1, 1], [1, 1], false),
        ([2, 7, 6, 3], [3, 2, 3, 4], [2, 1], true),
        ([1, 8, 8, 2], [2, 2, 2, 3], [2, 2], false),
        ([3, 5, 4, 2], [4, 3, 2, 2], [3, 2], true),
    ]
    .iter()
    .enumerate()
    {
        let x = rand_f64(40 + seed as u64, &xs, -1.0, 1.0);
        let f = rand_f64(50 + seed as u64, &fs, -1.0, 1.0);
        let pad = if same { Padding::Same } else { Padding::Valid };
        let y = x.conv2d(&f, st, pad);
        let (want, ys) = naive_conv(&f64s(&x), xs, &f64s(&f), fs, st, same);
        assert_eq!(y.dims(), &ys);
        assert_close(&f64s(&y), &want, 1e-12);
    }
}

/// The transposed convolution by scattering: each input pixel adds `x · filter[.., .., :, c]`
/// at its stride-spaced place in a `(n − 1)·s + k` (`Valid`) or `n·s` (`Same`) output,
/// TensorFlow's SAME padding taken off the front as the forward conv puts it there.
fn naive_conv_transpose(
    x: &[f64],
    xs: [usize; 4],
    f: &[f64],
    fs: [usize; 4],
    s: [usize; 2],
    same: bool,
) -> (Vec<f64>, [usize; 4]) {
    let [n, h, w, c] = xs;
    let [kh, kw, o, _] = fs;
    let size = |i: usize, k: usize, st: usize| if same { i * st } else { (i - 1) * st + k };
    let (oh, ow) = (size(h, kh, s[0]), size(w, kw, s[1]));
    let pad =
        |i: usize, k: usize, st: usize, big: usize| if same { ((i - 1) * st + k).saturating_sub(big) / 2 } else { 0 };
    let (pt, pl) = (pad(h, kh, s[0], oh), pad(w, kw, s[1], ow));
    let mut y = vec![0.0; n * oh * ow * o];
    for b in 0..n {
        for iy in 0..h {
            for ix in 0..w {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let oy = (iy * s[0] + ky) as isize - pt as isize;
                        let ox = (ix * s[1] + kx) as isize - pl as isize;
                        if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                            continue;
                        }
                        for oc in 0..o {
                            for ic in 0..c {
                                y[((b * oh + oy as usize) * ow + ox as usize) * o + oc] +=
                                    x[((b * h + iy) * w + ix) * c + ic] * f[((ky * kw + kx) * o + oc) * c + ic];
                            }
                        }
                    }
                }
            }
        }
    }
    (y, [n, oh, ow, o])
}

#[test]
fn conv2d_transpose_scatters_each_pixel() {
    for (seed, &(xs, fs, st, same)) in [
        ([1, 3, 3, 1], [3, 3, 1, 1], [1, 1], false),
        ([2, 4, 3, 3], [3, 2, 4, 3], [2, 1], true),
        ([1, 4, 4, 2], [2, 2, 3, 2], [2, 2], false),
        ([2, 3, 5, 2], [4, 3, 2, 2], [3, 2], true),
    ]
    .iter()
    .enumerate()
    {
        let x = rand_f64(70 + seed as u64, &xs, -1.0, 1.0);
        let f = rand_f64(80 + seed as u64, &fs, -1.0, 1.0);
        let pad = if same { Padding::Same } else { Padding::Valid };
        let y = x.conv2d_transpose(&f, st, pad);
        let (want, ys) = naive_conv_transpose(&f64s(&x), xs, &f64s(&f), fs, st, same);
        assert_eq!(y.dims(), &ys);
        assert_close(&f64s(&y), &want, 1e-12);
        // The adjoint of conv2d: <conv2d(z, f), x> = <z, conv2d_transpose(x, f)>.
        let z = rand_f64(90 + seed as u64, &ys, -1.0, 1.0);
        let lhs = (z.conv2d(&f, st, pad) * &x).sum_all().to_scalar::<f64>().unwrap();
        let rhs = (&z * &y).sum_all().to_scalar::<f64>().unwrap();
        assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
    }
    let r = std::panic::catch_unwind(|| {
        rand_f64(1, &[1, 3, 3, 2], -1.0, 1.0).conv2d_transpose(
            &rand_f64(2, &[2, 2, 4, 3], -1.0, 1.0),
            [1, 1],
            Padding::Valid,
        )
    });
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("conv2d_transpose: the input has 2 channels, the filter's last axis expects 3"), "{msg}");
    assert!(msg.contains("nn_ops.rs"), "{msg}");
}

#[test]
fn pooling_hand_computed() {
    let x = t32(&(1..=16).map(|v| v as f32).collect::<Vec<_>>(), &[1, 4, 4, 1]);
    assert_eq!(f32s(&x.max_pool2d([2, 2], [2, 2], Padding::Valid)), vec![6.0, 8.0, 14.0, 16.0]);
    assert_eq!(f32s(&x.avg_pool2d([2, 2], [2, 2], Padding::Valid)), vec![3.5, 5.5, 11.5, 13.5]);
    // SAME with stride 3 on 4 pixels: out 2, pad total 1 → all after; the last window
    // covers one real row/column and divides by the real count.
    let a = x.avg_pool2d([2, 2], [3, 3], Padding::Same);
    assert_eq!(a.dims(), &[1, 2, 2, 1]);
    assert_eq!(f32s(&a), vec![3.5, 6.0, 13.5, 16.0]);
    let m = (&x * -1.0).max_pool2d([3, 3], [1, 1], Padding::Same);
    assert_eq!(f32s(&m)[0], -1.0, "padding is -inf, not 0");
}

#[test]
fn softmax_rows_sum_to_one_and_subtract_max() {
    let x = t32(&[1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0], &[2, 3]);
    let s = x.softmax(-1);
    let v = f32s(&s);
    assert!(v.iter().all(|p| p.is_finite()));
    assert!((v[0] - 0.090_030_57).abs() < 1e-6 && (v[2] - 0.665_240_94).abs() < 1e-6);
    assert!((v[3] - 1.0 / 3.0).abs() < 1e-6);
    let ls = f32s(&x.log_softmax(1));
    assert!((ls[0] - (-2.407_605_7)).abs() < 1e-5);
    let r = rand_f64(60, &[5, 7], -30.0, 30.0).softmax(0).sum(0, false);
    assert_close(&f64s(&r), &[1.0; 7], 1e-14);
}

/// `logsumexp` is log Σ exp over the axes, stable for large values, −∞ for a slice of
/// −∞ and +∞ for one holding +∞ (TensorFlow's `reduce_logsumexp`), with softmax as its
/// gradient; traced calls give the eager bits.
#[test]
fn logsumexp_is_stable_handles_infinities_and_differentiates_to_softmax() {
    let x = rand_f64(61, &[5, 9], -30.0, 30.0);
    let xs = f64s(&x);
    let got = f64s(&x.logsumexp(1, false));
    for (r, g) in got.iter().enumerate() {
        let row = &xs[r * 9..r * 9 + 9];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let want = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        assert!((g - want).abs() <= 1e-14 * want.abs().max(1.0), "row {r}: {g} vs {want}");
    }
    let keep = x.logsumexp([0, 1], true);
    assert_eq!(keep.dims(), &[1, 1]);
    let big = Tensor::from_vec(vec![1000.0f32, 1000.0, -1e30, 0.0], [2, 2]).unwrap();
    let b = f32s(&big.logsumexp(-1, false));
    assert!((b[0] - (1000.0 + 2f32.ln())).abs() < 1e-3 && b[1] == 0.0, "{b:?}");
    let inf = f32::INFINITY;
    let special = Tensor::from_vec(vec![-inf, -inf, inf, 1.0, f32::NAN, 1.0], [3, 2]).unwrap();
    let s = f32s(&special.logsumexp(1, false));
    assert!(s[0] == -inf && s[1] == inf && s[2].is_nan(), "{s:?}");
    let empty = Tensor::from_vec(Vec::<f32>::new(), [2, 0]).unwrap();
    assert_eq!(f32s(&empty.logsumexp(1, false)), vec![-inf, -inf]);

    let tape = GradientTape::new();
    tape.watch(&x);
    let g = tape.gradient(&x.logsumexp(1, false).sum_all(), &[&x]).remove(0).unwrap();
    let soft = f64s(&x.softmax(1));
    for (a, b) in f64s(&g).iter().zip(&soft) {
        assert!((a - b).abs() <= 1e-15, "{a} vs {b}");
    }
    let traced = function("lse", |v: Vec<Tensor>| v[0].logsumexp(-1, false));
    assert_eq!(f64s(&traced.call(vec![x.clone()])), got);
    let msg = std::panic::catch_unwind(|| Tensor::from_vec(vec![1i32], [1]).unwrap().logsumexp(0, false))
        .expect_err("an integer logsumexp is refused");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("reduce_logsumexp: needs a float tensor, got i32"), "{msg}");
}

/// `clip` and `leaky_relu`: values, NaN, and TensorFlow's gradients at the edges.
#[test]
fn clip_and_leaky_relu_follow_tensorflow() {
    let x = Tensor::from_vec(vec![-2.0f64, -1.0, 0.0, 0.5, 1.0, 3.0, f64::NAN], [7]).unwrap();
    let c = f64s(&x.clip(-1.0, 1.0));
    assert_eq!(c[..6], [-1.0, -1.0, 0.0, 0.5, 1.0, 1.0]);
    assert!(c[6].is_nan());
    assert_eq!(f64s(&x.clip(2.0, 1.0))[..6], [1.0; 6], "lo > hi gives hi (NumPy)");
    let l = f64s(&x.leaky_relu(0.1));
    assert_eq!(l[..6], [-0.2, -0.1, 0.0, 0.5, 1.0, 3.0]);
    assert!(l[6].is_nan());
    let tape = GradientTape::persistent();
    tape.watch(&x);
    let gc = f64s(&tape.gradient(&x.clip(-1.0, 1.0).sum_all(), &[&x]).remove(0).unwrap());
    assert_eq!(gc[..6], [0.0, 1.0, 1.0, 1.0, 1.0, 0.0], "the gradient passes where lo <= x <= hi");
    let gl = f64s(&tape.gradient(&x.leaky_relu(0.1).sum_all(), &[&x]).remove(0).unwrap());
    assert_eq!(gl[..6], [0.1, 0.1, 0.1, 1.0, 1.0, 1.0], "leaky_relu'(0) = alpha");
    let y = rand_f32(62, &[4, 33], -3.0, 3.0);
    let err = std::panic::catch_unwind(|| Tensor::from_vec(vec![1i64], [1]).unwrap().leaky_relu(0.2)).expect_err("int");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("leaky_relu: needs a float tensor, got i64") && msg.contains("nn_ops.rs"), "{msg}");
    let traced = function("clip_leaky", |v: Vec<Tensor>| v[0].clip(-1.5, 2.0).leaky_relu(0.3));
    assert_eq!(f32s(&traced.call(vec![y.clone()])), f32s(&y.clip(-1.5, 2.0).leaky_relu(0.3)));
}
