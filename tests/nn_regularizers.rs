//! Weight regularizers: each layer's penalties against hand sums of its weights,
//! containers collecting them, `fit` minimising and reporting `loss + Σ penalties`
//! (eager and traced alike), `evaluate` reporting it, and the errors.

use tensorjit::nn::prelude::*;
use tensorjit::nn::Module;
use tensorjit::{random, DType, GradientTape, Tensor, Variable};

fn sum_abs(v: &Variable) -> f64 {
    v.read().to_vec::<f32>().unwrap().iter().map(|x| f64::from(x.abs())).sum()
}

fn sum_sq(v: &Variable) -> f64 {
    v.read().to_vec::<f32>().unwrap().iter().map(|x| f64::from(*x) * f64::from(*x)).sum()
}

fn values(m: &dyn Module) -> Vec<f64> {
    m.losses().iter().map(|t| t.to_scalar::<f32>().unwrap() as f64).collect()
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{got:?} vs {want:?}");
    }
}

#[test]
fn each_layer_penalises_its_weights() {
    let x = random::normal([2, 5, 3], 0.0, 1.0, DType::F32, Some(1));
    let dense = Dense::new(4).kernel_regularizer(Regularizer::L2(0.01)).bias_regularizer(Regularizer::L1(0.5));
    assert!(values(&dense).is_empty(), "nothing before the build");
    dense.call(&x, false);
    // Biases start at zero: give them values so the L1 term is not a zero.
    let bias = dense.bias().unwrap();
    bias.assign(random::normal([4], 0.0, 1.0, DType::F32, Some(2)));
    close(&values(&dense), &[0.01 * sum_sq(&dense.kernel().unwrap()), 0.5 * sum_abs(&bias)]);

    let conv = Conv1D::new(2, 3).kernel_regularizer(Regularizer::L1L2 { l1: 0.1, l2: 0.2 });
    conv.call(&x, false);
    let k = &conv.variables()[0];
    close(&values(&conv), &[0.1 * sum_abs(k) + 0.2 * sum_sq(k)]);

    let conv2 = Conv2D::new(2, [2, 2]).bias_regularizer(Regularizer::L2(3.0));
    conv2.call(&random::normal([1, 4, 4, 3], 0.0, 1.0, DType::F32, Some(3)), false);
    let b = &conv2.variables()[1];
    b.assign(random::normal([2], 0.0, 1.0, DType::F32, Some(4)));
    close(&values(&conv2), &[3.0 * sum_sq(b)]);

    let emb = Embedding::new(7, 3).embeddings_regularizer(Regularizer::L1(0.25));
    emb.call(&Tensor::from_vec(vec![1i64, 4, 6], [1, 3]).unwrap(), false);
    close(&values(&emb), &[0.25 * sum_abs(&emb.embeddings().unwrap())]);

    let lstm = LSTM::new(2)
        .kernel_regularizer(Regularizer::L2(0.1))
        .recurrent_regularizer(Regularizer::L1(0.2))
        .bias_regularizer(Regularizer::L2(0.3));
    lstm.call(&x, false);
    let w = lstm.weights();
    close(&values(&lstm), &[0.1 * sum_sq(&w[0]), 0.2 * sum_abs(&w[1]), 0.3 * sum_sq(&w[2])]);

    let mha = MultiHeadAttention::new(2, 2).kernel_regularizer(Regularizer::L2(0.05));
    mha.call(&x, false);
    let want: Vec<f64> =
        mha.variables().iter().filter(|v| v.name().ends_with("kernel")).map(|v| 0.05 * sum_sq(v)).collect();
    assert_eq!(want.len(), 4, "query, key, value and output kernels");
    close(&values(&mha), &want);
}

#[test]
fn containers_collect_their_layers_penalties() {
    let x = random::normal([3, 4, 2], 0.0, 1.0, DType::F32, Some(11));
    let model = Sequential::new(vec![
        Bidirectional::new(
            GRU::new(3).kernel_regularizer(Regularizer::L2(0.1)).return_sequences(true).with_name("fwd"),
            GRU::new(3)
                .recurrent_regularizer(Regularizer::L1(0.2))
                .return_sequences(true)
                .go_backwards(true)
                .with_name("bwd"),
        )
        .boxed(),
        TimeDistributed::new(Dense::new(2).kernel_regularizer(Regularizer::L1(0.3)).with_name("td_dense")).boxed(),
        Dense::new(1).boxed(),
    ]);
    model.call(&x, false);
    let names: Vec<String> = model.variables().iter().map(|v| v.name().to_string()).collect();
    let var = |name: &str| {
        model
            .variables()
            .into_iter()
            .find(|v| v.name().ends_with(name))
            .unwrap_or_else(|| panic!("{name} in {names:?}"))
    };
    let want = [
        0.1 * sum_sq(&var("fwd/kernel")),
        0.2 * sum_abs(&var("bwd/recurrent_kernel")),
        0.3 * sum_abs(&var("td_dense/kernel")),
    ];
    close(&values(&model), &want);
}

