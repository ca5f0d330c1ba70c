//! unsorted_segment_sum / _mean / _max / _min / _prod: against a reference loop (negative ids
//! dropped, empty segments 0 or, for max/min, the dtype's extremes; ties sharing the
//! gradient; several leading id axes; integers exact), traced with an unknown number of
//! rows bit-identical to eager, and the errors a user can cause.

mod common;
use common::*;
use tensorjit::prelude::*;

/// Random ids in `[-1, segments)` (about one in `segments + 1` dropped).
fn ids(seed: u64, dims: &[usize], segments: usize) -> Tensor {
    let n = dims.iter().product();
    let v: Vec<i64> = rand_vec(seed, n, -1.0, segments as f64).iter().map(|v| v.floor() as i64).collect();
    Tensor::from_vec(v, dims).unwrap()
}

/// (sums, counts) by segment, adding slices in the order of their positions.
fn reference(data: &[f64], ids: &[i64], inner: usize, segments: usize) -> (Vec<f64>, Vec<usize>) {
    let mut sums = vec![0.0; segments * inner];
    let mut counts = vec![0; segments];
    for (j, &id) in ids.iter().enumerate() {
        if id >= 0 {
            counts[id as usize] += 1;
            for k in 0..inner {
                sums[id as usize * inner + k] += data[j * inner + k];
            }
        }
    }
    (sums, counts)
}

#[test]
fn sums_and_means_match_the_reference() {
    for (seed, dims, id_rank, segments) in
        [(1, vec![40, 3], 1, 7), (2, vec![6, 5, 4], 2, 9), (3, vec![25], 1, 3), (4, vec![12, 2, 3], 1, 12)]
    {
        let data = rand_f64(seed, &dims, -1.0, 1.0);
        let id = ids(seed + 50, &dims[..id_rank], segments);
        let inner: usize = dims[id_rank..].iter().product();
        let (sums, counts) = reference(&f64s(&data), &id.to_vec::<i64>().unwrap(), inner, segments);
        let got = data.unsorted_segment_sum(&id, segments);
        let mut want_dims = vec![segments];
        want_dims.extend(&dims[id_rank..]);
        assert_eq!(got.dims(), &want_dims[..]);
        assert_eq!(f64s(&got), sums, "sums are added in the ids' order");
        let means: Vec<f64> = sums.iter().enumerate().map(|(i, s)| s / counts[i / inner].max(1) as f64).collect();
        assert_eq!(f64s(&data.unsorted_segment_mean(&id, segments)), means);
        // i32 ids give the same result.
        assert_eq!(f64s(&data.unsorted_segment_sum(&id.cast(DType::I32), segments)), sums);
    }
    // Integers are exact; every id dropped leaves zeros.
    let data = rand_f64(5, &[30, 2], -1000.0, 1000.0).floor().cast(DType::I32);
    let id = ids(6, &[30], 4);
    let (sums, _) = reference(&f64s(&data.cast(DType::F64)), &id.to_vec::<i64>().unwrap(), 2, 4);
    let got = data.unsorted_segment_sum(&id, 4).to_vec::<i32>().unwrap();
    assert_eq!(got, sums.iter().map(|&s| s as i32).collect::<Vec<_>>());
    let dropped = Tensor::full([30], -1i64, DType::I64);
    assert_eq!(f64s(&rand_f64(7, &[30, 2], -1.0, 1.0).unsorted_segment_sum(&dropped, 3)), [0.0; 6]);
}

#[test]
fn gradients_gather_the_segments() {
    let data = rand_f64(10, &[9, 4], -1.0, 1.0);
    let id = ids(11, &[9], 5);
    let tape = GradientTape::new();
    tape.watch(&data);
    let w = rand_f64(12, &[5, 4], -1.0, 1.0);
    let loss = (data.unsorted_segment_sum(&id, 5) * &w).sum_all() + (data.unsorted_segment_mean(&id, 5) * &w).sum_all();
    let g = f64s(tape.gradient(&loss, &[&data])[0].as_ref().unwrap());
    let idv = id.to_vec::<i64>().unwrap();
    let counts: Vec<usize> = (0..5).map(|s| idv.iter().filter(|&&i| i == s).count()).collect();
    let wv = f64s(&w);
    for (j, &i) in idv.iter().enumerate() {
        for k in 0..4 {
            let want = if i < 0 { 0.0 } else { wv[i as usize * 4 + k] * (1.0 + 1.0 / counts[i as usize] as f64) };
            assert!((g[j * 4 + k] - want).abs() < 1e-12, "row {j} col {k}: {} vs {want}", g[j * 4 + k]);
        }
    }
}

fn pooled(x: &Tensor, ids: &Tensor) -> Tensor {
    x.unsorted_segment_mean(ids, 4) + x.exp().unsorted_segment_sum(ids, 4)
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, Some(3)]),
                                 TensorSpec::new(DType::I64, &[None])])]
fn pooled_traced(x: &Tensor, ids: &Tensor) -> Tensor {
    pooled(x, ids)
}

