//! Layers of `tensorjit::nn`: shapes, values against host references, gradients,
//! names, weight sharing, lazy building (also inside a trace), BatchNormalization's
//! moving statistics eager == traced, Dropout, summary, error messages.

use proptest::prelude::*;
use tensorjit::nn::prelude::*;
use tensorjit::nn::{layers::ActivationLayer, Module};
use tensorjit::{function, random, DType, GradientTape, Tensor, Variable};

fn normal(dims: &[usize], seed: u64) -> Tensor {
    random::normal(dims, 0.0, 1.0, DType::F32, Some(seed))
}

fn vec32(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

fn close(a: &[f32], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!((x as f64 - y).abs() <= tol * y.abs().max(1.0), "element {i}: {x} vs {y}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Dense = relu(x·W + b), checked against a host loop, with its gradients.
    #[test]
    fn dense_matches_a_host_reference(batch in 1usize..6, fan_in in 1usize..9, units in 1usize..7, seed in any::<u64>()) {
        let layer = Dense::new(units).activation(Activation::Relu);
        let x = normal(&[batch, fan_in], seed);
        let y = layer.call(&x, false);
        prop_assert_eq!(y.dims(), &[batch, units]);
        let (w, b) = (vec32(&layer.kernel().unwrap().read()), vec32(&layer.bias().unwrap().read()));
        prop_assert!(b.iter().all(|&v| v == 0.0), "bias starts at zeros");
        let xs = vec32(&x);
        let mut want = vec![0.0f64; batch * units];
        for i in 0..batch {
            for j in 0..units {
                let s: f64 = (0..fan_in).map(|k| xs[i * fan_in + k] as f64 * w[k * units + j] as f64).sum::<f64>() + b[j] as f64;
                want[i * units + j] = s.max(0.0);
            }
        }
        close(&vec32(&y), &want, 1e-5);

        // d sum(x·W + b) / dW[k, j] = Σ_i x[i, k]; / db[j] = batch.
        let linear = Dense::new(units);
        let tape = GradientTape::new();
        let out = linear.call(&x, true).sum_all();
        let vars = linear.trainable_variables();
        let g = tape.gradient(&out, &vars);
        let gw = vec32(g[0].as_ref().unwrap());
        let col: Vec<f64> = (0..fan_in).map(|k| (0..batch).map(|i| xs[i * fan_in + k] as f64).sum()).collect();
        let want_w: Vec<f64> = (0..fan_in * units).map(|e| col[e / units]).collect();
        close(&gw, &want_w, 1e-5);
        close(&vec32(g[1].as_ref().unwrap()), &vec![batch as f64; units], 1e-6);
    }
}

#[test]
fn conv_and_pool_shapes_follow_keras() {
    let x = normal(&[2, 28, 28, 3], 1);
    let cases: Vec<(ModuleRef, [usize; 4])> = vec![
        (Conv2D::new(8, [3, 3]).strides([2, 2]).boxed(), [2, 13, 13, 8]),
        (Conv2D::new(4, [3, 3]).padding(Padding::Same).boxed(), [2, 28, 28, 4]),
        (Conv2D::new(4, [5, 5]).strides([2, 2]).padding(Padding::Same).boxed(), [2, 14, 14, 4]),
        (MaxPool2D::new([2, 2]).boxed(), [2, 14, 14, 3]),
        (AvgPool2D::new([3, 3]).strides([2, 2]).boxed(), [2, 13, 13, 3]),
        (Flatten::new().boxed(), [2, 28 * 28 * 3, 0, 0]),
    ];
    for (layer, want) in cases {
        let y = layer.call(&x, false);
        let rank = if want[2] == 0 { 2 } else { 4 };
        assert_eq!(y.dims(), &want[..rank], "{}", layer.name());
        let spec: Vec<Option<usize>> = layer.output_shape(&[None, Some(28), Some(28), Some(3)]);
        assert_eq!(spec[1..].iter().map(|d| d.unwrap()).collect::<Vec<_>>(), &want[1..rank], "{}", layer.name());
    }
}

/// The Conv2D kernel gradient against central differences of the loss.
#[test]
fn conv2d_gradients_match_finite_differences() {
    let layer = Conv2D::new(2, [3, 3]).strides([2, 2]).padding(Padding::Same).activation(Activation::Tanh);
    let x = random::normal([2, 5, 5, 2], 0.0, 1.0, DType::F64, Some(5)).cast(DType::F32);
    let target = normal(&[2, 3, 3, 2], 6);
    let loss = |l: &Conv2D| (l.call(&x, true) - &target).square().sum_all();
    let tape = GradientTape::new();
    let l0 = loss(&layer);
    let kernel = layer.kernel().unwrap();
    let g = vec32(&tape.gradient(&l0, &[&kernel])[0].clone().unwrap());
    let k0 = vec32(&kernel.read());
    for &i in &[0usize, 7, 18, 35] {
        let h = 1e-2f32;
        let mut plus = k0.clone();
        plus[i] += h;
        kernel.assign(Tensor::from_vec(plus, [3, 3, 2, 2]).unwrap());
        let lp = loss(&layer).to_scalar::<f32>().unwrap();
        let mut minus = k0.clone();
        minus[i] -= h;
        kernel.assign(Tensor::from_vec(minus, [3, 3, 2, 2]).unwrap());
        let lm = loss(&layer).to_scalar::<f32>().unwrap();
        let fd = (lp - lm) / (2.0 * h);
        assert!((fd - g[i]).abs() <= 2e-2 * fd.abs().max(1.0), "kernel[{i}]: tape {} vs finite differences {fd}", g[i]);
    }
}

#[test]
fn variables_get_hierarchical_names_which_can_be_overridden() {
    // Automatic names are unique per kind (other tests create layers concurrently, so
    // only the pattern is checked here).
    let (a, b) = (Dense::new(1), Dense::new(1));
    assert!(a.name().starts_with("dense") && b.name().starts_with("dense_") && a.name() != b.name());
    let model = Sequential::named(
        "sequential",
        vec![
            Dense::new(4).with_name("dense").boxed(),
            Dense::new(2).with_name("head").boxed(),
            BatchNormalization::new().with_name("batch_normalization").boxed(),
        ],
    )
    .with_input_shape(&[3]);
    let names: Vec<String> = model.variables().iter().map(|v| v.name().to_string()).collect();
    assert_eq!(
        names,
        [
            "sequential/dense/kernel",
            "sequential/dense/bias",
            "sequential/head/kernel",
            "sequential/head/bias",
            "sequential/batch_normalization/gamma",
            "sequential/batch_normalization/beta",
            "sequential/batch_normalization/moving_mean",
            "sequential/batch_normalization/moving_variance",
        ]
    );
    assert_eq!(model.trainable_variables().len(), 6);
    assert_eq!(model.non_trainable_variables().len(), 2);
}

#[test]
fn reusing_a_layer_instance_shares_its_weights() {
    let shared = Dense::new(3).activation(Activation::Tanh);
    let a = Sequential::new(vec![shared.clone().boxed(), Dense::new(1).boxed()]);
    let b = Sequential::new(vec![shared.clone().boxed()]);
    let x = normal(&[4, 5], 11);
    a.call(&x, false);
    let before = vec32(&b.call(&x, false));
    assert_eq!(b.variables().len(), 2, "b owns no weights of its own");
    assert_eq!(a.variables()[0].id(), b.variables()[0].id());
    // Training `a` moves the shared kernel, so `b`'s output changes.
    let opt = SGD::new(0.5);
    opt.minimize(&|| a.call(&x, true).square().mean_all(), &a.trainable_variables());
    let after = vec32(&b.call(&x, false));
    assert_ne!(before, after);
    // The same layer twice in one model: its variables are listed once.
    let twice = Sequential::new(vec![
        Dense::new(5).boxed(),
        shared.clone().boxed(),
        ActivationLayer::new(Activation::Relu).boxed(),
    ]);
    twice.call(&x, false);
    assert_eq!(twice.variables().len(), 4);
}

/// A model first called inside a traced function builds there (its weights are made
/// outside the trace, once), like Keras' first call under tf.function.
#[test]
fn a_model_builds_lazily_on_its_first_traced_call() {
    let model = Sequential::new(vec![Dense::new(4).activation(Activation::Relu).boxed(), Dense::new(2).boxed()]);
    let m = model.clone();
    let f = function("lazy_build", move |x: Tensor| m.call(&x, false));
    let x = normal(&[3, 6], 12);
    let traced = vec32(&f.call(x.clone()));
    assert!(model.is_built());
    assert_eq!(model.variables().len(), 4);
    assert_eq!(vec32(&model.call(&x, false)), traced, "traced == eager");
    f.call(normal(&[3, 6], 13));
    assert_eq!(model.variables().len(), 4, "no new variables on later calls");
    // Plain variable creation inside a trace is still an error that says why.
    let g = function("bad", |x: Tensor| {
        let v = Variable::new(Tensor::zeros([2], DType::F32), "v");
        &x + &v
    });
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.call(normal(&[2], 14)))).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("created inside a traced function") && msg.contains("nn_layers.rs"), "{msg}");
}

