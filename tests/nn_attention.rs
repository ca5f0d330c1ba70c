//! MultiHeadAttention: Keras' weights (names, shapes), values against a loop-by-loop
//! reference (heads, masks, value_dim, output_shape, no bias), gradients reaching every
//! weight, a sequence model traced once for unknown batch and length bit-identical to
//! eager, dropout only while training, and its errors.

mod common;
use common::*;
use tensorjit::nn::prelude::*;
use tensorjit::prelude::*;

fn read(v: &Variable) -> Vec<f64> {
    f64s(&v.read().cast(DType::F64))
}

/// Attention of `q_in` [b, t, dq] to `v_in` [b, s, dv] (keys `k_in`), by loops in f64,
/// with the layer's weights.
fn reference(
    layer: &MultiHeadAttention,
    (q_in, k_in, v_in): (&Tensor, &Tensor, &Tensor),
    mask: Option<&[bool]>,
) -> Vec<f64> {
    let w: Vec<Vec<f64>> = layer.variables().iter().map(read).collect();
    let with_bias = w.len() == 8;
    let (b, t, dq) = (q_in.dims()[0], q_in.dims()[1], q_in.dims()[2]);
    let (s, dk, dv) = (k_in.dims()[1], k_in.dims()[2], v_in.dims()[2]);
    let kernel_dims = layer.variables().iter().map(|v| v.shape().dims().to_vec()).collect::<Vec<_>>();
    let (h, kd) = (kernel_dims[0][1], kernel_dims[0][2]);
    let (vd, out) = (kernel_dims[2][2], kernel_dims[3][2]);
    let (xq, xk, xv) = (f64s(&q_in.cast(DType::F64)), f64s(&k_in.cast(DType::F64)), f64s(&v_in.cast(DType::F64)));
    // project(x, rows, d, kernel i, width) → [b, rows, h, width]
    let project = |x: &[f64], rows: usize, d: usize, i: usize, width: usize| {
        let mut y = vec![0.0; b * rows * h * width];
        for (r, yr) in y.chunks_mut(h * width).enumerate() {
            for (j, yj) in yr.iter_mut().enumerate() {
                let mut acc = if with_bias { w[4 + i][j] } else { 0.0 };
                for c in 0..d {
                    acc += x[r * d + c] * w[i][c * h * width + j];
                }
                *yj = acc;
            }
        }
        y
    };
    let (q, k, v) = (project(&xq, t, dq, 0, kd), project(&xk, s, dk, 1, kd), project(&xv, s, dv, 2, vd));
    let mut result = vec![0.0; b * t * out];
    for bi in 0..b {
        for ti in 0..t {
            let mut heads = vec![0.0; h * vd];
            for hi in 0..h {
                let qv = &q[((bi * t + ti) * h + hi) * kd..][..kd];
                let mut scores: Vec<f64> = (0..s)
                    .map(|si| {
                        let kv = &k[((bi * s + si) * h + hi) * kd..][..kd];
                        let dot: f64 = qv.iter().zip(kv).map(|(a, b)| a * b).sum::<f64>() / (kd as f64).sqrt();
                        let allowed = mask.is_none_or(|m| m[(bi * t + ti) * s + si]);
                        if allowed {
                            dot
                        } else {
                            dot - 1e9
                        }
                    })
                    .collect();
                let top = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                scores.iter_mut().for_each(|x| *x = (*x - top).exp());
                let total: f64 = scores.iter().sum();
                for (si, p) in scores.iter().enumerate() {
                    for c in 0..vd {
                        heads[hi * vd + c] += p / total * v[((bi * s + si) * h + hi) * vd + c];
                    }
                }
            }
            for o in 0..out {
                let mut acc = if with_bias { w[7][o] } else { 0.0 };
                for (j, hv) in heads.iter().enumerate() {
                    acc += hv * w[3][j * out + o];
                }
                result[(bi * t + ti) * out + o] = acc;
            }
        }
    }
    result
}

