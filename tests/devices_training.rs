//! Models, data and training on a device, on every machine: Keras-style models whose
//! weights and optimizer slots live on the device, datasets and metrics of device
//! tensors, draws and fills made there, saved weights, and training steps that copy
//! nothing to or from the host — run against the host-emulated device backend of
//! `device_emulation` installed as `Device::Cuda` (results must equal the CPU's bit
//! for bit). Placement, eager ops and traced functions: tests/devices.rs.

mod common;
#[path = "device_emulation/mod.rs"]
mod emulation;
#[path = "../benches/common/mod.rs"]
mod workloads;

use common::{f32s, rand_f32};
use emulation::*;
use tensorjit::prelude::*;

/// A Keras-style model on a device: weights and optimizer slots live there, `fit`
/// copies each batch over, and training (traced, and eager) gives the CPU's numbers bit
/// for bit (the emulated device computes with the CPU's kernels).
#[test]
fn models_train_on_a_device_with_the_cpus_results() {
    let _random = random_state();
    use tensorjit::nn::prelude::*;
    let e = emulated();
    let x = rand_f32(60, &[40, 6], -1.0, 1.0);
    let y = Tensor::from_vec((0..40).map(|i| (i * 7 % 3) as i64).collect::<Vec<_>>(), [40]).unwrap();
    let train = |device: Device, run_eagerly: bool| {
        tensorjit::random::set_seed(5);
        tensorjit::nn::reset_names();
        let model = Sequential::new(vec![
            Dense::new(8).activation(Activation::Relu).boxed(),
            Dropout::new(0.25).with_seed(3).boxed(),
            Dense::new(3).boxed(),
        ])
        .on_device(device)
        .unwrap()
        .with_input_shape(&[6]);
        model.compile(
            Adam::new(0.01),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &[Metric::Accuracy],
            run_eagerly,
        );
        let opts = FitOptions { epochs: 3, batch_size: 16, shuffle: Some(1), verbose: false, ..FitOptions::default() };
        let history = model.fit(&x, &y, &opts).unwrap();
        let weights: Vec<Tensor> = model.variables().iter().map(|v| v.read()).collect();
        (model, history, weights)
    };
    let (_, cpu_history, cpu_weights) = train(Device::Cpu, false);
    for run_eagerly in [false, true] {
        let (model, history, weights) = train(GPU, run_eagerly);
        assert_eq!(model.device(), GPU);
        assert_eq!(history.get("loss"), cpu_history.get("loss"), "run_eagerly={run_eagerly}");
        assert_eq!(history.get("accuracy"), cpu_history.get("accuracy"));
        for (w, c) in weights.iter().zip(&cpu_weights) {
            assert_eq!(w.device(), GPU, "weights stay on the device");
            assert_eq!(f32s(&w.to(Device::Cpu).unwrap()), f32s(c), "run_eagerly={run_eagerly}");
        }
        let slots = model.optimizer().map(|o| o.variables()).unwrap_or_default();
        assert!(
            slots.iter().filter(|v| v.shape().rank() > 0).all(|v| v.device() == GPU),
            "optimizer slots on the device"
        );
        let pred = model.predict(&x, 16).unwrap();
        assert_eq!(pred.device(), Device::Cpu, "predict returns host values");
        // The seeded dropout's counter lives on the device, so its masks are drawn there.
        assert!(ran_on_device(&e, "random_uniform"), "dropout masks drawn on the device");
        assert!(model.evaluate(&x, &y, 16).unwrap().get("loss").is_some_and(f64::is_finite));
    }
    assert!(ran_on_device(&e, "matmul"), "the dense layers ran on the device");
    // After the build, the weights cannot move.
    let built = Sequential::new(vec![Dense::new(2).boxed()]).with_input_shape(&[3]);
    let err = built.on_device(GPU).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("on_device") && err.contains("is built"), "{err}");
    let missing = Sequential::new(vec![Dense::new(2).boxed()]).on_device(Device::Cuda(7));
    assert!(missing.err().is_some_and(|e| e.to_string().contains("cuda:7")));
}

