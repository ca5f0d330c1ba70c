//! LSTM: Keras' weights (names, shapes, the forget gate's bias), values against a loop
//! reference in f64, return_sequences, gradients, traced with an unknown batch bit-
//! identical to eager, a model that learns the same eager and traced, and its errors.

mod common;
use common::*;
use tensorjit::nn::prelude::*;
use tensorjit::prelude::*;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Every step's h of `layer` on `x` [b, t, f], by loops.
fn reference(layer: &LSTM, x: &Tensor) -> Vec<Vec<f64>> {
    let w: Vec<Vec<f64>> = layer.weights().iter().map(|v| f64s(&v.read().cast(DType::F64))).collect();
    let (kernel, recurrent, bias) = (&w[0], &w[1], &w[2]);
    let (b, t, f) = (x.dims()[0], x.dims()[1], x.dims()[2]);
    let u = bias.len() / 4;
    let xv = f64s(&x.cast(DType::F64));
    let mut steps = Vec::new();
    let (mut h, mut c) = (vec![0.0; b * u], vec![0.0; b * u]);
    for s in 0..t {
        let mut nh = vec![0.0; b * u];
        for bi in 0..b {
            let z: Vec<f64> = (0..4 * u)
                .map(|j| {
                    let from_x: f64 = (0..f).map(|k| xv[(bi * t + s) * f + k] * kernel[k * 4 * u + j]).sum();
                    let from_h: f64 = (0..u).map(|k| h[bi * u + k] * recurrent[k * 4 * u + j]).sum();
                    from_x + from_h + bias[j]
                })
                .collect();
            for j in 0..u {
                let (i, fg, g, o) = (sigmoid(z[j]), sigmoid(z[u + j]), z[2 * u + j].tanh(), sigmoid(z[3 * u + j]));
                c[bi * u + j] = fg * c[bi * u + j] + i * g;
                nh[bi * u + j] = o * c[bi * u + j].tanh();
            }
        }
        h = nh;
        steps.push(h.clone());
    }
    steps
}

#[test]
fn lstm_matches_the_reference_and_keras_weights() {
    let layer = LSTM::new(5).return_sequences(true).with_name("lstm");
    let x = rand_f32(1, &[3, 6, 4], -1.0, 1.0);
    let y = layer.call(&x, false);
    assert_eq!(y.dims(), &[3, 6, 5]);
    let names: Vec<(String, Vec<usize>)> =
        layer.weights().iter().map(|v| (v.name().to_string(), v.shape().dims().to_vec())).collect();
    assert_eq!(
        names,
        [("lstm/kernel", vec![4, 20]), ("lstm/recurrent_kernel", vec![5, 20]), ("lstm/bias", vec![20])]
            .map(|(n, d)| (n.to_string(), d))
    );
    let bias = f32s(&layer.weights()[2].read());
    assert_eq!(bias, (0..20).map(|i| if (5..10).contains(&i) { 1.0 } else { 0.0 }).collect::<Vec<f32>>());
    // Perturb the bias so every gate's term is tested.
    layer.weights()[2].assign(rand_f32(2, &[20], -0.5, 0.5));
    let y = f32s(&layer.call(&x, false));
    let steps = reference(&layer, &x);
    for (s, h) in steps.iter().enumerate() {
        for bi in 0..3 {
            let got: Vec<f64> = (0..5).map(|j| f64::from(y[(bi * 6 + s) * 5 + j])).collect();
            assert_close(&got, &h[bi * 5..(bi + 1) * 5], 1e-5);
        }
    }
    // Without return_sequences: the last step only.
    let last = LSTM::new(5);
    last.call(&x, false);
    for (a, b) in last.weights().iter().zip(layer.weights()) {
        a.assign(b.read());
    }
    let y_last = f32s(&last.call(&x, false));
    let h = &steps[5];
    assert_close(&y_last.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), h, 1e-5);
    assert_eq!(last.output_shape(&[None, Some(6), Some(4)]), vec![None, Some(5)]);
}

