//! `while` loops on a GPU as one launch (`ptx::render_loop`), on every machine: device
//! plans whose launcher runs their loops on the PTX interpreter give the bits of the
//! same loops run op by op on a GPU — the condition's reductions in the GPU row
//! reduction's order, the kernels' arithmetic the CPU's — for W6, for loops whose
//! reductions feed the next trip, for loops that swap their variables, and with a trip
//! limit. A GPU (tests/gpu/main.rs) checks the same loops there.

mod common;

use common::emulated::emulated_plan;
use common::{f32s, rand_f32};
use tensorjit::prelude::*;
use tensorjit::trace::backend::Executable;
use tensorjit_jit::ptx::emulate::{Arg, Program};
use tensorjit_jit::ptx::{render_row_reduce, RowReduce, BLOCK};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The GPU's eager sum of `v`: the row reduction of one row, on the emulator.
fn gpu_sum(v: &[f32]) -> f32 {
    let program = Program::parse(&render_row_reduce(RowReduce::Sum, "row")).expect("the emulator reads it");
    let mut buffers = vec![v.to_vec(), vec![f32::NAN]];
    let args = [Arg::Buffer(0), Arg::Buffer(1), Arg::U64(1), Arg::U64(v.len() as u64)];
    program.run(1, BLOCK, &args, &mut buffers).expect("the reduction runs");
    buffers[1][0]
}

/// Runs a traced function's graph as an emulated device plan; its description and
/// results.
fn run_plan(f: &tensorjit::ConcreteFunction, inputs: &[&Tensor]) -> (String, Vec<Tensor>) {
    let plan = emulated_plan(&f.graph);
    let out = plan.run(inputs, &[]).expect("the plan runs");
    (plan.describe(), out.into_iter().collect())
}

#[test]
fn w6_runs_as_one_launch_with_the_eager_bits() {
    let w6 = function("w6", |x: Tensor| while_loop(|x: &Tensor| x.sum_all().lt(1000.0), |x| &x * 1.5 + 1.0, x));
    for (seed, n) in [(1u64, 16usize), (2, 300), (3, 1000)] {
        // W6's input, and random ones (sums of integers and halves: exact in any order).
        let x = if seed == 1 {
            Tensor::ones([16], DType::F32)
        } else {
            let r = rand_f32(seed, &[n], -1.0, 4.0);
            Tensor::from_vec(f32s(&r).iter().map(|v| (v * 2.0).round() / 2.0).collect::<Vec<_>>(), [n]).unwrap()
        };
        let eager = w6.call(x.clone());
        let traced = w6.concrete_functions();
        let (text, out) = run_plan(traced.last().expect("traced for this shape"), &[&x]);
        assert!(text.contains("1 while loop(s) run on the device"), "{text}");
        assert_eq!(bits(&f32s(&out[0])), bits(&f32s(&eager)), "W6 over {n}");
    }
    let (_, out) = run_plan(&w6.concrete_functions()[0], &[&Tensor::ones([16], DType::F32)]);
    assert!(f32s(&out[0]).iter().all(|&v| v == 74.88672), "W6's checksum elements");
}

/// The body reads a reduction of the loop variable, an outer value and a counter; the
/// condition compares a sum with a bound computed before the loop — each sum in the
/// GPU's order, so the reference replays the loop with the emulated row reduction.
#[test]
fn reductions_that_feed_the_next_trip_give_the_gpus_bits() {
    fn body(x: &Tensor, w: &Tensor, cap: Option<u64>) -> (Tensor, Tensor) {
        // The sum approaches 4·Σ|w| (x → x/2 + mean/4 + |w|): the bound is reached.
        let bound = w.abs().sum_all() * 3.0;
        let opts = WhileOptions { maximum_iterations: cap, ..Default::default() };
        let step = |(x, n): (Tensor, Tensor)| (&x * 0.5 + x.mean_all() * 0.25 + w.abs(), n + 1.0);
        while_loop_with(
            |(x, _): &(Tensor, Tensor)| x.sum_all().lt(&bound),
            step,
            (x.clone(), Tensor::scalar(0.0f32)),
            &opts,
        )
    }
    let mut cpu_differs = 0;
    for (seed, n, cap) in [(10u64, 300usize, None), (11, 1000, Some(3)), (12, 77, None)] {
        let (x, w) = (rand_f32(seed, &[n], -1.0, 1.0), rand_f32(seed + 100, &[n], -1.0, 1.0));
        let f = function("feed", move |(x, w): (Tensor, Tensor)| body(&x, &w, cap));
        let cpu = f.call((x.clone(), w.clone()));
        let (text, out) = run_plan(&f.concrete_functions()[0], &[&x, &w]);
        // The CPU sums in its own order: the check below tells the two orders apart.
        cpu_differs += usize::from(bits(&f32s(&cpu.0)) != bits(&f32s(&out[0])));
        assert!(text.contains("1 while loop(s) run on the device"), "{text}");
        // The same loop, op by op as the GPU runs it.
        let bound = f32s(&(w.abs().sum_all() * 3.0))[0];
        let wa = f32s(&w.abs());
        let (mut xv, mut trips) = (f32s(&x), 0u64);
        while cap.is_none_or(|c| trips < c) && gpu_sum(&xv) < bound {
            let m = gpu_sum(&xv) / n as f32;
            xv = xv.iter().zip(&wa).map(|(a, b)| a * 0.5 + m * 0.25 + b).collect();
            trips += 1;
        }
        assert!(trips >= 2, "the loop makes trips ({trips})");
        assert_eq!(bits(&f32s(&out[0])), bits(&xv), "x after {trips} trips (n = {n}, cap {cap:?})");
        assert_eq!(f32s(&out[1]), vec![trips as f32], "the trip counter");
    }
    assert!(cpu_differs > 0, "the GPU's summation order shows in the bits");
}

