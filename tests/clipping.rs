//! Gradient clipping: `clip_by_norm` and `clip_by_global_norm` against reference
//! arithmetic, the optimizers' `clipnorm` / `clipvalue` / `global_clipnorm` (one update
//! checked by hand, a traced training step bit-identical to eager, `fit` with each run
//! eagerly and traced alike), and the errors a user can cause.

mod common;
use common::*;
use tensorjit::nn::prelude::*;
use tensorjit::prelude::*;

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[test]
fn clip_by_norm_rescales_only_long_slices() {
    let x = rand_f64(1, &[5, 8], -1.0, 1.0);
    let xv = f64s(&x);
    for c in [0.5, 1.0, 100.0] {
        let whole = f64s(&x.clip_by_norm(c, Axes::All));
        let n = norm(&xv);
        let want: Vec<f64> = xv.iter().map(|v| v * c / n.max(c)).collect();
        assert_close(&whole, &want, 1e-14);
        let rows = f64s(&x.clip_by_norm(c, 1));
        for (r, row) in xv.chunks(8).enumerate() {
            let n = norm(row);
            let want: Vec<f64> = row.iter().map(|v| v * c / n.max(c)).collect();
            assert_close(&rows[r * 8..][..8], &want, 1e-14);
            assert!(norm(&rows[r * 8..][..8]) <= c * (1.0 + 1e-12));
        }
    }
    // A zero slice stays zero, and its gradient is finite (no √0 in the chain rule).
    let z = Tensor::concat(&[&Tensor::zeros([1, 3], DType::F32), &rand_f32(2, &[1, 3], 1.0, 2.0)], 0);
    let tape = GradientTape::new();
    tape.watch(&z);
    let clipped = z.clip_by_norm(1.0, 1);
    assert_eq!(f32s(&clipped)[..3], [0.0; 3]);
    let g = tape.gradient(&clipped.sum_all(), &[&z]).remove(0).unwrap();
    assert!(f32s(&g).iter().all(|v| v.is_finite()), "{:?}", f32s(&g));
}

#[test]
fn clip_by_global_norm_scales_all_tensors_by_one_factor() {
    let (a, b) = (rand_f64(3, &[4, 3], -2.0, 2.0), rand_f64(4, &[7], -2.0, 2.0));
    let all: Vec<f64> = f64s(&a).into_iter().chain(f64s(&b)).collect();
    let n = norm(&all);
    for c in [0.1, n * 0.5, n * 2.0] {
        let (scaled, global) = Tensor::clip_by_global_norm(&[&a, &b], c);
        assert!((global.to_scalar::<f64>().unwrap() - n).abs() < 1e-12);
        let factor = if n > c { c / n } else { 1.0 };
        assert_close(&f64s(&scaled[0]), &f64s(&a).iter().map(|v| v * factor).collect::<Vec<_>>(), 1e-14);
        assert_close(&f64s(&scaled[1]), &f64s(&b).iter().map(|v| v * factor).collect::<Vec<_>>(), 1e-14);
    }
    // All zeros stay zeros; an infinite norm gives NaN everywhere (TensorFlow).
    let z = Tensor::zeros([3], DType::F32);
    assert_eq!(f32s(&Tensor::clip_by_global_norm(&[&z], 1.0).0[0]), [0.0; 3]);
    let inf = Tensor::from_vec(vec![1.0f32, f32::INFINITY], [2]).unwrap();
    let (scaled, _) = Tensor::clip_by_global_norm(&[&inf, &rand_f32(5, &[2], -1.0, 1.0)], 1.0);
    assert!(scaled.iter().flat_map(f32s).all(f32::is_nan));
    let f = tensorjit::function("global_clip", |x: Tensor| Tensor::clip_by_global_norm(&[&x], 1.0).0.remove(0));
    assert!(f32s(&f.call(inf.clone())).iter().all(|v| v.is_nan()), "traced too: 0·‖g‖ is not folded away");
    let finite = rand_f32(6, &[5], -3.0, 3.0);
    let eager = Tensor::clip_by_global_norm(&[&finite], 1.0).0.remove(0);
    assert_eq!(f32s(&f.call(finite.clone())), f32s(&eager));
}

/// One SGD step (lr 0.5) on two variables with gradients `2·w` (loss Σw²), clipped.
fn one_step(opt: SGD) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let a = Variable::new(rand_f64(10, &[3, 2], -2.0, 2.0), "a");
    let b = Variable::new(rand_f64(11, &[4], -2.0, 2.0), "b");
    let (a0, b0) = (f64s(&a.read()), f64s(&b.read()));
    opt.minimize(&|| a.read().square().sum_all() + b.read().square().sum_all(), &[a.clone(), b.clone()]);
    (a0, b0, f64s(&a.read()), f64s(&b.read()))
}

