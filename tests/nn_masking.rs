//! Masks of padded steps (Keras' masking): `Embedding::mask_zero` and `Masking` make
//! one; SimpleRNN, LSTM, GRU, Bidirectional, MultiHeadAttention and GlobalAveragePooling1D skip
//! the padded steps, so a padded batch gives each sequence's unpadded result; traced
//! calls give eager's bits; `fit`/`evaluate` leave padded steps out of the loss and the
//! metrics.

mod common;
use common::*;
use tensorjit::nn::data::{pad_sequences, PadOptions, Side};
use tensorjit::nn::prelude::*;
use tensorjit::prelude::*;

const VOCAB: usize = 11;

/// Random sequences of ids in [1, VOCAB) with these lengths, padded with 0 to `steps`
/// by `pad_sequences` (on the right, or on the left): the batch `[n, steps]` and each
/// sequence alone.
fn padded(seed: u64, lengths: &[usize], steps: usize, left: bool) -> (Tensor, Vec<Tensor>) {
    let seqs: Vec<Vec<i64>> = lengths
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            rand_vec(seed * 100 + i as u64, len, 1.0, VOCAB as f64).into_iter().map(|v| v as i64).collect()
        })
        .collect();
    let padding = if left { Side::Pre } else { Side::Post };
    let batch = pad_sequences(&seqs, &PadOptions { maxlen: Some(steps), padding, ..PadOptions::default() }).unwrap();
    let alone = seqs.into_iter().map(|s| Tensor::from_vec(s.clone(), [1, s.len()]).unwrap()).collect();
    (batch, alone)
}

fn f64_rows(t: &Tensor) -> Vec<f64> {
    f64s(&t.cast(DType::F64))
}

/// Row `i` of `[n, …]`.
fn row(t: &Tensor, i: usize) -> Vec<f64> {
    f64_rows(&t.narrow(0, i, 1))
}

fn embedded(layer: impl Module + 'static, mask_zero: bool) -> Sequential {
    Sequential::new(vec![Embedding::new(VOCAB, 4).mask_zero(mask_zero).boxed(), layer.boxed()])
}

#[test]
fn recurrent_layers_give_each_padded_sequence_its_unpadded_output() {
    let lengths = [5, 2, 7, 1];
    for left in [false, true] {
        let (batch, alone) = padded(1 + u64::from(left), &lengths, 7, left);
        for m in [embedded(LSTM::new(3), true), embedded(GRU::new(3), true), embedded(SimpleRNN::new(3), true)] {
            let y = m.call(&batch, false);
            assert_eq!(y.dims(), &[4, 3]);
            for (i, seq) in alone.iter().enumerate() {
                assert_close(&row(&y, i), &f64_rows(&m.call(seq, false)), 1e-5);
            }
        }
    }
    // The unmasked model reads the pads: a check that can fail.
    let (batch, alone) = padded(3, &lengths, 7, false);
    let m = embedded(GRU::new(3), false);
    let y = m.call(&batch, false);
    let diff: f64 = row(&y, 1).iter().zip(f64_rows(&m.call(&alone[1], false))).map(|(a, b)| (a - b).abs()).sum();
    assert!(diff > 1e-4, "padding must matter without a mask ({diff})");
}

#[test]
fn sequences_repeat_the_last_state_or_zero_at_padded_steps() {
    let lengths = [3, 6, 1];
    let (batch, alone) = padded(4, &lengths, 6, false);
    let m = embedded(LSTM::new(2).return_sequences(true), true);
    let y = m.call(&batch, false);
    let zeroed = Sequential::new(vec![m.layers()[0].clone(), {
        let z = LSTM::new(2).return_sequences(true).zero_output_for_mask(true);
        z.build("", &[None, Some(6), Some(4)]);
        for (a, b) in z.weights().iter().zip(m.layers()[1].variables()) {
            a.assign(b.read());
        }
        z.boxed()
    }]);
    let z = zeroed.call(&batch, false);
    for (i, seq) in alone.iter().enumerate() {
        let own = f64_rows(&m.call(seq, false));
        let (got, got_zero) = (row(&y, i), row(&z, i));
        let len = lengths[i];
        assert_close(&got[..2 * len], &own, 1e-5);
        assert_close(&got_zero[..2 * len], &own, 1e-5);
        for s in len..6 {
            assert_eq!(&got[2 * s..2 * s + 2], &got[2 * (len - 1)..2 * len], "step {s} repeats the last output");
            assert_eq!(&got_zero[2 * s..2 * s + 2], &[0.0, 0.0], "step {s} is 0");
        }
    }
    // The mask goes on with the sequences, and ends with a last output.
    let (_, mask) = m.forward_with_mask(&batch, None, false);
    assert_eq!(mask.unwrap().to_vec::<bool>().unwrap(), batch.ne(0.0).to_vec::<bool>().unwrap());
    let last = embedded(LSTM::new(2), true);
    assert!(last.forward_with_mask(&batch, None, false).1.is_none());
}

