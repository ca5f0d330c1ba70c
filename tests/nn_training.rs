//! Optimizers against hand-computed updates, traced updates == eager, compile/fit/
//! evaluate/predict, fit over a Dataset, weights round-tripped through safetensors,
//! and the errors a user can hit.

use std::path::PathBuf;

use proptest::prelude::*;
use tensorjit::nn::data::{load_digits, train_test_split};
use tensorjit::nn::prelude::*;
use tensorjit::nn::Module;
use tensorjit::{function, random, DType, Tensor, Variable};

/// Host reference of one optimizer on one variable, in f64.
#[derive(Clone, Copy, Debug)]
enum Rule {
    Sgd,
    Momentum(f64),
    Nesterov(f64),
    Adam,
    AmsGrad,
    AdamW,
    Adamax,
    Nadam,
    Lion,
    Adagrad,
    Adadelta,
    RmsProp,
    RmsPropMomentum(f64),
    RmsPropCentered,
}

/// The optimizer of `rule`, with a weight decay `wd` (none if 0; AdamW keeps its 0.004).
fn make(rule: Rule, lr: f64, wd: f64) -> Box<dyn Optimizer> {
    fn decayed<O: Optimizer + 'static>(o: O, wd: f64) -> Box<dyn Optimizer> {
        Box::new(if wd > 0.0 { o.weight_decay(wd) } else { o })
    }
    match rule {
        Rule::Sgd => decayed(SGD::new(lr), wd),
        Rule::Momentum(m) => decayed(SGD::new(lr).momentum(m), wd),
        Rule::Nesterov(m) => decayed(SGD::new(lr).momentum(m).nesterov(true), wd),
        Rule::Adam => decayed(Adam::new(lr), wd),
        Rule::AmsGrad => decayed(Adam::new(lr).amsgrad(true), wd),
        Rule::AdamW => Box::new(AdamW::new(lr)),
        Rule::Adamax => decayed(Adamax::new(lr), wd),
        Rule::Nadam => decayed(Nadam::new(lr), wd),
        Rule::Lion => decayed(Lion::new(lr), wd),
        Rule::Adagrad => decayed(Adagrad::new(lr), wd),
        Rule::Adadelta => decayed(Adadelta::new(lr), wd),
        Rule::RmsProp => decayed(RMSprop::new(lr), wd),
        Rule::RmsPropMomentum(m) => decayed(RMSprop::new(lr).momentum(m), wd),
        Rule::RmsPropCentered => decayed(RMSprop::new(lr).centered(true), wd),
    }
}