#[test]
fn optimizers_clip_gradients_before_their_update() {
    let step = |w: &[f64], g: &[f64]| w.iter().zip(g).map(|(w, g)| w - 0.5 * g).collect::<Vec<_>>();
    let twice = |w: &[f64]| w.iter().map(|v| 2.0 * v).collect::<Vec<_>>();
    // clipnorm: each gradient on its own.
    let (a0, b0, a1, b1) = one_step(SGD::new(0.5).clipnorm(1.0));
    for (w0, w1) in [(&a0, &a1), (&b0, &b1)] {
        let g = twice(w0);
        let n = norm(&g);
        assert_close(w1, &step(w0, &g.iter().map(|v| v / n.max(1.0)).collect::<Vec<_>>()), 1e-14);
    }
    // global_clipnorm: one factor for both.
    let (a0, b0, a1, b1) = one_step(SGD::new(0.5).global_clipnorm(1.5));
    let n = norm(&[twice(&a0), twice(&b0)].concat());
    assert!(n > 1.5, "the test draws gradients that get clipped");
    for (w0, w1) in [(&a0, &a1), (&b0, &b1)] {
        let g: Vec<f64> = twice(w0).iter().map(|v| v * 1.5 / n).collect();
        assert_close(w1, &step(w0, &g), 1e-14);
    }
    // clipvalue: elementwise.
    let (a0, _, a1, _) = one_step(SGD::new(0.5).clipvalue(0.25));
    assert_close(&a1, &step(&a0, &twice(&a0).iter().map(|v| v.clamp(-0.25, 0.25)).collect::<Vec<_>>()), 1e-14);
    assert_eq!(Adam::new(0.1).global_clipnorm(2.0).clipping(), Clipping::GlobalNorm(2.0));
    assert_eq!(Adam::new(0.1).clipping(), Clipping::None);
}

fn train_step(opt: &dyn Optimizer, w: &Variable, b: &Variable, x: &Tensor, y: &Tensor) -> Tensor {
    let tape = GradientTape::new();
    let loss = ((x.matmul(&w.read()) + b.read()).tanh() - y).square().mean_all() * 50.0;
    let grads = tape.gradient(&loss, &[w, b]);
    opt.apply_gradients(&[(grads[0].clone(), w.clone()), (grads[1].clone(), b.clone())]);
    loss
}

#[test]
fn a_traced_step_with_clipping_matches_eager_bit_for_bit() {
    let (x, y) = (rand_f32(20, &[16, 3], -1.0, 1.0), rand_f32(21, &[16, 2], -1.0, 1.0));
    let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let optimizers: [fn() -> std::sync::Arc<dyn Optimizer>; 3] = [
        || std::sync::Arc::new(Adam::new(0.05).global_clipnorm(0.5)),
        || std::sync::Arc::new(SGD::new(0.1).momentum(0.9).clipnorm(0.3)),
        || std::sync::Arc::new(RMSprop::new(0.01).clipvalue(0.05)),
    ];
    for make in optimizers {
        let run = |traced: bool| {
            let opt = make();
            let w = Variable::new(rand_f32(22, &[3, 2], -1.0, 1.0), "w");
            let b = Variable::new(rand_f32(23, &[2], -1.0, 1.0), "b");
            let (o, wc, bc) = (opt.clone(), w.clone(), b.clone());
            let f = tensorjit::function("clipped_step", move |(x, y): (Tensor, Tensor)| {
                train_step(o.as_ref(), &wc, &bc, &x, &y)
            });
            let losses: Vec<Vec<u32>> = (0..4)
                .map(|_| {
                    let loss =
                        if traced { f.call((x.clone(), y.clone())) } else { train_step(opt.as_ref(), &w, &b, &x, &y) };
                    bits(&loss)
                })
                .collect();
            (losses, bits(&w.read()), bits(&b.read()), f.tracing_count())
        };
        let (eager, traced) = (run(false), run(true));
        assert_eq!((eager.3, traced.3), (0, 1));
        assert_eq!((&eager.0, &eager.1, &eager.2), (&traced.0, &traced.1, &traced.2));
    }
}

#[test]
fn fit_with_clipping_is_the_same_eager_and_traced() {
    let x = random::normal([48, 4], 0.0, 1.0, DType::F32, Some(30));
    let y = random::normal([48, 1], 0.0, 3.0, DType::F32, Some(31));
    let run = |run_eagerly: bool, clip: bool| {
        // Constant weights: the same model in both runs, whatever else draws random numbers.
        let model = Sequential::new(vec![
            Dense::new(8).activation(Activation::Tanh).kernel_initializer(Initializer::Constant(0.3)).boxed(),
            Dense::new(1).kernel_initializer(Initializer::Constant(-0.2)).boxed(),
        ])
        .with_input_shape(&[4]);
        let opt = if clip { Adam::new(0.05).global_clipnorm(0.1) } else { Adam::new(0.05) };
        model.compile(opt, Loss::MeanSquaredError, &[], run_eagerly);
        let opts = FitOptions { epochs: 2, batch_size: 16, shuffle: Some(5), verbose: false, ..FitOptions::default() };
        model.fit(&x, &y, &opts).unwrap().get("loss")
    };
    assert_eq!(run(true, true), run(false, true));
    assert_ne!(run(false, true), run(false, false), "the clipping bites");
}

#[test]
fn errors_name_the_optimizer_and_the_problem() {
    let msg = panic_message(|| drop(SGD::new(0.1).clipnorm(1.0).global_clipnorm(1.0)));
    assert!(
        msg.contains("SGD: only one of clipnorm, clipvalue and global_clipnorm can be set; clipnorm is set"),
        "{msg}"
    );
    assert!(msg.contains("clipping.rs"), "{msg}");
    let msg = panic_message(|| drop(Adam::new(0.1).clipvalue(-1.0)));
    assert!(msg.contains("Adam: clipvalue must be a positive finite number, got -1"), "{msg}");
    let msg = panic_message(|| drop(rand_f32(40, &[3], -1.0, 1.0).clip_by_norm(0.0, 0)));
    assert!(msg.contains("clip_by_norm: clip_norm must be a positive finite number, got 0"), "{msg}");
    let msg = panic_message(|| drop(Tensor::zeros([3], DType::I32).clip_by_norm(1.0, 0)));
    assert!(msg.contains("clip_by_norm") && msg.contains("float"), "{msg}");
    let msg = panic_message(|| drop(Tensor::clip_by_global_norm(&[], 1.0)));
    assert!(msg.contains("clip_by_global_norm: needs at least one tensor"), "{msg}");
}