/// A model whose loss `fit` must regularise: one Dense layer on random data.
fn regularised(run_eagerly: bool) -> (Sequential, Tensor, Tensor) {
    let x = random::normal([16, 3], 0.0, 1.0, DType::F32, Some(21));
    let y = random::normal([16, 1], 0.0, 1.0, DType::F32, Some(22));
    let model =
        Sequential::new(vec![Dense::new(1).kernel_regularizer(Regularizer::L2(0.5)).with_name("reg_dense").boxed()])
            .with_input_shape(&[3]);
    model.call(&x, false);
    model.variables()[0].assign(random::normal([3, 1], 0.0, 1.0, DType::F32, Some(23)));
    model.compile(SGD::new(0.1), Loss::MeanSquaredError, &[], run_eagerly);
    (model, x, y)
}

#[test]
fn fit_minimises_and_reports_the_regularised_loss() {
    let (model, x, y) = regularised(false);
    let kernel = model.variables()[0].clone();
    let w0 = kernel.read();
    // The step by hand: gradients of mse + 0.5·Σw² on the whole batch.
    let probe = Variable::new(w0.clone(), "probe");
    let tape = GradientTape::new();
    let pred = x.matmul(&probe.read());
    let data = Loss::MeanSquaredError.compute(&y, &pred);
    let total = &data + &(probe.read().square().sum_all() * 0.5);
    let g = tape.gradient(&total, std::slice::from_ref(&probe)).remove(0).unwrap();
    let want_w = (&w0 - &(g * 0.1)).to_vec::<f32>().unwrap();
    let want_loss = f64::from(total.to_scalar::<f32>().unwrap());

    let eval = model.evaluate(&x, &y, 16).unwrap();
    assert!((eval.get("loss").unwrap() - want_loss).abs() < 1e-5 * want_loss, "evaluate reports loss + penalty");
    let opts = FitOptions { epochs: 1, batch_size: 16, verbose: false, ..FitOptions::default() };
    let h = model.fit(&x, &y, &opts).unwrap();
    assert!((h.get("loss")[0] - want_loss).abs() < 1e-5 * want_loss, "{:?} vs {want_loss}", h.get("loss"));
    let got = kernel.read().to_vec::<f32>().unwrap();
    for (a, b) in got.iter().zip(&want_w) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{got:?} vs {want_w:?}");
    }
    // The penalty shrank the kernel more than the data alone would have.
    assert!(sum_sq(&kernel) < f64::from(w0.square().sum_all().to_scalar::<f32>().unwrap()));
}

#[test]
fn regularised_fit_is_identical_eager_and_traced() {
    let run = |eager: bool| {
        let (model, x, y) = regularised(eager);
        let opts = FitOptions { epochs: 3, batch_size: 5, verbose: false, ..FitOptions::default() };
        let h = model.fit(&x, &y, &opts).unwrap();
        (h.get("loss"), model.variables()[0].read().to_vec::<f32>().unwrap())
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn bad_factors_are_refused_at_the_setter() {
    let r = std::panic::catch_unwind(|| Dense::new(2).kernel_regularizer(Regularizer::L2(-0.1)));
    let msg = *r.err().unwrap().downcast::<String>().unwrap();
    assert!(msg.contains("Dense.kernel_regularizer: regularization factors must be finite and ≥ 0, got -0.1"), "{msg}");
    assert!(msg.contains("nn_regularizers.rs"), "{msg}");
    let r = std::panic::catch_unwind(|| LSTM::new(2).recurrent_regularizer(Regularizer::L1(f64::NAN)));
    let msg = *r.err().unwrap().downcast::<String>().unwrap();
    assert!(msg.contains("LSTM.recurrent_regularizer"), "{msg}");
    assert!(msg.contains("nn_regularizers.rs"), "{msg}");
}
