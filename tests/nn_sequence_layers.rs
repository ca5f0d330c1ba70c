//! `Embedding` and `LayerNormalization`: values against host references, gradients,
//! shapes inside a `Sequential`, eager == traced, and their errors.

use tensorjit::nn::prelude::*;
use tensorjit::{function, random, DType, GradientTape, Tensor};

fn vec32(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

/// Embedding rows are the table's rows at the ids, for ids of any shape; repeated ids
/// sum their gradients into one row; a model of Embedding → mean → Dense traces to the
/// eager bits.
#[test]
fn embedding_looks_up_rows_and_accumulates_their_gradients() {
    let layer = Embedding::new(10, 4);
    let ids = Tensor::from_vec(vec![3i64, 0, 9, 3, 3, 7], [2, 3]).unwrap();
    let out = layer.call(&ids, false);
    assert_eq!(out.dims(), &[2, 3, 4]);
    let table = vec32(&layer.embeddings().expect("built").read());
    assert!(table.iter().all(|v| v.abs() <= 0.05) && table.iter().any(|v| *v != 0.0), "U(-0.05, 0.05) rows");
    let got = vec32(&out);
    for (k, id) in [3usize, 0, 9, 3, 3, 7].iter().enumerate() {
        assert_eq!(got[k * 4..k * 4 + 4], table[id * 4..id * 4 + 4], "row of id {id}");
    }
    // Float ids are truncated, as Keras casts them.
    let float_ids = Tensor::from_vec(vec![3.7f32, 0.2], [2]).unwrap();
    assert_eq!(vec32(&layer.call(&float_ids, false)), [&table[12..16], &table[0..4]].concat());

    let table_var = layer.embeddings().expect("built");
    let tape = GradientTape::new();
    let w = Tensor::from_vec((0..24).map(|v| v as f32).collect::<Vec<_>>(), [2, 3, 4]).unwrap();
    let loss = (&layer.call(&ids, true) * &w).sum_all();
    let g = vec32(&tape.gradient(&loss, &[&table_var])[0].clone().expect("a gradient for the table"));
    let row = |r: usize| g[r * 4..r * 4 + 4].to_vec();
    let w = vec32(&w);
    let sum = |ks: &[usize], j: usize| ks.iter().map(|k| w[k * 4 + j]).sum::<f32>();
    assert_eq!(row(3), (0..4).map(|j| sum(&[0, 3, 4], j)).collect::<Vec<_>>(), "id 3 appears three times");
    assert_eq!(row(1), vec![0.0; 4], "an unused id gets zeros");

    let model = Sequential::new(vec![
        Embedding::new(50, 8).boxed(),
        Lambda::new(|x: &Tensor| x.mean(1, false)).boxed(),
        Dense::new(3).boxed(),
    ]);
    let ids = random::uniform([5, 7], 0.0, 50.0, DType::F32, Some(3)).cast(DType::I32);
    let eager = vec32(&model.call(&ids, false));
    let m = model.clone();
    let traced = function("embed", move |x: Tensor| m.call(&x, false));
    assert_eq!(vec32(&traced.call(ids.clone())), eager);
    assert_eq!(eager.len(), 5 * 3);
    assert_eq!(Embedding::new(50, 8).output_shape(&[Some(5), Some(7)]), vec![Some(5), Some(7), Some(8)]);
}

/// An id outside the table is an error naming it.
#[test]
fn embedding_refuses_ids_outside_its_table() {
    let layer = Embedding::new(4, 2);
    let ids = Tensor::from_vec(vec![1i64, 4], [2]).unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| layer.call(&ids, false))).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("index 4 is out of range for axis 0 of length 4"), "{msg}");
}

