//! The eager kernels' fast paths against plain reference loops: max/min and
//! argmax/argmin (computed in lanes and blocks, yet returning exactly the element the
//! in-order fold returns: the last NaN, the first of several zeros), the tiled
//! transposing copy, and `where` over every broadcasting pattern.

mod common;
use common::*;
use proptest::prelude::*;
use tensorjit::prelude::*;

/// Random f32 values with NaNs of distinct payloads and zeros of both signs mixed in,
/// so that *which* extreme element a reduction returns shows in the bits.
fn spiky(seed: u64, n: usize, nans: bool) -> Vec<f32> {
    let u = rand_vec(seed, 3 * n, 0.0, 1.0);
    (0..n)
        .map(|i| match u[3 * i] {
            p if nans && p < 0.002 => f32::from_bits(0x7fc0_0000 | (i as u32 & 0x3f_ffff)),
            p if p < 0.05 => {
                if u[3 * i + 1] < 0.5 {
                    0.0
                } else {
                    -0.0
                }
            }
            // Negative, so that zero (of either sign) is the maximum when there is no NaN.
            _ => (u[3 * i + 2] * -4.0 - 0.5) as f32,
        })
        .collect()
}

/// The in-order fold that defines reduce_max / reduce_min.
fn fold(v: impl Iterator<Item = f32>, max: bool) -> f32 {
    v.fold(if max { f32::NEG_INFINITY } else { f32::INFINITY }, |a, b| {
        let better = if max { b > a } else { b < a };
        if better || b.is_nan() {
            b
        } else {
            a
        }
    })
}

