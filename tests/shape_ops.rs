//! Shape ops: reshape, permute, broadcast_to, expand/squeeze, concat/stack, slice,
//! gather, one_hot.

mod common;
use common::*;
use tensorjit::prelude::*;

fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| i as f32).collect::<Vec<_>>(), shape).unwrap()
}

#[test]
fn reshape_infers_one_dim_and_shares_the_buffer() {
    let x = iota(&[2, 3, 4]);
    let y = x.reshape([-1, 4]);
    assert_eq!(y.dims(), &[6, 4]);
    assert_eq!(f32s(&y), f32s(&x));
    assert_eq!(x.reshape([4, 6]).flatten().dims(), &[24]);
    assert_eq!(x.reshape(x.shape()).dims(), &[2, 3, 4]);
}

#[test]
fn permute_transpose_broadcast() {
    let x = iota(&[2, 3]);
    assert_eq!(f32s(&x.t()), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let y = iota(&[2, 3, 4]).permute(&[2, 0, 1]);
    assert_eq!(y.dims(), &[4, 2, 3]);
    assert_eq!(f32s(&y)[..6], [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);
    assert_eq!(f32s(&iota(&[2, 3, 4]).transpose(0, 2)), f32s(&iota(&[2, 3, 4]).permute(&[2, 1, 0])));
    let b = t32(&[1.0, 2.0], &[2, 1]).broadcast_to([2, 3]);
    assert_eq!(f32s(&b), vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    let b = t32(&[7.0], &[]).broadcast_to([2, 2]);
    assert_eq!(f32s(&b), vec![7.0; 4]);
}

#[test]
fn expand_squeeze_concat_stack() {
    let x = iota(&[2, 3]);
    assert_eq!(x.expand_dims(0).dims(), &[1, 2, 3]);
    assert_eq!(x.expand_dims(-1).dims(), &[2, 3, 1]);
    assert_eq!(x.expand_dims(1).squeeze(&[1]).dims(), &[2, 3]);
    assert_eq!(iota(&[1, 2, 1]).squeeze(&[]).dims(), &[2]);
    let c = Tensor::concat(&[&x, &(&x + 10.0)], 1);
    assert_eq!(c.dims(), &[2, 6]);
    assert_eq!(f32s(&c), vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 3.0, 4.0, 5.0, 13.0, 14.0, 15.0]);
    let c0 = Tensor::concat(&[&x, &x], 0);
    assert_eq!(c0.dims(), &[4, 3]);
    let s = Tensor::stack(&[&x, &x, &x], 1);
    assert_eq!(s.dims(), &[2, 3, 3]);
    assert_eq!(f32s(&s)[..6], [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
}

#[test]
fn slicing_follows_python() {
    let x = iota(&[4, 5]);
    let s = x.slice(&[(1..3).into(), SliceArg::full().step(2)]);
    assert_eq!(s.dims(), &[2, 3]);
    assert_eq!(f32s(&s), vec![5.0, 7.0, 9.0, 10.0, 12.0, 14.0]);
    let r = x.slice(&[SliceArg::new(None, None, -1)]);
    assert_eq!(f32s(&r)[..5], [15.0, 16.0, 17.0, 18.0, 19.0]);
    let neg = x.slice(&[(-1..).into(), (..-2).into()]);
    assert_eq!(f32s(&neg), vec![15.0, 16.0, 17.0]);
    let back = x.slice(&[SliceArg::full(), SliceArg::new(Some(3), Some(0), -2)]);
    assert_eq!(f32s(&back)[..2], [3.0, 1.0]);
    assert_eq!(x.slice(&[(10..20).into()]).dims(), &[0, 5], "out-of-range bounds clamp");
    assert_eq!(f32s(&x.narrow(1, 2, 2))[..2], [2.0, 3.0]);
}

/// Bounds and steps at the ends of i64 slice as Python's `list(range(7))[a:b:c]` does
/// (the expected lists are Python's), eagerly and traced — no overflow, no panic.
#[test]
fn extreme_slice_bounds_and_steps_follow_python() {
    let (min, max) = (i64::MIN, i64::MAX);
    /// start, stop, step, and Python's result.
    type Case = (Option<i64>, Option<i64>, i64, &'static [i64]);
    let cases: [Case; 10] = [
        (None, None, min, &[6]),
        (None, None, max, &[0]),
        (Some(min), Some(max), 1, &[0, 1, 2, 3, 4, 5, 6]),
        (Some(max), Some(min), -1, &[6, 5, 4, 3, 2, 1, 0]),
        (Some(max), None, min, &[6]),
        (Some(min), None, max, &[0]),
        (Some(10), None, -3, &[6, 3, 0]),
        (Some(5), Some(1), -2, &[5, 3]),
        (None, Some(0), -1, &[6, 5, 4, 3, 2, 1]),
        (Some(3), Some(1), 1, &[]),
    ];
    let x = Tensor::from_vec((0..7).collect::<Vec<i64>>(), [7]).unwrap();
    for (start, stop, step, want) in cases {
        let arg = SliceArg::new(start, stop, step);
        let eager = x.slice(&[arg]);
        assert_eq!(eager.to_vec::<i64>().unwrap(), want, "[{start:?}:{stop:?}:{step}]");
        let traced = function("slice", move |v: Vec<Tensor>| v[0].slice(&[arg]));
        assert_eq!(traced.call(vec![x.clone()]).to_vec::<i64>().unwrap(), want, "traced [{start:?}:{stop:?}:{step}]");
    }
    let err = std::panic::catch_unwind(|| x.narrow(0, usize::MAX, 2)).expect_err("narrow past the end");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("out of range for axis 0 of length 7"), "{msg}");
}

#[test]
fn gather_and_one_hot() {
    let x = iota(&[3, 2]);
    let idx = Tensor::from_vec(vec![2i64, 0, 2], [3]).unwrap();
    assert_eq!(f32s(&x.gather(&idx, 0)), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
    let idx2 = Tensor::from_vec(vec![1i32, 0, 1, 1], [2, 2]).unwrap();
    let g = x.gather(&idx2, 1);
    assert_eq!(g.dims(), &[3, 2, 2]);
    assert_eq!(f32s(&g)[..4], [1.0, 0.0, 1.0, 1.0]);
    let labels = Tensor::from_vec(vec![0i64, 2, 5, -1], [4]).unwrap();
    let oh = labels.one_hot(3, DType::F32);
    assert_eq!(oh.dims(), &[4, 3]);
    assert_eq!(f32s(&oh), vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "out-of-range → zero row");
}

#[test]
fn large_permute_matches_naive() {
    let x = rand_f32(5, &[300, 257, 3], -1.0, 1.0);
    let y = x.permute(&[1, 2, 0]);
    let (xv, yv) = (f32s(&x), f32s(&y));
    for &(a, b, c) in &[(0, 0, 0), (299, 256, 2), (17, 100, 1), (150, 3, 2)] {
        assert_eq!(yv[(b * 3 + c) * 300 + a], xv[(a * 257 + b) * 3 + c]);
    }
}

/// `arange` follows Python's `range` for integers — exactly, at i64's ends too — and
/// `start + i·step` for floats; a zero step or a range too long to allocate is an `Err`
/// (not an abort).
#[test]
fn arange_is_exact_for_integers_and_refuses_endless_ranges() {
    let big = 1i64 << 60;
    let r = Tensor::arange(big, big + 10, 3).unwrap();
    assert_eq!(r.to_vec::<i64>().unwrap(), vec![big, big + 3, big + 6, big + 9], "beyond 2^53");
    assert_eq!(Tensor::arange(5i32, -4, -3).unwrap().to_vec::<i32>().unwrap(), vec![5, 2, -1]);
    let ends = Tensor::arange(i64::MIN, i64::MAX, i64::MAX).unwrap().to_vec::<i64>().unwrap();
    assert_eq!(ends, vec![i64::MIN, -1, i64::MAX - 1], "Python: range(-2**63, 2**63 - 1, 2**63 - 1)");
    assert_eq!(Tensor::arange(3i64, 3, 1).unwrap().dims(), &[0]);
    assert_eq!(Tensor::arange(0.0f32, 1.0, 0.25).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 0.25, 0.5, 0.75]);
    for err in [
        Tensor::arange(0i32, 5, 0).unwrap_err().to_string(),
        Tensor::arange(0.0f64, 1.0, f64::NAN).unwrap_err().to_string(),
        Tensor::arange(0.0f64, f64::INFINITY, 1.0).unwrap_err().to_string(),
        Tensor::arange(0i64, i64::MAX, 1).unwrap_err().to_string(),
    ] {
        assert!(err.starts_with("arange: "), "{err}");
    }
}

/// `full` keeps an integer value exactly (i64 beyond 2^53 too); floats convert with `as`.
#[test]
fn full_keeps_integers_exact() {
    let big = (1i64 << 60) + 1;
    assert_eq!(Tensor::full([3], big, DType::I64).to_vec::<i64>().unwrap(), vec![big; 3]);
    assert_eq!(Tensor::full([2], -7i64, DType::I32).to_vec::<i32>().unwrap(), vec![-7; 2]);
    assert_eq!(Tensor::full([2], 2.75, DType::I32).to_vec::<i32>().unwrap(), vec![2; 2]);
    assert_eq!(Tensor::full([1], big, DType::F64).to_vec::<f64>().unwrap(), vec![big as f64]);
}