/// LSTM → Dense, built, starting from `init` when given (other tests draw from the
/// same random sequence concurrently, so the second model copies the first's weights).
fn classifier(init: Option<&[Tensor]>) -> Sequential {
    let m =
        Sequential::named("rnn", vec![LSTM::new(8).with_name("lstm").boxed(), Dense::new(2).with_name("out").boxed()])
            .with_input_shape(&[7, 2]);
    for (v, w) in m.variables().iter().zip(init.unwrap_or(&[])) {
        v.assign(w);
    }
    m
}

#[test]
fn a_model_learns_the_same_eager_and_traced() {
    // Whether the running sum of the first feature ever exceeds the second's.
    let x = rand_f32(10, &[96, 7, 2], -1.0, 1.0);
    let cum = x.cumsum(1);
    let y = (cum.narrow(2, 0, 1) - cum.narrow(2, 1, 1)).max(vec![1i64, 2], false).gt(0.0).cast(DType::I64);
    let init: Vec<Tensor> = classifier(None).variables().iter().map(|v| v.read()).collect();
    let run = |run_eagerly: bool| {
        let m = classifier(Some(&init));
        m.compile(
            Adam::new(0.02).global_clipnorm(1.0),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &[Metric::Accuracy],
            run_eagerly,
        );
        let opts = FitOptions { epochs: 15, batch_size: 32, shuffle: Some(1), verbose: false, ..FitOptions::default() };
        (m.fit(&x, &y, &opts).unwrap(), m.train_tracing_count())
    };
    let ((eager, _), (traced, traces)) = (run(true), run(false));
    assert_eq!(eager.get("loss"), traced.get("loss"));
    assert_eq!(traces, 1);
    let (loss, acc) = (traced.get("loss"), traced.get("accuracy"));
    assert!(loss[14] < 0.6 * loss[0], "it learns: {loss:?}");
    assert!(acc[14] > 0.8, "{acc:?}");
}

#[test]
fn traced_with_an_unknown_batch_matches_eager_and_gradients_flow() {
    let layer = LSTM::new(4).return_sequences(true);
    let l = layer.clone();
    let f = tensorjit::function("lstm", move |x: Tensor| l.call(&x, false))
        .with_input_signature(vec![TensorSpec::new(DType::F32, &[None, Some(5), Some(3)])]);
    for n in [1, 6] {
        let x = rand_f32(20 + n as u64, &[n, 5, 3], -1.0, 1.0);
        let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&f.call(x.clone())), bits(&layer.call(&x, false)), "batch {n}");
    }
    assert_eq!(f.tracing_count(), 1);
    let x = rand_f32(30, &[2, 5, 3], -1.0, 1.0);
    let tape = GradientTape::new();
    let loss = layer.call(&x, true).square().sum_all();
    let grads = tape.gradient(&loss, &layer.weights().iter().collect::<Vec<_>>());
    for (v, g) in layer.weights().iter().zip(&grads) {
        let g = f32s(g.as_ref().unwrap_or_else(|| panic!("no gradient for {}", v.name())));
        assert!(g.iter().any(|x| *x != 0.0) && g.iter().all(|x| x.is_finite()), "{}", v.name());
    }
}

#[test]
fn errors_name_the_layer_and_the_problem() {
    let layer = LSTM::new(3).with_name("rnn");
    let msg = panic_message(|| drop(layer.call(&rand_f32(40, &[2, 4], -1.0, 1.0), false)));
    assert!(msg.contains("LSTM 'rnn'") && msg.contains("[batch, steps, features]"), "{msg}");
    let l = LSTM::new(3).with_name("unrolled");
    let f = tensorjit::function("steps", move |x: Tensor| l.call(&x, false))
        .with_input_signature(vec![TensorSpec::new(DType::F32, &[None, None, Some(2)])]);
    let msg = panic_message(std::panic::AssertUnwindSafe(|| drop(f.call(rand_f32(41, &[2, 3, 2], -1.0, 1.0)))));
    assert!(msg.contains("a known, non-zero number of steps"), "{msg}");
    let msg = panic_message(|| drop(LSTM::new(0)));
    assert!(msg.contains("LSTM: units must be positive"), "{msg}");
}