/// A functional model of two inputs on a device: its weights live there, each input's
/// batches are copied over, and training gives the CPU's numbers bit for bit.
#[test]
fn functional_models_train_on_a_device_with_the_cpus_results() {
    let _random = random_state();
    use tensorjit::nn::functional::{Functional, Input, SymbolicTensor};
    use tensorjit::nn::prelude::*;
    let e = emulated();
    let (xa, xb) = (rand_f32(61, &[24, 4], -1.0, 1.0), rand_f32(62, &[24, 3], -1.0, 1.0));
    let y = rand_f32(63, &[24, 1], -1.0, 1.0);
    let train = |device: Device, run_eagerly: bool| {
        tensorjit::random::set_seed(6);
        tensorjit::nn::reset_names();
        let (a, b) = (Input::new(&[4]), Input::new(&[3]));
        let h = a.apply(Dense::new(5).activation(Activation::Tanh));
        let joined = SymbolicTensor::merge(Concatenate::new(), &[&h, &b]);
        let model = Functional::new(&[&a, &b], &joined.apply(Dense::new(1))).on_device(device).unwrap().built();
        model.compile(Adam::new(0.01), Loss::MeanSquaredError, &[], run_eagerly);
        let opts = FitOptions { epochs: 2, batch_size: 8, shuffle: Some(2), verbose: false, ..FitOptions::default() };
        let history = model.fit([&xa, &xb], &y, &opts).unwrap();
        let weights: Vec<Tensor> = model.variables().iter().map(|v| v.read()).collect();
        (history, weights)
    };
    let (cpu_history, cpu_weights) = train(Device::Cpu, false);
    for run_eagerly in [false, true] {
        let (history, weights) = train(GPU, run_eagerly);
        assert_eq!(history.get("loss"), cpu_history.get("loss"), "run_eagerly={run_eagerly}");
        for (w, c) in weights.iter().zip(&cpu_weights) {
            assert_eq!(w.device(), GPU, "weights stay on the device");
            assert_eq!(f32s(&w.to(Device::Cpu).unwrap()), f32s(c), "run_eagerly={run_eagerly}");
        }
    }
    assert!(ran_on_device(&e, "concat"), "the merge ran on the device");
}

#[test]
fn a_traced_functions_draws_are_made_on_its_device() {
    let _random = random_state();
    let e = emulated();
    let noisy = tensorjit::function("noisy_on_device", |x: Tensor| {
        let n = tensorjit::random::normal(x.dims().to_vec(), 0.0, 0.1, DType::F32, Some(5));
        &x + &n
    });
    let x = rand_f32(60, &[6, 7], -1.0, 1.0);
    let cpu = noisy.call(x.clone());
    let gx = x.to(GPU).unwrap();
    let draws = count(&e, "random_normal");
    let on_device = noisy.call(gx);
    // (Other tests share the device: at least this draw was added.)
    assert!(count(&e, "random_normal") > draws, "the draw ran on the device, not on the host");
    assert_eq!(f32s(&on_device.to(Device::Cpu).unwrap()), f32s(&cpu), "the CPU's values");
}

#[test]
fn zeros_and_ones_like_a_device_tensor_are_filled_on_the_device() {
    let e = emulated();
    for dtype in [DType::F32, DType::I64, DType::Bool] {
        let x = rand_f32(61, &[4, 5], -1.0, 1.0).cast(dtype).to(GPU).unwrap();
        let fills = count(&e, "fill_like");
        let (z, o) = (Tensor::zeros_like(&x), Tensor::ones_like(&x));
        assert!(count(&e, "fill_like") >= fills + 2, "the fills ran on the device");
        for (t, v) in [(z, 0.0), (o, 1.0)] {
            assert_eq!((t.device(), t.dtype(), t.dims()), (GPU, dtype, &[4usize, 5][..]));
            let want = Tensor::full([4, 5], v, dtype);
            assert_eq!(format!("{:?}", t.to(Device::Cpu).unwrap()), format!("{want:?}"));
        }
    } // One element (a loss's gradient seed) comes from the device's scalar cache.
    let seed = Tensor::ones_like(&Tensor::scalar(2.5f32).to(GPU).unwrap());
    assert_eq!((seed.device(), seed.to(Device::Cpu).unwrap().to_scalar::<f32>().unwrap()), (GPU, 1.0));
}

