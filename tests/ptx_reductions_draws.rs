//! Reductions, fills and random draws of the typed PTX kernels, on every machine: the
//! split reductions (integers exact whatever the passes; f64 max/min exact, sums in
//! their split order and the CPU's to rounding), fills of every dtype and every random
//! distribution run on the reference PTX interpreter against the CPU's eager results.
//! ptxas (tests/ptx.rs) checks that the same text assembles; a GPU (tests/gpu/typed.rs)
//! checks the rest.

mod common;

use common::element_bytes as bytes;
use common::emulated::{random, run, run_into};
use common::run_op;
use tensorjit::ops::Op;
use tensorjit::prelude::*;
use tensorjit_jit::ptx::{render_split_reduce, split_reduce_passes, Elem, RowReduce};

#[test]
fn random_draws_give_the_cpus_bits_for_every_distribution_key_and_dtype() {
    use tensorjit::ops::{Distribution, RandomParams};
    use tensorjit_jit::ptx::{render_random, Draw, RandomKernel};
    let cases = [
        (7u64, 0i64, (0.0, 1.0), 1000),
        (42, 5, (-2.5, 3.0), 37),
        (u64::MAX, -3, (0.0, 1.0), 9),
        (1, i64::MAX, (10.0, 0.5), 300),
    ];
    let mut redrawn = 0;
    for draw in [Draw::Uniform, Draw::Normal, Draw::TruncatedNormal] {
        for f64 in [false, true] {
            for from_counter in [true, false] {
                let k = RandomKernel { draw, f64, from_counter };
                let ptx = render_random(k, "draw");
                for (seed, counter, (a, b), n) in cases {
                    let dist = match draw {
                        Draw::Uniform => Distribution::Uniform { low: a, high: a + b },
                        Draw::Normal => Distribution::Normal { mean: a, stddev: b },
                        Draw::TruncatedNormal => Distribution::TruncatedNormal { mean: a, stddev: b },
                    };
                    let dtype = if f64 { DType::F64 } else { DType::F32 };
                    let p = RandomParams {
                        dist,
                        shape: Shape::new(&[n]),
                        dtype,
                        seed: Some(seed),
                        stateless: from_counter,
                    };
                    let c = Tensor::scalar(counter);
                    let (want, inputs, key) = if from_counter {
                        let key = tensorjit::random::stateless_seed_part(Some(seed));
                        (run_op(&Op::Random(p), &[&c]), vec![bytes(&c)], key)
                    } else {
                        // A seeded draw's key: the global seed's and the op's.
                        (run_op(&Op::Random(p), &[]), vec![], tensorjit::random::resolve_key(Some(seed)))
                    };
                    // The uniform span is high − low as the CPU computes it.
                    let b = match dist {
                        Distribution::Uniform { low, high } => high - low,
                        _ => b,
                    };
                    let values = [n, key as usize, a.to_bits() as usize, b.to_bits() as usize];
                    let got = run(&ptx, inputs, n * if f64 { 8 } else { 4 }, &values);
                    assert_eq!(got, bytes(&want), "{k}: seed {seed}, counter {counter}, ({a}, {b})");
                    if draw == Draw::Normal && !f64 {
                        redrawn +=
                            want.to_vec::<f32>().unwrap().iter().filter(|v| ((**v as f64 - a) / b).abs() > 2.0).count();
                    }
                }
            }
        }
    }
    assert!(redrawn > 10, "the normal draws had values beyond two deviations: the truncated ones redrew them");
}

/// A split reduction of `x` (`[outer, count, inner]`) on the emulator, pass by pass
/// with `passes` partials per line (the last 1), as the GPU backend launches it.
fn split_reduce(
    op: tensorjit::ops::ReduceOp,
    x: &Tensor,
    (outer, count, inner): (usize, usize, usize),
    passes: &[usize],
) -> Vec<u8> {
    use tensorjit::ops::ReduceOp;
    let elem = Elem::of(x.dtype());
    let kind = match op {
        ReduceOp::Sum | ReduceOp::Mean => RowReduce::Sum,
        ReduceOp::Prod => RowReduce::Prod,
        ReduceOp::Max => RowReduce::Max,
        ReduceOp::Min => RowReduce::Min,
    };
    let ptx = render_split_reduce(kind, elem, "ired");
    let (mut data, mut c) = (bytes(x), count);
    for &parts in passes {
        let total = outer * parts * inner;
        let mean = usize::from(op == ReduceOp::Mean && parts == 1);
        data = run_into(&ptx, vec![data], vec![0xab; total * elem.bytes()], &[total, c, inner, parts, mean, count]);
        c = parts;
    }
    data
}

