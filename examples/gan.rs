//! The 1-D GAN of the TensorFlow 2 migration article (../shared/seeds): a generator
//! (Dense 64 elu → Dense 64 elu → Dense 1 from 100-d noise) learns to imitate samples
//! of N(10, 0.1) against a discriminator (Dense 32 elu → Dense 1). The two models are
//! separate `Sequential`s, so their variable lists are separate by construction (no
//! variable scopes, no `reuse`); the discriminator is called twice per step (real and
//! fake) with the same weights. Both train steps are traced functions, Adam for each.
//!
//! `cargo run --release --example gan`

use tensorjit::nn::prelude::*;
use tensorjit::nn::Module;
use tensorjit::{function, random, DType, GradientTape, Tensor};

const LATENT: usize = 100;
const BATCH: usize = 64;
const STEPS: usize = 2000;
const REAL_MEAN: f64 = 10.0;
const REAL_STD: f64 = 0.1;

fn main() {
    random::set_seed(3);
    let generator = Sequential::named(
        "generator",
        vec![
            Dense::new(64).activation(Activation::Elu).boxed(),
            Dense::new(64).activation(Activation::Elu).boxed(),
            Dense::new(1).boxed(),
        ],
    )
    .with_input_shape(&[LATENT]);
    let discriminator = Sequential::named(
        "discriminator",
        vec![Dense::new(32).activation(Activation::Elu).boxed(), Dense::new(1).boxed()],
    )
    .with_input_shape(&[1]);
    println!("{}\n{}", generator.summary(), discriminator.summary());

    let bce = Loss::BinaryCrossentropy { from_logits: true };
    let (g, d) = (generator.clone(), discriminator.clone());
    let d_opt = Adam::new(1e-3);
    // Noise and real samples are random ops of the graph: new draws on every call.
    let train_d = function("train_discriminator", move |()| {
        let noise = random::normal([BATCH, LATENT], 0.0, 1.0, DType::F32, None);
        let real = random::normal([BATCH, 1], REAL_MEAN, REAL_STD, DType::F32, None);
        let fake = g.call(&noise, false);
        let vars = d.trainable_variables();
        let tape = GradientTape::new();
        let d_real = d.call(&real, true);
        let d_fake = d.call(&fake, true);
        let loss =
            bce.compute(&Tensor::ones_like(&d_real), &d_real) + bce.compute(&Tensor::zeros_like(&d_fake), &d_fake);
        let grads = tape.gradient(&loss, &vars);
        d_opt.apply_gradients(&grads.into_iter().zip(vars).collect::<Vec<_>>());
        loss
    });
    let (g, d) = (generator.clone(), discriminator.clone());
    let g_opt = Adam::new(1e-3);
    let train_g = function("train_generator", move |()| {
        let noise = random::normal([BATCH, LATENT], 0.0, 1.0, DType::F32, None);
        let vars = g.trainable_variables();
        let tape = GradientTape::new();
        let d_fake = d.call(&g.call(&noise, true), false);
        let loss = bce.compute(&Tensor::ones_like(&d_fake), &d_fake);
        let grads = tape.gradient(&loss, &vars);
        g_opt.apply_gradients(&grads.into_iter().zip(vars).collect::<Vec<_>>());
        loss
    });

    let probe = random::normal([1000, LATENT], 0.0, 1.0, DType::F32, Some(99));
    let sample_mean = |m: &Sequential| m.call(&probe, false).mean_all().to_scalar::<f32>().unwrap_or(f32::NAN);
    let start_mean = sample_mean(&generator);
    println!("real mean {REAL_MEAN}; generated mean before training {start_mean:.4}");
    let start = std::time::Instant::now();
    for step in 1..=STEPS {
        let d_loss = train_d.call(());
        let g_loss = train_g.call(());
        if step % 400 == 0 {
            let read = |t: &Tensor| t.to_scalar::<f32>().unwrap_or(f32::NAN);
            println!(
                "step {step:>5}: d_loss {:.4}  g_loss {:.4}  generated mean {:.4}",
                read(&d_loss),
                read(&g_loss),
                sample_mean(&generator)
            );
        }
    }
    let per_step = start.elapsed().as_secs_f64() * 1e6 / STEPS as f64;
    let end_mean = sample_mean(&generator);
    println!(
        "{:.1} µs per step (both traced steps; traces: {} + {})",
        per_step,
        train_d.tracing_count(),
        train_g.tracing_count()
    );
    println!(
        "generated mean: {start_mean:.4} -> {end_mean:.4} (real {REAL_MEAN}); distance to the real mean {:.4} -> {:.4}",
        (start_mean as f64 - REAL_MEAN).abs(),
        (end_mean as f64 - REAL_MEAN).abs()
    );
}