#[test]
fn bidirectional_reads_each_sequence_backwards_from_its_last_real_step() {
    let lengths = [4, 2, 5];
    let (batch, alone) = padded(5, &lengths, 5, false);
    for sequences in [false, true] {
        let bi = Bidirectional::new(GRU::new(3).return_sequences(sequences), LSTM::new(3).return_sequences(sequences));
        let m = embedded(bi, true);
        let y = m.call(&batch, false);
        for (i, seq) in alone.iter().enumerate() {
            let own = f64_rows(&m.call(seq, false));
            let got = row(&y, i);
            if sequences {
                let len = lengths[i];
                assert_close(&got[..6 * len], &own, 1e-5);
                assert!(got[6 * len..].iter().all(|&v| v == 0.0), "padded steps are 0: {got:?}");
            } else {
                assert_close(&got, &own, 1e-5);
            }
        }
    }
}

#[test]
fn attention_and_average_pooling_skip_padded_positions() {
    let lengths = [3, 5, 1];
    let (batch, alone) = padded(6, &lengths, 5, false);
    let m = Sequential::new(vec![
        Embedding::new(VOCAB, 8).mask_zero(true).boxed(),
        MultiHeadAttention::new(2, 4).boxed(),
        GlobalAveragePooling1D::new().boxed(),
    ]);
    let y = m.call(&batch, false);
    assert_eq!(y.dims(), &[3, 8]);
    for (i, seq) in alone.iter().enumerate() {
        assert_close(&row(&y, i), &f64_rows(&m.call(seq, false)), 1e-5);
    }
    // The pooling ends the mask.
    assert!(m.forward_with_mask(&batch, None, false).1.is_none());
}

#[test]
fn the_masking_layer_marks_steps_whose_features_all_equal_the_value() {
    let x = rand_f32(7, &[3, 4, 2], -1.0, 1.0);
    // Example 0: its last two steps are padding; example 2: its first step.
    let keep: Vec<f32> = vec![1., 1., 0., 0., 1., 1., 1., 1., 0., 1., 1., 1.];
    let keep_t = t32(&keep, &[3, 4, 1]);
    let pad = (&keep_t * -1.0 + 1.0) * -1.0;
    let xp = &x * &keep_t + &pad; // padded steps hold -1 in every feature
    let masking = Masking::new(-1.0);
    let mask = masking.compute_mask(&xp, None).unwrap();
    assert_eq!(mask.to_vec::<bool>().unwrap(), keep.iter().map(|&k| k == 1.0).collect::<Vec<_>>());
    let out = f32s(&masking.call(&xp, false));
    let expected: Vec<f32> = f32s(&(&x * &keep_t));
    assert_eq!(out, expected, "padded steps become 0");
    let m = Sequential::new(vec![Masking::new(-1.0).boxed(), LSTM::new(3).boxed()]);
    let y = m.call(&xp, false);
    let first = m.call(&x.narrow(0, 0, 1).narrow(1, 0, 2), false);
    assert_close(&row(&y, 0), &f64_rows(&first), 1e-5);
    // A step with one feature equal to the value is not padding.
    let one = t32(&[-1.0, 0.5], &[1, 1, 2]);
    assert_eq!(masking.compute_mask(&one, None).unwrap().to_vec::<bool>().unwrap(), [true]);
}