/// Every step's h of a GRU (`reset_after=True`) on `x` [b, t, f], by loops.
fn gru_reference(layer: &GRU, x: &Tensor) -> Vec<Vec<f64>> {
    let w: Vec<Vec<f64>> = layer.weights().iter().map(|v| f64s(&v.read().cast(DType::F64))).collect();
    let (kernel, recurrent, bias) = (&w[0], &w[1], &w[2]);
    let (b, t, f) = (x.dims()[0], x.dims()[1], x.dims()[2]);
    let u = bias.len() / 6;
    let xv = f64s(&x.cast(DType::F64));
    let mut steps = Vec::new();
    let mut h = vec![0.0; b * u];
    for s in 0..t {
        let mut nh = vec![0.0; b * u];
        for bi in 0..b {
            let xz: Vec<f64> = (0..3 * u)
                .map(|j| (0..f).map(|k| xv[(bi * t + s) * f + k] * kernel[k * 3 * u + j]).sum::<f64>() + bias[j])
                .collect();
            let hz: Vec<f64> = (0..3 * u)
                .map(|j| (0..u).map(|k| h[bi * u + k] * recurrent[k * 3 * u + j]).sum::<f64>() + bias[3 * u + j])
                .collect();
            for j in 0..u {
                let z = sigmoid(xz[j] + hz[j]);
                let r = sigmoid(xz[u + j] + hz[u + j]);
                let cand = (xz[2 * u + j] + r * hz[2 * u + j]).tanh();
                nh[bi * u + j] = z * h[bi * u + j] + (1.0 - z) * cand;
            }
        }
        h = nh;
        steps.push(h.clone());
    }
    steps
}

#[test]
fn gru_matches_the_reference_and_traces() {
    let layer = GRU::new(4).return_sequences(true).with_name("gru");
    let x = rand_f32(50, &[2, 5, 3], -1.0, 1.0);
    layer.call(&x, false);
    let shapes: Vec<Vec<usize>> = layer.weights().iter().map(|v| v.shape().dims().to_vec()).collect();
    assert_eq!(shapes, [vec![3, 12], vec![4, 12], vec![2, 12]]);
    assert_eq!(layer.weights()[2].name(), "gru/bias");
    layer.weights()[2].assign(rand_f32(51, &[2, 12], -0.5, 0.5));
    let y = f32s(&layer.call(&x, false));
    for (s, h) in gru_reference(&layer, &x).iter().enumerate() {
        for bi in 0..2 {
            let got: Vec<f64> = (0..4).map(|j| f64::from(y[(bi * 5 + s) * 4 + j])).collect();
            assert_close(&got, &h[bi * 4..(bi + 1) * 4], 1e-5);
        }
    }
    let l = layer.clone();
    let f = tensorjit::function("gru", move |x: Tensor| l.call(&x, false))
        .with_input_signature(vec![TensorSpec::new(DType::F32, &[None, Some(5), Some(3)])]);
    for n in [1, 3] {
        let x = rand_f32(52 + n as u64, &[n, 5, 3], -1.0, 1.0);
        let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&f.call(x.clone())), bits(&layer.call(&x, false)), "batch {n}");
    }
    let tape = GradientTape::new();
    let loss = GRU::new(4).call(&x, true).square().sum_all() + layer.call(&x, true).sum_all();
    let grads = tape.gradient(&loss, &layer.weights().iter().collect::<Vec<_>>());
    assert!(grads.iter().all(|g| g.as_ref().is_some_and(|g| f32s(g).iter().any(|v| *v != 0.0))));
}

