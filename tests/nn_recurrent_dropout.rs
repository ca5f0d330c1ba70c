//! Dropout inside recurrent layers (Keras' `dropout` and `recurrent_dropout`), in a test
//! binary of its own: it compares random masks after `random::set_seed`, which no
//! concurrently running test may disturb — the tests here take turns (`RANDOM`).

mod common;
use common::*;
use tensorjit::nn::prelude::*;
use tensorjit::prelude::*;
use tensorjit::random;

/// Held by each test: the global random sequence is theirs alone while they run.
static RANDOM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A linear SimpleRNN with these kernels and no bias, built for `f` features.
fn linear_rnn(f: usize, kernel: Tensor, recurrent: Tensor) -> SimpleRNN {
    let l = SimpleRNN::new(f).activation(Activation::Linear).return_sequences(true);
    l.build("", &[None, None, Some(f)]);
    l.weights()[0].assign(kernel);
    l.weights()[1].assign(recurrent);
    l
}

#[test]
fn recurrent_dropout_draws_one_mask_per_sequence_and_traces_like_eager() {
    let _turn = RANDOM.lock().unwrap_or_else(|p| p.into_inner());
    let (b, t, f) = (64, 5, 6);
    let eye = Tensor::eye(f, DType::F32);
    let zeros = Tensor::zeros(Shape::new(&[f, f]), DType::F32);

    // Input dropout: h_t = x_t·m with one mask m [b, f] for every step.
    let layer = linear_rnn(f, eye.clone(), zeros.clone()).dropout(0.5);
    let x = rand_f32(1, &[b, t, f], 1.0, 2.0);
    assert_eq!(f32s(&layer.call(&x, false)), f32s(&x), "no dropout at inference");
    let (y, xs) = (f32s(&layer.call(&x, true)), f32s(&x));
    let mut dropped = 0;
    for i in 0..b * f {
        let (bi, fi) = (i / f, i % f);
        let ratios: Vec<f32> = (0..t).map(|s| y[(bi * t + s) * f + fi] / xs[(bi * t + s) * f + fi]).collect();
        assert!(ratios.iter().all(|&r| (r - ratios[0]).abs() < 1e-6), "one mask for every step: {ratios:?}");
        assert!(ratios[0] == 0.0 || (ratios[0] - 2.0).abs() < 1e-6, "{ratios:?}");
        dropped += usize::from(ratios[0] == 0.0);
    }
    assert!((120..264).contains(&dropped), "dropped {dropped} of {} at rate 0.5", b * f);

    // Recurrent dropout: h_t = 1 + h_{t−1}·m with one mask m, so h_2 − 1 = m and
    // h_3 − 1 = h_2·m.
    let layer = linear_rnn(f, eye.clone(), eye.clone()).recurrent_dropout(0.25);
    let ones = Tensor::ones(Shape::new(&[b, 3, f]), DType::F32);
    let h = f32s(&layer.call(&ones, true));
    for i in 0..b * f {
        let (bi, fi) = (i / f, i % f);
        let at = |s: usize| h[(bi * 3 + s) * f + fi];
        let m = at(1) - 1.0;
        assert!(m == 0.0 || (m - 1.0 / 0.75).abs() < 1e-6, "{m}");
        assert!((at(2) - 1.0 - at(1) * m).abs() < 1e-5, "the same mask on every step");
    }

    // Training: eager and traced draw the same masks after the same seed.
    let x = rand_f32(2, &[96, 6, 3], -1.0, 1.0);
    let y = x.sum(vec![1i64, 2], false).gt(0.0).cast(DType::I64);
    random::set_seed(3);
    let init = Sequential::new(vec![LSTM::new(6).dropout(0.2).recurrent_dropout(0.3).boxed(), Dense::new(2).boxed()])
        .with_input_shape(&[6, 3]);
    let weights: Vec<Tensor> = init.variables().iter().map(|v| v.read()).collect();
    let run = |run_eagerly: bool| {
        let m = Sequential::new(vec![LSTM::new(6).dropout(0.2).recurrent_dropout(0.3).boxed(), Dense::new(2).boxed()])
            .with_input_shape(&[6, 3]);
        for (v, w) in m.variables().iter().zip(&weights) {
            v.assign(w);
        }
        m.compile(Adam::new(0.01), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[], run_eagerly);
        random::set_seed(9);
        let opts = FitOptions { epochs: 3, batch_size: 32, shuffle: Some(1), verbose: false, ..FitOptions::default() };
        m.fit(&x, &y, &opts).unwrap().get("loss")
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!(eager, traced);

    let msg = panic_message(|| drop(LSTM::new(2).dropout(1.0)));
    assert!(msg.contains("LSTM: dropout must be in [0, 1), got 1"), "{msg}");
    let msg = panic_message(|| drop(GRU::new(2).recurrent_dropout(-0.1)));
    assert!(msg.contains("GRU: recurrent_dropout must be in [0, 1)"), "{msg}");
}

/// A seeded layer's masks repeat whatever else draws random numbers, change from call to
/// call, and a traced first call draws the eager first call's masks.
#[test]
fn seeded_recurrent_dropout_repeats_run_to_run() {
    let _turn = RANDOM.lock().unwrap_or_else(|p| p.into_inner());
    let f = 4;
    let (kernel, recurrent) = (rand_f32(20, &[f, f], -0.5, 0.5), rand_f32(21, &[f, f], -0.5, 0.5));
    let fresh = || {
        let l = SimpleRNN::new(f).return_sequences(true).dropout(0.4).recurrent_dropout(0.3).with_seed(9);
        l.build("", &[None, None, Some(f)]);
        l.weights()[0].assign(kernel.clone());
        l.weights()[1].assign(recurrent.clone());
        l
    };
    let x = rand_f32(22, &[8, 5, f], -1.0, 1.0);
    let (a, b) = (fresh(), fresh());
    let first = f32s(&a.call(&x, true));
    random::uniform([64], 0.0, 1.0, DType::F32, None); // other draws in between
    assert_eq!(f32s(&b.call(&x, true)), first, "the same seed, the same masks");
    assert_ne!(f32s(&a.call(&x, true)), first, "the next call draws new masks");
    let c = fresh();
    let traced = function("seeded_rnn", move |x: Tensor| c.call(&x, true));
    assert_eq!(f32s(&traced.call(x.clone())), first, "traced == eager");
}
