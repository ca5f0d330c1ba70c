//! argsort, sort, top_k and take_along_axis: against a reference (an insertion sort
//! with the documented order: NaN above +∞, −0 equal to +0, ties in position order),
//! for every axis, both directions, floats with NaN and signed zeros and integers;
//! their gradients; traced with an unknown batch dim bit-identical to eager; errors.

mod common;
use common::*;
use proptest::prelude::*;
use tensorjit::prelude::*;

/// Whether `a` sorts strictly after `b` (ascending).
fn after(a: f64, b: f64) -> bool {
    match (a.is_nan(), b.is_nan()) {
        (true, false) => true,
        (false, false) => a > b,
        _ => false,
    }
}

/// The positions of `line` in the documented order (a stable insertion sort).
fn reference_order(line: &[f64], descending: bool) -> Vec<i64> {
    let mut order: Vec<usize> = Vec::new();
    for i in 0..line.len() {
        // Insert after every element that does not sort strictly after it.
        let goes_before = |j: &usize| if descending { after(line[i], line[*j]) } else { after(line[*j], line[i]) };
        let at = order.iter().position(goes_before).unwrap_or(order.len());
        order.insert(at, i);
    }
    order.into_iter().map(|i| i as i64).collect()
}

/// `[outer, n, inner]` of `dims` around `axis`.
fn split(dims: &[usize], axis: usize) -> (usize, usize, usize) {
    (dims[..axis].iter().product(), dims[axis], dims[axis + 1..].iter().product())
}

/// Values with ties, NaN and ±0 planted: `kind` 0 = f32, 1 = f64, 2 = i32.
fn values(seed: u64, dims: &[usize], kind: u8) -> Tensor {
    let n: usize = dims.iter().product();
    let raw = rand_vec(seed, n, 0.0, 1.0);
    let v: Vec<f64> = raw
        .iter()
        .map(|&r| match (r * 20.0) as u32 {
            0 => f64::NAN,
            1 => -0.0,
            2 => 0.0,
            3 => f64::INFINITY,
            k => (k as f64 - 10.0) / 4.0,
        })
        .collect();
    match kind {
        0 => Tensor::from_vec(v.iter().map(|&x| x as f32).collect::<Vec<_>>(), dims).unwrap(),
        1 => Tensor::from_vec(v, dims).unwrap(),
        _ => Tensor::from_vec(raw.iter().map(|&r| (r * 7.0) as i32 - 3).collect::<Vec<_>>(), dims).unwrap(),
    }
}

fn as_f64(t: &Tensor) -> Vec<f64> {
    f64s(&t.cast(DType::F64))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn argsort_and_sort_match_the_reference(
        seed in 0u64..1 << 30,
        dims in proptest::collection::vec(1usize..7, 1..4),
        axis_pick in 0usize..3,
        descending in any::<bool>(),
        kind in 0u8..3,
    ) {
        let axis = axis_pick % dims.len();
        let x = values(seed, &dims, kind);
        let xv = as_f64(&x);
        let order = x.argsort(axis as i64, descending).to_vec::<i64>().unwrap();
        let sorted = as_f64(&x.sort(axis as i64, descending));
        let (outer, n, inner) = split(&dims, axis);
        for o in 0..outer {
            for c in 0..inner {
                let at = |k: usize| (o * n + k) * inner + c;
                let line: Vec<f64> = (0..n).map(|k| xv[at(k)]).collect();
                let want = reference_order(&line, descending);
                let got: Vec<i64> = (0..n).map(|k| order[at(k)]).collect();
                prop_assert_eq!(&got, &want, "line {:?}", line);
                for (k, &p) in want.iter().enumerate() {
                    let (g, w) = (sorted[at(k)], line[p as usize]);
                    prop_assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "{} vs {}", g, w);
                }
            }
        }
    }
}

#[test]
fn long_lines_of_ties_keep_their_order() {
    let v: Vec<f32> =
        rand_vec(5, 2 * 1500, 0.0, 4.0).iter().map(|&r| if r >= 3.0 { f32::NAN } else { r.floor() as f32 }).collect();
    let x = Tensor::from_vec(v, [2, 1500]).unwrap();
    let xv = as_f64(&x);
    for descending in [false, true] {
        let got = x.argsort(1, descending).to_vec::<i64>().unwrap();
        for r in 0..2 {
            assert_eq!(&got[r * 1500..(r + 1) * 1500], &reference_order(&xv[r * 1500..(r + 1) * 1500], descending)[..]);
        }
    }
}

#[test]
fn top_k_takes_the_largest_first_position_first() {
    let x = values(1, &[9, 13], 0);
    let xv = as_f64(&x);
    for k in [0, 1, 5, 13] {
        let (vals, pos) = x.top_k(k);
        assert_eq!(vals.dims(), &[9, k]);
        let (vals, pos) = (as_f64(&vals), pos.to_vec::<i64>().unwrap());
        for r in 0..9 {
            let want = &reference_order(&xv[r * 13..(r + 1) * 13], true)[..k];
            assert_eq!(&pos[r * k..(r + 1) * k], want, "row {r}");
            for (j, &p) in want.iter().enumerate() {
                let (g, w) = (vals[r * k + j], xv[r * 13 + p as usize]);
                assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()));
            }
        }
    }
    let ints = Tensor::from_vec(vec![3i32, 1, 3, 2], [4]).unwrap();
    let (v, p) = ints.top_k(3);
    assert_eq!(v.to_vec::<i32>().unwrap(), [3, 3, 2]);
    assert_eq!(p.to_vec::<i64>().unwrap(), [0, 2, 3]);
}

