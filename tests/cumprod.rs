//! `cumprod` (`tf.math.cumprod`): every axis and option against an in-order reference
//! loop (bit for bit: floats multiply in order along the axis), integer wrap-around, the
//! gradient against brute-force sums of products — exact where the input holds zeros,
//! where TensorFlow's formula divides by zero — traced and compiled results and
//! gradients equal to eager, and its errors.

mod common;
use common::*;
use tensorjit::prelude::*;

const OPTIONS: [CumsumOptions; 4] = [
    CumsumOptions { exclusive: false, reverse: false },
    CumsumOptions { exclusive: true, reverse: false },
    CumsumOptions { exclusive: false, reverse: true },
    CumsumOptions { exclusive: true, reverse: true },
];

/// The positions of line `(a, j)` along `axis`, in the order the products run.
fn line(dims: &[usize], axis: usize, a: usize, j: usize, o: CumsumOptions) -> Vec<usize> {
    let (n, inner): (usize, usize) = (dims[axis], dims[axis + 1..].iter().product());
    let order: Vec<usize> = if o.reverse { (0..n).rev().collect() } else { (0..n).collect() };
    order.into_iter().map(|r| (a * n + r) * inner + j).collect()
}

fn lines(dims: &[usize], axis: usize) -> impl Iterator<Item = (usize, usize)> {
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    (0..outer).flat_map(move |a| (0..inner).map(move |j| (a, j)))
}

/// The reference: for every position, the in-order product along `axis` of the elements
/// before it (after it, reversed), including itself unless exclusive.
fn reference(v: &[f32], dims: &[usize], axis: usize, o: CumsumOptions) -> Vec<f32> {
    let mut out = vec![0.0f32; v.len()];
    for (a, j) in lines(dims, axis) {
        let mut acc = 1.0f32;
        for p in line(dims, axis, a, j, o) {
            if o.exclusive {
                out[p] = acc;
                acc *= v[p];
            } else {
                acc *= v[p];
                out[p] = acc;
            }
        }
    }
    out
}

