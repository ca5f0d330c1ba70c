//! Variable-length sequences, padded and masked as in Keras: token sequences of 4 to 24
//! ids, padded with 0 to 24 steps (`pad_sequences`), classified by
//! `Embedding(mask_zero) → Bidirectional LSTM → Dense`. The mask makes the LSTMs skip the
//! padding, so each sequence is read as if it were alone. The task: do more than half of a sequence's ids exceed 10?
//!
//! Trained three times from the same initial weights: masked and eager, masked and
//! traced (the same losses bit for bit, one trace), and traced without the mask (the
//! LSTMs read the padding), reporting the time per epoch and the test accuracy of each.
//!
//! `cargo run --release --example masked_sequences`

use tensorjit::nn::data::{pad_sequences, PadOptions, Side};
use tensorjit::nn::prelude::*;
use tensorjit::{random, Tensor};

const STEPS: usize = 24;
const VOCAB: usize = 21;
const EPOCHS: usize = 12;

/// splitmix64: a reproducible stream of u64s.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` padded sequences `[n, STEPS]` (i64 ids, 0 = padding after the ids) and their
/// labels `[n]`.
fn sequences(n: usize, seed: u64) -> Result<(Tensor, Tensor), Box<dyn std::error::Error>> {
    let mut rng = Rng(seed);
    let (mut seqs, mut labels) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let len = 4 + rng.below(STEPS as u64 - 3) as usize;
        let seq: Vec<i64> = (0..len).map(|_| 1 + rng.below(VOCAB as u64 - 1) as i64).collect();
        let high = seq.iter().filter(|&&id| id > 10).count();
        labels.push(if 2 * high > len { 1.0f32 } else { 0.0 });
        seqs.push(seq);
    }
    let opts = PadOptions { maxlen: Some(STEPS), padding: Side::Post, ..PadOptions::default() };
    Ok((pad_sequences(&seqs, &opts)?, Tensor::from_vec(labels, [n])?))
}

fn build(mask_zero: bool) -> Sequential {
    // The same seed before each build: every run starts from the same weights.
    random::set_seed(11);
    tensorjit::nn::reset_names();
    Sequential::named(
        "reader",
        vec![
            Embedding::new(VOCAB, 16).mask_zero(mask_zero).boxed(),
            Bidirectional::of(LSTM::new(16)).boxed(),
            Dense::new(1).boxed(),
        ],
    )
    .with_input_shape(&[STEPS])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (x_train, y_train) = sequences(2000, 1)?;
    let (x_test, y_test) = sequences(500, 2)?;
    println!("{} train / {} test sequences of 4 to {STEPS} ids, padded to {STEPS}", 2000, 500);

    let mut runs = Vec::new();
    for (mask_zero, run_eagerly) in [(true, true), (true, false), (false, false)] {
        let model = build(mask_zero);
        if run_eagerly {
            println!("{}", model.summary());
        }
        let loss = Loss::BinaryCrossentropy { from_logits: true };
        model.compile(Adam::new(1e-2).global_clipnorm(1.0), loss, &[Metric::Accuracy], run_eagerly);
        let opts =
            FitOptions { epochs: EPOCHS, batch_size: 64, shuffle: Some(5), verbose: false, ..FitOptions::default() };
        let history = model.fit(&x_train, &y_train, &opts)?;
        let median = history.median_seconds();
        let logs = model.evaluate(&x_test, &y_test, 250)?;
        let mode = match (mask_zero, run_eagerly) {
            (true, true) => "masked, eager   ",
            (true, false) => "masked, traced  ",
            _ => "unmasked, traced",
        };
        println!(
            "{mode}: median {:.1} ms per epoch (first {:.1} ms), final loss {:.5}, test accuracy {:.4}, traces {}",
            median * 1e3,
            history.seconds[0] * 1e3,
            history.get("loss").last().copied().unwrap_or(f64::NAN),
            logs.get("accuracy").unwrap_or(f64::NAN),
            model.train_tracing_count(),
        );
        runs.push((median, history.get("loss")));
    }
    let same = runs[0].1 == runs[1].1;
    println!(
        "masked: eager {:.1} ms, traced {:.1} ms per epoch ({:.1}x); the mask costs {:.0}% traced; losses of every \
         epoch identical eager and traced: {same}",
        runs[0].0 * 1e3,
        runs[1].0 * 1e3,
        runs[0].0 / runs[1].0,
        (runs[1].0 / runs[2].0 - 1.0) * 100.0,
    );
    if !same {
        return Err("eager and traced training diverged".into());
    }
    Ok(())
}
