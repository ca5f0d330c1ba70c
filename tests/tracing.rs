//! Tracing: the Function cache, variables as resources, effects, tapes inside traces,
//! nesting, concurrency, run-eagerly parity, the IR text form.

mod common;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use tensorjit::prelude::*;

fn bits(t: &Tensor) -> Vec<u32> {
    f32s(t).iter().map(|v| v.to_bits()).collect()
}

#[test]
fn traces_once_per_signature_and_matches_eager_bits() {
    let f = function("chain", |(x, y): (Tensor, Tensor)| (&x * &y + 0.5).tanh() * (&x - &y).sigmoid() + x.relu());
    let (x, y) = (rand_f32(1, &[64], -2.0, 2.0), rand_f32(2, &[64], -2.0, 2.0));
    let eager = (&x * &y + 0.5).tanh() * (&x - &y).sigmoid() + x.relu();
    let traced = f.call((x.clone(), y.clone()));
    assert_eq!(bits(&traced), bits(&eager));
    assert_eq!(bits(&f.call((x.clone(), y.clone()))), bits(&eager));
    assert_eq!(f.tracing_count(), 1, "same signature: no retrace");
    let (x2, y2) = (rand_f32(3, &[5], -2.0, 2.0), rand_f32(4, &[5], -2.0, 2.0));
    f.call((x2, y2));
    assert_eq!(f.tracing_count(), 2, "new shape: retrace");
    f.call((x.cast(DType::F64), y.cast(DType::F64)));
    assert_eq!(f.tracing_count(), 3, "new dtype: retrace");
    assert_eq!(f.concrete_functions().len(), 3);
}

#[test]
fn static_arguments_are_part_of_the_key() {
    let f = function("scale", |(x, k, name): (Tensor, i64, Static<&'static str>)| {
        let _ = name;
        &x * k as f64
    });
    let x = rand_f32(5, &[3], -1.0, 1.0);
    f.call((x.clone(), 2, Static("a")));
    f.call((x.clone(), 2, Static("a")));
    assert_eq!(f.tracing_count(), 1, "equal static values: no retrace");
    let y = f.call((x.clone(), 3, Static("a")));
    assert_eq!(f.tracing_count(), 2, "new static value: retrace");
    assert_eq!(bits(&y), bits(&(&x * 3.0)));
    f.call((x, 3, Static("b")));
    assert_eq!(f.tracing_count(), 3);
}

#[test]
fn ir_text_of_w1_is_stable() {
    let f = function("w1", |(x,): (Tensor,)| &x * 2.0 + 1.0);
    f.call((rand_f32(6, &[4], -2.0, 2.0),));
    golden("w1", &f.concrete_functions()[0].ir_text());
}

#[test]
fn captured_variables_are_read_at_call_time_and_assigned_in_order() {
    let v = Variable::new(t32(&[1.0, 2.0], &[2]), "counter");
    let v2 = v.clone();
    let step = function("step", move |(x,): (Tensor,)| {
        let before = v2.read();
        v2.assign_add(&x);
        let after = v2.read();
        (before, after)
    });
    let one = t32(&[1.0, 1.0], &[2]);
    let (b, a) = step.call((one.clone(),));
    assert_eq!((f32s(&b), f32s(&a)), (vec![1.0, 2.0], vec![2.0, 3.0]));
    v.assign(t32(&[10.0, 20.0], &[2])); // an assignment outside between calls is seen
    let (b, a) = step.call((one,));
    assert_eq!((f32s(&b), f32s(&a)), (vec![10.0, 20.0], vec![11.0, 21.0]));
    assert_eq!(f32s(&v.read()), vec![11.0, 21.0]);
    assert_eq!(step.tracing_count(), 1);
    golden("captured_variable", &step.concrete_functions()[0].ir_text());
}

#[test]
fn variable_arguments_share_one_trace() {
    let sgd = function("sgd", |(p, g): (Variable, Tensor)| p.assign_sub(&g * 0.1));
    let a = Variable::new(t32(&[1.0, 1.0], &[2]), "a");
    let b = Variable::new(t32(&[5.0, 5.0], &[2]), "b");
    let g = t32(&[1.0, 2.0], &[2]);
    sgd.call((a.clone(), g.clone()));
    sgd.call((b.clone(), g.clone()));
    sgd.call((b.clone(), g));
    assert_eq!(sgd.tracing_count(), 1, "one trace for every variable of one spec");
    assert_eq!(f32s(&a.read()), vec![0.9, 0.8]);
    assert_eq!(f32s(&b.read()), vec![5.0 - 0.1 - 0.1, 5.0 - 0.2 - 0.2]);
}

#[test]
fn creating_a_variable_inside_a_trace_is_an_error() {
    let f = function("bad", |(x,): (Tensor,)| {
        let v = Variable::new(Tensor::zeros([2], DType::F32), "inner");
        &x + &v
    });
    let msg = panic_message(std::panic::AssertUnwindSafe(|| {
        f.call((t32(&[1.0, 2.0], &[2]),));
    }));
    assert!(msg.contains("variable 'inner' is created inside a traced function"), "{msg}");
    assert!(msg.contains("create variables outside it"), "{msg}");
}

#[test]
fn reading_a_symbolic_value_names_tf_print() {
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let s2 = seen.clone();
    let f = function("peek", move |(x,): (Tensor,)| {
        if let Err(e) = x.to_vec::<f32>() {
            *s2.lock().unwrap() = e.to_string();
        }
        x
    });
    f.call((t32(&[1.0], &[1]),));
    let msg = seen.lock().unwrap().clone();
    assert!(msg.contains("cannot read the value of symbolic tensor f32[1] while tracing"), "{msg}");
    assert!(msg.contains("tf_print!"), "{msg}");
}