#[test]
fn a_models_weights_on_a_device_are_saved_and_loaded() {
    let _random = random_state();
    use tensorjit::nn::prelude::*;
    emulated();
    let build = |device: Device, seed: u64| {
        tensorjit::random::set_seed(seed);
        tensorjit::nn::reset_names();
        Sequential::new(vec![Dense::new(4).boxed(), Dense::new(2).boxed()])
            .on_device(device)
            .unwrap()
            .with_input_shape(&[3])
    };
    let dir = std::env::temp_dir().join(format!("tensorjit-device-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let trained = build(GPU, 11);
    trained.save_weights(&path).expect("device weights are copied to the host and saved");
    // Loaded into a model on the device (and one on the host): the same values, each
    // variable staying where its model lives.
    for device in [GPU, Device::Cpu] {
        let fresh = build(device, 12);
        fresh.load_weights(&path).expect("the saved weights load");
        for (a, b) in fresh.variables().iter().zip(trained.variables().iter()) {
            let (a, b) = (a.read(), b.read());
            assert_eq!(a.device(), device, "{}", a.type_string());
            assert_eq!(f32s(&a.to(Device::Cpu).unwrap()), f32s(&b.to(Device::Cpu).unwrap()));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_seeded_dropout_on_a_device_counts_its_calls() {
    use tensorjit::nn::prelude::*;
    emulated();
    let d = Dropout::new(0.3).with_seed(9);
    let x = rand_f32(62, &[4, 8], -1.0, 1.0).to(GPU).unwrap();
    assert_eq!(d.calls(), None, "no mask drawn yet");
    for _ in 0..3 {
        d.call(&x, true);
    }
    assert_eq!(d.calls(), Some(3), "the counter on the device is read back");
}

#[test]
fn a_range_with_bounds_on_a_device_iterates_eagerly() {
    use tensorjit::ops::control::tf_range;
    emulated();
    let on = |v: i64| Tensor::scalar(v).to(GPU).unwrap();
    let seen: Vec<i64> =
        tf_range(on(1), on(10), on(3)).map(|i| i.to(Device::Cpu).unwrap().to_scalar::<i64>().unwrap()).collect();
    assert_eq!(seen, vec![1, 4, 7], "the bounds are compared on the device and read back");
    let zero = std::panic::catch_unwind(|| tf_range(on(0), on(5), on(0)).count());
    assert!(zero.is_err(), "a zero step on a device is refused too");
}

#[test]
fn a_function_with_unknown_dims_draws_on_its_device() {
    let _random = random_state();
    emulated();
    let noisy = tensorjit::function("noisy_unknown_dims", |x: Tensor| {
        &x + tensorjit::random::normal([4], 0.0, 0.1, DType::F32, Some(8))
    })
    .with_input_signature(vec![TensorSpec::new(DType::F32, &[None, Some(4)])]);
    let x = rand_f32(63, &[3, 4], -1.0, 1.0);
    let cpu = noisy.call(x.clone());
    let on_device = noisy.try_call(x.to(GPU).unwrap()).expect("the draw joins the device operand");
    assert_eq!(on_device.device(), GPU);
    assert_eq!(f32s(&on_device.to(Device::Cpu).unwrap()), f32s(&cpu));
    assert_eq!(noisy.tracing_count(), 2, "one trace per device, both from the signature");
    // A spec naming a GPU takes tensors there only, and says so.
    let pinned = tensorjit::function("pinned", |x: Tensor| x.relu()).with_input_signature(vec![TensorSpec::new(
        DType::F32,
        &[None, Some(4)],
    )
    .on(GPU)]);
    let err = pinned.try_call(x).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("argument 0 is f32[3,4], the input_signature expects f32[?,4] on cuda:0"), "{err}");
}

#[test]
fn datasets_of_device_tensors_batch_and_shuffle_on_the_device() {
    use tensorjit::nn::data::Dataset;
    emulated();
    let x = rand_f32(64, &[10, 3], -1.0, 1.0);
    let y = Tensor::from_vec((0..10i64).collect::<Vec<_>>(), [10]).unwrap();
    let batches = |x: Tensor, y: Tensor| -> Vec<Vec<Tensor>> {
        let ds = Dataset::from_tensor_slices(vec![x, y]).unwrap().shuffle(10, 3).batch(4);
        ds.iter().collect()
    };
    let cpu = batches(x.clone(), y.clone());
    let on_device = batches(x.to(GPU).unwrap(), y.to(GPU).unwrap());
    assert_eq!(on_device.len(), cpu.len());
    for (d, c) in on_device.iter().zip(&cpu) {
        for (a, b) in d.iter().zip(c) {
            assert_eq!(a.device(), GPU, "batches stay on the device");
            assert_eq!(format!("{:?}", a.to(Device::Cpu).unwrap()), format!("{b:?}"));
        }
    }
}

#[test]
fn a_cnn_with_batch_norm_and_validation_trains_on_a_device_as_on_the_cpu() {
    let _random = random_state();
    use tensorjit::nn::prelude::*;
    emulated();
    let x = rand_f32(65, &[24, 8, 8, 2], -1.0, 1.0);
    let y = Tensor::from_vec((0..24).map(|i| (i * 5 % 3) as i64).collect::<Vec<_>>(), [24]).unwrap();
    let (vx, vy) =
        (rand_f32(66, &[8, 8, 8, 2], -1.0, 1.0), Tensor::from_vec(vec![0i64, 1, 2, 0, 1, 2, 0, 1], [8]).unwrap());
    let train = |device: Device, run_eagerly: bool| {
        tensorjit::random::set_seed(9);
        tensorjit::nn::reset_names();
        let model = Sequential::new(vec![
            Conv2D::new(4, [3, 3]).activation(Activation::Relu).boxed(),
            BatchNormalization::new().boxed(),
            MaxPool2D::new([2, 2]).boxed(),
            Flatten::new().boxed(),
            Dropout::new(0.2).with_seed(4).boxed(),
            Dense::new(3).boxed(),
        ])
        .on_device(device)
        .unwrap()
        .with_input_shape(&[8, 8, 2]);
        model.compile(
            Adam::new(0.01),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &[Metric::Accuracy],
            run_eagerly,
        );
        let opts = FitOptions {
            epochs: 2,
            batch_size: 8,
            shuffle: Some(2),
            validation_data: Some((vx.clone().into(), vy.clone().into())),
            verbose: false,
            ..FitOptions::default()
        };
        let history = model.fit(&x, &y, &opts).unwrap();
        let weights: Vec<Vec<f32>> =
            model.variables().iter().map(|v| f32s(&v.read().to(Device::Cpu).unwrap())).collect();
        (history, weights)
    };
    let (cpu_history, cpu_weights) = train(Device::Cpu, false);
    assert_eq!(cpu_history.get("val_loss").len(), 2, "{cpu_history:?}");
    for run_eagerly in [false, true] {
        let (history, weights) = train(GPU, run_eagerly);
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            assert_eq!(history.get(key), cpu_history.get(key), "{key}, run_eagerly={run_eagerly}");
        }
        assert_eq!(weights, cpu_weights, "weights and BatchNorm statistics, run_eagerly={run_eagerly}");
    }
}

#[test]
fn a_device_model_takes_data_already_on_the_device() {
    let _random = random_state();
    use tensorjit::nn::prelude::*;
    emulated();
    let x = rand_f32(67, &[20, 5], -1.0, 1.0);
    let y = Tensor::from_vec((0..20).map(|i| (i % 2) as i64).collect::<Vec<_>>(), [20]).unwrap();
    let run = |x: &Tensor, y: &Tensor| {
        tensorjit::random::set_seed(3);
        tensorjit::nn::reset_names();
        let model = Sequential::new(vec![Dense::new(2).boxed()]).on_device(GPU).unwrap().with_input_shape(&[5]);
        model.compile(Adam::new(0.01), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[], false);
        let opts = FitOptions { epochs: 2, batch_size: 8, shuffle: Some(1), verbose: false, ..FitOptions::default() };
        let history = model.fit(x, y, &opts).expect("fit");
        let pred = model.predict(x, 8).expect("predict");
        let eval = model.evaluate(x, y, 8).expect("evaluate");
        (history.get("loss"), f32s(&pred.to(Device::Cpu).unwrap()), eval.get("loss"))
    };
    let host = run(&x, &y);
    let on_device = run(&x.to(GPU).unwrap(), &y.to(GPU).unwrap());
    assert_eq!(on_device, host, "data on the device gives the same training as data on the host");
}

#[test]
fn data_on_a_device_is_split_there() {
    use tensorjit::nn::data::train_test_split;
    emulated();
    let x = rand_f32(68, &[10, 3], -1.0, 1.0);
    let y = Tensor::from_vec((0..10i64).collect::<Vec<_>>(), [10]).unwrap();
    let host = train_test_split(&x, &y, 0.3, 4).unwrap();
    let dev = train_test_split(&x.to(GPU).unwrap(), &y.to(GPU).unwrap(), 0.3, 4).expect("split on the device");
    for (d, h) in [(&dev.0, &host.0), (&dev.1, &host.1), (&dev.2, &host.2), (&dev.3, &host.3)] {
        assert_eq!(d.device(), GPU);
        assert_eq!(format!("{:?}", d.to(Device::Cpu).unwrap()), format!("{h:?}"));
    }
}

#[test]
fn metrics_take_tensors_on_a_device() {
    use tensorjit::nn::metrics::{Accuracy, AccuracyKind, Mean};
    emulated();
    let logits = rand_f32(69, &[12, 4], -1.0, 1.0);
    let labels = Tensor::from_vec((0..12).map(|i| (i % 4) as i64).collect::<Vec<_>>(), [12]).unwrap();
    let mut host = Accuracy::new(AccuracyKind::SparseCategorical);
    host.update_state(&labels, &logits).unwrap();
    let mut dev = Accuracy::new(AccuracyKind::SparseCategorical);
    dev.update_state(&labels.to(GPU).unwrap(), &logits.to(GPU).unwrap()).expect("device tensors are read back");
    assert_eq!(dev.result(), host.result());
    let mut mean = Mean::new();
    mean.update_state(&logits.to(GPU).unwrap()).expect("device values are read back");
    let want: f64 = f32s(&logits).iter().map(|&v| v as f64).sum::<f64>() / 48.0;
    assert!((mean.result() - want).abs() < 1e-12);
}

/// A training step on a device — eager (the tape's backward ops, the optimizer's
/// updates) or traced — copies nothing between host and device once warm: on a real
/// GPU each copy is a synchronising round trip.
#[test]
fn train_steps_on_a_device_copy_nothing_to_or_from_the_host() {
    let _e = emulated();
    let params = workloads::mlp_params();
    let vars: Vec<Variable> = params.iter().map(|p| Variable::new(p.to(GPU).unwrap(), "p")).collect();
    let (x, y) = (rand_f32(5, &[128, 784], 0.0, 1.0).to(GPU).unwrap(), workloads::labels().to(GPU).unwrap());
    workloads::mlp_train_step(&vars, &x, &y);
    let before = copies();
    let loss = workloads::mlp_train_step(&vars, &x, &y);
    assert_eq!(copies(), before, "an eager step copies nothing (uploads, downloads)");
    assert_eq!(loss.device(), GPU);
    let tv = vars.clone();
    let step = tensorjit::function("w5_copies", move |(x, y): (Tensor, Tensor)| workloads::mlp_train_step(&tv, &x, &y));
    step.call((x.clone(), y.clone()));
    let before = copies();
    step.call((x.clone(), y.clone()));
    assert_eq!(copies(), before, "a traced step copies nothing (uploads, downloads)");
}

/// A backward pass runs only the ops that lead to a requested source: asking for one
/// layer's gradient runs no backward op for the layers below it, and a log-softmax costs
/// TensorFlow's four backward ops — on a GPU every one of them is a launch. The
/// gradients are the ones asked for all at once.
#[test]
fn backward_passes_run_only_the_ops_that_reach_a_source() {
    let _e = emulated();
    let x = rand_f32(71, &[16, 12], -1.0, 1.0).to(GPU).unwrap();
    let w1 = Variable::new(rand_f32(72, &[12, 8], -0.5, 0.5).to(GPU).unwrap(), "w1");
    let w2 = Variable::new(rand_f32(73, &[8, 5], -0.5, 0.5).to(GPU).unwrap(), "w2");
    let loss_of = || x.matmul(&w1.read()).relu().matmul(&w2.read()).log_softmax(-1).sum_all();
    let tape = GradientTape::persistent();
    let loss = loss_of();
    let mut top = None;
    let ops = ops_during(|| top = tape.gradient(&loss, &[&w2]).pop().flatten());
    assert_eq!(
        ops,
        ["broadcast_to", "exp", "reduce_sum", "mul", "sub", "matmul"],
        "the sum's, the log-softmax's as TensorFlow's (g − exp(y)·Σg: none for its stopped max) and one matmul for w2"
    );
    let both = tape.gradient(&loss, &[&w1, &w2]);
    let f = |t: &Tensor| f32s(&t.to(Device::Cpu).unwrap());
    assert_eq!(f(&top.unwrap()), f(both[1].as_ref().unwrap()), "the same gradient for w2");
    assert!(both[0].is_some());
    let ops = ops_during(|| drop(tape.gradient(&loss, &[&w1])));
    assert_eq!(ops.iter().filter(|o| **o == "matmul").count(), 2, "dh1 and dw1, no dw2: {ops:?}");
}

/// The eager W5 step (forward, tape backward, six in-place updates) in device ops: a
/// regression guard on the launches an eager training step on a GPU pays for.
#[test]
fn an_eager_train_step_issues_51_device_ops() {
    let _e = emulated();
    let vars: Vec<Variable> = workloads::mlp_params().iter().map(|p| Variable::new(p.to(GPU).unwrap(), "p")).collect();
    let (x, y) = (rand_f32(6, &[128, 784], 0.0, 1.0).to(GPU).unwrap(), workloads::labels().to(GPU).unwrap());
    let ops = ops_during(|| drop(workloads::mlp_train_step(&vars, &x, &y)));
    assert_eq!(ops.len(), 51, "{ops:?}");
    assert_eq!(ops.iter().filter(|o| **o == "matmul").count(), 3 + 5, "dx of the first layer is not computed");
}