/// `steps` updates of `w` by the gradients `grads[t]`, by the papers' formulas as
/// Keras 3 writes them, each after the decoupled weight decay `w ← w − w·wd·lr`.
fn reference(rule: Rule, lr: f64, wd: f64, w: &[f64], grads: &[Vec<f64>]) -> Vec<f64> {
    let mut w = w.to_vec();
    let n = w.len();
    let (mut s1, mut s2, mut s3) = (vec![0.0f64; n], vec![0.0f64; n], vec![0.0f64; n]);
    if let Rule::Adagrad = rule {
        s1 = vec![0.1; n];
    }
    let wd = if let Rule::AdamW = rule { 0.004 } else { wd };
    let mu = |t: f64| 0.9 * (1.0 - 0.5 * 0.96f64.powf(t));
    let mut u_product = 1.0;
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as f64;
        u_product *= mu(t);
        for i in 0..n {
            w[i] -= w[i] * wd * lr;
            match rule {
                Rule::Sgd => w[i] -= lr * g[i],
                Rule::Momentum(m) => {
                    s1[i] = m * s1[i] - lr * g[i];
                    w[i] += s1[i];
                }
                Rule::Nesterov(m) => {
                    s1[i] = m * s1[i] - lr * g[i];
                    w[i] += m * s1[i] - lr * g[i];
                }
                Rule::Adam | Rule::AdamW | Rule::AmsGrad => {
                    s1[i] = 0.9 * s1[i] + 0.1 * g[i];
                    s2[i] = 0.999 * s2[i] + 0.001 * g[i] * g[i];
                    s3[i] = s3[i].max(s2[i]);
                    let v = if let Rule::AmsGrad = rule { s3[i] } else { s2[i] };
                    let lr_t = lr * (1.0 - 0.999f64.powf(t)).sqrt() / (1.0 - 0.9f64.powf(t));
                    w[i] -= lr_t * s1[i] / (v.sqrt() + 1e-7);
                }
                Rule::Adamax => {
                    s1[i] = 0.9 * s1[i] + 0.1 * g[i];
                    s2[i] = (0.999 * s2[i]).max(g[i].abs());
                    w[i] -= lr * s1[i] / ((1.0 - 0.9f64.powf(t)) * (s2[i] + 1e-7));
                }
                Rule::Nadam => {
                    s1[i] = 0.9 * s1[i] + 0.1 * g[i];
                    s2[i] = 0.999 * s2[i] + 0.001 * g[i] * g[i];
                    let m_hat = mu(t + 1.0) * s1[i] / (1.0 - u_product * mu(t + 1.0))
                        + (1.0 - mu(t)) * g[i] / (1.0 - u_product);
                    let v_hat = s2[i] / (1.0 - 0.999f64.powf(t));
                    w[i] -= lr * m_hat / (v_hat.sqrt() + 1e-7);
                }
                Rule::Lion => {
                    w[i] -= lr * (0.9 * s1[i] + 0.1 * g[i]).signum();
                    s1[i] = 0.99 * s1[i] + 0.01 * g[i];
                }
                Rule::Adagrad => {
                    s1[i] += g[i] * g[i];
                    w[i] -= lr * g[i] / (s1[i] + 1e-7).sqrt();
                }
                Rule::Adadelta => {
                    s1[i] = 0.95 * s1[i] + 0.05 * g[i] * g[i];
                    let delta = -(s2[i] + 1e-7).sqrt() * g[i] / (s1[i] + 1e-7).sqrt();
                    s2[i] = 0.95 * s2[i] + 0.05 * delta * delta;
                    w[i] += lr * delta;
                }
                Rule::RmsProp => {
                    s1[i] = 0.9 * s1[i] + 0.1 * g[i] * g[i];
                    w[i] -= lr * g[i] / (s1[i] + 1e-7).sqrt();
                }
                Rule::RmsPropMomentum(m) => {
                    s1[i] = 0.9 * s1[i] + 0.1 * g[i] * g[i];
                    s2[i] = m * s2[i] + lr * g[i] / (s1[i] + 1e-7).sqrt();
                    w[i] -= s2[i];
                }
                Rule::RmsPropCentered => {
                    s1[i] = 0.9 * s1[i] + 0.1 * g[i] * g[i];
                    s2[i] = 0.9 * s2[i] + 0.1 * g[i];
                    w[i] -= lr * g[i] / (s1[i] - s2[i] * s2[i] + 1e-7).sqrt();
                }
            }
        }
    }
    w
}

