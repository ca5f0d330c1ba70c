//! Rescaling, Normalization (adapt), the noise layers, RepeatVector, Permute,
//! GroupNormalization and UnitNormalization: values against host computations, eager ==
//! traced, and the errors. (The noise layers' checks set the global seed and compare
//! draws from it; seeded draws and layer builds read the global sequence too, so the
//! tests here take turns with it: `RANDOM`.)

use tensorjit::nn::prelude::*;
use tensorjit::nn::Module;
use tensorjit::{function, random, DType, Tensor};

/// Held by each test: one of them sets the global seed and compares draws from it, so
/// the binary's tests take turns with the global random sequence.
static RANDOM: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn host(t: &Tensor) -> Vec<f64> {
    t.cast(DType::F64).to_vec::<f64>().unwrap()
}

#[test]
fn rescaling_and_normalization_standardise_features() {
    let _turn = RANDOM.lock().unwrap_or_else(|p| p.into_inner());
    let pixels = Tensor::from_vec((0..12).map(|i| i * 20).collect::<Vec<i64>>(), [3, 4]).unwrap();
    let r = Rescaling::new(1.0 / 255.0).offset(-0.5).call(&pixels, false);
    assert_eq!(r.dtype(), DType::F32);
    for (g, i) in host(&r).iter().zip(0..) {
        assert!((g - (f64::from(i * 20) / 255.0 - 0.5)).abs() < 1e-6);
    }
    // Features with different scales and offsets.
    let data = &random::normal([200, 3], 0.0, 1.0, DType::F32, Some(1))
        * &Tensor::from_vec(vec![1.0f32, 10.0, 0.1], [3]).unwrap()
        + &Tensor::from_vec(vec![5.0f32, -3.0, 0.0], [3]).unwrap();
    let norm = Normalization::new();
    norm.adapt(&data).unwrap();
    let v = host(&data);
    for f in 0..3 {
        let col: Vec<f64> = (0..200).map(|i| v[i * 3 + f]).collect();
        let mean = col.iter().sum::<f64>() / 200.0;
        let var = col.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 200.0;
        norm.call(&data, false);
        let (m, s) = norm.statistics().unwrap();
        assert!((host(&m.read())[f] - mean).abs() < 1e-5 * mean.abs().max(1.0));
        assert!((host(&s.read())[f] - var).abs() < 1e-5 * var);
    }
    let y = norm.call(&data, false);
    let (mean, var) = (y.mean(0, false), y.variance(0, false));
    for (m, s) in host(&mean).iter().zip(host(&var)) {
        assert!(m.abs() < 1e-5 && (s - 1.0).abs() < 1e-4, "{m} {s}");
    }
    assert!(norm.trainable_variables().is_empty(), "statistics are not trained");
    // Inverted with the same statistics, standardised values come back.
    let (m, s) = norm.statistics().unwrap();
    let inv = Normalization::with_statistics(&host(&m.read()), &host(&s.read())).invert(true);
    let back = inv.call(&y, false);
    for (a, b) in host(&back).iter().zip(&v) {
        assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn adapting_again_changes_a_traced_model_without_retracing() {
    let _turn = RANDOM.lock().unwrap_or_else(|p| p.into_inner());
    let norm = Normalization::new();
    norm.adapt(&random::uniform([50, 2], 0.0, 1.0, DType::F32, Some(2))).unwrap();
    let x = random::normal([4, 2], 0.0, 1.0, DType::F32, Some(3));
    let layer = norm.clone();
    let f = function("normalise", move |x: Tensor| layer.call(&x, false));
    let before = f.call(x.clone());
    norm.adapt(&random::uniform([50, 2], 10.0, 20.0, DType::F32, Some(4))).unwrap();
    let after = f.call(x.clone());
    assert_ne!(host(&before), host(&after));
    assert_eq!(host(&after), host(&norm.call(&x, false)), "traced == eager");
    assert_eq!(f.tracing_count(), 1);
    let err = norm.adapt(&random::uniform([5, 3], 0.0, 1.0, DType::F32, Some(5))).unwrap_err().to_string();
    assert!(err.contains("the layer was built for 2 features, the data has 3"), "{err}");
}

#[test]
fn noise_layers_are_identity_at_inference_and_noisy_in_training() {
    let _turn = RANDOM.lock().unwrap_or_else(|p| p.into_inner());
    let x = random::uniform([64, 50, 8], 0.5, 1.5, DType::F32, Some(6));
    let layers: Vec<ModuleRef> =
        vec![GaussianNoise::new(0.3).boxed(), GaussianDropout::new(0.2).boxed(), SpatialDropout1D::new(0.25).boxed()];
    for l in &layers {
        assert_eq!(host(&l.call(&x, false)), host(&x), "{}", l.name());
    }
    let xv = host(&x);
    // GaussianNoise: additive N(0, 0.09).
    let d: Vec<f64> = host(&layers[0].call(&x, true)).iter().zip(&xv).map(|(y, x)| y - x).collect();
    let (mean, var) = moments(&d);
    assert!(mean.abs() < 0.01 && (var - 0.09).abs() < 0.005, "{mean} {var}");
    // GaussianDropout: multiplicative N(1, 0.2/0.8).
    let r: Vec<f64> = host(&layers[1].call(&x, true)).iter().zip(&xv).map(|(y, x)| y / x).collect();
    let (mean, var) = moments(&r);
    assert!((mean - 1.0).abs() < 0.01 && (var - 0.25).abs() < 0.01, "{mean} {var}");
    // SpatialDropout1D: each (example, channel) dropped at every step or kept scaled.
    let y = host(&layers[2].call(&x, true));
    let mut dropped = 0;
    for b in 0..64 {
        for c in 0..8 {
            let at = |t: usize| (b * 50 + t) * 8 + c;
            let zero = y[at(0)] == 0.0;
            dropped += usize::from(zero);
            for t in 0..50 {
                let want = if zero { 0.0 } else { xv[at(t)] / 0.75 };
                assert!((y[at(t)] - want).abs() < 1e-5, "example {b} channel {c} step {t}");
            }
        }
    }
    assert!((dropped as f64 / 512.0 - 0.25).abs() < 0.06, "{dropped} of 512 channels dropped");
    // Traced draws equal eager ones from the same point of the sequence.
    let img = random::uniform([2, 5, 5, 3], 0.0, 1.0, DType::F32, Some(7));
    let sd2 = SpatialDropout2D::new(0.5);
    let layer = sd2.clone();
    let f = function("spatial_dropout", move |x: Tensor| layer.call(&x, true));
    random::set_seed(11);
    let eager = host(&sd2.call(&img, true));
    random::set_seed(11);
    assert_eq!(host(&f.call(img.clone())), eager);
    let r = std::panic::catch_unwind(|| GaussianDropout::new(1.0));
    assert!(r.err().unwrap().downcast::<String>().unwrap().contains("GaussianDropout: rate must be in [0, 1), got 1"));
}

#[test]
fn seeded_noise_repeats_whatever_else_draws_and_moves_on_each_call() {
    let _turn = RANDOM.lock().unwrap_or_else(|p| p.into_inner());
    let x = random::normal([4, 6, 3], 0.0, 1.0, DType::F32, Some(90));
    let layers = |seed: u64| -> Vec<ModuleRef> {
        vec![
            GaussianNoise::new(0.5).with_seed(seed).boxed(),
            GaussianDropout::new(0.3).with_seed(seed).boxed(),
            SpatialDropout1D::new(0.5).with_seed(seed).boxed(),
        ]
    };
    let (first, second) = (layers(7), layers(7));
    for (i, (f, g)) in first.iter().zip(&second).enumerate() {
        let a1 = host(&f.call(&x, true));
        random::uniform([100], 0.0, 1.0, DType::F32, None); // other draws in between
        assert_eq!(a1, host(&g.call(&x, true)), "layer {i}: the same seed, the same first draw");
        assert_ne!(host(&f.call(&x, true)), a1, "layer {i}: the next call draws anew");
    }
    // Traced: the first call of a fresh seeded layer equals the eager first call.
    let eager = host(&layers(11)[0].call(&x, true));
    let traced_layer = GaussianNoise::new(0.5).with_seed(11);
    let traced = function("seeded_noise", move |x: Tensor| traced_layer.call(&x, true));
    assert_eq!(host(&traced.call(x.clone())), eager);
}

fn moments(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (mean, v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64)
}

#[test]
fn repeat_vector_and_permute_rearrange_axes() {
    let _turn = RANDOM.lock().unwrap_or_else(|p| p.into_inner());
    let x = random::normal([2, 3], 0.0, 1.0, DType::F32, Some(8));
    let r = RepeatVector::new(4).call(&x, false);
    assert_eq!(r.dims(), &[2, 4, 3]);
    assert_eq!(host(&r.narrow(1, 2, 1).reshape([2, 3])), host(&x));
    let s = random::normal([2, 3, 4, 5], 0.0, 1.0, DType::F32, Some(9));
    let p = Permute::new(&[3, 1, 2]);
    let y = p.call(&s, false);
    assert_eq!(y.dims(), &[2, 5, 3, 4]);
    assert_eq!(p.output_shape(&[None, Some(3), Some(4), Some(5)]), [None, Some(5), Some(3), Some(4)]);
    let (sv, yv) = (host(&s), host(&y));
    // y[b, i, j, k] = s[b, j, k, i]: check b = 1, i = 2, j = 1, k = 3.
    let b = 1;
    assert_eq!(yv[((b * 5 + 2) * 3 + 1) * 4 + 3], sv[((b * 3 + 1) * 4 + 3) * 5 + 2]);
    let r = std::panic::catch_unwind(|| Permute::new(&[1, 3]));
    assert!(r.err().unwrap().downcast::<String>().unwrap().contains("dims must be a permutation of 1..=2"));
}

#[test]
fn group_and_unit_normalization_match_host_formulas() {
    let _turn = RANDOM.lock().unwrap_or_else(|p| p.into_inner());
    let x = random::normal([2, 3, 3, 6], 1.0, 2.0, DType::F32, Some(10));
    let g = GroupNormalization::new(3).epsilon(1e-5);
    let y = host(&g.call(&x, false));
    let xv = host(&x);
    for b in 0..2 {
        for group in 0..3 {
            // Every position, channels 2·group and 2·group + 1.
            let idx: Vec<usize> = (0..9).flat_map(|p| (0..2).map(move |k| (b * 9 + p) * 6 + group * 2 + k)).collect();
            let vals: Vec<f64> = idx.iter().map(|&i| xv[i]).collect();
            let (mean, var) = moments(&vals);
            for &i in &idx {
                let want = (xv[i] - mean) / (var + 1e-5).sqrt();
                assert!((y[i] - want).abs() < 1e-4, "{} vs {want}", y[i]);
            }
        }
    }
    let r = std::panic::catch_unwind(|| GroupNormalization::new(4).with_name("gn").call(&x, false));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("GroupNormalization 'gn': 6 channels cannot be split into 4 groups"), "{msg}");
    let u = host(&UnitNormalization::new().call(&x, false));
    for row in u.chunks(6) {
        assert!((row.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn a_model_with_the_new_layers_trains_eager_and_traced_alike() {
    let _turn = RANDOM.lock().unwrap_or_else(|p| p.into_inner());
    let x = random::normal([32, 6, 4], 0.0, 1.0, DType::F32, Some(12));
    let y = x.sum(vec![1i64, 2], false).gt(0.0).cast(DType::F32).reshape([32, 1]);
    let run = |eager: bool| {
        tensorjit::nn::reset_names();
        let norm = Normalization::new();
        norm.adapt(&x).unwrap();
        let model = Sequential::new(vec![
            norm.boxed(),
            Permute::new(&[2, 1]).boxed(),
            GroupNormalization::new(2).boxed(),
            Permute::new(&[2, 1]).boxed(),
            Flatten::new().boxed(),
            Dense::new(1).kernel_initializer(Initializer::Constant(0.05)).boxed(),
        ])
        .with_input_shape(&[6, 4]);
        model.compile(AdamW::new(0.01), Loss::BinaryCrossentropy { from_logits: true }, &[Metric::Accuracy], eager);
        let opts = FitOptions { epochs: 3, batch_size: 8, verbose: false, ..FitOptions::default() };
        model.fit(&x, &y, &opts).unwrap().get("loss")
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!(eager, traced);
    assert!(eager[2] < eager[0], "{eager:?}");
}