fn bn_run(eager: bool) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    // Fixed initial weights: other tests draw from the global random sequence meanwhile.
    let bn = BatchNormalization::new().momentum(0.9);
    let dense = Dense::new(3).kernel_initializer(Initializer::RandomUniform { low: -1.0, high: 1.0 });
    let model = Sequential::new(vec![dense.clone().boxed(), bn.clone().boxed()]).with_input_shape(&[5]);
    dense.kernel().unwrap().assign(random::uniform([5, 3], -1.0, 1.0, DType::F32, Some(21)));
    let m = model.clone();
    let step = function("bn_step", move |x: Tensor| m.call(&x, true)).with_run_eagerly(eager);
    let mut last = Vec::new();
    for i in 0..4 {
        last = vec32(&step.call(random::normal([8, 5], 1.0, 2.0, DType::F32, Some(100 + i))));
    }
    (vec32(&bn.moving_mean().unwrap().read()), vec32(&bn.moving_variance().unwrap().read()), last)
}

#[test]
fn batch_normalization_updates_its_moving_statistics_identically_eager_and_traced() {
    let eager = bn_run(true);
    let traced = bn_run(false);
    assert_eq!(eager, traced, "bit-identical eager vs traced");
    assert!(eager.0.iter().all(|&m| m != 0.0) && eager.1.iter().all(|&v| v != 1.0), "{eager:?}");
}