#[test]
fn bidirectional_joins_a_forward_and_a_reversed_pass() {
    let (fw, bw) =
        (LSTM::new(3).return_sequences(true).with_name("fw"), GRU::new(2).return_sequences(true).with_name("bw"));
    let bi = Bidirectional::new(fw.clone(), bw.clone()).with_name("bi");
    let x = rand_f32(60, &[2, 5, 4], -1.0, 1.0);
    let y = bi.call(&x, false);
    assert_eq!(y.dims(), &[2, 5, 5]);
    assert_eq!(bi.output_shape(&[None, Some(5), Some(4)]), vec![None, Some(5), Some(5)]);
    // The first 3 features are the forward layer's; the last 2 the backward layer's
    // output over the reversed steps, put back in order.
    let ahead = fw.call(&x, false);
    let back = bw.call(&x.reverse(&[1]), false).reverse(&[1]);
    assert_eq!(f32s(&y), f32s(&Tensor::concat(&[&ahead, &back], -1)));
    let names: Vec<String> = bi.variables().iter().map(|v| v.name().to_string()).collect();
    assert_eq!(names[0], "bi/fw/kernel");
    assert_eq!(names[3], "bi/bw/kernel");
    assert_eq!(names.len(), 6);
    // Last outputs only, in a model traced for an unknown batch.
    let model = Sequential::new(vec![Bidirectional::new(LSTM::new(4), LSTM::new(4)).boxed(), Dense::new(1).boxed()])
        .with_input_shape(&[5, 4]);
    let summary = model.summary();
    // Two LSTMs of 4 units over 4 features: 2 · (4·16 + 4·16 + 16) weights.
    assert!(
        summary.contains("(Bidirectional)") && summary.contains("(None, 8)") && summary.contains("288"),
        "{summary}"
    );
    let m = model.clone();
    let f = tensorjit::function("bidirectional", move |x: Tensor| m.call(&x, false))
        .with_input_signature(vec![TensorSpec::new(DType::F32, &[None, Some(5), Some(4)])]);
    for n in [1, 3] {
        let x = rand_f32(61 + n as u64, &[n, 5, 4], -1.0, 1.0);
        let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&f.call(x.clone())), bits(&model.call(&x, false)), "batch {n}");
    }
    // Layers that do not agree on return_sequences cannot be joined.
    let bad = Bidirectional::new(LSTM::new(2).return_sequences(true), LSTM::new(2)).with_name("bad");
    let msg = panic_message(std::panic::AssertUnwindSafe(|| drop(bad.call(&x, false))));
    assert!(msg.contains("Bidirectional 'bad'") && msg.contains("return_sequences must agree"), "{msg}");
}

#[test]
fn simple_rnn_matches_the_reference_and_traces() {
    let layer = SimpleRNN::new(4).return_sequences(true).with_name("rnn");
    let x = rand_f32(50, &[3, 5, 2], -1.0, 1.0);
    layer.call(&x, false);
    let names: Vec<(String, Vec<usize>)> =
        layer.weights().iter().map(|v| (v.name().to_string(), v.shape().dims().to_vec())).collect();
    assert_eq!(
        names,
        [("rnn/kernel", vec![2, 4]), ("rnn/recurrent_kernel", vec![4, 4]), ("rnn/bias", vec![4])]
            .map(|(n, d)| (n.to_string(), d))
    );
    layer.weights()[2].assign(rand_f32(51, &[4], -0.5, 0.5));
    for (activation, f) in [(Activation::Tanh, f64::tanh as fn(f64) -> f64), (Activation::Relu, |v: f64| v.max(0.0))] {
        let l = SimpleRNN::new(4).return_sequences(true).activation(activation);
        l.build("", &[None, Some(5), Some(2)]);
        for (a, b) in l.weights().iter().zip(layer.weights()) {
            a.assign(b.read());
        }
        let w: Vec<Vec<f64>> = l.weights().iter().map(|v| f64s(&v.read().cast(DType::F64))).collect();
        let xv = f64s(&x.cast(DType::F64));
        let y = f32s(&l.call(&x, false));
        for bi in 0..3 {
            let mut h = vec![0.0; 4];
            for s in 0..5 {
                h = (0..4)
                    .map(|j| {
                        let from_x: f64 = (0..2).map(|k| xv[(bi * 5 + s) * 2 + k] * w[0][k * 4 + j]).sum();
                        let from_h: f64 = (0..4).map(|k| h[k] * w[1][k * 4 + j]).sum();
                        f(from_x + from_h + w[2][j])
                    })
                    .collect();
                let got: Vec<f64> = (0..4).map(|j| f64::from(y[(bi * 5 + s) * 4 + j])).collect();
                assert_close(&got, &h, 1e-5);
            }
        }
    }
    let l = layer.clone();
    let f = tensorjit::function("simple_rnn", move |x: Tensor| l.call(&x, false))
        .with_input_signature(vec![TensorSpec::new(DType::F32, &[None, Some(5), Some(2)])]);
    for n in [1, 4] {
        let x = rand_f32(52 + n as u64, &[n, 5, 2], -1.0, 1.0);
        let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&f.call(x.clone())), bits(&layer.call(&x, false)), "batch {n}");
    }
    assert_eq!(f.tracing_count(), 1);
}