/// A body that yields its variables in another order moves them through the staging
/// room (all read before any is written).
#[test]
fn loops_that_swap_their_variables_give_the_eager_bits() {
    let f = function("swap", |(a, b): (Tensor, Tensor)| {
        while_loop(|(a, _): &(Tensor, Tensor)| a.sum_all().lt(500.0), |(a, b)| (&b + 1.0, a), (a, b))
    });
    let a = Tensor::from_vec((0..40).map(|i| (i % 7) as f32).collect::<Vec<_>>(), [40]).unwrap();
    let b = Tensor::from_vec((0..40).map(|i| (i % 3) as f32 - 1.0).collect::<Vec<_>>(), [40]).unwrap();
    let (ea, eb) = f.call((a.clone(), b.clone()));
    let (text, out) = run_plan(&f.concrete_functions()[0], &[&a, &b]);
    assert!(text.contains("1 while loop(s) run on the device"), "{text}");
    assert_eq!(bits(&f32s(&out[0])), bits(&f32s(&ea)));
    assert_eq!(bits(&f32s(&out[1])), bits(&f32s(&eb)));
}

/// A body whose kernel ends in a row reduction (a mean over the last axis, fused with
/// the square it averages): the summed expression goes through the arena's scratch
/// room and each row is reduced as the GPU's eager reduction of the last axis does.
#[test]
fn fused_row_reductions_in_a_loop_give_the_gpus_bits() {
    let f = function("rows", |x: Tensor| {
        let step = |x: Tensor| &x * 0.9 + (&x * &x).mean([-1i64], true) * 0.05 + 0.5;
        while_loop(|x: &Tensor| x.sum_all().lt(900.0), step, x)
    });
    let (rows, cols) = (8, 50);
    let x = rand_f32(30, &[rows, cols], -1.0, 1.0);
    let _ = f.call(x.clone());
    let (text, out) = run_plan(&f.concrete_functions()[0], &[&x]);
    assert!(text.contains("1 while loop(s) run on the device"), "{text}");
    assert!(text.contains("out mean e3 per row"), "the body has a kernel ending in a row mean:\n{text}");
    let mut xv = f32s(&x);
    let mut trips = 0;
    while gpu_sum(&xv) < 900.0 {
        let m: Vec<f32> =
            xv.chunks(cols).map(|r| gpu_sum(&r.iter().map(|a| a * a).collect::<Vec<_>>()) / cols as f32).collect();
        xv = xv.iter().enumerate().map(|(i, a)| a * 0.9 + m[i / cols] * 0.05 + 0.5).collect();
        trips += 1;
    }
    assert!(trips >= 2, "the loop makes trips ({trips})");
    assert_eq!(bits(&f32s(&out[0])), bits(&xv), "x after {trips} trips");
}

/// A loop whose arena passes `MAX_LOOP_ELEMENTS` runs step by step (one block would be
/// slower than the whole GPU), with the same results.
#[test]
fn loops_past_the_one_block_size_run_step_by_step() {
    use tensorjit_jit::ptx::MAX_LOOP_ELEMENTS;
    let w6 = function("w6_big", |x: Tensor| while_loop(|x: &Tensor| x.sum_all().lt(1e6), |x| &x * 1.5 + 1.0, x));
    let n = MAX_LOOP_ELEMENTS + 1;
    let x = Tensor::ones([n], DType::F32);
    let eager = w6.call(x.clone());
    let (text, out) = run_plan(&w6.concrete_functions()[0], &[&x]);
    assert!(!text.contains("run on the device"), "{text}");
    assert_eq!(bits(&f32s(&out[0])), bits(&f32s(&eager)));
}

/// Conditions of every comparison the loop takes on the device (`le`, `gt`, `ge`, `ne`),
/// over max and min reductions as well as sums: the eager trip counts and bits.
#[test]
fn every_comparison_and_reduction_decides_the_trips_as_eagerly() {
    let x = Tensor::from_vec((0..24).map(|i| (i % 5) as f32 * 0.75 + 0.5).collect::<Vec<_>>(), [4, 6]).unwrap();
    type Cond = fn(&Tensor) -> Tensor;
    let conds: [(&str, Cond, f32); 4] = [
        ("max <= 300", |x| x.max(Axes::All, false).le(300.0), 2.0),
        ("sum > 1", |x| x.sum_all().gt(1.0), 0.5),
        ("min >= 0.01", |x| x.min(Axes::All, false).ge(0.01), 0.5),
        ("mean != 0 (until it underflows)", |x| x.mean_all().ne(0.0), 0.25),
    ];
    for (what, cond, factor) in conds {
        let f = function("cmp", move |x: Tensor| while_loop(cond, move |x| &x * factor, x));
        let eager = f.call(x.clone());
        let (text, out) = run_plan(&f.concrete_functions()[0], &[&x]);
        assert!(text.contains("1 while loop(s) run on the device"), "{what}: {text}");
        assert_eq!(bits(&f32s(&out[0])), bits(&f32s(&eager)), "{what}");
    }
}