#[test]
fn batch_normalization_normalises_in_training_and_uses_moving_stats_at_inference() {
    let bn = BatchNormalization::new().momentum(0.5);
    let x = random::normal([64, 3], 4.0, 3.0, DType::F32, Some(31));
    let y = bn.call(&x, true);
    let (mean, var) = (y.mean(0, false), (&y - &y.mean(0, true)).square().mean(0, false));
    for (m, v) in vec32(&mean).iter().zip(vec32(&var)) {
        assert!(m.abs() < 1e-4 && (v - 1.0).abs() < 1e-2, "mean {m} var {v}");
    }
    // One update with momentum 0.5: moving = 0.5·initial + 0.5·batch.
    let xs = vec32(&x);
    for c in 0..3 {
        let col: Vec<f64> = (0..64).map(|i| xs[i * 3 + c] as f64).collect();
        let m = col.iter().sum::<f64>() / 64.0;
        let v = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 64.0;
        let mm = vec32(&bn.moving_mean().unwrap().read())[c] as f64;
        let mv = vec32(&bn.moving_variance().unwrap().read())[c] as f64;
        assert!((mm - 0.5 * m).abs() < 1e-4 && (mv - (0.5 + 0.5 * v)).abs() < 1e-3, "channel {c}: {mm} {mv}");
    }
    // Inference: (x − moving_mean) / sqrt(moving_var + ε); the statistics do not move.
    let before = vec32(&bn.moving_mean().unwrap().read());
    let z = vec32(&bn.call(&x, false));
    assert_eq!(before, vec32(&bn.moving_mean().unwrap().read()));
    let mv = vec32(&bn.moving_variance().unwrap().read());
    let want: Vec<f64> =
        (0..64 * 3).map(|e| (xs[e] as f64 - before[e % 3] as f64) / (mv[e % 3] as f64 + 1e-3).sqrt()).collect();
    close(&z, &want, 1e-4);
}

#[test]
fn summary_lists_layers_shapes_and_parameter_totals() {
    let model = Sequential::named(
        "cnn",
        vec![
            Conv2D::new(8, [3, 3]).strides([2, 2]).with_name("conv2d").boxed(),
            BatchNormalization::new().with_name("batch_normalization").boxed(),
            Flatten::new().boxed(),
            Dense::new(1).boxed(),
        ],
    )
    .with_input_shape(&[28, 28, 1]);
    let bn = model.get_layer("batch_normalization").expect("a layer by its name");
    assert_eq!(bn.kind(), "BatchNormalization");
    assert_eq!(bn.non_trainable_variables().len(), 2, "the moving statistics");
    let s = model.summary();
    for line in [
        "Model: \"cnn\"",
        "conv2d (Conv2D)",
        "(None, 13, 13, 8)",
        "batch_normalization (BatchNormalization)",
        "(None, 1352)",
        "Total params: 1,465 (5.72 KB)",
        "Trainable params: 1,449",
        "Non-trainable params: 16 (64 B)",
    ] {
        assert!(s.contains(line), "missing {line:?} in\n{s}");
    }
}