#[test]
fn weights_are_named_and_shaped_as_in_keras() {
    let layer = MultiHeadAttention::new(3, 4).value_dim(5).output_dim(6).with_name("mha");
    let y = layer.call(&rand_f32(1, &[2, 7, 8], -1.0, 1.0), false);
    assert_eq!(y.dims(), &[2, 7, 6]);
    let got: Vec<(String, Vec<usize>)> =
        layer.variables().iter().map(|v| (v.name().to_string(), v.shape().dims().to_vec())).collect();
    let want = [
        ("mha/query/kernel", vec![8, 3, 4]),
        ("mha/key/kernel", vec![8, 3, 4]),
        ("mha/value/kernel", vec![8, 3, 5]),
        ("mha/attention_output/kernel", vec![3, 5, 6]),
        ("mha/query/bias", vec![3, 4]),
        ("mha/key/bias", vec![3, 4]),
        ("mha/value/bias", vec![3, 5]),
        ("mha/attention_output/bias", vec![6]),
    ];
    assert_eq!(got, want.iter().map(|(n, d)| (n.to_string(), d.clone())).collect::<Vec<_>>());
    assert_eq!(layer.output_shape(&[None, Some(7), Some(8)]), vec![None, Some(7), Some(6)]);
}

#[test]
fn attention_matches_the_reference() {
    let biased = Initializer::RandomUniform { low: -0.5, high: 0.5 };
    let layer = MultiHeadAttention::new(2, 3).value_dim(4).bias_initializer(biased);
    let (q, v, k) =
        (rand_f32(10, &[2, 5, 6], -1.0, 1.0), rand_f32(11, &[2, 4, 7], -1.0, 1.0), rand_f32(12, &[2, 4, 3], -1.0, 1.0));
    let mask: Vec<bool> = rand_vec(13, 2 * 5 * 4, 0.0, 1.0).iter().map(|&r| r < 0.7).collect();
    let mask_t = Tensor::from_vec(mask.clone(), [2, 5, 4]).unwrap();
    let (y, probs) = layer.attend_with_scores(&q, &v, Some(&k), Some(&mask_t), false);
    assert_eq!(y.dims(), &[2, 5, 6]);
    assert_eq!(probs.dims(), &[2, 2, 5, 4]);
    assert_close(&f64s(&y.cast(DType::F64)), &reference(&layer, (&q, &k, &v), Some(&mask)), 1e-5);
    let p = f32s(&probs);
    for (i, row) in p.chunks(4).enumerate() {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "row {i} sums to 1");
        let (bi, ti) = (i / 10, i % 5);
        for (si, &pv) in row.iter().enumerate() {
            if !mask[(bi * 5 + ti) * 4 + si] {
                assert!(pv < 1e-6, "a masked position gets no weight");
            }
        }
    }
    // Self-attention without biases, as a Module.
    let plain = MultiHeadAttention::new(4, 2).use_bias(false);
    let x = rand_f32(14, &[3, 6, 5], -1.0, 1.0);
    let y = plain.call(&x, false);
    assert_eq!(plain.variables().len(), 4);
    assert_close(&f64s(&y.cast(DType::F64)), &reference(&plain, (&x, &x, &x), None), 1e-5);
}

#[test]
fn gradients_reach_every_weight() {
    let layer = MultiHeadAttention::new(2, 3);
    let x = rand_f32(20, &[2, 4, 5], -1.0, 1.0);
    layer.call(&x, false);
    let vars = layer.trainable_variables();
    let tape = GradientTape::new();
    let loss = layer.call(&x, true).square().sum_all();
    let grads = tape.gradient(&loss, &vars.iter().collect::<Vec<_>>());
    for (v, g) in vars.iter().zip(&grads) {
        let g = g.as_ref().unwrap_or_else(|| panic!("no gradient for {}", v.name()));
        assert_eq!(g.dims(), v.shape().dims());
        assert!(f32s(g).iter().any(|x| *x != 0.0) && f32s(g).iter().all(|x| x.is_finite()), "{}", v.name());
    }
}

#[test]
fn a_self_attention_model_traces_once_for_unknown_batch_and_length() {
    let model = Sequential::new(vec![
        Embedding::new(30, 8).boxed(),
        MultiHeadAttention::new(2, 4).boxed(),
        LayerNormalization::new().boxed(),
        Dense::new(3).boxed(),
    ]);
    let m = model.clone();
    let traced = tensorjit::function("attend", move |x: Tensor| m.call(&x, false))
        .with_input_signature(vec![TensorSpec::new(DType::I32, &[None, None])]);
    for (k, (batch, len)) in [(2, 6), (1, 3), (4, 1)].into_iter().enumerate() {
        let ids = Tensor::from_vec(
            rand_vec(30 + k as u64, batch * len, 0.0, 30.0).iter().map(|&v| v as i32).collect::<Vec<_>>(),
            [batch, len],
        )
        .unwrap();
        let eager = model.call(&ids, false);
        let got = traced.call(ids.clone());
        assert_eq!(got.dims(), &[batch, len, 3]);
        let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&eager), "batch {batch}, length {len}");
    }
    assert_eq!(traced.tracing_count(), 1);
}

