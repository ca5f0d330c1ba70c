//! Activity regularizers (Keras' `activity_regularizer` and `ActivityRegularization`):
//! penalties on layers' outputs over the batch size, recorded by the model's latest
//! call, against hand sums; `fit` minimising them eager and traced alike, `evaluate`
//! reporting them, functional models, the stale values of a finished trace left out,
//! and the errors.

use tensorjit::nn::functional::{Functional, Input};
use tensorjit::nn::prelude::*;
use tensorjit::nn::Module;
use tensorjit::{random, DType, GradientTape, Tensor, Variable};

fn normal(dims: &[usize], seed: u64) -> Tensor {
    random::normal(dims.to_vec(), 0.0, 1.0, DType::F32, Some(seed))
}

fn scalar(t: &Tensor) -> f64 {
    f64::from(t.to_scalar::<f32>().unwrap())
}

fn sum_sq(t: &Tensor) -> f64 {
    t.to_vec::<f32>().unwrap().iter().map(|x| f64::from(*x) * f64::from(*x)).sum()
}

fn sum_abs(t: &Tensor) -> f64 {
    t.to_vec::<f32>().unwrap().iter().map(|x| f64::from(x.abs())).sum()
}

fn close(got: f64, want: f64) {
    assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{got} vs {want}");
}

#[test]
fn a_call_records_each_penalised_output_over_the_batch_size() {
    let x = normal(&[6, 3], 1);
    let hidden = Dense::new(4).activation(Activation::Tanh).activity_regularizer(Regularizer::L2(0.3));
    let head = Dense::new(2).activity_regularizer(Regularizer::L1(0.05)).kernel_regularizer(Regularizer::L2(0.01));
    let model = Sequential::new(vec![hidden.clone().boxed(), head.clone().boxed()]);
    let y = model.call(&x, false);
    let h = hidden.call(&x, false);
    let kernel = head.kernel().unwrap().read();
    let losses: Vec<f64> = model.losses().iter().map(scalar).collect();
    // The weights' penalties first, then the outputs' in the order the layers ran.
    let want = [0.01 * sum_sq(&kernel), 0.3 * sum_sq(&h) / 6.0, 0.05 * sum_abs(&y) / 6.0];
    assert_eq!(losses.len(), 3, "{losses:?}");
    for (g, w) in losses.iter().zip(want) {
        close(*g, w);
    }
    // The next call replaces them: a batch of 2 gives its own.
    let x2 = normal(&[2, 3], 2);
    let y2 = model.call(&x2, false);
    close(scalar(&model.losses()[2]), 0.05 * sum_abs(&y2) / 2.0);
    // A layer alone records nothing: its model adds the penalty.
    assert_eq!(hidden.losses().len(), 0);
    assert_eq!(hidden.output_regularizer(), Some(Regularizer::L2(0.3)));
}

#[test]
fn the_activity_regularization_layer_penalises_what_passes_through() {
    let x = normal(&[5, 4], 3);
    let dense = Dense::new(3);
    let model = Sequential::new(vec![dense.clone().boxed(), ActivityRegularization::new(0.2, 0.7).boxed()]);
    let y = model.call(&x, false);
    assert_eq!(y.to_vec::<f32>().unwrap(), dense.call(&x, false).to_vec::<f32>().unwrap(), "it passes x on");
    let want = (0.2 * sum_abs(&y) + 0.7 * sum_sq(&y)) / 5.0;
    close(scalar(&model.losses()[0]), want);
    assert!(model.summary().contains("ActivityRegularization"), "{}", model.summary());
}

/// A model whose training `fit` must regularise: hidden outputs penalised.
fn penalised(run_eagerly: bool) -> (Sequential, Tensor, Tensor) {
    tensorjit::nn::reset_names();
    let x = normal(&[12, 3], 10);
    let y = normal(&[12, 1], 11);
    let model = Sequential::new(vec![
        Dense::new(4).activation(Activation::Tanh).activity_regularizer(Regularizer::L2(0.4)).boxed(),
        Dense::new(1).boxed(),
    ])
    .with_input_shape(&[3]);
    for (i, v) in model.variables().iter().enumerate() {
        v.assign(random::normal(v.shape().clone(), 0.0, 0.8, DType::F32, Some(20 + i as u64)));
    }
    model.compile(SGD::new(0.1), Loss::MeanSquaredError, &[], run_eagerly);
    (model, x, y)
}

#[test]
fn fit_and_evaluate_add_the_penalty_and_minimise_it() {
    let (model, x, y) = penalised(false);
    let vars = model.variables();
    let start: Vec<Tensor> = vars.iter().map(Variable::read).collect();
    // The loss and the step by hand: mse + 0.4·Σh²/12.
    let probes: Vec<Variable> = start.iter().map(|t| Variable::new(t.clone(), "probe")).collect();
    let tape = GradientTape::new();
    let h = (x.matmul(&probes[0].read()) + probes[1].read()).tanh();
    let pred = h.matmul(&probes[2].read()) + probes[3].read();
    let total = &Loss::MeanSquaredError.compute(&y, &pred) + &(h.square().sum_all() * (0.4 / 12.0));
    let grads: Vec<Tensor> = tape.gradient(&total, &probes).into_iter().map(|g| g.unwrap()).collect();
    let want_loss = scalar(&total);

    let eval = model.evaluate(&x, &y, 12).unwrap();
    close(eval.get("loss").unwrap(), want_loss);
    let opts = FitOptions { epochs: 1, batch_size: 12, verbose: false, ..FitOptions::default() };
    let hist = model.fit(&x, &y, &opts).unwrap();
    close(hist.get("loss")[0], want_loss);
    for ((v, w0), g) in vars.iter().zip(&start).zip(&grads) {
        let want = (w0 - &(g * 0.1)).to_vec::<f32>().unwrap();
        for (a, b) in v.read().to_vec::<f32>().unwrap().iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{} vs {want:?}", v.name());
        }
    }
    // After the traced step, the model's losses hold no value of the finished trace:
    // only concrete tensors (here none: the last call was traced).
    assert!(model.losses().iter().all(|t| !t.is_symbolic()));
}