#[test]
fn incompatible_inputs_name_the_layer_the_shapes_and_the_call_site() {
    let layer = Dense::new(2).with_name("classifier");
    layer.call(&normal(&[2, 4], 51), false);
    let err = std::panic::catch_unwind(|| layer.call(&normal(&[2, 3], 52), false)).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains(
            "Dense 'classifier': input f32[2,3] is incompatible with the layer: expected rank >= 2 with last axis 4"
        ),
        "{msg}"
    );
    assert!(msg.contains("nn_layers.rs"), "{msg}");
    let conv = Conv2D::new(2, [3, 3]);
    let err = std::panic::catch_unwind(|| conv.call(&normal(&[2, 3], 53), false)).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("needs NHWC inputs (rank 4)"), "{msg}");
}

/// A seeded Dropout draws a new mask per call that depends only on its seed and call
/// count: the same sequence eagerly and traced, whatever else draws random numbers
/// (other tests do, concurrently).
#[test]
fn seeded_dropout_repeats_its_masks_eager_and_traced() {
    let x = random::uniform([512], 1.0, 2.0, DType::F32, Some(77));
    let masks = |eager: bool| {
        let layer = Dropout::new(0.5).with_seed(9);
        let l = layer.clone();
        let f = function("seeded_dropout", move |x: Tensor| l.call(&x, true)).with_run_eagerly(eager);
        let _unrelated = random::normal([64], 0.0, 1.0, DType::F32, None);
        let out: Vec<Vec<bool>> =
            (0..3).map(|_| vec32(&f.call(x.clone())).iter().map(|&v| v == 0.0).collect()).collect();
        assert_eq!(layer.calls(), Some(3));
        out
    };
    let (eager, traced) = (masks(true), masks(false));
    assert_eq!(eager, traced);
    assert_ne!(eager[0], eager[1], "a new mask per call");
    let dropped = eager[0].iter().filter(|&&d| d).count();
    assert!((180..330).contains(&dropped), "{dropped} of 512 at rate 0.5");
    let other_seed = Dropout::new(0.5).with_seed(10);
    let m: Vec<bool> = vec32(&other_seed.call(&x, true)).iter().map(|&v| v == 0.0).collect();
    assert_ne!(m, eager[0]);
}