/// The exact gradient of `Σ g·cumprod(x)` by brute force in f64: element `q` of a line
/// gets `Σ_i g_i · Π_{k in i's product, k ≠ q} x_k`.
fn reference_grad(v: &[f32], g: &[f32], dims: &[usize], axis: usize, o: CumsumOptions) -> Vec<f64> {
    let mut out = vec![0.0f64; v.len()];
    for (a, j) in lines(dims, axis) {
        let pos = line(dims, axis, a, j, o);
        for (qi, &q) in pos.iter().enumerate() {
            let mut total = 0.0;
            for (ii, &i) in pos.iter().enumerate() {
                // The product at step ii holds steps 0..=ii (0..ii when exclusive).
                let end = if o.exclusive { ii } else { ii + 1 };
                if qi >= end {
                    continue;
                }
                let prod: f64 = pos[..end].iter().filter(|&&k| k != q).map(|&k| f64::from(v[k])).product();
                total += f64::from(g[i]) * prod;
            }
            out[q] = total;
        }
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Values near ±1 (long products stay finite) with zeros mixed in: at a line's start,
/// twice in a row, and alone.
fn with_zeros(seed: u64, dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    let r = rand_vec(seed, n, 0.5, 1.5);
    let s = rand_vec(seed + 1, n, 0.0, 1.0);
    let v: Vec<f32> = r
        .iter()
        .zip(&s)
        .map(|(&x, &u)| {
            if u < 0.2 {
                0.0
            } else if u < 0.6 {
                -x as f32
            } else {
                x as f32
            }
        })
        .collect();
    Tensor::from_vec(v, dims.to_vec()).unwrap()
}

#[test]
fn every_axis_and_option_multiplies_in_order() {
    for (seed, dims) in
        [(1, vec![7usize]), (2, vec![3, 5, 4]), (3, vec![2, 1, 9]), (4, vec![4, 40_000]), (6, vec![20, 701])]
    {
        let x = rand_f32(seed, &dims, 0.9, 1.1) * rand_f32(seed + 50, &dims, -1.0, 1.0).sign();
        let v = f32s(&x);
        for axis in 0..dims.len() {
            for o in OPTIONS {
                let got = f32s(&x.cumprod_with(axis as i64 - dims.len() as i64, o));
                assert_eq!(bits(&got), bits(&reference(&v, &dims, axis, o)), "{dims:?} axis {axis} {o:?}");
            }
        }
    }
    let ints = Tensor::from_vec(vec![1 << 20, 1 << 12, 3], [3]).unwrap();
    assert_eq!(ints.cumprod(0).to_vec::<i32>().unwrap(), [1 << 20, 0, 0], "i32 products wrap");
    let big = Tensor::from_vec(vec![i64::MAX, 3], [2]).unwrap();
    assert_eq!(big.cumprod(0).to_vec::<i64>().unwrap(), [i64::MAX, i64::MAX.wrapping_mul(3)]);
}

/// The gradient of `Σ g·cumprod_with(x, axis, o)` for `x` on the tape.
fn gradient(x: &Tensor, g: &Tensor, axis: i64, o: CumsumOptions) -> Tensor {
    let v = Variable::new(x.clone(), "x");
    let tape = GradientTape::new();
    let loss = (v.read().cumprod_with(axis, o) * g).sum_all();
    tape.gradient(&loss, &[&v]).remove(0).expect("a gradient")
}

#[test]
fn gradients_are_exact_where_the_input_holds_zeros() {
    for (seed, dims) in [(10, vec![9usize]), (11, vec![4, 6, 3]), (12, vec![2, 12])] {
        let x = with_zeros(seed, &dims);
        let g = rand_f32(seed + 100, &dims, -1.0, 1.0);
        let (v, gv) = (f32s(&x), f32s(&g));
        assert!(v.contains(&0.0), "the input holds zeros");
        for axis in 0..dims.len() {
            for o in OPTIONS {
                let got = f32s(&gradient(&x, &g, axis as i64, o));
                let want = reference_grad(&v, &gv, &dims, axis, o);
                for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (f64::from(*a) - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "{dims:?} axis {axis} {o:?} at {k}: {a} vs {b} (x {v:?})"
                    );
                }
            }
        }
    }
    // TensorFlow's formula, Σ(g·y)/x, is not finite at a zero: this one is the product of
    // the others.
    let x = Tensor::from_vec(vec![2.0f32, 0.0, 3.0], [3]).unwrap();
    let g = Tensor::ones([3], DType::F32);
    let got = f32s(&gradient(&x, &g, 0, OPTIONS[0]));
    assert_eq!(got, [1.0, 2.0 + 6.0, 0.0]);
}

fn body(x: &Tensor) -> Tensor {
    let o = CumsumOptions { exclusive: true, reverse: true };
    x.cumprod(1) + x.tanh().cumprod_with(0, o)
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, Some(5)])])]
fn traced(x: &Tensor) -> Tensor {
    body(x)
}

/// The gradient of `Σ body(x)²` with respect to `x`.
fn body_grad(x: &Tensor) -> Tensor {
    let tape = GradientTape::new();
    tape.watch(x);
    let loss = body(x).square().sum_all();
    tape.gradient(&loss, &[x]).remove(0).expect("a gradient")
}

#[tf_function]
fn traced_grad(x: &Tensor) -> Tensor {
    body_grad(x)
}

#[test]
fn traced_and_compiled_match_eager_bit_for_bit() {
    for n in [1, 4, 200] {
        let x = with_zeros(20 + n as u64, &[n, 5]);
        assert_eq!(bits(&f32s(&traced(&x))), bits(&f32s(&body(&x))), "batch {n}");
    }
    assert_eq!(traced::tracing_count(), 1);
    let ir = traced::concrete_functions()[0].ir_text();
    assert!(ir.contains("cumprod[axis=1, exclusive=false, reverse=false]"), "{ir}");
    assert!(ir.contains("cumprod[axis=0, exclusive=true, reverse=true]"), "{ir}");
    let x = with_zeros(30, &[6, 5]);
    assert_eq!(bits(&f32s(&traced_grad(&x))), bits(&f32s(&body_grad(&x))));
}

#[test]
fn errors_name_the_op() {
    let msg = panic_message(|| drop(rand_f32(1, &[2, 3], 0.0, 1.0).cumprod(-3)));
    assert!(msg.contains("cumprod") && msg.contains("cumprod.rs"), "{msg}");
    let msg = panic_message(|| drop(Tensor::zeros([2], DType::Bool).cumprod(0)));
    assert!(msg.contains("cumprod") && msg.contains("bool") && msg.contains("cast"), "{msg}");
}