fn rules() -> impl Strategy<Value = Rule> {
    prop_oneof![
        Just(Rule::Sgd),
        (0.1f64..0.95).prop_map(Rule::Momentum),
        (0.1f64..0.95).prop_map(Rule::Nesterov),
        Just(Rule::Adam),
        Just(Rule::AmsGrad),
        Just(Rule::AdamW),
        Just(Rule::Adamax),
        Just(Rule::Nadam),
        Just(Rule::Lion),
        Just(Rule::Adagrad),
        Just(Rule::Adadelta),
        Just(Rule::RmsProp),
        (0.1f64..0.95).prop_map(Rule::RmsPropMomentum),
        Just(Rule::RmsPropCentered),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Each optimizer's updates match the hand-computed formulas (f64 variables, so the
    /// comparison is tight), with and without weight decay; the loss `Σ c·w²` gives
    /// gradients 2·c·w each step.
    #[test]
    fn optimizer_steps_match_hand_computed_updates(
        rule in rules(),
        lr in 0.001f64..0.3,
        wd in prop_oneof![Just(0.0), 0.001f64..0.2],
        seed in any::<u64>(),
        steps in 1usize..6,
    ) {
        let w0 = random::normal([4], 0.0, 1.0, DType::F64, Some(seed)).to_vec::<f64>().unwrap();
        let c = random::uniform([4], 0.5, 2.0, DType::F64, Some(seed ^ 1));
        let cv = c.to_vec::<f64>().unwrap();
        let w = Variable::new(Tensor::from_vec(w0.clone(), [4]).unwrap(), "w");
        let opt = make(rule, lr, wd);
        let mut grads = Vec::new();
        for _ in 0..steps {
            let now = w.read().to_vec::<f64>().unwrap();
            grads.push(now.iter().zip(&cv).map(|(w, c)| 2.0 * c * w).collect::<Vec<f64>>());
            opt.minimize(&|| (&c * &w.read().square()).sum_all(), std::slice::from_ref(&w));
        }
        // The reference with the gradients of the trajectory (slots carry over).
        let want = reference(rule, lr, wd, &w0, &grads);
        let got = w.read().to_vec::<f64>().unwrap();
        for i in 0..4 {
            prop_assert!((got[i] - want[i]).abs() <= 1e-9 * want[i].abs().max(1.0), "{:?}: {} vs {}", rule, got[i], want[i]);
        }
        prop_assert_eq!(opt.state().iterations().read().to_scalar::<i64>().unwrap(), steps as i64);
    }
}

/// Weight decay skips the variables named in `exclude_from_weight_decay` and those
/// without a gradient; AdamW's default decay is Keras' 0.004; a negative rate is refused.
#[test]
fn weight_decay_spares_excluded_variables() {
    let kernel = Variable::new(random::normal([3], 0.0, 1.0, DType::F64, Some(71)), "dense/kernel");
    let bias = Variable::new(random::normal([3], 0.0, 1.0, DType::F64, Some(72)), "dense/bias");
    let unused = Variable::new(random::normal([3], 0.0, 1.0, DType::F64, Some(73)), "dense_1/kernel");
    let (k0, b0, u0) = (kernel.read(), bias.read(), unused.read());
    let opt = SGD::new(0.1).weight_decay(0.5).exclude_from_weight_decay(&["bias"]);
    assert_eq!(opt.weight_decay_rate(), Some(0.5));
    let vars = [kernel.clone(), bias.clone(), unused.clone()];
    opt.minimize(&|| (&kernel.read() + &bias.read()).sum_all(), &vars);
    // Gradients are all 1: the kernel decays by lr·wd = 5 % first, the bias does not.
    let want_k: Vec<f64> = k0.to_vec::<f64>().unwrap().iter().map(|w| w - w * 0.5 * 0.1 - 0.1).collect();
    let want_b: Vec<f64> = b0.to_vec::<f64>().unwrap().iter().map(|w| w - 0.1).collect();
    assert_eq!(kernel.read().to_vec::<f64>().unwrap(), want_k);
    assert_eq!(bias.read().to_vec::<f64>().unwrap(), want_b);
    assert_eq!(unused.read().to_vec::<f64>().unwrap(), u0.to_vec::<f64>().unwrap(), "no gradient, no decay");
    assert_eq!(AdamW::new(0.01).weight_decay_rate(), Some(0.004));
    assert_eq!(AdamW::new(0.01).weight_decay(0.0).weight_decay_rate(), None);
    let r = std::panic::catch_unwind(|| Adam::new(0.01).weight_decay(-1.0));
    let msg = *r.err().unwrap().downcast::<String>().unwrap();
    assert!(msg.contains("Adam: weight_decay must be a finite number ≥ 0, got -1"), "{msg}");
    assert!(msg.contains("nn_training.rs"), "{msg}");
    let r = std::panic::catch_unwind(|| Lion::new(0.01).betas(0.0, 0.99));
    let msg = *r.err().unwrap().downcast::<String>().unwrap();
    assert!(msg.contains("Lion: beta_1 must be in (0, 1]"), "{msg}");
}

/// Nadam's momentum product is a variable of the optimizer: traced updates follow it
/// without retracing and equal eager ones bit for bit, and it is listed with the
/// optimizer's variables (so checkpoints carry it).
#[test]
fn traced_nadam_and_adamw_steps_equal_eager_ones() {
    for which in ["Nadam", "AdamW"] {
        let run = |eager: bool| {
            let w = Variable::new(random::normal([3, 2], 0.0, 1.0, DType::F32, Some(81)), "w");
            let x = random::normal([5, 3], 0.0, 1.0, DType::F32, Some(82));
            let opt: std::sync::Arc<dyn Optimizer> = match which {
                "Nadam" => std::sync::Arc::new(Nadam::new(0.05)),
                _ => std::sync::Arc::new(AdamW::new(0.05).weight_decay(0.1)),
            };
            let (w2, o2) = (w.clone(), opt.clone());
            let step = function("opt_step", move |x: Tensor| {
                o2.minimize(&|| x.matmul(&w2.read()).tanh().sum_all(), std::slice::from_ref(&w2))
            })
            .with_run_eagerly(eager);
            for _ in 0..4 {
                step.call(x.clone());
            }
            let names: Vec<String> = opt.variables().iter().map(|v| v.name().to_string()).collect();
            (w.read().to_vec::<f32>().unwrap(), step.tracing_count(), names)
        };
        let (eager, _, names) = run(true);
        let (traced, traces, _) = run(false);
        assert_eq!(eager, traced, "{which}");
        assert_eq!(traces, 1, "{which}");
        if which == "Nadam" {
            assert!(names.iter().any(|n| n == "Nadam/u_product"), "{names:?}");
        }
    }
}

/// Optimizer updates inside a traced function are bit-identical to eager ones, and
/// changing the learning rate (a variable) does not retrace.
#[test]
fn traced_optimizer_steps_equal_eager_ones() {
    let run = |eager: bool| {
        let w = Variable::new(random::normal([3, 2], 0.0, 1.0, DType::F32, Some(61)), "w");
        let x = random::normal([5, 3], 0.0, 1.0, DType::F32, Some(62));
        let opt = std::sync::Arc::new(Adam::new(0.05));
        let (w2, o2) = (w.clone(), opt.clone());
        let step = function("adam_step", move |x: Tensor| {
            o2.minimize(&|| x.matmul(&w2.read()).tanh().sum_all(), std::slice::from_ref(&w2))
        })
        .with_run_eagerly(eager);
        for i in 0..5 {
            if i == 3 {
                opt.set_learning_rate(0.01);
            }
            step.call(x.clone());
        }
        (w.read().to_vec::<f32>().unwrap(), step.tracing_count())
    };
    let (eager, _) = run(true);
    let (traced, traces) = run(false);
    assert_eq!(eager, traced);
    assert_eq!(traces, 1);
}

fn digits() -> (Tensor, Tensor, Tensor, Tensor) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/digits.csv.gz");
    let (x, y) = load_digits(path).unwrap();
    assert_eq!((x.dims(), y.dims()), (&[1797, 64][..], &[1797][..]));
    train_test_split(&x, &y, 0.25, 1).unwrap()
}