#[test]
fn traced_with_an_unknown_row_count_matches_eager() {
    for n in [1, 6, 17] {
        let x = rand_f32(20 + n as u64, &[n, 3], -1.0, 1.0);
        let id = ids(40 + n as u64, &[n], 4);
        let traced = pooled_traced(&x, &id);
        let eager = pooled(&x, &id);
        let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(traced.dims(), &[4, 3]);
        assert_eq!(bits(&traced), bits(&eager), "{n} rows");
    }
    assert_eq!(pooled_traced::tracing_count(), 1);
}

#[test]
fn errors_name_the_op_and_the_problem() {
    let data = rand_f32(30, &[4, 2], -1.0, 1.0);
    let id = Tensor::from_vec(vec![0i64, 3, 1, 0], [4]).unwrap();
    let msg = panic_message(|| drop(data.unsorted_segment_sum(&id, 3)));
    assert!(msg.contains("unsorted_segment_sum: segment id 3 is out of range for 3 segments"), "{msg}");
    assert!(msg.contains("f32[4,2]") && msg.contains("i64[4]") && msg.contains("segment_ops.rs"), "{msg}");
    let msg = panic_message(|| drop(data.unsorted_segment_sum(&id.cast(DType::F32), 4)));
    assert!(msg.contains("needs integer segment ids, got f32"), "{msg}");
    let msg = panic_message(|| drop(data.unsorted_segment_sum(&Tensor::zeros([3], DType::I64), 4)));
    assert!(msg.contains("segment ids of shape [3] must match the leading axes of data of shape [4,2]"), "{msg}");
    let msg = panic_message(|| drop(data.cast(DType::I32).unsorted_segment_mean(&id, 4)));
    assert!(msg.contains("unsorted_segment_mean") && msg.contains("float"), "{msg}");
}

/// Per-segment max (or min) of `data` rows, the dtype's lowest (highest) where empty.
fn extreme_reference(data: &[f64], ids: &[i64], inner: usize, segments: usize, max: bool) -> Vec<f64> {
    let init = if max { f64::from(f32::MIN) } else { f64::from(f32::MAX) };
    let mut out = vec![init; segments * inner];
    for (j, &id) in ids.iter().enumerate() {
        if id >= 0 {
            for k in 0..inner {
                let (o, v) = (&mut out[id as usize * inner + k], data[j * inner + k]);
                if (max && v > *o) || (!max && v < *o) {
                    *o = v;
                }
            }
        }
    }
    out
}

#[test]
fn segment_max_and_min_match_the_reference_and_share_gradients_among_ties() {
    for (seed, dims, id_rank, segments) in [(70, vec![40, 3], 1, 7), (71, vec![6, 5, 4], 2, 9), (72, vec![25], 1, 30)] {
        // Values on a coarse grid: ties within segments.
        let data = rand_f32(seed, &dims, -4.0, 4.0).floor();
        let id = ids(seed + 50, &dims[..id_rank], segments);
        let inner: usize = dims[id_rank..].iter().product();
        let (dv, iv) = (f64s(&data.cast(DType::F64)), id.to_vec::<i64>().unwrap());
        for max in [true, false] {
            let got =
                if max { data.unsorted_segment_max(&id, segments) } else { data.unsorted_segment_min(&id, segments) };
            let want = extreme_reference(&dv, &iv, inner, segments, max);
            assert_eq!(f64s(&got.cast(DType::F64)), want, "{dims:?} max {max}");
            // Integers too.
            let ints = data.cast(DType::I64);
            let got =
                if max { ints.unsorted_segment_max(&id, segments) } else { ints.unsorted_segment_min(&id, segments) };
            let extreme = if max { i64::MIN } else { i64::MAX };
            let want_i: Vec<i64> = want.iter().map(|&v| if v.abs() > 1e30 { extreme } else { v as i64 }).collect();
            assert_eq!(got.to_vec::<i64>().unwrap(), want_i);
            // d/dx of Σ w·extreme: w of the segment over its number of ties, at the ties.
            let w = rand_f32(seed + 7, &[segments, inner], 0.5, 1.5);
            let tape = GradientTape::new();
            tape.watch(&data);
            let y =
                if max { data.unsorted_segment_max(&id, segments) } else { data.unsorted_segment_min(&id, segments) };
            let y = y.reshape([segments as i64, inner as i64]);
            let loss = (&y * &w).sum_all();
            let g = f32s(&tape.gradient(&loss, &[&data])[0].clone().unwrap());
            let wv = f32s(&w);
            for (j, &s) in iv.iter().enumerate() {
                for k in 0..inner {
                    let at = j * inner + k;
                    let want = if s < 0 || dv[at] != want[s as usize * inner + k] {
                        0.0
                    } else {
                        let ties =
                            iv.iter().enumerate().filter(|&(i, &t)| t == s && dv[i * inner + k] == dv[at]).count();
                        wv[s as usize * inner + k] / ties as f32
                    };
                    assert!((g[at] - want).abs() < 1e-6, "{dims:?} max {max} at {at}: {} vs {want}", g[at]);
                }
            }
        }
    }
    // Traced: the same bits, the op in the IR.
    let f = tensorjit::function("segment_max", |(x, ids): (Tensor, Tensor)| {
        x.unsorted_segment_max(&ids, 5) - x.unsorted_segment_min(&ids, 5)
    });
    let (x, i) = (rand_f32(80, &[30, 2], -1.0, 1.0), ids(81, &[30], 5));
    let eager = x.unsorted_segment_max(&i, 5) - x.unsorted_segment_min(&i, 5);
    assert_eq!(f32s(&f.call((x.clone(), i.clone()))), f32s(&eager));
    let text = f.concrete_functions()[0].ir_text();
    assert!(text.contains("scatter_max[axis=0, size=5]") && text.contains("scatter_min[axis=0, size=5]"), "{text}");
    let msg = panic_message(|| {
        drop(Tensor::from_vec(vec![true, false], [2]).unwrap().unsorted_segment_max(&ids(82, &[2], 2), 2))
    });
    assert!(msg.contains("unsorted_segment_max") && msg.contains("a numeric tensor"), "{msg}");
}