#[test]
fn integer_reductions_give_the_cpus_bytes_whatever_the_passes() {
    use tensorjit::ops::ReduceOp;
    // Trailing, leading and middle runs of axes, all axes, an empty line; values at the
    // types' limits (sums and products wrap).
    let cases: [(&[usize], &[usize]); 6] = [
        (&[4, 300], &[1]),
        (&[300, 3], &[0]),
        (&[2, 130, 3], &[1]),
        (&[2, 5, 7, 3], &[1, 2]),
        (&[5, 0], &[1]),
        (&[700], &[0]),
    ];
    let mut checked = 0;
    for (seed, (dims, axes)) in cases.iter().enumerate() {
        let (first, last) = (axes[0], axes[axes.len() - 1]);
        let outer: usize = dims[..first].iter().product();
        let count: usize = dims[first..=last].iter().product();
        let inner: usize = dims[last + 1..].iter().product();
        for elem in [Elem::I32, Elem::I64] {
            let x = random(elem, 500 + seed as u64, dims);
            for op in ReduceOp::ALL {
                let want = run_op(&Op::Reduce { op, axes: axes.iter().copied().collect(), keepdims: false }, &[&x]);
                // The launcher's passes, one pass, and uneven splits.
                let plans = [split_reduce_passes(count, outer * inner), vec![1], vec![7, 1], vec![count.max(1), 3, 1]];
                for passes in plans {
                    let got = split_reduce(op, &x, (outer, count, inner), &passes);
                    assert_eq!(
                        got,
                        bytes(&want),
                        "{} of {elem:?} {dims:?} over {axes:?}, passes {passes:?}",
                        op.name()
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 6 * 2 * 5 * 4);
}

#[test]
fn fills_of_every_dtype_write_the_cpus_bytes() {
    use tensorjit_jit::cuda::typed::{fill_words, words_for};
    use tensorjit_jit::ptx::render_fill_words;
    // Ordinary values, fractions (truncated for integers), beyond i32 (saturates), NaN
    // (0 for integers, true for bools), beyond f32 (∞), a nonzero below 1 (true).
    let values = [0.0, 1.0, -2.7, 3e9, f64::NAN, -1e300, 0.25, -0.0];
    let ptx = render_fill_words("fill");
    for dtype in [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool] {
        for (k, &value) in values.iter().enumerate() {
            // Odd element counts: a last partial word of bools, an odd count of halves.
            let dims = [3, 5 + k];
            let like = Tensor::zeros(dims, dtype);
            let want = bytes(&run_op(&Op::Fill { value }, &[&like]));
            let words = words_for(dtype, like.numel());
            let [lo, hi] = fill_words(value, dtype);
            let got = run(&ptx, vec![], words * 4, &[words, lo as usize, hi as usize]);
            assert_eq!(&got[..want.len()], &want[..], "fill of {dtype} with {value}");
        }
    }
}

/// The split reduction's f64 sum or product of each `[outer, count, inner]` line, in its
/// order: partial p of a pass combines elements p, p + parts, … from the identity.
fn split_model(v: &[f64], (outer, count, inner): (usize, usize, usize), passes: &[usize], prod: bool) -> Vec<f64> {
    let mut data = v.to_vec();
    let mut c = count;
    for &parts in passes {
        let mut next = vec![0.0; outer * parts * inner];
        for o in 0..outer {
            for p in 0..parts {
                for x in 0..inner {
                    let mut acc = if prod { 1.0 } else { 0.0 };
                    for k in (p..c).step_by(parts) {
                        let e = data[(o * c + k) * inner + x];
                        acc = if prod { acc * e } else { acc + e };
                    }
                    next[(o * parts + p) * inner + x] = acc;
                }
            }
        }
        data = next;
        c = parts;
    }
    data
}

#[test]
fn f64_reductions_are_exact_for_max_and_min_and_the_cpus_to_rounding_for_sums() {
    use tensorjit::ops::ReduceOp;
    let cases: [(&[usize], &[usize]); 4] =
        [(&[4, 300], &[1]), (&[300, 3], &[0]), (&[2, 130, 3], &[1]), (&[5, 0], &[1])];
    for (seed, (dims, axes)) in cases.iter().enumerate() {
        let (first, last) = (axes[0], axes[axes.len() - 1]);
        let view =
            (dims[..first].iter().product(), dims[first..=last].iter().product(), dims[last + 1..].iter().product());
        let (outer, count, inner): (usize, usize, usize) = view;
        let reduce = |op| Op::Reduce { op, axes: axes.iter().copied().collect(), keepdims: false };
        // Max and min, specials included: exact (±0 ties may keep either zero).
        let x = random(Elem::F64, 600 + seed as u64, dims);
        for op in [ReduceOp::Max, ReduceOp::Min] {
            let plans = [split_reduce_passes(count, outer * inner), vec![1], vec![7, 1]];
            for passes in plans {
                let got = split_reduce(op, &x, view, &passes);
                let want = bytes(&run_op(&reduce(op), &[&x]));
                let zero = |b: &[u8]| {
                    b.chunks(8)
                        .map(|c| if c[..7] == [0; 7] && c[7] & 0x7f == 0 { [0; 8].to_vec() } else { c.to_vec() })
                        .collect::<Vec<_>>()
                };
                assert_eq!(zero(&got), zero(&want), "{} of f64 {dims:?} over {axes:?}, passes {passes:?}", op.name());
            }
        }
        // Sums, means and products: the split order's bits, within rounding of the CPU's.
        let v: Vec<f64> = common::rand_vec(700 + seed as u64, dims.iter().product(), 0.5, 1.5);
        let x = Tensor::from_vec(v.clone(), dims.to_vec()).unwrap();
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Prod] {
            for passes in [split_reduce_passes(count, outer * inner), vec![7, 1], vec![count.max(1), 3, 1]] {
                let got: Vec<f64> = split_reduce(op, &x, view, &passes)
                    .chunks(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                let mut model = split_model(&v, view, &passes, op == ReduceOp::Prod);
                if op == ReduceOp::Mean {
                    model.iter_mut().for_each(|m| *m /= count as f64);
                }
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(&model),
                    "{} of f64 {dims:?}, passes {passes:?}: the split order",
                    op.name()
                );
                let cpu = common::f64s(&run_op(&reduce(op), &[&x]));
                for (g, c) in got.iter().zip(&cpu) {
                    let close = (g - c).abs() <= 1e-13 * c.abs().max(1.0) || (g.is_nan() && c.is_nan());
                    assert!(close, "{} of f64 {dims:?}: {g} vs CPU {c}", op.name());
                }
            }
        }
    }
}
