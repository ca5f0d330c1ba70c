//! Keras' `sample_weight` and `class_weight`: weighted losses against hand sums (Keras'
//! `sum_over_batch_size`), `fit` reporting and minimising them eager and traced alike,
//! class weights as the sample weights of each label, datasets with a weight column,
//! `evaluate_weighted`, one weight per output of a model of several, and the errors.

mod common;

use tensorjit::nn::prelude::*;
use tensorjit::{random, DType, Tensor};

fn normal(dims: &[usize], seed: u64) -> Tensor {
    random::normal(dims.to_vec(), 0.0, 1.0, DType::F32, Some(seed))
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.cast(DType::F64).to_vec::<f64>().unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    f64s(t)[0]
}

fn positive_weights(n: usize, seed: u64) -> Tensor {
    random::uniform([n], 0.0, 2.0, DType::F32, Some(seed))
}

#[test]
fn weighted_losses_are_keras_sums_over_the_batch_size() {
    let (y, p) = (normal(&[6, 3], 1), normal(&[6, 3], 2));
    let w = positive_weights(6, 3);
    let per = f64s(&Loss::MeanSquaredError.per_example(&y, &p));
    let want: f64 = per.iter().zip(f64s(&w)).map(|(l, w)| l * w).sum::<f64>() / 6.0;
    let got = scalar(&Loss::MeanSquaredError.compute_weighted(&y, &p, &w, None));
    assert!((got - want).abs() < 1e-6, "{got} vs {want}");

    // Sequences with a mask: the weighted per-step losses averaged over kept steps.
    let labels = Tensor::from_vec(vec![0i64, 2, 1, 1, 0, 2, 2, 1], [2, 4]).unwrap();
    let logits = normal(&[2, 4, 3], 4);
    let mask = Tensor::from_vec(vec![true, true, false, true, true, false, false, false], [2, 4]).unwrap();
    let w = Tensor::from_vec(vec![0.5f32, 3.0], [2]).unwrap();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    let per = f64s(&loss.per_example(&labels, &logits));
    let keep = mask.to_vec::<bool>().unwrap();
    let (mut sum, mut count) = (0.0, 0.0);
    for (i, (&l, &k)) in per.iter().zip(&keep).enumerate() {
        if k {
            sum += l * [0.5, 3.0][i / 4];
            count += 1.0;
        }
    }
    let got = scalar(&loss.compute_weighted(&labels, &logits, &w, Some(&mask)));
    assert!((got - sum / count).abs() < 1e-5, "{got} vs {}", sum / count);

    // Weights of 1 give the unweighted loss.
    let ones = Tensor::ones([6], DType::F32);
    let (a, b) =
        (Loss::Huber { delta: 1.0 }.compute_weighted(&y, &p, &ones, None), Loss::Huber { delta: 1.0 }.compute(&y, &p));
    assert!((scalar(&a) - scalar(&b)).abs() < 1e-6);
}

fn classifier(seed: u64) -> Sequential {
    tensorjit::nn::reset_names();
    let model = Sequential::new(vec![Dense::new(3).boxed()]).with_input_shape(&[4]);
    let k = &model.variables()[0];
    k.assign(random::glorot_uniform(k.shape().clone(), DType::F32, Some(seed)));
    model
}

fn opts(epochs: usize, batch_size: usize) -> FitOptions {
    FitOptions { epochs, batch_size, shuffle: None, verbose: false, ..FitOptions::default() }
}

#[test]
fn fit_reports_and_minimises_the_weighted_loss_eager_and_traced() {
    let x = normal(&[12, 4], 10);
    let labels = x.argmax(1).floormod(3);
    let w = positive_weights(12, 11);
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    let mut histories = Vec::new();
    for run_eagerly in [true, false] {
        let model = classifier(12);
        let per = f64s(&loss.per_example(&labels, &model.call(&x, false)));
        let want: f64 = per.iter().zip(f64s(&w)).map(|(l, w)| l * w).sum::<f64>() / 12.0;
        model.compile(SGD::new(0.5), loss, &[Metric::Accuracy], run_eagerly);
        let mut o = opts(6, 12);
        o.sample_weight = Some((&w).into());
        let h = model.fit(&x, &labels, &o).unwrap();
        // One batch: the first epoch's loss is the weighted loss of the first weights.
        let first = h.get("loss")[0];
        assert!((first - want).abs() < 1e-5, "{first} vs {want}");
        let l = h.get("loss");
        assert!(l[5] < l[0], "the weighted loss goes down: {l:?}");
        if !run_eagerly {
            assert_eq!(model.train_tracing_count(), 1);
        }
        histories.push(h.epochs);
    }
    assert_eq!(histories[0], histories[1], "run_eagerly does not change results");
}

