//! `cumsum` (`tf.math.cumsum`): every axis and option against an in-order reference
//! loop (bit for bit: floats add in order along the axis), integer wrap-around, traced
//! and compiled results equal to eager, and its errors.

mod common;
use common::*;
use tensorjit::prelude::*;

/// The reference: for every position, the in-order sum along `axis` of the elements
/// before it (or after it, reversed), including itself unless exclusive.
fn reference(v: &[f32], dims: &[usize], axis: usize, o: CumsumOptions) -> Vec<f32> {
    let outer: usize = dims[..axis].iter().product();
    let (n, inner): (usize, usize) = (dims[axis], dims[axis + 1..].iter().product());
    let mut out = vec![0.0f32; v.len()];
    for a in 0..outer {
        for j in 0..inner {
            let at = |r: usize| (a * n + r) * inner + j;
            let order: Vec<usize> = if o.reverse { (0..n).rev().collect() } else { (0..n).collect() };
            let mut acc = 0.0f32;
            for r in order {
                if o.exclusive {
                    out[at(r)] = acc;
                    acc += v[at(r)];
                } else {
                    acc += v[at(r)];
                    out[at(r)] = acc;
                }
            }
        }
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

const OPTIONS: [CumsumOptions; 4] = [
    CumsumOptions { exclusive: false, reverse: false },
    CumsumOptions { exclusive: true, reverse: false },
    CumsumOptions { exclusive: false, reverse: true },
    CumsumOptions { exclusive: true, reverse: true },
];

#[test]
fn every_axis_and_option_adds_in_order() {
    // The large shapes run in parallel; 20 rows make groups of 8, 8 and 4.
    for (seed, dims) in
        [(1, vec![7usize]), (2, vec![3, 5, 4]), (3, vec![2, 1, 9]), (4, vec![4, 40_000]), (6, vec![20, 7_001])]
    {
        let x = rand_f32(seed, &dims, -10.0, 10.0);
        let v = f32s(&x);
        for axis in 0..dims.len() {
            for o in OPTIONS {
                let got = f32s(&x.cumsum_with(axis as i64 - dims.len() as i64, o));
                assert_eq!(bits(&got), bits(&reference(&v, &dims, axis, o)), "{dims:?} axis {axis} {o:?}");
            }
        }
    }
    assert_eq!(Tensor::zeros([3, 0], DType::F32).cumsum(1).dims(), &[3, 0]);
}

#[test]
fn integers_wrap_and_f64_is_exact_on_integers() {
    let x = Tensor::from_vec(vec![i32::MAX, 1, -5], [3]).unwrap();
    assert_eq!(x.cumsum(0).to_vec::<i32>().unwrap(), [i32::MAX, i32::MIN, i32::MAX - 4]);
    let v = rand_vec(5, 1000, -1e6, 1e6).into_iter().map(f64::round).collect::<Vec<_>>();
    let got = Tensor::from_vec(v.clone(), [1000]).unwrap().cumsum(0).to_vec::<f64>().unwrap();
    let want: Vec<f64> = v
        .iter()
        .scan(0.0, |s, &e| {
            *s += e;
            Some(*s)
        })
        .collect();
    assert_eq!(got, want);
}

fn body(x: &Tensor) -> Tensor {
    let o = CumsumOptions { exclusive: true, reverse: false };
    (x.cumsum(1) * x.cumsum_with(0, o).exp()).cumsum_with(-1, CumsumOptions { exclusive: false, reverse: true })
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, Some(6)])])]
fn traced(x: &Tensor) -> Tensor {
    body(x)
}

#[test]
fn traced_and_compiled_match_eager_bit_for_bit() {
    for n in [1, 5, 300] {
        let x = rand_f32(20 + n as u64, &[n, 6], -1.0, 1.0);
        assert_eq!(bits(&f32s(&traced(&x))), bits(&f32s(&body(&x))), "batch {n}");
    }
    assert_eq!(traced::tracing_count(), 1);
    let ir = traced::concrete_functions()[0].ir_text();
    assert!(ir.contains("cumsum[axis=1, exclusive=false, reverse=false]"), "{ir}");
    assert!(ir.contains("cumsum[axis=0, exclusive=true, reverse=false]"), "{ir}");
}

#[test]
fn errors_name_the_op() {
    let msg = panic_message(|| drop(rand_f32(1, &[2, 3], 0.0, 1.0).cumsum(2)));
    assert!(msg.contains("cumsum: axis 2 is out of range for rank 2") && msg.contains("cumsum.rs"), "{msg}");
    let msg = panic_message(|| drop(Tensor::zeros([2], DType::Bool).cumsum(0)));
    assert!(msg.contains("cumsum") && msg.contains("bool") && msg.contains("cast"), "{msg}");
}
