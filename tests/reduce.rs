//! Reductions: axes, keepdims, None vs [], integer mean, argmax ties, NaN.

mod common;
use common::*;
use tensorjit::prelude::*;

#[test]
fn sum_mean_max_min_prod_over_axes() {
    let x = t32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    assert_eq!(f32s(&x.sum(0, false)), vec![5.0, 7.0, 9.0]);
    assert_eq!(f32s(&x.sum(-1, false)), vec![6.0, 15.0]);
    assert_eq!(x.sum(1, true).dims(), &[2, 1]);
    assert_eq!(x.sum(Axes::All, false).to_scalar::<f32>().unwrap(), 21.0);
    assert_eq!(x.sum(Vec::<i64>::new(), false).dims(), &[2, 3], "[] reduces nothing");
    assert_eq!(x.sum(None::<i64>, true).dims(), &[1, 1], "None reduces everything");
    assert_eq!(f32s(&x.mean(0, false)), vec![2.5, 3.5, 4.5]);
    assert_eq!(f32s(&x.max(1, false)), vec![3.0, 6.0]);
    assert_eq!(f32s(&x.min(0, false)), vec![1.0, 2.0, 3.0]);
    assert_eq!(f32s(&x.prod(1, false)), vec![6.0, 120.0]);
    let y = rand_f64(3, &[2, 3, 4, 5], -1.0, 1.0);
    let s = y.sum([0, 2], false);
    assert_eq!(s.dims(), &[3, 5]);
    let yv = f64s(&y);
    let mut want = vec![0.0; 15];
    for a in 0..2 {
        for b in 0..3 {
            for c in 0..4 {
                for d in 0..5 {
                    want[b * 5 + d] += yv[((a * 3 + b) * 4 + c) * 5 + d];
                }
            }
        }
    }
    assert_close(&f64s(&s), &want, 1e-12);
}

#[test]
fn integer_mean_truncates_toward_zero() {
    let x = Tensor::from_vec(vec![-3i32, -4, 1, 2], [2, 2]).unwrap();
    assert_eq!(x.mean(1, false).to_vec::<i32>().unwrap(), vec![-3, 1]);
    assert_eq!(x.sum_all().to_scalar::<i32>().unwrap(), -4);
    assert_eq!(x.max(0, false).to_vec::<i32>().unwrap(), vec![1, 2]);
}

#[test]
fn argmax_argmin_take_first_tie() {
    let x = t32(&[1.0, 3.0, 3.0, 0.0, 0.0, -1.0], &[2, 3]);
    assert_eq!(x.argmax(1).to_vec::<i64>().unwrap(), vec![1, 0]);
    assert_eq!(x.argmin(1).to_vec::<i64>().unwrap(), vec![0, 2]);
    assert_eq!(x.argmax(0).to_vec::<i64>().unwrap(), vec![0, 0, 0]);
    assert_eq!(x.argmax(-1).dtype(), DType::I64);
}

#[test]
fn max_propagates_nan_and_empty_reductions() {
    let x = t32(&[1.0, f32::NAN, 2.0], &[3]);
    assert!(x.max_all_nan());
    let e = Tensor::zeros([0], DType::F32);
    assert_eq!(e.sum_all().to_scalar::<f32>().unwrap(), 0.0);
    assert_eq!(e.max(0, false).to_scalar::<f32>().unwrap(), f32::NEG_INFINITY);
    assert!(e.mean_all().to_scalar::<f32>().unwrap().is_nan());
}

trait MaxNan {
    fn max_all_nan(&self) -> bool;
}
impl MaxNan for Tensor {
    fn max_all_nan(&self) -> bool {
        self.max(Axes::All, false).to_scalar::<f32>().unwrap().is_nan()
    }
}

#[test]
fn large_sums_are_deterministic_and_accurate() {
    let x = rand_f32(11, &[4096, 1024], 0.0, 1.0);
    let rows = x.sum(1, false);
    let m = rows.mean_all().to_scalar::<f32>().unwrap();
    let exact: f64 = f32s(&x).iter().map(|&v| v as f64).sum::<f64>() / 4096.0;
    assert!((m as f64 - exact).abs() < 1e-4 * exact, "{m} vs {exact}");
    // Same bits every time (thread scheduling never changes a sum).
    for _ in 0..3 {
        assert_eq!(x.sum(1, false).mean_all().to_scalar::<f32>().unwrap().to_bits(), m.to_bits());
        assert_eq!(f32s(&x.sum(0, false)), f32s(&x.sum(0, false)));
    }
}
