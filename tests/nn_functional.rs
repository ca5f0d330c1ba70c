//! The functional API: graphs of layers with several inputs, shared layers, skip
//! connections and merges, against hand computations and the equivalent `Sequential`;
//! training eager and traced alike; the errors a user meets building a graph.

mod common;

use common::panic_message;
use std::panic::AssertUnwindSafe;

use tensorjit::nn::functional::{Functional, Input, SymbolicTensor};
use tensorjit::nn::layers::ElementwiseMerge;
use tensorjit::nn::prelude::*;
use tensorjit::{random, DType, Tensor};

fn normal(dims: &[usize], seed: u64) -> Tensor {
    random::normal(dims.to_vec(), 0.0, 1.0, DType::F32, Some(seed))
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

fn close(got: &Tensor, want: &Tensor) {
    assert_eq!(got.dims(), want.dims());
    for (g, w) in f32s(got).iter().zip(f32s(want)) {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{:?} vs {:?}", f32s(got), f32s(want));
    }
}

/// `x @ kernel + bias` of a built Dense.
fn dense_of(d: &Dense, x: &Tensor) -> Tensor {
    x.matmul(&d.kernel().unwrap().read()) + d.bias().unwrap().read()
}

fn quiet(epochs: usize, batch_size: usize) -> FitOptions {
    FitOptions { epochs, batch_size, verbose: false, shuffle: Some(3), ..FitOptions::default() }
}

#[test]
fn a_chain_of_layers_is_the_sequential_model_of_the_same_weights() {
    let x = normal(&[5, 6], 1);
    let inp = Input::new(&[6]);
    let (d1, d2) = (Dense::new(4).activation(Activation::Tanh), Dense::new(3));
    let out = inp.apply(d1.clone()).apply(d2.clone());
    assert_eq!(out.shape(), &[None, Some(3)]);
    let model = Functional::named("chain", &[&inp], &out);
    let y = model.call(&x, false);
    let names: Vec<String> = model.variables().iter().map(|v| v.name().to_string()).collect();
    assert_eq!(names[0], format!("chain/{}/kernel", d1.name()));

    let seq = Sequential::new(vec![Dense::new(4).activation(Activation::Tanh).boxed(), Dense::new(3).boxed()]);
    seq.call(&x, false);
    for (s, f) in seq.variables().iter().zip(model.variables()) {
        s.assign(f.read());
    }
    assert_eq!(f32s(&seq.call(&x, false)), f32s(&y));
    close(&y, &dense_of(&d2, &dense_of(&d1, &x).tanh()));
}

#[test]
fn shared_layers_residuals_and_merges_compute_what_they_say() {
    let (a, b) = (Input::new(&[4]), Input::new(&[4]));
    let shared = Dense::new(4);
    let (ha, hb) = (a.apply(shared.clone()), b.apply(shared.clone()));
    let residual = &a + &ha;
    let gated = &residual * &hb;
    let diff = &gated - &b;
    let out = SymbolicTensor::merge(Concatenate::new(), &[&diff, &ha]);
    let model = Functional::new(&[&a, &b], &out);
    assert_eq!(model.output_shapes(), vec![vec![None, Some(8)]]);
    let (xa, xb) = (normal(&[3, 4], 2), normal(&[3, 4], 3));
    let y = model.call_inputs(&[xa.clone(), xb.clone()], false);
    // One Dense used twice: one kernel and one bias.
    assert_eq!(model.trainable_variables().len(), 2);
    assert_eq!(model.layers().len(), 5, "Dense, Add, Multiply, Subtract, Concatenate");
    let found = model.get_layer(shared.name()).expect("the shared Dense by its name");
    assert_eq!(found.variables()[0].id(), shared.kernel().unwrap().id(), "the same weights");
    assert!(model.get_layer("no_such_layer").is_none());
    let (sa, sb) = (dense_of(&shared, &xa), dense_of(&shared, &xb));
    let want = Tensor::concat(&[&((&xa + &sa) * &sb - &xb), &sa], 1);
    close(&y, &want);
}

#[test]
fn elementwise_merges_match_the_elementwise_ops() {
    let (a, b, c) = (normal(&[2, 3], 4), normal(&[2, 3], 5), normal(&[2, 1], 6));
    let xs = [a.clone(), b.clone(), c.clone()];
    let none = [None, None, None];
    let run = |m: ElementwiseMerge, xs: &[Tensor]| m.forward_inputs(xs, &none[..xs.len()], false).0;
    close(&run(Add::new(), &xs), &(&(&a + &b) + &c));
    close(&run(Multiply::new(), &xs), &(&(&a * &b) * &c));
    close(&run(Average::new(), &xs), &((&(&a + &b) + &c) / 3.0));
    close(&run(Maximum::new(), &xs), &a.maximum(&b).maximum(&c));
    close(&run(Minimum::new(), &xs), &a.minimum(&b).minimum(&c));
    close(&run(Subtract::new(), &xs[..2]), &(&a - &b));
    // Broadcast shapes: (None, 3) and (None, 1).
    assert_eq!(Add::new().output_shape_inputs(&[vec![None, Some(3)], vec![None, Some(1)]]), vec![None, Some(3)]);
}

#[test]
fn concatenate_and_dot_follow_keras_shapes_and_values() {
    let (a, b) = (normal(&[2, 3, 4], 7), normal(&[2, 5, 4], 8));
    let cat = Concatenate::along(1);
    assert_eq!(
        cat.output_shape_inputs(&[vec![None, Some(3), Some(4)], vec![None, None, Some(4)]]),
        vec![None, None, Some(4)]
    );
    let (y, _) = cat.forward_inputs(&[a.clone(), b.clone()], &[None, None], false);
    assert_eq!(f32s(&y), f32s(&Tensor::concat(&[&a, &b], 1)));

    // [2, 3, 4] · [2, 5, 4] along (2, 2): [2, 3, 5], each a[i]·b[j].
    let dot = Dot::new((2, 2));
    assert_eq!(
        dot.output_shape_inputs(&[vec![None, Some(3), Some(4)], vec![None, Some(5), Some(4)]]),
        vec![None, Some(3), Some(5)]
    );
    let (y, _) = dot.forward_inputs(&[a.clone(), b.clone()], &[None, None], false);
    close(&y, &a.matmul(&b.transpose(1, 2)));
    // Along (1, 1) of [2, 3, 4] and [2, 3, 2]: [2, 4, 2].
    let c = normal(&[2, 3, 2], 9);
    let (y, _) = Dot::new((1, 1)).forward_inputs(&[a.clone(), c.clone()], &[None, None], false);
    close(&y, &a.transpose(1, 2).matmul(&c));
    // Rank 2 with normalize: the cosine similarity, [2, 1].
    let (u, v) = (normal(&[2, 4], 10), normal(&[2, 4], 11));
    let (y, _) = Dot::new((1, 1)).normalize(true).forward_inputs(&[u.clone(), v.clone()], &[None, None], false);
    let cos = (&u * &v).sum(1, true) / (u.norm(1, true) * v.norm(1, true));
    close(&y, &cos);
    // Rank 2 and 3: [2, 4] · [2, 4, 3] along (1, 1) gives [2, 3].
    let w = normal(&[2, 4, 3], 12);
    let (y, _) = Dot::new((1, 1)).forward_inputs(&[u.clone(), w.clone()], &[None, None], false);
    close(&y, &u.expand_dims(1).matmul(&w).squeeze(&[1]));
}

#[test]
fn a_two_input_model_trains_the_same_eager_and_traced() {
    let n = 64;
    let (xa, xb) = (normal(&[n, 3], 20), normal(&[n, 2], 21));
    let y = (xa.sum(1, true) - xb.sum(1, true) * 2.0).tanh();
    let run = |run_eagerly: bool| {
        tensorjit::nn::reset_names();
        let (a, b) = (Input::new(&[3]), Input::new(&[2]));
        let ha = a.apply(Dense::new(8).activation(Activation::Tanh));
        let joined = SymbolicTensor::merge(Concatenate::new(), &[&ha, &b]);
        let model = Functional::new(&[&a, &b], &joined.apply(Dense::new(1))).built();
        // Seeded weights (other tests draw from the global sequence concurrently).
        for (i, v) in model.variables().iter().enumerate().filter(|(_, v)| v.shape().rank() == 2) {
            v.assign(random::glorot_uniform(v.shape().clone(), DType::F32, Some(i as u64)));
        }
        model.compile(Adam::new(0.02), Loss::MeanSquaredError, &[Metric::MeanAbsoluteError], run_eagerly);
        let mut opts = quiet(6, 16);
        opts.validation_data = Some((vec![xa.clone(), xb.clone()].into(), y.clone().into()));
        let h = model.fit([&xa, &xb], &y, &opts).unwrap();
        let pred = model.predict([&xa, &xb], 16).unwrap();
        let eval = model.evaluate([&xa, &xb], &y, 32).unwrap();
        if !run_eagerly {
            assert_eq!(model.train_tracing_count(), 1, "one batch shape, one trace");
        }
        (h.get("loss"), h.get("val_mean_absolute_error"), f32s(&pred), eval)
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!(eager, traced, "run_eagerly does not change results");
    let loss = &traced.0;
    assert!(loss[loss.len() - 1] < 0.5 * loss[0], "the model learns: {loss:?}");
    assert_eq!(traced.2.len(), n);
    let (evaluated, validated) = (traced.3.get("mean_absolute_error").unwrap(), *traced.1.last().unwrap());
    assert!((evaluated - validated).abs() < 1e-6, "evaluate {evaluated} vs the last validation {validated}");
}

#[test]
fn fit_over_a_dataset_of_two_inputs_and_targets() {
    let (xa, xb) = (normal(&[48, 2], 30), normal(&[48, 2], 31));
    let y = (&xa - &xb).sum(1, true).gt(0.0).cast(DType::F32);
    let (a, b) = (Input::new(&[2]), Input::new(&[2]));
    let out = (&a - &b).apply(Dense::new(1));
    let model = Functional::new(&[&a, &b], &out);
    model.compile(SGD::new(0.5), Loss::BinaryCrossentropy { from_logits: true }, &[Metric::Accuracy], false);
    let ds = Dataset::from_tensor_slices(vec![xa.clone(), xb.clone(), y.clone()]).unwrap().batch(12);
    let h = model.fit_dataset(&ds, &quiet(15, 12)).unwrap();
    assert!(h.get("accuracy").last().copied().unwrap() > 0.9, "{:?}", h.get("accuracy"));
    // Pairs are refused for a model of two inputs.
    let pairs = Dataset::from_tensor_slices(vec![xa, y]).unwrap().batch(12);
    let err = model.fit_dataset(&pairs, &quiet(1, 12)).unwrap_err().to_string();
    assert!(err.contains("2 input(s) and 1 target(s) (3 tensors), and optionally the examples' weights"), "{err}");
    assert!(err.contains("(one tensor, or one per output), got 2 tensors"), "{err}");
}

#[test]
fn a_functional_model_is_a_layer_of_a_sequential_one_and_saves_its_weights() {
    let inp = Input::new(&[5]);
    let block = Functional::named("block", &[&inp], &(&inp + &inp.apply(Dense::new(5).activation(Activation::Relu))));
    let model = Sequential::named("outer", vec![block.clone().boxed(), Dense::new(2).boxed()]).with_input_shape(&[5]);
    assert!(model.variables()[0].name().starts_with("outer/block/dense"), "{}", model.variables()[0].name());
    let x = normal(&[4, 5], 40);
    let y = normal(&[4, 2], 41);
    model.compile(SGD::new(0.1), Loss::MeanSquaredError, &[], false);
    let before: Vec<Vec<f32>> = block.variables().iter().map(|v| f32s(&v.read())).collect();
    model.fit(&x, &y, &quiet(2, 4)).unwrap();
    let after: Vec<Vec<f32>> = block.variables().iter().map(|v| f32s(&v.read())).collect();
    assert_ne!(before, after, "the inner model's weights train");

    let path = std::env::temp_dir().join(format!("tensorjit_functional_{}.safetensors", std::process::id()));
    block.save_weights(&path).unwrap();
    let saved = after;
    block.variables()[0].assign(normal(&[5, 5], 42));
    block.load_weights(&path).unwrap();
    let loaded: Vec<Vec<f32>> = block.variables().iter().map(|v| f32s(&v.read())).collect();
    assert_eq!(loaded, saved);
    let _ = std::fs::remove_file(path);
}

#[test]
fn masks_flow_through_the_graph_and_merge() {
    let (a, b) = (Input::with_dims(&[None, Some(2)]), Input::with_dims(&[None, Some(2)]));
    let merged = &a.apply(Masking::new(0.0)) + &b.apply(Masking::new(0.0));
    let model = Functional::new(&[&a, &b], &merged);
    let mut xa = f32s(&normal(&[2, 3, 2], 50));
    let mut xb = f32s(&normal(&[2, 3, 2], 51));
    // Step 2 of example 0 padded in a; step 0 of example 1 padded in b.
    xa[4..6].fill(0.0);
    xb[6..8].fill(0.0);
    let (xa, xb) = (Tensor::from_vec(xa, [2, 3, 2]).unwrap(), Tensor::from_vec(xb, [2, 3, 2]).unwrap());
    let (y, mask) = model.forward_inputs(&[xa.clone(), xb.clone()], &[None, None], false);
    close(&y, &(&xa + &xb));
    let mask = mask.expect("the merged mask").to_vec::<bool>().unwrap();
    assert_eq!(mask, vec![true, true, false, false, true, true]);
}

#[test]
fn the_summary_lists_inputs_layers_and_their_connections() {
    let (a, b) = (Input::named("left", &[Some(3)]), Input::named("right", &[Some(3)]));
    let joined = SymbolicTensor::merge(Concatenate::new().with_name("join"), &[&a, &b]);
    let model = Functional::named("two_towers", &[&a, &b], &joined.apply(Dense::new(2).with_name("head"))).built();
    let s = model.summary();
    for line in [
        "Model: \"two_towers\"",
        "Connected to",
        "left (InputLayer)",
        "join (Concatenate)",
        "(None, 6)",
        "left, right",
        "head (Dense)",
        "Total params: 14 (56 B)",
    ] {
        assert!(s.contains(line), "missing {line:?} in\n{s}");
    }
}

#[test]
fn graph_errors_name_the_layer_the_shapes_and_the_line() {
    let (a, b) = (Input::new(&[4]), Input::new(&[5]));
    let msg = panic_message(AssertUnwindSafe(|| {
        let _ = &a + &b;
    }));
    assert!(msg.contains("Add 'add") && msg.contains("(None, 4), (None, 5)"), "{msg}");
    assert!(msg.contains("nn_functional.rs"), "the user's line: {msg}");

    let orphan = Input::named("orphan", &[Some(4)]);
    let out = &a + &orphan;
    let msg = panic_message(AssertUnwindSafe(|| {
        Functional::new(&[&a], &out);
    }));
    assert!(msg.contains("Input 'orphan' (None, 4)") && msg.contains("graph disconnected"), "{msg}");

    let msg = panic_message(AssertUnwindSafe(|| {
        Functional::new(&[&out], &out);
    }));
    assert!(msg.contains("must be made by Input::new"), "{msg}");

    let msg = panic_message(AssertUnwindSafe(|| {
        SymbolicTensor::merge(Concatenate::along(1), &[&a, &b.apply(Reshape::new(&[Some(5), Some(1)]))]);
    }));
    assert!(msg.contains("Concatenate") && msg.contains("agree on every axis"), "{msg}");
    let msg = panic_message(AssertUnwindSafe(|| {
        SymbolicTensor::merge(Subtract::new(), &[&a, &a, &a]);
    }));
    assert!(msg.contains("takes 2 input(s), got 3"), "{msg}");
}

#[test]
fn wrong_inputs_are_refused_with_the_counts_and_shapes() {
    let (a, b) = (Input::new(&[3]), Input::new(&[2]));
    let model = Functional::new(&[&a, &b], &SymbolicTensor::merge(Concatenate::new(), &[&a, &b]).apply(Dense::new(1)));
    model.compile(SGD::new(0.1), Loss::MeanSquaredError, &[], false);
    let (xa, xb, y) = (normal(&[6, 3], 60), normal(&[6, 2], 61), normal(&[6, 1], 62));
    let err = model.fit(&xa, &y, &quiet(1, 6)).unwrap_err().to_string();
    assert!(err.contains("takes 2 input(s), got 1 input tensor(s)"), "{err}");
    let err = model.evaluate([&xa, &normal(&[5, 2], 63)], &y, 6).unwrap_err().to_string();
    assert!(
        err.contains("every input and target need the same number of examples") && err.contains("f32[5,2]"),
        "{err}"
    );
    let msg = panic_message(AssertUnwindSafe(|| {
        model.call_inputs(&[xb.clone(), xa.clone()], false);
    }));
    assert!(msg.contains("input 0 is incompatible") && msg.contains("expected shape (None, 3)"), "{msg}");
}

#[test]
fn callbacks_see_a_functional_model() {
    let inp = Input::new(&[2]);
    let model = Functional::new(&[&inp], &inp.apply(Dense::new(1)));
    let x = normal(&[32, 2], 70);
    let y = x.sum(1, true);
    model.compile(SGD::new(0.1), Loss::MeanSquaredError, &[], false);
    let stop = std::sync::Arc::new(EarlyStopping::new("loss").patience(0).restore_best_weights(true));
    let mut opts = quiet(30, 8);
    opts.callbacks = vec![stop.clone()];
    let h = model.fit(&x, &y, &opts).unwrap();
    assert!(!h.epochs.is_empty());
    let lr = std::sync::Arc::new(LearningRateScheduler::new(|epoch, lr| if epoch == 1 { lr / 10.0 } else { lr }));
    opts.callbacks = vec![lr];
    opts.epochs = 2;
    model.fit(&x, &y, &opts).unwrap();
    let rate = model.optimizer().unwrap().learning_rate();
    assert!((rate - 0.01).abs() < 1e-12, "the scheduler reached the model's optimizer: {rate}");
}

#[test]
fn a_two_output_model_trains_each_head_with_its_loss_weight_and_metrics() {
    let x = normal(&[48, 4], 80);
    let labels = x.argmax(-1);
    let value = x.sum(1, true);
    let class_loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    let run = |run_eagerly: bool| {
        tensorjit::nn::reset_names();
        let inp = Input::new(&[4]);
        let trunk = inp.apply(Dense::new(8).activation(Activation::Tanh));
        let class = trunk.apply(Dense::new(4).with_name("class"));
        let estimate = trunk.apply(Dense::new(1).with_name("value"));
        let model = Functional::named_with_outputs("heads", &[&inp], &[&class, &estimate]).built();
        for (i, v) in model.variables().iter().enumerate().filter(|(_, v)| v.shape().rank() == 2) {
            v.assign(random::glorot_uniform(v.shape().clone(), DType::F32, Some(80 + i as u64)));
        }
        let metrics: [&[Metric]; 2] = [&[Metric::Accuracy], &[]];
        model.compile_outputs(
            Adam::new(0.02),
            &[class_loss, Loss::MeanSquaredError],
            &[1.0, 0.5],
            &metrics,
            run_eagerly,
        );
        let mut opts = quiet(8, 16);
        opts.validation_data = Some((x.clone().into(), vec![labels.clone(), value.clone()].into()));
        let h = model.fit(&x, [&labels, &value], &opts).unwrap();
        let preds = model.predict_outputs(&x, 16).unwrap();
        let eval = model.evaluate(&x, [&labels, &value], 48).unwrap();
        (model, h, preds, eval)
    };
    let (_, eager, eager_preds, _) = run(true);
    let (model, h, preds, eval) = run(false);
    assert_eq!(eager.epochs, h.epochs, "run_eagerly does not change results");
    assert_eq!(eager_preds.iter().map(f32s).collect::<Vec<_>>(), preds.iter().map(f32s).collect::<Vec<_>>());

    let keys: Vec<&str> = h.epochs[0].0.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys[..4], ["loss", "class_loss", "value_loss", "class_accuracy"]);
    assert!(keys.contains(&"val_class_accuracy") && !keys.contains(&"value_accuracy"), "{keys:?}");
    // The total is the weighted sum of the heads' losses, epoch by epoch.
    for logs in &h.epochs {
        let (total, c, v) =
            (logs.get("loss").unwrap(), logs.get("class_loss").unwrap(), logs.get("value_loss").unwrap());
        assert!((total - (c + 0.5 * v)).abs() < 1e-5 * total.abs().max(1.0), "{logs:?}");
    }
    let value_loss = h.get("value_loss");
    assert!(value_loss[value_loss.len() - 1] < 0.5 * value_loss[0], "the value head learns: {value_loss:?}");
    // evaluate's per-head losses are the losses of predict_outputs' values.
    let by_hand = |loss: Loss, y: &Tensor, p: &Tensor| f64::from(loss.compute(y, p).to_scalar::<f32>().unwrap());
    let (c, v) = (by_hand(class_loss, &labels, &preds[0]), by_hand(Loss::MeanSquaredError, &value, &preds[1]));
    assert!((eval.get("class_loss").unwrap() - c).abs() < 1e-5, "{eval:?} vs {c}");
    assert!((eval.get("value_loss").unwrap() - v).abs() < 1e-5, "{eval:?} vs {v}");

    let err = model.predict(&x, 16).unwrap_err().to_string();
    assert!(err.contains("2 outputs: call predict_outputs"), "{err}");
    let err = model.fit(&x, &labels, &quiet(1, 16)).unwrap_err().to_string();
    assert!(err.contains("has 2 output(s), got 1 target tensor(s)"), "{err}");
    let msg = panic_message(AssertUnwindSafe(|| {
        model.compile_outputs(SGD::new(0.1), &[class_loss, class_loss, class_loss], &[], &[], false);
    }));
    assert!(msg.contains("3 loss(es) for 2 output(s)") && msg.contains("nn_functional.rs"), "{msg}");
    let msg = panic_message(AssertUnwindSafe(|| {
        model.call(&x, false);
    }));
    assert!(msg.contains("has 2 outputs, and a layer has one"), "{msg}");
}

#[test]
fn two_layers_of_one_name_keep_their_own_weights() {
    let inp = Input::new(&[3]);
    let (a, b) = (Dense::new(2).with_name("twin"), Dense::new(2).with_name("twin"));
    let out = &inp.apply(a) + &inp.apply(b);
    let model = Functional::new(&[&inp], &out).built();
    assert_eq!(model.trainable_variables().len(), 4, "two kernels and two biases");
    // Their weights' names collide: a weight file refuses them rather than keep one.
    let path = std::env::temp_dir().join(format!("tensorjit_twins_{}.safetensors", std::process::id()));
    let err = model.save_weights(&path).unwrap_err().to_string();
    assert!(err.contains("two variables are named") && err.contains("twin/kernel"), "{err}");
}

#[test]
fn typed_inputs_refuse_other_dtypes_naming_the_input() {
    let ids = Input::named("tokens", &[Some(6)]).with_dtype(DType::I64);
    assert_eq!(ids.dtype(), Some(DType::I64));
    let out = ids.apply(Embedding::new(10, 4)).apply(GlobalAveragePooling1D::new()).apply(Dense::new(1));
    let model = Functional::named("typed", &[&ids], &out);
    model.compile(SGD::new(0.1), Loss::MeanSquaredError, &[], false);
    let x = random::uniform([8, 6], 0.0, 10.0, DType::F32, Some(60)).floor().cast(DType::I64);
    let y = normal(&[8, 1], 61);
    assert!(model.fit(&x, &y, &quiet(1, 4)).is_ok());
    let err = model.predict(x.cast(DType::F32), 4).unwrap_err().to_string();
    let want = "predict: Functional 'typed': input 0 (Input 'tokens' (None, 6)) takes i64 values, got f32[8,6]";
    assert!(err.contains(want), "{err}");
    // A shape the Input does not take is refused the same way, before any step.
    let err = model.predict(x.reshape([4, 12]), 4).unwrap_err().to_string();
    assert!(err.contains("input 0 is incompatible with the model: expected shape (None, 6), got i64[4,12]"), "{err}");
    // Only an Input takes a dtype.
    let msg = panic_message(AssertUnwindSafe(|| drop(out.with_dtype(DType::F32))));
    assert!(msg.contains("only an Input takes a dtype") && msg.contains("nn_functional.rs"), "{msg}");
}
