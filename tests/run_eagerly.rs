//! The run-eagerly switch (its own test binary: the switch is process-wide).

mod common;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use tensorjit::prelude::*;

#[test]
fn run_eagerly_gives_the_same_results_and_updates() {
    let body_runs = Arc::new(AtomicUsize::new(0));
    let make = |runs: Arc<AtomicUsize>| {
        let v = Variable::new(t32(&[1.0, 2.0, 3.0], &[3]), "v");
        let v2 = v.clone();
        let f = function("step", move |(x,): (Tensor,)| {
            runs.fetch_add(1, Ordering::SeqCst);
            v2.assign(&v2.read() * &x + 0.25);
            v2.read().tanh()
        });
        (v, f)
    };
    let x = rand_f32(1, &[3], 0.5, 1.5);
    let (vt, ft) = make(body_runs.clone());
    let traced: Vec<Vec<f32>> = (0..4).map(|_| f32s(&ft.call((x.clone(),)))).collect();
    assert_eq!(body_runs.swap(0, Ordering::SeqCst), 1, "traced: the body runs once (at trace time)");

    config::run_functions_eagerly(true);
    let (ve, fe) = make(body_runs.clone());
    let eager: Vec<Vec<f32>> = (0..4).map(|_| f32s(&fe.call((x.clone(),)))).collect();
    assert_eq!(body_runs.swap(0, Ordering::SeqCst), 4, "eagerly: the body runs on every call");
    assert_eq!(fe.tracing_count(), 0);
    config::run_functions_eagerly(false);

    assert_eq!(traced, eager);
    assert_eq!(f32s(&vt.read()), f32s(&ve.read()));

    // The per-function option overrides the global switch.
    let (_, fo) = make(body_runs.clone());
    let fo = fo.with_run_eagerly(true);
    fo.call((x.clone(),));
    fo.call((x,));
    assert_eq!(body_runs.load(Ordering::SeqCst), 2);
    assert_eq!(fo.tracing_count(), 0);
}

#[test]
fn a_symbolic_tensor_that_escapes_its_trace_is_a_clear_error() {
    let leaked = Arc::new(std::sync::Mutex::new(None));
    let l2 = leaked.clone();
    let f = function("leak", move |(x,): (Tensor,)| {
        *l2.lock().unwrap() = Some(x.clone());
        x
    })
    .with_run_eagerly(false);
    f.call((t32(&[1.0], &[1]),));
    let x = leaked.lock().unwrap().clone().unwrap();
    assert!(x.is_symbolic());
    let msg = panic_message(move || {
        let _ = &x + 1.0;
    });
    assert!(msg.contains("symbolic (from a traced function's body) but no trace is active"), "{msg}");
}
