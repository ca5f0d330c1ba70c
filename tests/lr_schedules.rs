//! Learning-rate schedules: the rate of each update against the closed forms (through
//! the variable updates of SGD), `learning_rate()` following the step counter, a traced
//! step following the schedule without retracing and bit-identical to eager, `fit`
//! eager == traced, and the errors a user can cause.

mod common;
use common::*;
use tensorjit::nn::prelude::*;
use tensorjit::prelude::*;

#[test]
fn each_update_uses_the_rate_of_its_step() {
    // loss = Σ w: every gradient is 1, so each step subtracts exactly the learning rate.
    let schedules = [
        (
            LearningRateSchedule::ExponentialDecay { initial: 0.5, decay_steps: 2, decay_rate: 0.25, staircase: false },
            (0..6).map(|s| 0.5 * 0.25f64.powf(s as f64 / 2.0)).collect::<Vec<_>>(),
        ),
        (
            LearningRateSchedule::InverseTimeDecay { initial: 0.5, decay_steps: 3, decay_rate: 1.0, staircase: true },
            (0..6).map(|s| 0.5 / (1.0 + (s / 3) as f64)).collect(),
        ),
        (
            LearningRateSchedule::PiecewiseConstantDecay { boundaries: vec![1, 3], values: vec![0.3, 0.2, 0.1] },
            vec![0.3, 0.3, 0.2, 0.2, 0.1, 0.1],
        ),
    ];
    for (schedule, rates) in schedules {
        let opt = SGD::new(9.0).learning_rate_schedule(schedule.clone());
        let w = Variable::new(rand_f64(1, &[3], -1.0, 1.0), "w");
        let mut want = f64s(&w.read());
        for (step, rate) in rates.iter().enumerate() {
            assert!((opt.learning_rate() - rate).abs() < 1e-15, "{schedule:?} step {step}");
            opt.minimize(&|| w.read().sum_all(), std::slice::from_ref(&w));
            want.iter_mut().for_each(|v| *v -= rate);
            assert_close(&f64s(&w.read()), &want, 1e-14);
        }
    }
    // A fixed rate replaces the schedule.
    let opt = SGD::new(1.0).learning_rate_schedule(LearningRateSchedule::CosineDecay {
        initial: 0.5,
        decay_steps: 10,
        alpha: 0.0,
    });
    assert_eq!(opt.learning_rate(), 0.5);
    opt.set_learning_rate(0.01);
    assert_eq!(opt.learning_rate(), 0.01);
}

#[test]
fn a_traced_step_follows_the_schedule_bit_for_bit() {
    let (x, y) = (rand_f32(10, &[16, 3], -1.0, 1.0), rand_f32(11, &[16, 1], -1.0, 1.0));
    let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let run = |traced: bool| {
        let opt = std::sync::Arc::new(Adam::new(1.0).learning_rate_schedule(LearningRateSchedule::CosineDecay {
            initial: 0.1,
            decay_steps: 4,
            alpha: 0.05,
        }));
        let w = Variable::new(rand_f32(12, &[3, 1], -1.0, 1.0), "w");
        let (o, wc) = (opt.clone(), w.clone());
        let step = move |x: &Tensor, y: &Tensor| {
            o.minimize(&|| (x.matmul(&wc.read()) - y).square().mean_all(), std::slice::from_ref(&wc))
        };
        let s2 = step.clone();
        let f = tensorjit::function("scheduled_step", move |(x, y): (Tensor, Tensor)| s2(&x, &y));
        let weights: Vec<Vec<u32>> = (0..6)
            .map(|_| {
                if traced {
                    f.call((x.clone(), y.clone()));
                } else {
                    step(&x, &y);
                }
                bits(&w.read())
            })
            .collect();
        (weights, f.tracing_count(), opt.learning_rate())
    };
    let (eager, traced) = (run(false), run(true));
    assert_eq!(eager.0, traced.0);
    assert_eq!(traced.1, 1, "the schedule is computed in the graph: no retrace per step");
    assert!((traced.2 - 0.1 * 0.05).abs() < 1e-15, "past decay_steps: alpha · initial");
}

#[test]
fn fit_with_a_schedule_is_the_same_eager_and_traced() {
    let x = random::normal([48, 4], 0.0, 1.0, DType::F32, Some(20));
    let y = random::normal([48, 1], 0.0, 1.0, DType::F32, Some(21));
    let run = |run_eagerly: bool| {
        let model = Sequential::new(vec![Dense::new(1).kernel_initializer(Initializer::Constant(0.2)).boxed()])
            .with_input_shape(&[4]);
        let schedule =
            LearningRateSchedule::ExponentialDecay { initial: 0.2, decay_steps: 3, decay_rate: 0.5, staircase: true };
        model.compile(SGD::new(0.0).learning_rate_schedule(schedule), Loss::MeanSquaredError, &[], run_eagerly);
        let opts = FitOptions { epochs: 3, batch_size: 16, shuffle: Some(2), verbose: false, ..FitOptions::default() };
        model.fit(&x, &y, &opts).unwrap().get("loss")
    };
    let eager = run(true);
    assert_eq!(eager, run(false));
    assert!(eager[2] < eager[0], "it learns: {eager:?}");
}

#[test]
fn errors_name_the_schedule_and_the_problem() {
    let msg = panic_message(|| {
        drop(SGD::new(0.1).learning_rate_schedule(LearningRateSchedule::CosineDecay {
            initial: 0.1,
            decay_steps: 0,
            alpha: 0.0,
        }))
    });
    assert!(msg.contains("LearningRateSchedule: CosineDecay") && msg.contains("decay_steps must be positive"), "{msg}");
    assert!(msg.contains("lr_schedules.rs"), "{msg}");
    let pieces = |b: Vec<usize>, v: Vec<f64>| LearningRateSchedule::PiecewiseConstantDecay { boundaries: b, values: v };
    let msg = panic_message(|| drop(SGD::new(0.1).learning_rate_schedule(pieces(vec![3], vec![0.1]))));
    assert!(msg.contains("one more value than boundaries, got 1 values for 1 boundaries"), "{msg}");
    let msg = panic_message(|| drop(SGD::new(0.1).learning_rate_schedule(pieces(vec![3, 3], vec![0.1, 0.2, 0.3]))));
    assert!(msg.contains("boundaries must increase, got [3, 3]"), "{msg}");
}