/// The global poolings reduce the spatial axes (kept with keepdims), Reshape rearranges
/// each example; a model using them gives the eager values when traced.
#[test]
fn global_poolings_and_reshape() {
    let x = random::normal([2, 5, 4, 3], 0.0, 1.0, DType::F32, Some(70));
    let vals = |t: &Tensor| t.to_vec::<f32>().unwrap();
    assert_eq!(vals(&GlobalAveragePooling2D::new().call(&x, false)), vals(&x.mean(vec![1i64, 2], false)));
    assert_eq!(vals(&GlobalMaxPooling2D::new().call(&x, false)), vals(&x.max(vec![1i64, 2], false)));
    let seq = x.reshape([2, 20, 3]);
    assert_eq!(vals(&GlobalAveragePooling1D::new().call(&seq, false)), vals(&seq.mean(1, false)));
    let kept = GlobalMaxPooling1D::new().keepdims(true);
    assert_eq!(kept.call(&seq, false).dims(), &[2, 1, 3]);
    assert_eq!(kept.output_shape(&[None, Some(20), Some(3)]), vec![None, Some(1), Some(3)]);
    assert_eq!(GlobalAveragePooling2D::new().output_shape(&[None, Some(5), Some(4), Some(3)]), vec![None, Some(3)]);

    let model = Sequential::new(vec![
        Conv2D::new(4, [3, 3]).padding(Padding::Same).activation(Activation::Relu).boxed(),
        GlobalAveragePooling2D::new().boxed(),
        Dense::new(6).boxed(),
        Reshape::new(&[Some(2), None]).boxed(),
        GlobalMaxPooling1D::new().boxed(),
    ])
    .with_input_shape(&[5, 4, 3]);
    assert!(model.summary().contains("(None, 2, 3)"), "{}", model.summary());
    let m = model.clone();
    let traced = function("pooled", move |x: Tensor| m.call(&x, false));
    for n in [1, 3] {
        let x = random::normal([n, 5, 4, 3], 0.0, 1.0, DType::F32, Some(71 + n as u64));
        let eager = model.call(&x, false);
        assert_eq!(eager.dims(), &[n, 3]);
        assert_eq!(vals(&traced.call(x.clone())), vals(&eager));
    }

    let err = |f: &dyn Fn()| {
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    let msg = err(&|| drop(Reshape::new(&[None, None])));
    assert!(msg.contains("at most one dim of the target may be None"), "{msg}");
    let msg = err(&|| drop(Reshape::new(&[Some(5)]).call(&x.reshape([2, 60]), false)));
    assert!(msg.contains("cannot reshape examples of shape (60,) to (5,)"), "{msg}");
    let msg = err(&|| drop(GlobalAveragePooling2D::new().call(&seq, false)));
    assert!(msg.contains("GlobalAveragePooling2D") && msg.contains("rank 4"), "{msg}");
}

/// Conv1D and the 1-D poolings against loops over the steps (valid and same padding,
/// strides), in a model traced for an unknown batch size, bit-identical to eager.
#[test]
fn conv1d_and_1d_pooling_follow_their_definitions() {
    let x = random::normal([2, 9, 3], 0.0, 1.0, DType::F32, Some(80));
    let xv = x.to_vec::<f32>().unwrap();
    for (padding, stride) in [(Padding::Valid, 1), (Padding::Same, 2), (Padding::Valid, 3)] {
        let conv = Conv1D::new(4, 3).strides(stride).padding(padding);
        let y = conv.call(&x, false);
        let kernel = conv.kernel().unwrap().read().to_vec::<f32>().unwrap();
        let n_out = y.dims()[1];
        assert_eq!(conv.output_shape(&[None, Some(9), Some(3)]), vec![None, Some(n_out), Some(4)]);
        // TensorFlow's SAME padding: total max(0, (out-1)·s + k − n), the smaller half first.
        let pad = if padding == Padding::Same { ((n_out - 1) * stride + 3).saturating_sub(9) / 2 } else { 0 };
        let yv = y.to_vec::<f32>().unwrap();
        for b in 0..2 {
            for t in 0..n_out {
                for f in 0..4 {
                    let mut acc = 0.0f64;
                    for k in 0..3 {
                        let pos = (t * stride + k) as i64 - pad as i64;
                        if !(0..9).contains(&pos) {
                            continue;
                        }
                        for c in 0..3 {
                            acc += xv[(b * 9 + pos as usize) * 3 + c] as f64 * kernel[(k * 3 + c) * 4 + f] as f64;
                        }
                    }
                    let got = yv[(b * n_out + t) * 4 + f] as f64;
                    assert!((got - acc).abs() < 1e-5, "{padding:?} s{stride} b{b} t{t} f{f}: {got} vs {acc}");
                }
            }
        }
    }
    let pooled = MaxPool1D::new(2).call(&x, false);
    assert_eq!(pooled.dims(), &[2, 4, 3]);
    let avg = AvgPool1D::new(3).strides(2).call(&x, false);
    assert_eq!(avg.dims(), &[2, 4, 3]);
    let (pv, av) = (pooled.to_vec::<f32>().unwrap(), avg.to_vec::<f32>().unwrap());
    for b in 0..2 {
        for t in 0..4 {
            for c in 0..3 {
                let at = |s: usize| xv[(b * 9 + s) * 3 + c];
                assert_eq!(pv[(b * 4 + t) * 3 + c], at(2 * t).max(at(2 * t + 1)));
                let mean = (at(2 * t) + at(2 * t + 1) + at(2 * t + 2)) / 3.0;
                assert!((av[(b * 4 + t) * 3 + c] - mean).abs() < 1e-6);
            }
        }
    }

    let model = Sequential::new(vec![
        Conv1D::new(5, 3).padding(Padding::Same).activation(Activation::Relu).boxed(),
        MaxPool1D::new(2).boxed(),
        GlobalAveragePooling1D::new().boxed(),
        Dense::new(2).boxed(),
    ])
    .with_input_shape(&[9, 3]);
    let m = model.clone();
    let traced = function("conv1d", move |x: Tensor| m.call(&x, false))
        .with_input_signature(vec![tensorjit::TensorSpec::new(DType::F32, &[None, Some(9), Some(3)])]);
    for n in [1, 4] {
        let x = random::normal([n, 9, 3], 0.0, 1.0, DType::F32, Some(81 + n as u64));
        let bits = |t: &Tensor| t.to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&traced.call(x.clone())), bits(&model.call(&x, false)), "batch {n}");
    }
    assert_eq!(traced.tracing_count(), 1);
    let tape = GradientTape::new();
    let loss = model.call(&x, true).square().sum_all();
    let grads = tape.gradient(&loss, &model.trainable_variables().iter().collect::<Vec<_>>());
    assert!(grads.iter().all(|g| g.is_some()), "every weight gets a gradient");
}