#[test]
fn class_weights_are_the_sample_weights_of_the_labels() {
    let x = normal(&[15, 4], 20);
    let labels = x.argmax(1).floormod(3);
    let table = vec![1.0, 0.0, 2.5];
    let by_label: Vec<f32> = labels.to_vec::<i64>().unwrap().iter().map(|&l| table[l as usize] as f32).collect();
    let extra = positive_weights(15, 21);
    let run = |y: &Tensor, loss: Loss, class_weight: Option<Vec<f64>>, sample_weight: Option<Tensor>| {
        let model = classifier(22);
        model.compile(SGD::new(0.3), loss, &[], false);
        let o = FitOptions { class_weight, sample_weight: sample_weight.map(Into::into), ..opts(3, 5) };
        model.fit(&x, y, &o).unwrap().get("loss")
    };
    let sparse = Loss::SparseCategoricalCrossentropy { from_logits: true };
    let hand: Vec<f32> = by_label.iter().zip(extra.to_vec::<f32>().unwrap()).map(|(c, s)| c * s).collect();
    let with_table = run(&labels, sparse, Some(table.clone()), Some(extra.clone()));
    let with_weights = run(&labels, sparse, None, Some(Tensor::from_vec(hand, [15]).unwrap()));
    assert_eq!(with_table, with_weights, "class weight × sample weight, per example");
    // One-hot targets take the weight of their argmax.
    let onehot = labels.one_hot(3, DType::F32);
    let dense = run(&onehot, Loss::CategoricalCrossentropy { from_logits: true }, Some(table), None);
    let sparse_only = run(&labels, sparse, None, Some(Tensor::from_vec(by_label, [15]).unwrap()));
    for (a, b) in dense.iter().zip(&sparse_only) {
        assert!((a - b).abs() < 1e-5, "{dense:?} vs {sparse_only:?}");
    }
}

#[test]
fn a_dataset_may_carry_the_weights() {
    let x = normal(&[16, 4], 30);
    let labels = x.argmax(1).floormod(3);
    let w = positive_weights(16, 31);
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    let from_tensors = {
        let model = classifier(32);
        model.compile(SGD::new(0.3), loss, &[], false);
        let o = FitOptions { sample_weight: Some((&w).into()), ..opts(2, 4) };
        model.fit(&x, &labels, &o).unwrap().get("loss")
    };
    let from_dataset = {
        let model = classifier(32);
        model.compile(SGD::new(0.3), loss, &[], false);
        let ds = Dataset::from_tensor_slices(vec![x.clone(), labels.clone(), w.clone()]).unwrap().batch(4);
        model.fit_dataset(&ds, &opts(2, 4)).unwrap().get("loss")
    };
    assert_eq!(from_tensors, from_dataset);
}