#[test]
fn go_backwards_reads_the_reversed_steps_and_bidirectional_of_makes_twins() {
    let x = rand_f32(60, &[3, 5, 2], -1.0, 1.0);
    let ahead = LSTM::new(3).return_sequences(true);
    ahead.call(&x, false);
    let back = LSTM::new(3).return_sequences(true).go_backwards(true);
    back.build("", &[None, Some(5), Some(2)]);
    for (a, b) in back.weights().iter().zip(ahead.weights()) {
        a.assign(b.read());
    }
    // The outputs in the order the steps were read: those of the reversed input.
    assert_eq!(f32s(&back.call(&x, false)), f32s(&ahead.call(&x.reverse(&[1]), false)));
    // With a mask, the mask is read (and returned) reversed too.
    let mask = Tensor::from_vec(
        vec![true, true, true, false, false, true, true, true, true, true, true, false, false, false, false],
        [3, 5],
    )
    .unwrap();
    let rev = mask.reverse(&[1]);
    assert_eq!(
        f32s(&back.forward_masked(&x, Some(&mask), false)),
        f32s(&ahead.forward_masked(&x.reverse(&[1]), Some(&rev), false))
    );
    let out_mask = back.compute_mask(&x, Some(&mask)).unwrap();
    assert_eq!(out_mask.to_vec::<bool>().unwrap(), rev.to_vec::<bool>().unwrap());

    // Bidirectional::of: two twins with weights of their own, named after the layer.
    let bi = Sequential::named(
        "m",
        vec![Bidirectional::of(GRU::new(3).return_sequences(true).with_name("gru")).with_name("bi").boxed()],
    );
    let y = bi.call(&x, false);
    let names: Vec<String> = bi.variables().iter().map(|v| v.name().to_string()).collect();
    assert_eq!(names[0], "m/bi/forward_gru/kernel", "{names:?}");
    assert_eq!(names[3], "m/bi/backward_gru/kernel", "{names:?}");
    let twins = bi.layers()[0].layers();
    assert_ne!(f32s(&twins[0].variables()[0].read()), f32s(&twins[1].variables()[0].read()), "their own weights");
    let want = Tensor::concat(&[&twins[0].call(&x, false), &twins[1].call(&x.reverse(&[1]), false).reverse(&[1])], -1);
    assert_eq!(f32s(&y), f32s(&want));
    let msg = panic_message(|| drop(Bidirectional::of(LSTM::new(2).go_backwards(true).with_name("lstm_b"))));
    assert!(msg.contains("Bidirectional of LSTM 'lstm_b'") && msg.contains("goes backwards"), "{msg}");
}