/// Per-segment products of `data` rows in the order of their positions, 1 where empty.
fn prod_reference(data: &[f32], ids: &[i64], inner: usize, segments: usize) -> Vec<f32> {
    let mut out = vec![1.0f32; segments * inner];
    for (j, &id) in ids.iter().enumerate() {
        if id >= 0 {
            for k in 0..inner {
                out[id as usize * inner + k] *= data[j * inner + k];
            }
        }
    }
    out
}

/// Values near ±1 with zeros mixed in (segments with none, one and several zeros).
fn with_zeros(seed: u64, dims: &[usize]) -> Tensor {
    let x = rand_f32(seed, dims, 0.5, 1.5) * rand_f32(seed + 1, dims, -1.0, 1.0).sign();
    x.select(&rand_f32(seed + 2, dims, 0.0, 1.0).ge(0.25), 0.0)
}

#[test]
fn segment_products_match_the_reference_and_their_gradient_handles_zeros() {
    for (seed, dims, id_rank, segments) in [(90, vec![40, 3], 1, 7), (91, vec![6, 5, 4], 2, 9), (92, vec![25], 1, 4)] {
        let data = with_zeros(seed, &dims);
        let id = ids(seed + 50, &dims[..id_rank], segments);
        let inner: usize = dims[id_rank..].iter().product();
        let (dv, iv) = (f32s(&data), id.to_vec::<i64>().unwrap());
        let got = data.unsorted_segment_prod(&id, segments);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&f32s(&got)), bits(&prod_reference(&dv, &iv, inner, segments)), "{dims:?}");
        // d/dx_j of Σ w·prod: w of j's segment times the product of the segment's other
        // slices (brute force in f64), 0 for dropped ids.
        let w = rand_f32(seed + 7, &[segments, inner], 0.5, 1.5);
        let tape = GradientTape::new();
        tape.watch(&data);
        let y = data.unsorted_segment_prod(&id, segments).reshape([segments as i64, inner as i64]);
        let g = f32s(&tape.gradient(&(&y * &w).sum_all(), &[&data])[0].clone().unwrap());
        let wv = f32s(&w);
        for (j, &s) in iv.iter().enumerate() {
            for k in 0..inner {
                let at = j * inner + k;
                let want = if s < 0 {
                    0.0
                } else {
                    let others: f64 =
                        (0..iv.len()).filter(|&i| i != j && iv[i] == s).map(|i| f64::from(dv[i * inner + k])).product();
                    f64::from(wv[s as usize * inner + k]) * others
                };
                assert!((f64::from(g[at]) - want).abs() <= 1e-5 * want.abs().max(1.0), "{dims:?} at {at}");
            }
        }
    }
    // Integers wrap; traced gives the same bits and the op in the IR.
    let ints = Tensor::from_vec(vec![1 << 20, 1 << 12, 7, 3], [4]).unwrap();
    let two = Tensor::from_vec(vec![0i64, 0, 1, 1], [4]).unwrap();
    assert_eq!(ints.unsorted_segment_prod(&two, 3).to_vec::<i32>().unwrap(), [0, 21, 1]);
    let f = tensorjit::function("segment_prod", |(x, ids): (Tensor, Tensor)| x.unsorted_segment_prod(&ids, 5));
    let (x, i) = (with_zeros(93, &[30, 2]), ids(94, &[30], 5));
    assert_eq!(f32s(&f.call((x.clone(), i.clone()))), f32s(&x.unsorted_segment_prod(&i, 5)));
    assert!(f.concrete_functions()[0].ir_text().contains("scatter_prod[axis=0, size=5]"));
    let msg = panic_message(|| {
        drop(Tensor::from_vec(vec![true, false], [2]).unwrap().unsorted_segment_prod(&ids(95, &[2], 2), 2))
    });
    assert!(msg.contains("unsorted_segment_prod") && msg.contains("a numeric tensor"), "{msg}");
}