/// The in-order scan that defines argmax / argmin: ties keep the first, the first NaN wins.
fn arg(v: &[f32], max: bool) -> i64 {
    let mut best = 0;
    for (r, &c) in v.iter().enumerate().skip(1) {
        let b = v[best];
        let better = if max { c > b } else { c < b };
        if !b.is_nan() && (better || c.is_nan()) {
            best = r;
        }
    }
    best as i64
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Rows (the reduced axis last) and columns (the reduced axis first), short rows and
    /// rows longer than a block (4096) and than the parallel threshold (65536).
    #[test]
    fn max_min_argmax_argmin_match_the_in_order_fold(
        seed in any::<u64>(),
        rows in 1usize..4,
        n in prop::sample::select(vec![1usize, 7, 33, 4097, 70_001]),
        nans in any::<bool>(),
    ) {
        for max in [true, false] {
            // Zero is the extreme: the maximum of negative values, the minimum of positive ones.
            let v: Vec<f32> = spiky(seed, rows * n, nans).into_iter().map(|e| if max { e } else { -e }).collect();
            let x = Tensor::from_vec(v.clone(), [rows, n]).unwrap();
            let (red, args) = if max { (x.max(1, false), x.argmax(1)) } else { (x.min(1, false), x.argmin(1)) };
            let row = |r: usize| &v[r * n..(r + 1) * n];
            let want: Vec<f32> = (0..rows).map(|r| fold(row(r).iter().copied(), max)).collect();
            prop_assert_eq!(bits(&f32s(&red)), bits(&want), "rows, max = {}", max);
            let want_arg: Vec<i64> = (0..rows).map(|r| arg(row(r), max)).collect();
            prop_assert_eq!(args.to_vec::<i64>().unwrap(), want_arg, "rows, max = {}", max);

            // The same data reduced over its first axis: [n, rows], column by column.
            let xt = x.t();
            let (red, args) = if max { (xt.max(0, false), xt.argmax(0)) } else { (xt.min(0, false), xt.argmin(0)) };
            prop_assert_eq!(bits(&f32s(&red)), bits(&want), "columns, max = {}", max);
            prop_assert_eq!(args.to_vec::<i64>().unwrap(), (0..rows).map(|r| arg(row(r), max)).collect::<Vec<_>>());

            let all = fold(v.iter().copied(), max);
            let got = if max { x.max(Axes::All, false) } else { x.min(Axes::All, false) };
            prop_assert_eq!(got.to_scalar::<f32>().unwrap().to_bits(), all.to_bits());
        }
    }

    /// Integer max/min/argmax are exact in any order; checked on long rows with ties.
    #[test]
    fn integer_extremes_match_the_in_order_fold(seed in any::<u64>(), n in 1usize..80_000) {
        let v: Vec<i32> = rand_vec(seed, n, -50.0, 50.0).iter().map(|&x| x as i32).collect();
        let x = Tensor::from_vec(v.clone(), [n]).unwrap();
        prop_assert_eq!(x.max(0, false).to_scalar::<i32>().unwrap(), *v.iter().max().unwrap());
        prop_assert_eq!(x.min(0, false).to_scalar::<i32>().unwrap(), *v.iter().min().unwrap());
        let first = |m: i32| v.iter().position(|&e| e == m).unwrap() as i64;
        prop_assert_eq!(x.argmax(0).to_scalar::<i64>().unwrap(), first(*v.iter().max().unwrap()));
        prop_assert_eq!(x.argmin(0).to_scalar::<i64>().unwrap(), first(*v.iter().min().unwrap()));
    }

    /// Every permutation of shapes of rank 2–4, large enough for the tiled copy (sides of
    /// 32 and more, not multiples of it) and small, against index arithmetic.
    #[test]
    fn permute_matches_index_arithmetic(
        dims in prop::collection::vec(prop::sample::select(vec![1usize, 2, 5, 31, 33, 70]), 2..=4),
        perm_seed in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let r = dims.len();
        let mut perm: Vec<usize> = (0..r).collect();
        let mut s = perm_seed;
        for i in (1..r).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (s >> 33) as usize % (i + 1));
        }
        let x = rand_f32(seed, &dims, -1.0, 1.0);
        let y = x.permute(&perm.iter().map(|&p| p as i64).collect::<Vec<_>>());
        let (xv, yv) = (f32s(&x), f32s(&y));
        let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        prop_assert_eq!(y.dims(), &out_dims[..]);
        let in_strides: Vec<usize> = (0..r).map(|d| dims[d + 1..].iter().product()).collect();
        for (flat, &got) in yv.iter().enumerate() {
            let (mut rem, mut src) = (flat, 0);
            for d in (0..r).rev() {
                src += (rem % out_dims[d]) * in_strides[perm[d]];
                rem /= out_dims[d];
            }
            prop_assert_eq!(got.to_bits(), xv[src].to_bits(), "perm {:?} of {:?} at {}", perm, dims, flat);
        }
    }

    /// `where(c, a, b)` with each operand full, a row, a column or a scalar.
    #[test]
    fn select_broadcasts_like_the_reference(
        shapes in prop::array::uniform3(prop::sample::select(vec![vec![40usize, 33], vec![33], vec![40, 1], vec![]])),
        seed in any::<u64>(),
    ) {
        let c = rand_f32(seed, &shapes[0], -1.0, 1.0).gt(0.0);
        let a = rand_f32(seed ^ 1, &shapes[1], -1.0, 1.0);
        let b = rand_f32(seed ^ 2, &shapes[2], -1.0, 1.0);
        let y = Tensor::where_(&c, &a, &b);
        // The broadcast shape: [40, 33] unless no operand has both dims.
        let rows = shapes.iter().any(|s| s.len() == 2 && s[0] == 40);
        let cols = shapes.iter().any(|s| s.last() == Some(&33));
        let rank = shapes.iter().map(Vec::len).max().unwrap_or(0);
        let want_dims: Vec<usize> = match rank {
            2 => vec![if rows { 40 } else { 1 }, if cols { 33 } else { 1 }],
            1 => vec![33],
            _ => vec![],
        };
        prop_assert_eq!(y.dims(), &want_dims[..]);
        let y = y.broadcast_to([40, 33]);
        let at = |shape: &[usize], i: usize, j: usize| -> usize {
            match shape {
                [_, 1] => i,
                [_, _] => i * 33 + j,
                [_] => j,
                _ => 0,
            }
        };
        let (cv, av, bv, yv) = (c.to_vec::<bool>().unwrap(), f32s(&a), f32s(&b), f32s(&y));
        for i in 0..40 {
            for j in 0..33 {
                let want = if cv[at(&shapes[0], i, j)] { av[at(&shapes[1], i, j)] } else { bv[at(&shapes[2], i, j)] };
                prop_assert_eq!(yv[i * 33 + j], want, "{:?} at ({}, {})", shapes, i, j);
            }
        }
    }
}