#[test]
fn a_final_state_continues_the_sequence_where_it_stopped() {
    let x = rand_f32(70, &[3, 8, 2], -1.0, 1.0);
    let (head, tail) = (x.narrow(1, 0, 5), x.narrow(1, 5, 3));
    let lstm = LSTM::new(4).return_sequences(true);
    let gru = GRU::new(4).return_sequences(true);
    let rnn = SimpleRNN::new(4).return_sequences(true);
    type Run<'a> = Box<dyn Fn(&Tensor, Option<&[Tensor]>) -> (Tensor, Vec<Tensor>) + 'a>;
    let runs: [(&str, Run, usize); 3] = [
        ("LSTM", Box::new(|x: &Tensor, s: Option<&[Tensor]>| lstm.call_with_state(x, None, s, false)), 2),
        ("GRU", Box::new(|x: &Tensor, s: Option<&[Tensor]>| gru.call_with_state(x, None, s, false)), 1),
        ("SimpleRNN", Box::new(|x: &Tensor, s: Option<&[Tensor]>| rnn.call_with_state(x, None, s, false)), 1),
    ];
    for (name, run, len) in runs {
        let (whole, end) = run(&x, None);
        let (first, state) = run(&head, None);
        assert_eq!(state.len(), len, "{name}");
        let (rest, end2) = run(&tail, Some(&state));
        let joined = Tensor::concat(&[&first, &rest], 1);
        assert_close(&f64s(&joined.cast(DType::F64)), &f64s(&whole.cast(DType::F64)), 1e-6);
        for (a, b) in end.iter().zip(&end2) {
            assert_close(&f64s(&a.cast(DType::F64)), &f64s(&b.cast(DType::F64)), 1e-6);
        }
        // The final h is the last output.
        assert_close(
            &f64s(&end[0].cast(DType::F64)),
            &f64s(&whole.narrow(1, 7, 1).reshape([3, 4]).cast(DType::F64)),
            0.0,
        );
    }
    // With a mask, padded steps keep the state: the final state is the last real step's.
    let mask = Tensor::from_vec((0..24).map(|i| i % 8 < [8, 3, 5][i / 8]).collect::<Vec<bool>>(), [3, 8]).unwrap();
    let (_, end) = lstm.call_with_state(&x, Some(&mask), None, false);
    let (_, alone) = lstm.call_with_state(&x.narrow(0, 1, 1).narrow(1, 0, 3), None, None, false);
    assert_close(&f64s(&end[1].narrow(0, 1, 1).cast(DType::F64)), &f64s(&alone[1].cast(DType::F64)), 1e-6);
    // Traced with states in and out: eager's bits.
    let l = lstm.clone();
    let f = tensorjit::function("decoder", move |(x, h, c): (Tensor, Tensor, Tensor)| {
        let (y, s) = l.call_with_state(&x, None, Some(&[h, c]), false);
        (y, s[0].clone(), s[1].clone())
    });
    let (h, c) = (rand_f32(71, &[3, 4], -0.5, 0.5), rand_f32(72, &[3, 4], -0.5, 0.5));
    let (ty, th, tc) = f.call((tail.clone(), h.clone(), c.clone()));
    let (ey, es) = lstm.call_with_state(&tail, None, Some(&[h.clone(), c.clone()]), false);
    assert_eq!((f32s(&ty), f32s(&th), f32s(&tc)), (f32s(&ey), f32s(&es[0]), f32s(&es[1])));
    // A state of the wrong arity or shape names the layer and what it takes.
    let named = LSTM::new(4).with_name("decoder");
    let msg = panic_message(std::panic::AssertUnwindSafe(|| {
        drop(named.call_with_state(&x, None, Some(std::slice::from_ref(&h)), false))
    }));
    assert!(msg.contains("LSTM 'decoder'") && msg.contains("2 tensor(s) f32[batch, 4]"), "{msg}");
    let wide = rand_f32(73, &[3, 5], -0.5, 0.5);
    let msg = panic_message(std::panic::AssertUnwindSafe(|| {
        drop(gru.call_with_state(&x, None, Some(std::slice::from_ref(&wide)), false))
    }));
    assert!(msg.contains("f32[3,5]"), "{msg}");
}