#[test]
fn dropout_acts_only_while_training() {
    let layer = MultiHeadAttention::new(2, 3).dropout(0.5, Some(7));
    let x = rand_f32(40, &[2, 5, 4], -1.0, 1.0);
    let (a, b) = (layer.call(&x, false), layer.call(&x, false));
    assert_eq!(f32s(&a), f32s(&b));
    let (_, probs) = layer.attend_with_scores(&x, &x, None, None, false);
    let trained = layer.call(&x, true);
    assert_ne!(f32s(&trained), f32s(&a), "a mask was applied");
    assert!(f32s(&probs).iter().all(|p| *p > 0.0), "the returned probabilities are before dropout");
}

#[test]
fn errors_name_the_layer_and_the_problem() {
    let layer = MultiHeadAttention::new(2, 3).with_name("att");
    let msg = panic_message(|| drop(layer.call(&rand_f32(50, &[2, 5], -1.0, 1.0), false)));
    assert!(msg.contains("MultiHeadAttention 'att'") && msg.contains("[batch, positions, features]"), "{msg}");
    let x = rand_f32(51, &[2, 5, 4], -1.0, 1.0);
    let msg = panic_message(|| drop(layer.attend(&x, &x, None, Some(&Tensor::ones([2, 5, 5], DType::F32)), false)));
    assert!(msg.contains("a bool attention mask"), "{msg}");
    let msg = panic_message(|| drop(MultiHeadAttention::new(0, 3)));
    assert!(msg.contains("num_heads (0) and key_dim (3) must be positive"), "{msg}");
}

#[test]
fn a_causal_layer_never_looks_ahead() {
    let layer = MultiHeadAttention::new(2, 3).causal(true);
    let x = rand_f32(60, &[2, 5, 4], -1.0, 1.0);
    let y = f32s(&layer.call(&x, false));
    // The same as an explicit lower-triangular mask, and as the reference with it.
    let tri: Vec<bool> = (0..2 * 5 * 5).map(|i| (i % 5) <= (i / 5) % 5).collect();
    let mask = Tensor::from_vec(tri.clone(), [2, 5, 5]).unwrap();
    let plain = MultiHeadAttention::new(2, 3);
    plain.call(&x, false);
    for (p, c) in plain.variables().iter().zip(layer.variables()) {
        p.assign(c.read());
    }
    assert_eq!(f32s(&plain.attend(&x, &x, None, Some(&mask), false)), y);
    assert_close(
        &y.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
        &reference(&layer, (&x, &x, &x), Some(&tri)),
        1e-5,
    );
    // Changing the last position changes only the last position's output.
    let mut later = f32s(&x);
    for b in 0..2 {
        for c in 0..4 {
            later[(b * 5 + 4) * 4 + c] += 1.0;
        }
    }
    let y2 = f32s(&layer.call(&Tensor::from_vec(later, [2, 5, 4]).unwrap(), false));
    for b in 0..2 {
        let rows = |v: &[f32]| v[b * 5 * 4..(b * 5 + 4) * 4].to_vec();
        assert_eq!(rows(&y2), rows(&y), "positions 0..4 of batch {b}");
    }
    // Traced for unknown batch and length, bit-identical to eager.
    let l = layer.clone();
    let f = tensorjit::function("causal", move |x: Tensor| l.call(&x, false))
        .with_input_signature(vec![TensorSpec::new(DType::F32, &[None, None, Some(4)])]);
    for (k, dims) in [[2, 5, 4], [1, 1, 4], [3, 2, 4]].into_iter().enumerate() {
        let x = rand_f32(61 + k as u64, &dims, -1.0, 1.0);
        let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&f.call(x.clone())), bits(&layer.call(&x, false)), "{dims:?}");
    }
    assert_eq!(f.tracing_count(), 1);
}