#[test]
fn traced_masked_models_match_eager_bits_for_any_batch() {
    let m = Sequential::new(vec![
        Embedding::new(VOCAB, 4).mask_zero(true).boxed(),
        Bidirectional::new(LSTM::new(3).return_sequences(true), GRU::new(3).return_sequences(true)).boxed(),
        GlobalAveragePooling1D::new().boxed(),
        Dense::new(2).boxed(),
    ]);
    let mm = m.clone();
    let f = tensorjit::function("masked", move |x: Tensor| mm.call(&x, false))
        .with_input_signature(vec![TensorSpec::new(DType::I64, &[None, Some(6)])]);
    for (seed, lengths) in [(8, vec![2]), (9, vec![6, 1, 3, 4, 2])] {
        let (batch, _) = padded(seed, &lengths, 6, false);
        let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&f.call(batch.clone())), bits(&m.call(&batch, false)), "batch {}", lengths.len());
    }
    assert_eq!(f.tracing_count(), 1);
}

/// Embedding → LSTM over the steps → Dense: a tag per step.
fn tagger(init: Option<&[Tensor]>) -> Sequential {
    let m = Sequential::named(
        "tagger",
        vec![
            Embedding::new(VOCAB, 6).mask_zero(true).boxed(),
            LSTM::new(8).return_sequences(true).boxed(),
            Dense::new(3).boxed(),
        ],
    )
    .with_input_shape(&[6]);
    for (v, w) in m.variables().iter().zip(init.unwrap_or(&[])) {
        v.assign(w);
    }
    m
}

/// Sequences of random lengths and, per step, the class of (id mod 3) of the previous id
/// (0 for the first), with `pad_label` at padded steps.
fn tagging_data(seed: u64, n: usize, pad_label: i64) -> (Tensor, Tensor) {
    let lengths: Vec<usize> = rand_vec(seed, n, 1.0, 7.0).into_iter().map(|v| v as usize).collect();
    let (ids, _) = padded(seed, &lengths, 6, false);
    let v = ids.to_vec::<i64>().unwrap();
    let labels: Vec<i64> = (0..n * 6)
        .map(|k| match (v[k], k % 6) {
            (0, _) => pad_label,
            (_, 0) => 0,
            _ => v[k - 1] % 3,
        })
        .collect();
    (ids, Tensor::from_vec(labels, [n, 6]).unwrap())
}

#[test]
fn the_loss_and_accuracy_of_a_masked_sequence_output_skip_padded_steps() {
    let (x, y) = tagging_data(10, 120, 0);
    let init: Vec<Tensor> = tagger(None).variables().iter().map(|v| v.read()).collect();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    let m = tagger(Some(&init));
    m.compile(Adam::new(0.01), loss, &[Metric::Accuracy], false);
    let logs = m.evaluate(&x, &y, 120).unwrap();
    // By hand: the mean cross-entropy and accuracy over the steps that hold an id.
    let logits = f64_rows(&m.predict(&x, 120).unwrap());
    let (ids, labels) = (x.to_vec::<i64>().unwrap(), y.to_vec::<i64>().unwrap());
    let (mut total, mut hits, mut count) = (0.0, 0.0, 0.0);
    for k in 0..ids.len() {
        if ids[k] == 0 {
            continue;
        }
        let z = &logits[3 * k..3 * k + 3];
        let max = z.iter().cloned().fold(f64::MIN, f64::max);
        let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        total += lse - z[labels[k] as usize];
        let best = (0..3).max_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap();
        hits += f64::from(u8::from(best as i64 == labels[k]));
        count += 1.0;
    }
    assert_close(&[logs.get("loss").unwrap()], &[total / count], 1e-5);
    assert_close(&[logs.get("accuracy").unwrap()], &[hits / count], 1e-6);
    // In uneven batches the epoch's accuracy still counts every real step once (each
    // batch weighted by its real steps, as Keras weighs metrics by the mask).
    let batched = m.evaluate(&x, &y, 7).unwrap();
    assert_close(&[batched.get("accuracy").unwrap()], &[hits / count], 1e-6);
    // Labels at padded steps do not count.
    let (_, y_other) = tagging_data(10, 120, 2);
    assert_eq!(m.evaluate(&x, &y_other, 120).unwrap().0, logs.0);

    // Training: eager and traced agree, with one trace, and it learns.
    let run = |run_eagerly: bool| {
        let m = tagger(Some(&init));
        m.compile(Adam::new(0.03), loss, &[Metric::Accuracy], run_eagerly);
        let opts = FitOptions { epochs: 12, batch_size: 20, shuffle: Some(3), verbose: false, ..FitOptions::default() };
        (m.fit(&x, &y, &opts).unwrap(), m.train_tracing_count())
    };
    let ((eager, _), (traced, traces)) = (run(true), run(false));
    assert_eq!(eager.get("loss"), traced.get("loss"));
    assert_eq!(traces, 1);
    let acc = traced.get("accuracy");
    assert!(acc[11] > 0.75, "it learns to tag: {acc:?}");
}