#[test]
fn take_along_axis_follows_index_arithmetic() {
    let dims = [4, 5, 6];
    let x = rand_f32(20, &dims, -1.0, 1.0);
    let xv = f32s(&x);
    for axis in 0..3 {
        let mut idims = dims.to_vec();
        idims[axis] = 3;
        let n = dims[axis];
        let count: usize = idims.iter().product();
        let idx: Vec<i32> = rand_vec(21 + axis as u64, count, 0.0, n as f64).iter().map(|&v| v as i32).collect();
        let idx = Tensor::from_vec(idx, &idims[..]).unwrap();
        let got = f32s(&x.take_along_axis(&idx, axis as i64));
        let iv = idx.to_vec::<i32>().unwrap();
        let (outer, _, inner) = split(&idims, axis);
        for o in 0..outer {
            for j in 0..3 {
                for c in 0..inner {
                    let at = (o * 3 + j) * inner + c;
                    assert_eq!(got[at], xv[(o * n + iv[at] as usize) * inner + c], "axis {axis}");
                }
            }
        }
    }
}

#[test]
fn gradients_go_back_to_the_positions_taken() {
    // Distinct values: the order (and so the gradient) is the same under small steps.
    let x = Tensor::from_vec(rand_vec(30, 24, -1.0, 1.0), [4, 6]).unwrap();
    let r = rand_f64(31, &[4, 6], 0.5, 1.5);
    let tape = GradientTape::new();
    tape.watch(&x);
    let sorted = x.sort(1, false);
    let (top, pos) = x.top_k(2);
    let loss = (&sorted * &r).sum_all() + top.square().sum_all();
    let g = f64s(&tape.gradient(&loss, &[&x]).remove(0).unwrap());
    let (xv, rv) = (f64s(&x), f64s(&r));
    let (order, pos) = (x.argsort(1, false).to_vec::<i64>().unwrap(), pos.to_vec::<i64>().unwrap());
    for row in 0..4 {
        let mut want = vec![0.0; 6];
        for k in 0..6 {
            want[order[row * 6 + k] as usize] += rv[row * 6 + k];
        }
        for k in 0..2 {
            let p = pos[row * 2 + k] as usize;
            want[p] += 2.0 * xv[row * 6 + p];
        }
        assert_close(&g[row * 6..(row + 1) * 6], &want, 1e-12);
    }
}

fn ranked(x: &Tensor) -> Tensor {
    let (top, pos) = x.top_k(3);
    let spread = x.sort(-1, true).narrow(-1, 0, 1) - x.sort(-1, false).narrow(-1, 0, 1);
    top.sum(-1, false)
        + spread.squeeze(&[-1])
        + pos.cast(DType::F32).sum(-1, false)
        + x.argsort(0, false).cast(DType::F32).sum(-1, false)
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, Some(7)])])]
fn ranked_traced(x: &Tensor) -> Tensor {
    ranked(x)
}

#[test]
fn traced_with_an_unknown_batch_dim_matches_eager() {
    for n in [1, 4, 11] {
        let x = values(40 + n as u64, &[n, 7], 0);
        let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ranked_traced(&x)), bits(&ranked(&x)), "batch {n}");
    }
    assert_eq!(ranked_traced::tracing_count(), 1);
    let text = ranked_traced::concrete_functions()[0].ir_text();
    assert!(text.contains("argsort[axis=1, descending=true]"), "{text}");
}

#[test]
fn errors_name_the_op_and_the_problem() {
    let x = rand_f32(50, &[3, 4], -1.0, 1.0);
    let msg = panic_message(|| drop(x.top_k(5)));
    assert!(msg.contains("top_k: k = 5 is larger than the last axis (4)") && msg.contains("sort_ops.rs"), "{msg}");
    let msg = panic_message(|| drop(x.gt(0.0).argsort(0, false)));
    assert!(msg.contains("argsort: needs a numeric tensor, got bool"), "{msg}");
    let msg = panic_message(|| drop(x.argsort(2, false)));
    assert!(msg.contains("argsort: axis 2 is out of range for rank 2"), "{msg}");
    let bad = Tensor::from_vec(vec![0i64, 4, 1], [3, 1]).unwrap();
    let msg = panic_message(|| drop(x.take_along_axis(&bad, 1)));
    assert!(msg.contains("take_along_axis: index 4 is out of range for axis 1 of length 4"), "{msg}");
    assert!(msg.contains("f32[3,4]") && msg.contains("i64[3,1]") && msg.contains("sort_ops.rs"), "{msg}");
    let msg = panic_message(|| drop(x.take_along_axis(&Tensor::zeros([2, 4], DType::I64), 1)));
    assert!(msg.contains("indices of shape [2,4] must match [3,4] on every axis but 1"), "{msg}");
}
