//! A convolutional autoencoder on the 8×8 digits: `Rescaling` → two strided `Conv2D`s
//! down to 2×2×32 → two strided `Conv2DTranspose`s back to 8×8×1 (sigmoid), trained with AdamW
//! (decoupled weight decay, biases excluded), an L2 penalty on the first kernel, a
//! binary cross-entropy per pixel, and mean absolute error as a metric. Trained eagerly
//! and traced from the same weights; prints the time per epoch of both, the test
//! reconstruction error, and one test digit beside its reconstruction.
//!
//! `cargo run --release --example digits_autoencoder`

mod common;

use tensorjit::nn::data::{load_digits, train_test_split};
use tensorjit::nn::prelude::*;
use tensorjit::nn::Module;
use tensorjit::{random, Padding, Tensor};

const EPOCHS: usize = 15;

fn build() -> Sequential {
    random::set_seed(3);
    tensorjit::nn::reset_names();
    let down = |filters: usize| Conv2D::new(filters, [3, 3]).strides([2, 2]).padding(Padding::Same);
    let up = |filters: usize| Conv2DTranspose::new(filters, [3, 3]).strides([2, 2]).padding(Padding::Same);
    Sequential::new(vec![
        // Pixels from [0, 1] to [−1, 1].
        Rescaling::new(2.0).offset(-1.0).boxed(),
        down(16).activation(Activation::Relu).kernel_regularizer(Regularizer::L2(1e-4)).boxed(),
        down(32).activation(Activation::Relu).boxed(),
        up(16).activation(Activation::Relu).boxed(),
        up(1).activation(Activation::Sigmoid).boxed(),
    ])
    .with_input_shape(&[8, 8, 1])
}

/// An 8×8 image in shades of ' .:-=+*#%@' (values in [0, 1]).
fn ascii(pixels: &[f32]) -> Vec<String> {
    let shades: Vec<char> = " .:-=+*#%@".chars().collect();
    pixels
        .chunks(8)
        .map(|row| {
            row.iter().map(|p| shades[((p.clamp(0.0, 1.0) * 9.0).round()) as usize]).flat_map(|c| [c, c]).collect()
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (x, y) = load_digits(common::data_file("digits.csv.gz"))?;
    let (x_train, _, x_test, _) = train_test_split(&x, &y, 0.2, 0)?;
    let images = |t: &Tensor| t.reshape([-1, 8, 8, 1]);
    let (x_train, x_test) = (images(&x_train), images(&x_test));
    // The pixels, in [0, 1], are their own targets.
    let (t_train, t_test) = (x_train.clone(), x_test.clone());
    println!("digits: {} train / {} test images of 8×8", x_train.dims()[0], x_test.dims()[0]);

    let mut results = Vec::new();
    for run_eagerly in [true, false] {
        let model = build();
        if run_eagerly {
            println!("{}", model.summary());
        }
        let optimizer = AdamW::new(3e-3).weight_decay(1e-4).exclude_from_weight_decay(&["bias"]);
        let loss = Loss::BinaryCrossentropy { from_logits: false };
        model.compile(optimizer, loss, &[Metric::MeanAbsoluteError], run_eagerly);
        let opts =
            FitOptions { epochs: EPOCHS, batch_size: 64, shuffle: Some(1), verbose: false, ..FitOptions::default() };
        let history = model.fit(&x_train, &t_train, &opts)?;
        let median = history.median_seconds();
        let mode = if run_eagerly { "eager" } else { "traced" };
        let losses = history.get("loss");
        println!(
            "{mode}: median {:.1} ms per epoch, loss {:.4} → {:.4}",
            median * 1e3,
            losses[0],
            losses[losses.len() - 1]
        );
        results.push((median, losses, model));
    }
    let (eager, traced) = (&results[0], &results[1]);
    println!(
        "time per epoch: eager {:.1} ms, traced {:.1} ms ({:.1}x); same losses in both modes: {}",
        eager.0 * 1e3,
        traced.0 * 1e3,
        eager.0 / traced.0,
        eager.1 == traced.1
    );

    let model = &traced.2;
    let logs = model.evaluate(&x_test, &t_test, 128)?;
    let mae = logs.get("mean_absolute_error").unwrap_or(f64::NAN);
    println!("test: loss {:.4}, mean absolute error {mae:.4} per pixel (of 1)", logs.get("loss").unwrap_or(f64::NAN));
    let recon = model.predict(x_test.narrow(0, 0, 1), 1)?;
    let (orig, back) = (t_test.narrow(0, 0, 1).to_vec::<f32>()?, recon.to_vec::<f32>()?);
    println!("a test digit and its reconstruction:");
    for (a, b) in ascii(&orig).iter().zip(ascii(&back)) {
        println!("  {a}    {b}");
    }
    Ok(())
}