#[test]
fn bad_weights_are_refused_naming_what_is_wrong() {
    let x = normal(&[6, 4], 40);
    let labels = Tensor::from_vec(vec![0i64, 1, 2, 2, 1, 0], [6]).unwrap();
    let model = classifier(41);
    model.compile(SGD::new(0.1), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[], false);
    let fit = |o: FitOptions| model.fit(&x, &labels, &o).unwrap_err().to_string();
    let err = fit(FitOptions { class_weight: Some(vec![1.0, 2.0]), ..opts(1, 6) });
    assert!(err.contains("label 2 (example 2) has no class weight: class_weight has 2 entries"), "{err}");
    let err = fit(FitOptions { sample_weight: Some(Tensor::ones([5], DType::F32).into()), ..opts(1, 6) });
    assert!(err.contains("sample_weight must be one float per example ([6]), got f32[5]"), "{err}");
    let err = fit(FitOptions { sample_weight: Some(Tensor::ones([6], DType::I64).into()), ..opts(1, 6) });
    assert!(err.contains("sample_weight must be one float per example"), "{err}");
    // Class weights need one label per example and one output.
    use tensorjit::nn::functional::{Functional, Input};
    let inp = Input::new(&[4]);
    let (a, b) = (inp.apply(Dense::new(3)), inp.apply(Dense::new(3)));
    let two = Functional::with_outputs(&[&inp], &[&a, &b]);
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    two.compile(SGD::new(0.1), loss, &[], false);
    let o = FitOptions { class_weight: Some(vec![1.0; 3]), ..opts(1, 6) };
    let err = two.fit(&x, [&labels, &labels], &o).unwrap_err().to_string();
    assert!(err.contains("class_weight applies to models of one output, this one has 2"), "{err}");
    // One weight for every output, or one per output: not three for two.
    let w = Tensor::ones([6], DType::F32);
    let o = FitOptions { sample_weight: Some([&w, &w, &w].into()), ..opts(1, 6) };
    let err = two.fit(&x, [&labels, &labels], &o).unwrap_err().to_string();
    assert!(err.contains("sample_weight needs one tensor for every output or one per output (2), got 3"), "{err}");
    let err = two.evaluate_weighted(&x, [&labels, &labels], [&w, &w, &w], 6).unwrap_err().to_string();
    assert!(err.contains("evaluate: sample_weight needs one tensor"), "{err}");
}

#[test]
fn evaluate_weighted_reports_the_weighted_loss_and_unweighted_metrics() {
    let x = normal(&[10, 4], 50);
    let labels = x.argmax(1).floormod(3);
    let w = positive_weights(10, 51);
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    for run_eagerly in [true, false] {
        let model = classifier(52);
        model.compile(SGD::new(0.1), loss, &[Metric::Accuracy], run_eagerly);
        let per = f64s(&loss.per_example(&labels, &model.call(&x, false)));
        // Batches of 4, 4 and 2: each batch's weighted mean, weighted by its size.
        let wv = f64s(&w);
        let want: f64 = [0..4, 4..8, 8..10]
            .into_iter()
            .map(|r| {
                let len = r.len() as f64;
                r.map(|i| per[i] * wv[i]).sum::<f64>() / len * len
            })
            .sum::<f64>()
            / 10.0;
        let weighted = model.evaluate_weighted(&x, &labels, &w, 4).unwrap();
        let plain = model.evaluate(&x, &labels, 4).unwrap();
        assert!((weighted.get("loss").unwrap() - want).abs() < 1e-5, "{weighted:?} vs {want}");
        assert_eq!(weighted.get("accuracy"), plain.get("accuracy"), "metrics are not weighted");
        let ones = model.evaluate_weighted(&x, &labels, Tensor::ones([10], DType::F32), 4).unwrap();
        assert!((ones.get("loss").unwrap() - plain.get("loss").unwrap()).abs() < 1e-6);
    }
}

