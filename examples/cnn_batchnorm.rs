//! The BatchNormalization experiment from the TensorFlow 1 → 2 migration article
//! (../shared/seeds): a Conv2D → BatchNormalization → Conv2D → Flatten → Dense binary
//! classifier on 50 all-ones images (label 1) and 50 all-zeros images (label 0),
//! 28×28×1, batches of 10, SGD with learning rate 1e-3.
//!
//! Case 1 trains on the positives only; case 2 feeds each step a positive and a
//! negative batch through the same model instance (shared weights). Each case runs
//! eagerly and traced, from the same initial weights, with a "dynamic" input (the
//! model builds itself on its first call — inside the trace in traced mode). In
//! TensorFlow 2.0's graph mode the moving statistics silently stayed at 0 / 1; here
//! the layer assigns them itself, so they move, identically in both modes.
//!
//! `cargo run --release --example cnn_batchnorm` (`-- --device cuda` trains on a GPU).

use tensorjit::nn::prelude::*;
use tensorjit::nn::Module;
use tensorjit::{function, random, DType, Device, GradientTape, Tensor};

const EPOCHS: usize = 2;

fn model(device: Device) -> tensorjit::nn::Result<(Sequential, BatchNormalization)> {
    random::set_seed(1);
    tensorjit::nn::reset_names();
    let bn = BatchNormalization::new();
    let m = Sequential::new(vec![
        Conv2D::new(8, [3, 3]).strides([2, 2]).activation(Activation::Relu).boxed(),
        bn.clone().boxed(),
        Conv2D::new(1, [3, 3]).strides([2, 2]).activation(Activation::Relu).boxed(),
        Flatten::new().boxed(),
        Dense::new(1).boxed(),
    ])
    .on_device(device)?;
    Ok((m, bn))
}

fn dataset(value: f32, label: i32) -> tensorjit::nn::Result<Dataset> {
    let images = Tensor::full([50, 28, 28, 1], value, DType::F32);
    let labels = Tensor::full([50, 1], label, DType::I32);
    Ok(Dataset::from_tensor_slices(vec![images, labels])?.batch(10))
}

fn values(v: Option<tensorjit::Variable>) -> Vec<f32> {
    v.and_then(|v| v.read().to(Device::Cpu).and_then(|t| t.to_vec::<f32>()).ok()).unwrap_or_default()
}

/// Trains one case; returns (moving_mean, moving_variance, summary of the model).
fn run(case: u32, eager: bool, device: Device) -> tensorjit::nn::Result<(Vec<f32>, Vec<f32>, String)> {
    let (model, bn) = model(device)?;
    let opt = SGD::new(1e-3);
    let bce = Loss::BinaryCrossentropy { from_logits: true };
    let m = model.clone();
    let step = function("train_step", move |batches: Vec<(Tensor, Tensor)>| {
        let tape = GradientTape::new();
        // Every batch goes through the same model instance: shared weights.
        let mut loss = Tensor::scalar(0.0f32);
        for (x, y) in &batches {
            loss = &loss + &bce.compute(y, &m.call(x, true));
        }
        // Read after the calls: on the first one the model builds its weights.
        let vars = m.trainable_variables();
        let grads = tape.gradient(&loss, &vars);
        let pairs: Vec<_> = grads.into_iter().zip(vars).collect();
        opt.apply_gradients(&pairs);
        loss
    })
    .with_run_eagerly(eager);

    let (pos, neg) = (dataset(1.0, 1)?, dataset(0.0, 0)?);
    for epoch in 0..EPOCHS as u64 {
        let mut negatives = neg.iter_epoch(epoch).filter(|_| case == 2);
        for p in pos.iter_epoch(epoch) {
            // Batches go to the model's device (`Dataset` yields host tensors).
            let pair = |e: &[Tensor]| Ok::<_, tensorjit::Error>((e[0].to(device)?, e[1].to(device)?));
            let mut batches = vec![pair(&p)?];
            if let Some(n) = negatives.next() {
                batches.push(pair(&n)?);
            }
            step.call(batches);
        }
    }
    if !eager {
        assert_eq!(step.tracing_count(), 1, "one trace for every step of the case");
    }
    Ok((values(bn.moving_mean()), values(bn.moving_variance()), model.summary()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let device: Device = match args.iter().position(|a| a == "--device") {
        Some(i) => args.get(i + 1).map_or(Err("--device needs a value".to_string()), |d| d.parse())?,
        None => Device::Cpu,
    };
    println!("on {device}");
    let mut identical = true;
    for case in [1, 2] {
        let mut results = Vec::new();
        for (mode, eager) in [("eager", true), ("traced", false)] {
            let (mean, var, summary) = run(case, eager, device)?;
            if case == 1 && eager {
                println!("{summary}");
            }
            println!("case {case} {mode} moving_mean: {mean:?}");
            println!("case {case} {mode} moving_variance: {var:?}");
            results.push((mean, var));
        }
        let same = results[0] == results[1];
        let moved = results[0].0.iter().any(|&m| m != 0.0) && results[0].1.iter().any(|&v| v != 1.0);
        println!("case {case}: updated {moved}, identical eager vs traced {same}");
        identical &= same && moved;
    }
    println!("moving statistics updated and identical in both modes: {identical}");
    Ok(())
}