#[test]
fn penalised_fit_is_identical_eager_and_traced() {
    let run = |eager: bool| {
        let (model, x, y) = penalised(eager);
        let opts = FitOptions { epochs: 3, batch_size: 5, shuffle: None, verbose: false, ..FitOptions::default() };
        let h = model.fit(&x, &y, &opts).unwrap();
        (h.get("loss"), model.variables().iter().map(|v| v.read().to_vec::<f32>().unwrap()).collect::<Vec<_>>())
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!(eager, traced);
    assert!(eager.0[2] < eager.0[0], "{:?}", eager.0);
}

#[test]
fn functional_models_record_their_layers_penalties() {
    let x = normal(&[4, 3], 30);
    let inp = Input::new(&[3]);
    let shared = Dense::new(2).activity_regularizer(Regularizer::L1(0.5));
    let a = inp.apply(shared.clone());
    let b = a.apply(Dense::new(3));
    let out = b.apply(shared.clone());
    let model = Functional::new(&[&inp], &out);
    let y = model.call(&x, false);
    // A layer applied twice is penalised at each call.
    let first = shared.call(&x, false);
    let losses: Vec<f64> = model.losses().iter().map(scalar).collect();
    assert_eq!(losses.len(), 2, "{losses:?}");
    close(losses[0], 0.5 * sum_abs(&first) / 4.0);
    close(losses[1], 0.5 * sum_abs(&y) / 4.0);
}

#[test]
fn renaming_keeps_the_penalty_and_bad_factors_are_refused() {
    let d = Dense::new(2).activity_regularizer(Regularizer::L2(0.1)).with_name("renamed");
    assert_eq!(d.output_regularizer(), Some(Regularizer::L2(0.1)));
    assert_eq!(d.name(), "renamed");
    let r = std::panic::catch_unwind(|| Dense::new(2).with_name("bad").activity_regularizer(Regularizer::L1(-1.0)));
    let msg = *r.err().unwrap().downcast::<String>().unwrap();
    assert!(msg.contains("Dense 'bad'.activity_regularizer: regularization factors must be finite and ≥ 0"), "{msg}");
    assert!(msg.contains("nn_activity_regularizers.rs"), "{msg}");
    let r = std::panic::catch_unwind(|| ActivityRegularization::new(f64::INFINITY, 0.0));
    let msg = *r.err().unwrap().downcast::<String>().unwrap();
    assert!(msg.contains("ActivityRegularization"), "{msg}");
    // Set after the weights exist: refused.
    let built = Dense::new(2);
    built.call(&normal(&[1, 3], 31), false);
    let r = std::panic::catch_unwind(|| built.clone().activity_regularizer(Regularizer::L2(0.1)));
    let msg = *r.err().unwrap().downcast::<String>().unwrap();
    assert!(msg.contains("cannot take an activity regularizer after its weights exist"), "{msg}");
}

#[test]
fn wrapped_layers_are_penalised_through_their_wrappers() {
    let x = normal(&[3, 5, 4], 40);
    // TimeDistributed: the inner layer saw batch·steps = 15 examples.
    let inner = Dense::new(2).activity_regularizer(Regularizer::L2(0.3));
    let td = TimeDistributed::new(inner.clone()).activity_regularizer(Regularizer::L1(0.2));
    let model = Sequential::new(vec![td.boxed()]);
    let y = model.call(&x, false);
    let losses: Vec<f64> = model.losses().iter().map(scalar).collect();
    assert_eq!(losses.len(), 2, "{losses:?}");
    // The inner layer's (recorded by the wrapper, over 15), then the wrapper's own
    // (recorded by the model, over the batch of 3).
    close(losses[0], 0.3 * sum_sq(&y) / 15.0);
    close(losses[1], 0.2 * sum_abs(&y) / 3.0);
    // Bidirectional: each direction's layer, over the batch.
    let (ahead, back) = (LSTM::new(3).activity_regularizer(Regularizer::L2(0.5)), LSTM::new(3));
    let bi = Bidirectional::new(ahead.clone(), back);
    let model = Sequential::new(vec![bi.boxed()]);
    let out = model.call(&x, false);
    let forward_part = out.narrow(-1, 0, 3);
    let losses: Vec<f64> = model.losses().iter().map(scalar).collect();
    assert_eq!(losses.len(), 1, "{losses:?}");
    close(losses[0], 0.5 * sum_sq(&forward_part) / 3.0);
}