#[test]
fn each_output_may_take_its_own_weights() {
    use tensorjit::nn::functional::{Functional, Input};
    let x = normal(&[8, 4], 60);
    let (ya, yb) = (normal(&[8, 2], 61), normal(&[8, 1], 62));
    let (wa, wb) = (positive_weights(8, 63), positive_weights(8, 64));
    // Every model starts from the first one's weights (the global seed is not touched:
    // the other tests of this binary run alongside).
    let first: std::sync::OnceLock<Vec<Tensor>> = std::sync::OnceLock::new();
    let model = || {
        tensorjit::nn::reset_names();
        let inp = Input::new(&[4]);
        let h = inp.apply(Dense::new(5).activation(Activation::Tanh));
        let a = h.apply(Dense::new(2).with_name("a"));
        let b = h.apply(Dense::new(1).with_name("b"));
        let m = Functional::with_outputs(&[&inp], &[&a, &b]);
        m.compile_outputs(SGD::new(0.2), &[Loss::MeanSquaredError; 2], &[1.0, 0.5], &[&[], &[]], false);
        m.predict_outputs(&x, 8).unwrap();
        let start = first.get_or_init(|| m.variables().iter().map(|v| v.read()).collect());
        m.variables().iter().zip(start).for_each(|(v, t)| v.assign(t.clone()));
        m
    };
    let m = model();
    let outs = m.predict_outputs(&x, 8).unwrap();
    let weighted_mse = |y: &Tensor, p: &Tensor, w: &Tensor| {
        let per = f64s(&Loss::MeanSquaredError.per_example(y, p));
        per.iter().zip(f64s(w)).map(|(l, w)| l * w).sum::<f64>() / 8.0
    };
    let (la, lb) = (weighted_mse(&ya, &outs[0], &wa), weighted_mse(&yb, &outs[1], &wb));
    let logs = m.evaluate_weighted(&x, [&ya, &yb], [&wa, &wb], 8).unwrap();
    assert!((logs.get("a_loss").unwrap() - la).abs() < 1e-5, "{logs:?} vs {la}");
    assert!((logs.get("b_loss").unwrap() - lb).abs() < 1e-5, "{logs:?} vs {lb}");
    assert!((logs.get("loss").unwrap() - (la + 0.5 * lb)).abs() < 1e-5, "{logs:?}");
    // One tensor weighs both outputs.
    let shared = m.evaluate_weighted(&x, [&ya, &yb], &wa, 8).unwrap();
    assert!((shared.get("b_loss").unwrap() - weighted_mse(&yb, &outs[1], &wa)).abs() < 1e-5);
    // fit takes them per output too; a dataset may carry them as its last columns.
    let o = FitOptions { sample_weight: Some([&wa, &wb].into()), ..opts(2, 4) };
    let from_tensors = model().fit(&x, [&ya, &yb], &o).unwrap().get("loss");
    let ds =
        Dataset::from_tensor_slices(vec![x.clone(), ya.clone(), yb.clone(), wa.clone(), wb.clone()]).unwrap().batch(4);
    let from_dataset = model().fit_dataset(&ds, &opts(2, 4)).unwrap().get("loss");
    assert_eq!(from_tensors, from_dataset);
    assert_ne!(from_tensors, model().fit(&x, [&ya, &yb], &opts(2, 4)).unwrap().get("loss"), "the weights count");
}

#[test]
fn validation_losses_take_their_own_weights() {
    let x = normal(&[12, 4], 70);
    let labels = x.argmax(1).floormod(3);
    let (vx, vw) = (normal(&[9, 4], 71), positive_weights(9, 72));
    let vy = vx.argmax(1).floormod(3);
    let model = classifier(73);
    model.compile(SGD::new(0.2), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[Metric::Accuracy], false);
    let o = FitOptions {
        validation_data: Some(((&vx).into(), (&vy).into())),
        validation_sample_weight: Some((&vw).into()),
        ..opts(2, 4)
    };
    let h = model.fit(&x, &labels, &o).unwrap();
    // The last epoch's validation is the trained model's weighted evaluation.
    let after = model.evaluate_weighted(&vx, &vy, &vw, 4).unwrap();
    let unweighted = model.evaluate(&vx, &vy, 4).unwrap();
    let last = *h.get("val_loss").last().unwrap();
    assert!((last - after.get("loss").unwrap()).abs() < 1e-6, "{last} vs {after:?}");
    assert!((last - unweighted.get("loss").unwrap()).abs() > 1e-4, "the weights count");
    assert_eq!(h.get("val_accuracy").last().copied(), unweighted.get("accuracy"));
    // Weights that do not fit the validation examples are refused before training.
    let before = model.variables()[0].read().to_vec::<f32>().unwrap();
    let bad = FitOptions { validation_sample_weight: Some(positive_weights(5, 74).into()), ..o };
    let err = model.fit(&x, &labels, &bad).unwrap_err().to_string();
    assert!(err.contains("sample_weight must be one float per example ([9])"), "{err}");
    assert_eq!(model.variables()[0].read().to_vec::<f32>().unwrap(), before, "no step was taken");
}
