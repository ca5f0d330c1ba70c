//! Property tests: broadcasting binary ops and reductions against a naive f64 reference
//! on random shapes and values.

use proptest::prelude::*;
use tensorjit::prelude::*;

/// A shape of rank 0..=4 with dims 0..=5, and a broadcast-compatible partner.
fn shape_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec((0usize..=5, 0u8..4), 0..=4).prop_flat_map(|dims| {
        let a: Vec<usize> = dims.iter().map(|&(d, _)| d).collect();
        // The partner drops leading dims or sets some dims to 1.
        let b: Vec<usize> = dims.iter().map(|&(d, k)| if k == 0 { 1 } else { d }).collect();
        (Just(a), 0..=b.len()).prop_map(move |(a, drop)| (a, b[drop..].to_vec()))
    })
}

fn values(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-100.0f64..100.0, n)
}

fn naive_broadcast(
    a: &[f64],
    sa: &[usize],
    b: &[f64],
    sb: &[usize],
    f: impl Fn(f64, f64) -> f64,
) -> (Vec<f64>, Vec<usize>) {
    let r = sa.len().max(sb.len());
    let pad = |s: &[usize]| [vec![1; r - s.len()], s.to_vec()].concat();
    let (pa, pb) = (pad(sa), pad(sb));
    let out: Vec<usize> = (0..r).map(|i| if pa[i] == 1 { pb[i] } else { pa[i] }).collect();
    let n: usize = out.iter().product();
    let idx = |s: &[usize], mut flat: usize| {
        let mut off = 0;
        let mut stride = 1;
        for i in (0..r).rev() {
            let k = flat % out[i];
            flat /= out[i];
            if s[i] != 1 {
                off += k * stride;
            }
            stride *= s[i];
        }
        off
    };
    ((0..n).map(|i| f(a[idx(&pa, i)], b[idx(&pb, i)])).collect(), out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn broadcasting_binary_ops_match_naive(
        (sa, sb, va, vb, swap) in shape_pair().prop_flat_map(|(sa, sb)| {
            let (na, nb) = (sa.iter().product::<usize>(), sb.iter().product::<usize>());
            (Just(sa), Just(sb), values(na), values(nb), any::<bool>())
        })
    ) {
        let (sa, sb, va, vb) = if swap { (sb, sa, vb, va) } else { (sa, sb, va, vb) };
        let a = Tensor::from_vec(va.clone(), sa.as_slice()).unwrap();
        let b = Tensor::from_vec(vb.clone(), sb.as_slice()).unwrap();
        type F = fn(f64, f64) -> f64;
        let cases: [(Tensor, F); 5] = [
            (&a + &b, |x, y| x + y),
            (&a - &b, |x, y| x - y),
            (&a * &b, |x, y| x * y),
            (a.maximum(&b), |x, y| if x >= y { x } else { y }),
            (a.ge(&b).cast(DType::F64), |x, y| (x >= y) as u8 as f64),
        ];
        for (got, f) in cases {
            let (want, shape) = naive_broadcast(&va, &sa, &vb, &sb, f);
            prop_assert_eq!(got.dims(), shape.as_slice());
            prop_assert_eq!(got.to_vec::<f64>().unwrap(), want);
        }
    }

    #[test]
    fn reductions_match_naive(
        (shape, v, axes_mask, keep) in prop::collection::vec(1usize..=6, 0..=4).prop_flat_map(|s| {
            let n = s.iter().product::<usize>();
            let r = s.len();
            (Just(s), values(n), prop::collection::vec(any::<bool>(), r), any::<bool>())
        })
    ) {
        let x = Tensor::from_vec(v.clone(), shape.as_slice()).unwrap();
        let axes: Vec<i64> = axes_mask.iter().enumerate().filter(|(_, &m)| m).map(|(i, _)| i as i64).collect();
        let r = shape.len();
        let out_shape: Vec<usize> = (0..r).filter_map(|i| match (axes_mask[i], keep) {
            (false, _) => Some(shape[i]), (true, true) => Some(1), (true, false) => None }).collect();
        let n_out: usize = out_shape.iter().product();
        let strides: Vec<usize> = (0..r).map(|i| shape[i + 1..].iter().product()).collect();
        let mut sum = vec![0.0; n_out];
        let mut max = vec![f64::NEG_INFINITY; n_out];
        let mut count = vec![0usize; n_out];
        for (flat, &val) in v.iter().enumerate() {
            let mut o = 0;
            for i in 0..r {
                let k = flat / strides[i] % shape[i];
                if !axes_mask[i] {
                    o = o * shape[i] + k;
                }
            }
            sum[o] += val;
            max[o] = max[o].max(val);
            count[o] += 1;
        }
        let s = x.sum(axes.clone(), keep);
        prop_assert_eq!(s.dims(), out_shape.as_slice());
        for (g, w) in s.to_vec::<f64>().unwrap().iter().zip(&sum) {
            prop_assert!((g - w).abs() <= 1e-9 * (1.0 + w.abs()), "sum {} vs {}", g, w);
        }
        let m = x.mean(axes.clone(), keep).to_vec::<f64>().unwrap();
        for ((g, w), c) in m.iter().zip(&sum).zip(&count) {
            prop_assert!((g - w / *c as f64).abs() <= 1e-9 * (1.0 + g.abs()));
        }
        prop_assert_eq!(x.max(axes, keep).to_vec::<f64>().unwrap(), max);
    }

    #[test]
    fn f32_sums_are_bit_identical_to_the_canonical_order_on_reshape(
        n in 1usize..20_000, seed in any::<u64>()
    ) {
        // The sum of a vector is the same whether viewed as [n] or [1, n] or [n, 1] with axis 0.
        let v: Vec<f32> = (0..n).map(|i| (((i as u64).wrapping_mul(seed | 1) >> 7) % 1000) as f32 * 0.37 - 150.0).collect();
        let x = Tensor::from_vec(v, [n]).unwrap();
        let a = x.sum_all().to_scalar::<f32>().unwrap();
        let b = x.reshape([1, -1]).sum(1, false).to_scalar::<f32>().unwrap();
        let c = x.reshape([-1, 1]).sum(0, false).to_scalar::<f32>().unwrap();
        prop_assert_eq!(a.to_bits(), b.to_bits());
        prop_assert_eq!(a.to_bits(), c.to_bits());
    }
}