fn mlp(seed: u64) -> Sequential {
    let m = Sequential::new(vec![Dense::new(32).activation(Activation::Relu).boxed(), Dense::new(10).boxed()])
        .with_input_shape(&[64]);
    // Seeded weights (other tests draw from the global sequence concurrently).
    for (i, v) in m.variables().iter().enumerate() {
        if v.shape().rank() == 2 {
            v.assign(random::glorot_uniform(v.shape().clone(), DType::F32, Some(seed + i as u64)));
        }
    }
    m
}

#[test]
fn fit_learns_the_digits_identically_eager_and_traced() {
    let (xt, yt, xv, yv) = digits();
    let opts = FitOptions {
        epochs: 4,
        batch_size: 64,
        shuffle: Some(3),
        validation_data: Some((xv.clone().into(), yv.clone().into())),
        verbose: false,
        ..FitOptions::default()
    };
    let mut results = Vec::new();
    for run_eagerly in [true, false] {
        let model = mlp(70);
        model.compile(
            Adam::new(0.01),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &[Metric::Accuracy],
            run_eagerly,
        );
        let h = model.fit(&xt, &yt, &opts).unwrap();
        assert_eq!(h.get("loss").len(), 4);
        assert!(h.get("loss")[3] < h.get("loss")[0], "{:?}", h.get("loss"));
        let eval = model.evaluate(&xv, &yv, 100).unwrap();
        let (a, b) = (eval.get("accuracy").unwrap(), h.get("val_accuracy").last().copied().unwrap());
        assert!((a - b).abs() < 1e-6, "evaluate {a} vs the last val_accuracy {b}");
        assert!(eval.get("accuracy").unwrap() > 0.9, "{eval:?}");
        let pred = model.predict(&xv, 100).unwrap();
        assert_eq!(pred.dims(), &[xv.dims()[0], 10]);
        if !run_eagerly {
            // Batches of 64 plus one remainder batch: two signatures.
            assert_eq!(model.train_tracing_count(), 2);
        }
        results.push((h.get("loss"), pred.to_vec::<f32>().unwrap()));
    }
    assert_eq!(results[0], results[1], "run_eagerly does not change results");
}