#[test]
fn more_padding_leaves_a_classifiers_loss_unchanged() {
    let m = Sequential::new(vec![
        Embedding::new(VOCAB, 4).mask_zero(true).boxed(),
        GRU::new(4).boxed(),
        Dense::new(1).boxed(),
    ]);
    m.compile(SGD::new(0.1), Loss::BinaryCrossentropy { from_logits: true }, &[Metric::Accuracy], false);
    let lengths = [3, 5, 2, 4];
    let (short, _) = padded(11, &lengths, 5, false);
    let (long, _) = padded(11, &lengths, 9, false);
    let y = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0], [4]).unwrap();
    let (a, b) = (m.evaluate(&short, &y, 4).unwrap(), m.evaluate(&long, &y, 4).unwrap());
    assert_close(&[a.get("loss").unwrap()], &[b.get("loss").unwrap()], 1e-6);
}

#[test]
fn mask_errors_name_the_loss_or_layer_and_the_shapes() {
    let loss = Loss::MeanSquaredError;
    let (y, pred) = (rand_f32(12, &[4, 2], -1.0, 1.0), rand_f32(13, &[4, 2], -1.0, 1.0));
    let mask = Tensor::ones(Shape::new(&[4, 3]), DType::Bool);
    let msg = panic_message(|| drop(loss.compute_masked(&y, &pred, Some(&mask))));
    assert!(msg.contains("mean_squared_error") && msg.contains("does not fit"), "{msg}");
    // A per-example mask [batch] fits a [batch, outputs] prediction.
    let mask = Tensor::from_vec(vec![true, false, true, true], [4]).unwrap();
    let got = loss.compute_masked(&y, &pred, Some(&mask)).to_scalar::<f32>().unwrap();
    let per: Vec<f64> = f64_rows(&(&pred - &y).square().mean(-1, false));
    assert_close(&[f64::from(got)], &[(per[0] + per[2] + per[3]) / 3.0], 1e-6);

    let layer = LSTM::new(2).with_name("rnn");
    let x = rand_f32(14, &[2, 3, 2], -1.0, 1.0);
    layer.call(&x, false);
    let float_mask = rand_f32(15, &[2, 3], 0.0, 1.0);
    let msg = panic_message(|| drop(layer.forward_masked(&x, Some(&float_mask), false)));
    assert!(msg.contains("LSTM 'rnn'") && msg.contains("a bool mask [batch, steps]"), "{msg}");
}

#[test]
fn per_step_layers_pass_the_mask_on_and_others_end_it() {
    let (batch, _) = padded(16, &[2, 4, 3], 4, false);
    let expected = batch.ne(0.0).to_vec::<bool>().unwrap();
    let kept = Sequential::new(vec![
        Embedding::new(VOCAB, 4).mask_zero(true).boxed(),
        Dense::new(3).boxed(),
        Dropout::new(0.5).boxed(),
        LayerNormalization::new().boxed(),
        tensorjit::nn::layers::ActivationLayer::new(Activation::Relu).boxed(),
    ]);
    let (_, mask) = kept.forward_with_mask(&batch, None, true);
    assert_eq!(mask.map(|m| m.to_vec::<bool>().unwrap()), Some(expected));
    // A convolution mixes steps: the mask ends there (with a warning).
    let ended = Sequential::new(vec![Embedding::new(VOCAB, 4).mask_zero(true).boxed(), Conv1D::new(2, 2).boxed()]);
    assert!(ended.forward_with_mask(&batch, None, false).1.is_none());
    // A mask given by the caller is used like an Embedding's.
    let m = Sequential::new(vec![Embedding::new(VOCAB, 4).boxed(), GRU::new(2).boxed()]);
    let given = batch.ne(0.0);
    let (a, _) = m.forward_with_mask(&batch, Some(&given), false);
    let first = m.call(&batch.narrow(0, 0, 1).narrow(1, 0, 2), false);
    assert_close(&row(&a, 0), &f64_rows(&first), 1e-5);
    assert_ne!(f32s(&a), f32s(&m.call(&batch, false)), "the given mask changes the padded rows");
}
