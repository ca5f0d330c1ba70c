//! AutoGraph: ordinary Rust `if` / `while` / `for` on tensor values inside
//! `#[tf_function]`, traced into `cond` / `while` nodes — one graph, whatever path the
//! data takes at run time.
//!
//! Three programs, each run eagerly (the run-eagerly switch: plain Rust control flow
//! reading tensor values) and traced (one trace, the branch and trip count decided by
//! the graph), with the same results and the time per call of each:
//!
//! * the number of Collatz steps of n (a `while` with an `if`/`else` inside);
//! * FizzBuzz counts over `tf_range(1, n + 1, 1)` (a `for` over tensor bounds with an
//!   `else if` chain);
//! * a small RNN run over a sequence whose length is a tensor, stopping early with
//!   `break` once the hidden state saturates.
//!
//! `cargo run --release --example autograph`

use std::time::Instant;

use tensorjit::prelude::*;

#[tf_function]
fn collatz_steps(n: &Tensor) -> Tensor {
    let mut n = n.clone();
    let mut steps = Tensor::scalar(0i64);
    while n.gt(1i64) {
        if (&n - n.floordiv(2i64) * 2i64).eq(0i64) {
            n = n.floordiv(2i64);
        } else {
            n = &n * 3i64 + 1i64;
        }
        steps += 1i64;
    }
    steps
}

#[tf_function]
fn fizzbuzz(n: &Tensor) -> (Tensor, Tensor, Tensor) {
    let (mut fizz, mut buzz, mut both) = (Tensor::scalar(0i32), Tensor::scalar(0i32), Tensor::scalar(0i32));
    for i in tf_range(1, n + 1, 1) {
        let by3 = (&i - i.floordiv(3) * 3).eq(0);
        let by5 = (&i - i.floordiv(5) * 5).eq(0);
        if by3.logical_and(&by5) {
            both += 1;
        } else if by3 {
            fizz += 1;
        } else if by5 {
            buzz += 1;
        }
    }
    (fizz, buzz, both)
}

/// h ← tanh(x_t·W + h·U + b) for t < len, stopping once every |h| > 0.99.
#[tf_function]
fn rnn(xs: &Tensor, len: &Tensor, w: &Variable, u: &Variable, b: &Variable) -> (Tensor, Tensor) {
    let mut h = Tensor::zeros([xs.dims()[1], u.shape()[0]], DType::F32);
    let mut steps = Tensor::scalar(0i32);
    for t in tf_range(0, len, 1) {
        let x_t = xs.gather(&t, 0);
        h = (x_t.matmul(&w.read()) + h.matmul(&u.read()) + b).tanh();
        steps += 1;
        if h.abs().gt(0.99).cast(DType::F32).mean_all().eq(1.0) {
            break;
        }
    }
    (h, steps)
}

/// Median µs per call of `f` over `n` calls.
fn time_us<T>(n: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[n / 2]
}

/// Runs `f` eagerly and traced: (eager result, traced result, eager µs, traced µs).
fn both<T>(n: usize, f: impl Fn() -> T) -> (T, T, f64, f64) {
    config::run_functions_eagerly(true);
    let e = f();
    let te = time_us(n, &f);
    config::run_functions_eagerly(false);
    let t = f();
    let tt = time_us(n, &f);
    (e, t, te, tt)
}

fn int(t: &Tensor) -> i64 {
    t.cast(DType::I64).to_scalar::<i64>().unwrap_or(-1)
}

fn main() {
    println!("{:<34} {:>14} {:>14} {:>11} {:>11}", "program", "eager", "traced", "eager µs", "traced µs");
    for n in [27i64, 97, 871] {
        let x = Tensor::scalar(n);
        let (e, t, te, tt) = both(200, || collatz_steps(&x));
        println!("{:<34} {:>14} {:>14} {te:>11.1} {tt:>11.1}", format!("collatz_steps({n})"), int(&e), int(&t));
        assert_eq!(int(&e), int(&t));
    }
    for n in [15i32, 100] {
        let x = Tensor::scalar(n);
        let (e, t, te, tt) = both(200, || fizzbuzz(&x));
        let show = |r: &(Tensor, Tensor, Tensor)| format!("{}/{}/{}", int(&r.0), int(&r.1), int(&r.2));
        println!(
            "{:<34} {:>14} {:>14} {te:>11.1} {tt:>11.1}",
            format!("fizzbuzz({n}) fizz/buzz/both"),
            show(&e),
            show(&t)
        );
        assert_eq!(show(&e), show(&t));
    }
    let (d, hidden, batch, steps) = (8, 16, 4, 50);
    let xs = random::uniform([steps, batch, d], -1.0, 1.0, DType::F32, Some(3));
    let w = Variable::new(random::glorot_uniform([d, hidden], DType::F32, Some(4)), "rnn/w");
    let u = Variable::new(random::glorot_uniform([hidden, hidden], DType::F32, Some(5)), "rnn/u");
    let b = Variable::new(Tensor::full([hidden], 0.1, DType::F32), "rnn/b");
    for len in [10i32, 50] {
        let l = Tensor::scalar(len);
        let (e, t, te, tt) = both(100, || rnn(&xs, &l, &w, &u, &b));
        let same = e.0.to_vec::<f32>().ok() == t.0.to_vec::<f32>().ok();
        println!(
            "{:<34} {:>14} {:>14} {te:>11.1} {tt:>11.1}",
            format!("rnn(len {len}) steps, h identical: {same}"),
            int(&e.1),
            int(&t.1)
        );
        assert!(same, "eager and traced hidden states differ");
    }
    println!(
        "\ntraces: collatz {} (one per dtype/shape, not per n), fizzbuzz {}, rnn {}",
        collatz_steps::tracing_count(),
        fizzbuzz::tracing_count(),
        rnn::tracing_count()
    );
    println!(
        "\nThe traced Collatz loop (one `while` holding one `cond`):\n{}",
        collatz_steps::concrete_functions()[0].ir_text()
    );
}
