//! Self-attention on the 8×8 handwritten digits: each image is a sequence of its 8 pixel
//! rows, embedded by a Dense layer, mixed by `MultiHeadAttention` (einsums all the way
//! down), normalised, flattened (which keeps the rows' order) and classified. Trained with Adam and
//! Keras' `global_clipnorm`, reporting accuracy and top-2 accuracy — once with
//! `run_eagerly = true` and once traced, from the same initial weights: the same
//! losses, bit for bit, and the time per epoch of each.
//!
//! `cargo run --release --example attention_digits`

mod common;

use tensorjit::nn::data::{load_digits, train_test_split};
use tensorjit::nn::prelude::*;
use tensorjit::{random, Tensor};

const EPOCHS: usize = 25;

fn build() -> Sequential {
    // The same seed before each build: both runs start from the same weights.
    random::set_seed(7);
    tensorjit::nn::reset_names();
    Sequential::named(
        "attention",
        vec![
            // [batch, 64] pixels → [batch, 8 rows, 8 pixels]: a sequence of 8 tokens.
            Lambda::new(|x: &Tensor| x.reshape([-1, 8, 8])).with_name("rows").boxed(),
            Dense::new(32).activation(Activation::Relu).with_name("embed").boxed(),
            MultiHeadAttention::new(4, 8).with_name("self_attention").boxed(),
            LayerNormalization::new().boxed(),
            Flatten::new().boxed(),
            Dense::new(10).with_name("classes").boxed(),
        ],
    )
    .with_input_shape(&[64])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (x, y) = load_digits(common::data_file("digits.csv.gz"))?;
    let (x_train, y_train, x_test, y_test) = train_test_split(&x, &y, 0.2, 0)?;
    println!("digits: {} train / {} test images as sequences of 8 rows", x_train.dims()[0], x_test.dims()[0]);

    let metrics = [Metric::Accuracy, Metric::SparseTopKCategoricalAccuracy { k: 2 }];
    let mut runs = Vec::new();
    for run_eagerly in [true, false] {
        let model = build();
        if run_eagerly {
            println!("{}", model.summary());
        }
        let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
        model.compile(Adam::new(3e-3).global_clipnorm(1.0), loss, &metrics, run_eagerly);
        let opts =
            FitOptions { epochs: EPOCHS, batch_size: 32, shuffle: Some(3), verbose: false, ..FitOptions::default() };
        let history = model.fit(&x_train, &y_train, &opts)?;
        let median = history.median_seconds();
        let logs = model.evaluate(&x_test, &y_test, 128)?;
        let mode = if run_eagerly { "eager " } else { "traced" };
        println!(
            "{mode}: median {:.1} ms per epoch (first {:.1} ms), final loss {:.6}, test accuracy {:.4}, test top-2 \
             accuracy {:.4}",
            median * 1e3,
            history.seconds[0] * 1e3,
            history.get("loss").last().copied().unwrap_or(f64::NAN),
            logs.get("accuracy").unwrap_or(f64::NAN),
            logs.get("sparse_top_k_categorical_accuracy").unwrap_or(f64::NAN),
        );
        runs.push((median, history.get("loss")));
    }
    let same = runs[0].1 == runs[1].1;
    println!(
        "time per epoch: eager {:.1} ms, traced {:.1} ms ({:.1}x); losses of every epoch identical: {same}",
        runs[0].0 * 1e3,
        runs[1].0 * 1e3,
        runs[0].0 / runs[1].0
    );
    if !same {
        return Err("eager and traced training diverged".into());
    }
    Ok(())
}