#[test]
fn rust_side_effects_run_only_while_tracing_but_tf_print_is_an_op() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r2 = runs.clone();
    let f = function("effects", move |(x,): (Tensor,)| {
        r2.fetch_add(1, Ordering::SeqCst); // plain Rust: runs at trace time only
        tf_print!("x = {}", x); // an op: runs on every call
        &x + 1.0
    });
    for _ in 0..3 {
        f.call((t32(&[1.0], &[1]),));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let ir = f.concrete_functions()[0].ir_text();
    assert!(ir.contains("print \"x = {}\", %0 !e0"), "{ir}");
}

#[test]
fn tape_inside_a_traced_train_step_matches_eager_bit_for_bit() {
    let make = || {
        (
            Variable::new(rand_f32(10, &[3, 4], -1.0, 1.0), "dense/kernel"),
            Variable::new(Tensor::zeros([4], DType::F32), "dense/bias"),
        )
    };
    let step_body = dense_tanh_sgd_step;
    let (x, y) = (rand_f32(11, &[8, 3], -1.0, 1.0), rand_f32(12, &[8, 4], -1.0, 1.0));
    let (we, be) = make();
    let eager: Vec<Vec<u32>> = (0..5).map(|_| bits(&step_body(&we, &be, &x, &y))).collect();
    let (wt, bt) = make();
    let (w2, b2) = (wt.clone(), bt.clone());
    let step = function("train_step", move |(x, y): (Tensor, Tensor)| step_body(&w2, &b2, &x, &y));
    let traced: Vec<Vec<u32>> = (0..5).map(|_| bits(&step.call((x.clone(), y.clone())))).collect();
    assert_eq!(eager, traced, "losses");
    assert_eq!(bits(&we.read()), bits(&wt.read()), "updated kernel");
    assert_eq!(bits(&be.read()), bits(&bt.read()), "updated bias");
    assert_eq!(step.tracing_count(), 1);
    let ir = step.concrete_functions()[0].ir_text();
    assert!(ir.contains("assign_variable @0"), "{ir}");
}

#[test]
fn a_function_called_while_tracing_is_inlined() {
    let inner = function("inner", |(x,): (Tensor,)| x.exp());
    let i2 = inner.clone();
    let outer = function("outer", move |(x,): (Tensor,)| i2.call((&x * 2.0,)) + 1.0);
    let x = rand_f32(20, &[4], -1.0, 1.0);
    assert_eq!(bits(&outer.call((x.clone(),))), bits(&((&x * 2.0).exp() + 1.0)));
    assert_eq!(inner.tracing_count(), 0, "inlined into the outer graph");
    assert!(outer.concrete_functions()[0].ir_text().contains("exp %"));
}

#[test]
fn concurrent_calls_trace_each_signature_once() {
    let f = function("conc", |(x,): (Tensor,)| (&x * 3.0).sin());
    let inputs: Vec<Tensor> = [1usize, 2, 3].iter().map(|&n| rand_f32(30 + n as u64, &[n], -1.0, 1.0)).collect();
    let want: Vec<Vec<u32>> = inputs.iter().map(|x| bits(&(x * 3.0).sin())).collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (f, inputs, want) = (&f, &inputs, &want);
            s.spawn(move || {
                for i in 0..1000 {
                    let k = (t + i) % 3;
                    assert_eq!(bits(&f.call((inputs[k].clone(),))), want[k]);
                }
            });
        }
    });
    assert_eq!(f.tracing_count(), 3);
}

#[test]
fn random_draws_advance_per_call_like_eager() {
    let f = function("noise", |(x,): (Tensor,)| &x + &random::normal([3], 0.0, 1.0, DType::F32, None));
    let x = Tensor::zeros([3], DType::F32);
    random::set_seed(5);
    let eager: Vec<Vec<u32>> = (0..3).map(|_| bits(&(&x + &random::normal([3], 0.0, 1.0, DType::F32, None)))).collect();
    random::set_seed(5);
    let traced: Vec<Vec<u32>> = (0..3).map(|_| bits(&f.call((x.clone(),)))).collect();
    assert_eq!(eager, traced);
    assert_ne!(traced[0], traced[1]);
}

#[test]
fn a_body_that_panics_while_tracing_leaves_no_trace_behind() {
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f2 = fail.clone();
    let f = function("flaky", move |(x,): (Tensor,)| {
        if f2.load(Ordering::SeqCst) {
            let _ = &x + &Tensor::zeros([7], DType::F32); // shape error: panics mid-trace
        }
        &x * 2.0
    });
    let x = t32(&[1.0, 2.0], &[2]);
    let msg = panic_message(std::panic::AssertUnwindSafe(|| {
        f.call((x.clone(),));
    }));
    assert!(msg.contains("add: shapes [2] and [7] cannot be broadcast together"), "{msg}");
    assert!(!tensorjit::trace::is_tracing(), "the trace was ended by the unwinding");
    fail.store(false, Ordering::SeqCst);
    assert_eq!(f32s(&f.call((x.clone(),))), vec![2.0, 4.0], "the next call traces again");
    assert_eq!(f32s(&(&x + 1.0)), vec![2.0, 3.0], "eager ops work after the failed trace");
}

#[test]
fn options_set_after_cloning_apply_to_every_clone() {
    let f = function("opts", |(x,): (Tensor,)| &x + 1.0);
    let g = f.clone().with_run_eagerly(true).with_cache_size(1);
    let x = t32(&[1.0], &[1]);
    f.call((x.clone(),));
    g.call((x,));
    assert_eq!(f.tracing_count(), 0, "the option set through a clone applies to the original too");
}