#[test]
fn fit_over_a_dataset_and_binary_accuracy() {
    let x = random::normal([96, 2], 0.0, 1.0, DType::F32, Some(81));
    let y = x.sum(-1, true).gt(0.0).cast(DType::F32);
    let model = Sequential::new(vec![Dense::new(1).boxed()]).with_input_shape(&[2]);
    model.compile(
        SGD::new(0.5).momentum(0.5),
        Loss::BinaryCrossentropy { from_logits: true },
        &[Metric::Accuracy],
        false,
    );
    let ds = Dataset::from_tensor_slices(vec![x.clone(), y.clone()]).unwrap().shuffle(96, 1).batch(16);
    let opts = FitOptions { epochs: 10, verbose: false, ..FitOptions::default() };
    let h = model.fit_dataset(&ds, &opts).unwrap();
    assert!(h.get("accuracy").last().copied().unwrap() > 0.9, "{:?}", h.get("accuracy"));
}

#[test]
fn top_k_accuracies_are_reported_eager_and_traced_alike() {
    let x = random::normal([60, 5], 0.0, 1.0, DType::F32, Some(91));
    let labels = x.argmax(-1);
    let run = |run_eagerly: bool| {
        let model = Sequential::new(vec![Dense::new(5).kernel_initializer(Initializer::Constant(0.1)).boxed()])
            .with_input_shape(&[5]);
        model.compile(
            Adam::new(0.05),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &[Metric::Accuracy, Metric::SparseTopKCategoricalAccuracy { k: 2 }],
            run_eagerly,
        );
        let opts = FitOptions { epochs: 4, batch_size: 20, verbose: false, ..FitOptions::default() };
        let h = model.fit(&x, &labels, &opts).unwrap();
        let eval = model.evaluate(&x, &labels, 20).unwrap();
        (h.get("accuracy"), h.get("sparse_top_k_categorical_accuracy"), eval)
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!(eager, traced);
    let (top1, top2, _) = eager;
    assert_eq!(top2.len(), 4);
    for (a, b) in top1.iter().zip(&top2) {
        assert!(b >= a, "top-2 accuracy {b} is at least the accuracy {a}");
    }
}

#[test]
fn weights_round_trip_through_safetensors_by_name() {
    let dir = std::env::temp_dir().join(format!("tensorjit-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("model.safetensors");
    let build = |seed: u64| {
        let m = Sequential::named(
            "net",
            vec![
                Dense::new(6).with_name("hidden").activation(Activation::Tanh).boxed(),
                BatchNormalization::new().with_name("bn").boxed(),
                Dense::new(2).with_name("out").boxed(),
            ],
        )
        .with_input_shape(&[4]);
        for (i, v) in m.variables().iter().enumerate() {
            v.assign(random::uniform(v.shape().clone(), 0.5, 1.5, DType::F32, Some(seed * 100 + i as u64)));
        }
        m
    };
    let (a, b) = (build(1), build(2));
    let x = random::normal([3, 4], 0.0, 1.0, DType::F32, Some(91));
    assert_ne!(a.call(&x, false).to_vec::<f32>().unwrap(), b.call(&x, false).to_vec::<f32>().unwrap());
    a.save_weights(&file).unwrap();
    b.load_weights(&file).unwrap();
    assert_eq!(a.call(&x, false).to_vec::<f32>().unwrap(), b.call(&x, false).to_vec::<f32>().unwrap());
    for (va, vb) in a.variables().iter().zip(b.variables()) {
        assert_eq!(va.read().to_vec::<f32>().unwrap(), vb.read().to_vec::<f32>().unwrap(), "{}", va.name());
    }
    // A model whose variables are not in the file: an error naming the variable.
    let other = Sequential::named("other", vec![Dense::new(2).with_name("out").boxed()]).with_input_shape(&[6]);
    let msg = other.load_weights(&file).unwrap_err().to_string();
    assert!(msg.contains("no tensor named 'other/out/kernel'"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn training_api_errors_say_what_to_do() {
    let model = Sequential::new(vec![Dense::new(1).boxed()]);
    let x = random::normal([8, 3], 0.0, 1.0, DType::F32, Some(95));
    let msg = model.fit(&x, &x, &FitOptions::default()).unwrap_err().to_string();
    assert_eq!(msg, "fit needs a compiled model: call compile(optimizer, loss, …) first");
    model.compile(SGD::new(0.1), Loss::MeanSquaredError, &[], false);
    let y = random::normal([7, 1], 0.0, 1.0, DType::F32, Some(96));
    let msg = model.fit(&x, &y, &FitOptions::default()).unwrap_err().to_string();
    assert!(
        msg.contains("fit: x and y need the same number of examples on axis 0, got x f32[8,3] and y f32[7,1]"),
        "{msg}"
    );
    let msg = model.evaluate(&x, x.narrow(0, 0, 8), 0).unwrap_err().to_string();
    assert!(msg.contains("batch_size >= 1"), "{msg}");
    // Targets the loss cannot take are refused before any step (not raised inside it).
    model.call(&x, false);
    let before = model.variables()[0].read().to_vec::<f32>().unwrap();
    let wide = random::normal([8, 3], 0.0, 1.0, DType::F32, Some(97));
    let msg = model.fit(&x, &wide, &FitOptions::default()).unwrap_err().to_string();
    assert!(msg.contains("fit: mean_squared_error: targets f32[8,3] do not match predictions (None, 1)"), "{msg}");
    assert_eq!(model.variables()[0].read().to_vec::<f32>().unwrap(), before, "no step ran");
    let msg = model.evaluate(&x, &wide, 4).unwrap_err().to_string();
    assert!(msg.starts_with("evaluate: mean_squared_error: targets f32[8,3]"), "{msg}");
    let classifier = Sequential::new(vec![Dense::new(4).boxed()]);
    classifier.compile(SGD::new(0.1), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[], false);
    let labels = Tensor::zeros([8, 2], DType::I64);
    let msg = classifier.fit(&x, &labels, &FitOptions::default()).unwrap_err().to_string();
    assert!(msg.contains("integer labels of their shape without the class axis"), "{msg}");
    assert!(msg.contains("got labels i64[8,2] and predictions (None, 4)"), "{msg}");
    // A declared input shape is checked before any step; a model built by its first
    // call takes what its layers take.
    let declared = Sequential::new(vec![Dense::new(2).boxed()]).with_input_shape(&[3]);
    declared.compile(SGD::new(0.1), Loss::MeanSquaredError, &[], false);
    let five = random::normal([8, 5], 0.0, 1.0, DType::F32, Some(99));
    let msg = declared.predict(&five, 4).unwrap_err().to_string();
    assert!(
        msg.contains("predict: Sequential") && msg.contains("takes inputs (None, 3) (its input shape), got f32[8,5]"),
        "{msg}"
    );
    assert!(declared.predict(&x, 4).is_ok());
    // [batch] targets of a [batch, 1] output are taken, as Keras takes them.
    let column = random::normal([8], 0.0, 1.0, DType::F32, Some(98));
    let opts = FitOptions { verbose: false, ..FitOptions::default() };
    assert!(model.fit(&x, &column, &opts).is_ok());
}

/// Labels numbered from 1 (a common slip) leave class 10 of a 10-way model out of
/// range: its one-hot row would be zeros and the example's loss a silent 0. `fit`,
/// `fit_dataset` and `evaluate` refuse them before any step, naming the label and its
/// example, eager or traced; the weights are untouched.
#[test]
fn sparse_labels_outside_the_classes_are_refused_before_training() {
    let (x, y, _, _) = digits();
    let (x, y) = (x.narrow(0, 0, 64), y.narrow(0, 0, 64));
    let shifted = &y.cast(DType::I64) + 1i64;
    let first_ten = shifted.to_vec::<i64>().unwrap().iter().position(|&l| l == 10).expect("a 9 among 64 digits");
    let want = format!("label 10 (example {first_ten}) is outside the valid range [0, 10)");
    for run_eagerly in [false, true] {
        let model = mlp(5);
        model.compile(
            Adam::new(1e-2),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &[Metric::Accuracy],
            run_eagerly,
        );
        let before: Vec<Vec<f32>> = model.variables().iter().map(|v| v.read().to_vec::<f32>().unwrap()).collect();
        let opts = FitOptions { epochs: 1, verbose: false, ..FitOptions::default() };
        let msg = model.fit(&x, &shifted, &opts).unwrap_err().to_string();
        assert!(msg.starts_with("fit: ") && msg.contains(&want), "{msg}");
        let msg = model.evaluate(&x, shifted.cast(DType::F32), 16).unwrap_err().to_string();
        assert!(msg.starts_with("evaluate: ") && msg.contains(&want), "float labels too: {msg}");
        let ds = Dataset::from_tensor_slices(vec![x.clone(), shifted.clone()]).unwrap().batch(64);
        let msg = model.fit_dataset(&ds, &opts).unwrap_err().to_string();
        assert!(msg.contains(&want), "{msg}");
        let after: Vec<Vec<f32>> = model.variables().iter().map(|v| v.read().to_vec::<f32>().unwrap()).collect();
        assert_eq!(before, after, "no step ran");
        // The labels as they are train.
        assert!(model.fit(&x, &y, &opts).is_ok());
    }
}
