//! Retracing: a table of what retraces and what does not, the warning, the LRU bound.

mod common;
use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use tensorjit::prelude::*;

#[test]
fn retrace_table() {
    let f = function("table", |(x, k): (Tensor, i32)| &x * k as f64);
    let a = rand_f32(1, &[2, 3], -1.0, 1.0);
    // (call, traces expected after it, what it shows)
    type Step<'a> = (Box<dyn Fn() + 'a>, usize, &'static str);
    let steps: Vec<Step> = vec![
        (Box::new(|| drop(f.call((a.clone(), 1)))), 1, "first call traces"),
        (Box::new(|| drop(f.call((rand_f32(2, &[2, 3], -1.0, 1.0), 1)))), 1, "same shape, new values: no retrace"),
        (Box::new(|| drop(f.call((rand_f32(3, &[4, 3], -1.0, 1.0), 1)))), 2, "new shape: retrace"),
        (Box::new(|| drop(f.call((a.cast(DType::F64), 1)))), 3, "new dtype: retrace"),
        (Box::new(|| drop(f.call((a.clone(), 2)))), 4, "new static value: retrace"),
        (Box::new(|| drop(f.call((a.clone(), 2)))), 4, "equal static value: no retrace"),
        (Box::new(|| drop(f.call((a.clone(), 1)))), 4, "back to a cached signature: no retrace"),
    ];
    for (call, want, what) in steps {
        call();
        assert_eq!(f.tracing_count(), want, "{what}");
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn excessive_retracing_is_warned_once_naming_the_argument() {
    let out = Captured::default();
    let sink = out.clone();
    let subscriber =
        tracing_subscriber::fmt().with_writer(move || sink.clone()).with_ansi(false).without_time().finish();
    let f = function("forward", |(x,): (Tensor,)| x.sum(1, false)).with_arg_names(&["x"]);
    tracing::subscriber::with_default(subscriber, || {
        for b in [128, 64, 32, 16, 8, 4, 2] {
            f.call((Tensor::zeros([b, 784], DType::F32),));
        }
    });
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("retraced").count(), 1, "warned once: {text}");
    assert!(text.contains("function `forward` retraced 5 times in its last 10 calls"), "{text}");
    assert!(text.contains("x: Tensor(f32[16,784]) → Tensor(f32[8,784])"), "{text}");
    assert!(text.contains("input_signature") && text.contains("reduce_retracing"), "{text}");
}

#[test]
fn cache_is_bounded_and_evicts_the_least_recently_used() {
    let f = function("lru", |(x,): (Tensor,)| &x + 1.0).with_cache_size(2);
    let s = |n: usize| Tensor::zeros([n], DType::F32);
    f.call((s(1),));
    f.call((s(2),));
    f.call((s(1),)); // 1 is now more recent than 2
    f.call((s(3),)); // evicts 2
    assert_eq!(f.concrete_functions().len(), 2);
    assert_eq!(f.tracing_count(), 3);
    f.call((s(1),));
    assert_eq!(f.tracing_count(), 3, "1 stayed cached");
    f.call((s(2),));
    assert_eq!(f.tracing_count(), 4, "2 was evicted and is traced again");
}

/// Binding one variable to two arguments is its own trace (an assignment through one
/// argument must show in reads through the other), and the aliasing shows in the
/// signature; distinct variables of the same spec share one trace.
#[test]
fn variable_aliasing_is_part_of_the_signature() {
    let f = function("alias_sig", |(a, b): (Variable, Variable)| {
        a.assign(a.read() + 1.0);
        b.read() * 2.0
    });
    let (u, v, w) = (
        Variable::new(Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap(), "u"),
        Variable::new(Tensor::from_vec(vec![5.0f32, 7.0], [2]).unwrap(), "v"),
        Variable::new(Tensor::from_vec(vec![-1.0f32, 0.5], [2]).unwrap(), "w"),
    );
    assert_eq!(f.call((u.clone(), u.clone())).to_vec::<f32>().unwrap(), vec![4.0, 6.0]);
    assert_eq!(f.call((v.clone(), w.clone())).to_vec::<f32>().unwrap(), vec![-2.0, 1.0]);
    assert_eq!(f.call((w.clone(), v.clone())).to_vec::<f32>().unwrap(), vec![12.0, 16.0]);
    assert_eq!(v.read().to_vec::<f32>().unwrap(), vec![6.0, 8.0]);
    assert_eq!(f.concrete_functions().len(), 2, "one trace per aliasing pattern");
    let sigs: Vec<String> = f.concrete_functions().iter().map(|c| format!("{:?}", c.signature)).collect();
    assert!(sigs.iter().any(|s| s.contains("alias: Some(0)")), "{sigs:?}");
}