/// LayerNormalization = (x − mean)/√(var + ε)·γ + β over the last axis (host reference
/// in f64), with gradients by central differences through γ, β and x.
#[test]
fn layer_normalization_matches_its_definition_and_differentiates() {
    let layer = LayerNormalization::new().epsilon(1e-5);
    let x = random::normal([3, 2, 6], 1.0, 3.0, DType::F32, Some(9));
    let y = vec32(&layer.call(&x, true));
    let xs = vec32(&x);
    for row in 0..6 {
        let r: Vec<f64> = xs[row * 6..row * 6 + 6].iter().map(|v| *v as f64).collect();
        let mean = r.iter().sum::<f64>() / 6.0;
        let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0;
        for j in 0..6 {
            let want = (r[j] - mean) / (var + 1e-5).sqrt();
            assert!((y[row * 6 + j] as f64 - want).abs() < 1e-5, "row {row}: {} vs {want}", y[row * 6 + j]);
        }
    }
    assert_eq!(layer.variables().len(), 2);
    assert_eq!(layer.output_shape(&[None, Some(2), Some(6)]), vec![None, Some(2), Some(6)]);

    // Gradients in f64 (the layer's weights are f32: compare its function on f64 input
    // with the same γ, β by central differences).
    let x64 = random::normal([4, 5], 0.0, 2.0, DType::F64, Some(10));
    let gamma = random::normal([5], 1.0, 0.5, DType::F64, Some(11));
    let beta = random::normal([5], 0.0, 0.5, DType::F64, Some(12));
    let r = random::normal([4, 5], 0.0, 1.0, DType::F64, Some(13));
    let f = |x: &Tensor, g: &Tensor, b: &Tensor| {
        let mean = x.mean(-1, true);
        let c = x - &mean;
        let var = c.square().mean(-1, true);
        (c * &((&var + 1e-3).rsqrt()) * g + b) * &r
    };
    let tape = GradientTape::new();
    for t in [&x64, &gamma, &beta] {
        tape.watch(t);
    }
    let grads = tape.gradient(&f(&x64, &gamma, &beta).sum_all(), &[&x64, &gamma, &beta]);
    let inputs = [x64.clone(), gamma.clone(), beta.clone()];
    for (k, input) in inputs.iter().enumerate() {
        let g = grads[k].clone().expect("a gradient").to_vec::<f64>().unwrap();
        let v = input.to_vec::<f64>().unwrap();
        for i in 0..v.len() {
            let shifted = |d: f64| {
                let mut w = v.clone();
                w[i] += d;
                let mut ins = inputs.clone();
                ins[k] = Tensor::from_vec(w, input.dims()).unwrap();
                f(&ins[0], &ins[1], &ins[2]).sum_all().to_scalar::<f64>().unwrap()
            };
            let fd = (shifted(1e-6) - shifted(-1e-6)) / 2e-6;
            assert!((g[i] - fd).abs() < 1e-6 * fd.abs().max(1.0), "input {k} element {i}: {} vs {fd}", g[i]);
        }
    }
    // The layer's own gradients (f32) agree with the f64 formula's at its weights.
    let layer5 = LayerNormalization::new();
    let x32 = x64.cast(DType::F32);
    layer5.call(&x32, false);
    let weights = layer5.trainable_variables();
    weights[0].assign(gamma.cast(DType::F32));
    weights[1].assign(beta.cast(DType::F32));
    let tape = GradientTape::new();
    tape.watch(&x32);
    let loss = (layer5.call(&x32, true) * &r.cast(DType::F32)).sum_all();
    let g32 = tape.gradient(&loss, &[&x32]);
    let gx = tape_grad_f64(&x64, &gamma, &beta, &r);
    for (got, want) in vec32(&g32[0].clone().expect("dx")).iter().zip(gx) {
        assert!((*got as f64 - want).abs() < 1e-4 * want.abs().max(1.0), "{got} vs {want}");
    }
    // The layer itself traces to its eager bits, and says what it expected.
    let l = layer.clone();
    let traced = function("layernorm", move |x: Tensor| l.call(&x, false));
    assert_eq!(vec32(&traced.call(x.clone())), y);
    let bad = random::normal([3, 4], 0.0, 1.0, DType::F32, Some(14));
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| layer.call(&bad, false))).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("LayerNormalization") && msg.contains("a last axis of 6"), "{msg}");
}

/// d/dx of Σ layer_norm(x)·r in f64 (ε = 0.001), by the tape.
fn tape_grad_f64(x: &Tensor, gamma: &Tensor, beta: &Tensor, r: &Tensor) -> Vec<f64> {
    let tape = GradientTape::new();
    tape.watch(x);
    let c = x - &x.mean(-1, true);
    let var = c.square().mean(-1, true);
    let y = (c * &((&var + 1e-3).rsqrt()) * gamma + beta) * r;
    tape.gradient(&y.sum_all(), &[x])[0].clone().expect("dx").to_vec::<f64>().unwrap()
}

/// Embedding → Dense over every position → LayerNormalization → Dense, traced once for
/// ids of unknown batch *and* length (`[None, None]`), bit-identical to eager for every
/// batch and length, 1 included.
#[test]
fn a_sequence_model_traces_once_for_unknown_batch_and_length() {
    let model = Sequential::new(vec![
        Embedding::new(20, 6).boxed(),
        Dense::new(5).activation(Activation::Tanh).boxed(),
        LayerNormalization::new().boxed(),
        Dense::new(3).boxed(),
    ]);
    let m = model.clone();
    let traced = function("sequence", move |x: Tensor| m.call(&x, false))
        .with_input_signature(vec![tensorjit::TensorSpec::new(DType::I32, &[None, None])]);
    for (k, (batch, len)) in [(2, 7), (1, 4), (3, 1), (1, 1)].into_iter().enumerate() {
        let ids = random::uniform([batch, len], 0.0, 20.0, DType::F32, Some(40 + k as u64)).cast(DType::I32);
        let eager = model.call(&ids, false);
        let got = traced.call(ids.clone());
        assert_eq!(got.dims(), &[batch, len, 3]);
        let bits = |t: &Tensor| vec32(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&eager), "batch {batch}, length {len}");
    }
    assert_eq!(traced.tracing_count(), 1);
}
