//! The scatter and argsort PTX kernels' *results*, on every machine: scatter-add,
//! -max, -min and -prod (segment sums, maxima, minima and products) and the ranking
//! argsort run on the reference PTX interpreter and give the CPU's eager results byte
//! for byte — duplicates and out-of-range ids, NaN, ±∞, ±0, integers at their limits,
//! ties in both directions. ptxas (tests/ptx.rs) checks that the same text assembles; a
//! GPU (tests/gpu/typed.rs) checks the rest.

mod common;

use common::element_bytes as bytes;
use common::emulated::{random, run};
use common::{rand_vec, run_op};
use tensorjit::ops::Op;
use tensorjit::prelude::*;
use tensorjit_jit::ptx::{render_argsort, render_scatter, Elem, ScatterFold};

/// `n` segment ids in `-1..=size` (duplicates, a dropped negative id, ids past the end),
/// as `index` integers.
fn segment_ids(seed: u64, n: usize, size: usize, index: Elem) -> Tensor {
    let raw: Vec<i64> = rand_vec(seed, n, -1.0, size as f64 + 1.0).iter().map(|v| v.floor() as i64).collect();
    match index {
        Elem::I32 => Tensor::from_vec(raw.iter().map(|&v| v as i32).collect::<Vec<_>>(), vec![n]),
        _ => Tensor::from_vec(raw, vec![n]),
    }
    .unwrap()
}

#[test]
fn every_scatter_fold_gives_the_cpus_bytes() {
    let size = 5;
    let mut checked = 0;
    for fold in [ScatterFold::Add, ScatterFold::Max, ScatterFold::Min, ScatterFold::Prod] {
        for value in [Elem::F32, Elem::F64, Elem::I32, Elem::I64, Elem::Bool] {
            if value == Elem::Bool && matches!(fold, ScatterFold::Add | ScatterFold::Prod) {
                continue;
            }
            for index in [Elem::I32, Elem::I64] {
                for (k, upd_dims) in [[3, 7, 4], [2, 9, 1], [1, 23, 3]].into_iter().enumerate() {
                    let n = upd_dims[1];
                    let seed = 1000 * checked + k as u64;
                    let idx = segment_ids(seed, n, size, index);
                    let upd = random(value, seed + 1, &upd_dims);
                    let op = match fold {
                        ScatterFold::Add => Op::ScatterAdd { axis: 1, size },
                        ScatterFold::Max => Op::ScatterMax { axis: 1, size },
                        ScatterFold::Min => Op::ScatterMin { axis: 1, size },
                        ScatterFold::Prod => Op::ScatterProd { axis: 1, size },
                    };
                    let want = run_op(&op, &[&upd, &idx]);
                    let total = want.numel();
                    let got = run(
                        &render_scatter(fold, value, index, "scatter"),
                        vec![bytes(&upd), bytes(&idx)],
                        total * value.bytes(),
                        &[total, size, n, upd_dims[2]],
                    );
                    assert_eq!(got, bytes(&want), "{fold:?} of {value:?} {upd_dims:?} by {idx:?}: updates {upd:?}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * (4 + 5 + 5 + 4));
}

/// Values with many ties: `random`'s (specials mixed in) rounded to a coarse grid for
/// the floats, so equal keys — ±0 and NaNs among them — meet often.
fn tied(elem: Elem, seed: u64, dims: &[usize]) -> Tensor {
    let t = random(elem, seed, dims);
    match elem {
        Elem::F64 => (t * 2.0).floor(),
        _ => t,
    }
}

/// Runs the argsort entry on `x` viewed as `[outer, n, inner]` (`dims`).
fn emulated_argsort(x: &Tensor, dims: [usize; 3], keep: Option<usize>, descending: bool) -> Vec<u8> {
    let k = keep.unwrap_or(dims[1]);
    run(
        &render_argsort(Elem::of(x.dtype()), "argsort"),
        vec![bytes(x)],
        dims[0] * k * dims[2] * 8,
        &[x.numel(), dims[1], dims[2], k, usize::from(descending)],
    )
}

#[test]
fn argsort_gives_the_cpus_permutation_for_every_type_and_direction() {
    let mut checked = 0;
    for elem in [Elem::F32, Elem::F64, Elem::I32, Elem::I64] {
        for (k, dims) in [[3, 17, 2], [1, 40, 1], [2, 1, 5], [4, 6, 3]].into_iter().enumerate() {
            for descending in [false, true] {
                let x = tied(elem, 50 * checked as u64 + k as u64, &dims);
                // The whole order, and the first few positions (`top_k`'s).
                for keep in [None, Some(0), Some(1), Some(dims[1].div_ceil(3))] {
                    let want = run_op(&Op::Argsort { axis: 1, descending, keep }, &[&x]);
                    let got = emulated_argsort(&x, dims, keep, descending);
                    assert_eq!(got, bytes(&want), "argsort of {elem:?} {dims:?}, {descending} {keep:?}: {x:?}");
                }
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}

/// The keys' corner cases one by one: every NaN ties with every other, −0 with +0, the
/// extremes of each integer type sort at the ends.
#[test]
fn argsort_keys_order_the_special_values_as_the_cpu_does() {
    let cases: Vec<Tensor> = vec![
        Tensor::from_vec(
            vec![f32::NAN, -0.0, 0.0, f32::INFINITY, -f32::NAN, f32::NEG_INFINITY, -1e-40, 1e-40, f32::MIN, f32::MAX],
            [10],
        )
        .unwrap(),
        Tensor::from_vec(vec![f64::NAN, 0.0, -0.0, f64::NEG_INFINITY, -5e-324, f64::MAX, -f64::NAN, 1.0], [8]).unwrap(),
        Tensor::from_vec(vec![i32::MAX, i32::MIN, -1, 0, 1, i32::MIN, -1], [7]).unwrap(),
        Tensor::from_vec(vec![i64::MAX, 0, i64::MIN, -1, i64::MAX, 1 << 40], [6]).unwrap(),
    ];
    for x in cases {
        for descending in [false, true] {
            let want = run_op(&Op::Argsort { axis: 0, descending, keep: None }, &[&x]);
            let got = emulated_argsort(&x, [1, x.numel(), 1], None, descending);
            assert_eq!(got, bytes(&want), "argsort of {x:?}, descending {descending}");
        }
    }
}
