//! AutoGraph: `if` / `while` / `for … in tf_range` on tensor conditions inside
//! `#[tf_function]`, eager vs traced bit for bit, and plain Rust control flow untouched.

mod common;
use common::*;
use tensorjit::prelude::*;

fn bits(t: &Tensor) -> Vec<u32> {
    f32s(t).iter().map(|v| v.to_bits()).collect()
}

/// Runs `f` eagerly (the run-eagerly switch) and traced and checks the results agree.
fn eager_and_traced<T>(f: impl Fn() -> T) -> (T, T) {
    config::run_functions_eagerly(true);
    let eager = f();
    config::run_functions_eagerly(false);
    (eager, f())
}

// The switch is process-wide: tests that flip it take this lock.
static SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[tf_function]
fn relu_or_scale(x: &Tensor) -> Tensor {
    let s = x.sum_all();
    let mut y = x.clone();
    if s.gt(0.0) {
        y = &y * 2.0;
    } else {
        y = y.relu() - 1.0;
    }
    // `if` as an expression, and an `else if` chain, nested.
    let z = if s.gt(10.0) {
        y.exp()
    } else if s.lt(-10.0) {
        y.tanh()
    } else {
        if y.max(0, false).gt(1.0) {
            &y * 0.5
        } else {
            y.clone()
        }
    };
    z + 1.0
}

#[test]
fn if_else_on_tensor_scalars_matches_eager_bits() {
    let _g = SWITCH.lock().unwrap();
    for (seed, lo, hi) in [(1, 0.5, 3.0), (2, -3.0, -0.5), (3, -0.2, 0.2), (4, 0.0, 0.05), (5, -1.0, 0.5)] {
        let x = rand_f32(seed, &[13], lo, hi);
        let (e, t) = eager_and_traced(|| relu_or_scale(&x));
        assert_eq!(bits(&e), bits(&t), "seed {seed}");
    }
    assert_eq!(relu_or_scale::tracing_count(), 1, "one trace serves every branch");
    let text = relu_or_scale::concrete_functions()[0].ir_text();
    assert_eq!(text.matches(" = cond ").count(), 4, "{text}");
}

/// W6 of WORKLOADS.md written as plain Rust.
#[tf_function]
fn grow(x: &Tensor) -> Tensor {
    let mut x = x.clone();
    while x.sum_all().lt(1000.0) {
        x = &x * 1.5 + 1.0;
    }
    x
}

#[test]
fn while_on_a_tensor_condition_is_one_while_region() {
    let _g = SWITCH.lock().unwrap();
    let x = Tensor::ones([16], DType::F32);
    let (e, t) = eager_and_traced(|| grow(&x));
    assert_eq!(bits(&e), bits(&t));
    assert_eq!(f32s(&t).iter().sum::<f32>(), 1198.1875);
    let y = rand_f32(6, &[16], 0.1, 50.0);
    let (e, t) = eager_and_traced(|| grow(&y));
    assert_eq!(bits(&e), bits(&t));
    let text = grow::concrete_functions()[0].ir_text();
    assert_eq!(text.matches("while[").count(), 1, "{text}");
    assert_eq!(text.matches("mul ").count(), 1, "the body is traced once, not unrolled:\n{text}");
}

/// Σ of odd i in [1, n] while the sum stays below `cap`: `continue` and `break` on
/// tensor conditions.
#[tf_function]
fn odd_sum(n: &Tensor, cap: &Tensor) -> (Tensor, Tensor) {
    let mut i = Tensor::scalar(0i32);
    let mut s = Tensor::scalar(0i32);
    while i.lt(n) {
        i = &i + 1;
        if (&i - i.floordiv(2) * 2).eq(0) {
            continue;
        }
        if (&s + &i).gt(cap) {
            break;
        }
        s = &s + &i;
    }
    (i, s)
}

#[test]
fn break_and_continue_on_tensor_conditions() {
    let _g = SWITCH.lock().unwrap();
    let rust = |n: i32, cap: i32| {
        let (mut i, mut s) = (0, 0);
        while i < n {
            i += 1;
            if i % 2 == 0 {
                continue;
            }
            if s + i > cap {
                break;
            }
            s += i;
        }
        (i, s)
    };
    for (n, cap) in [(10, 1000), (10, 10), (1, 0), (0, 5), (37, 100)] {
        let (nt, ct) = (Tensor::scalar(n), Tensor::scalar(cap));
        let ((ei, es), (ti, ts)) = eager_and_traced(|| odd_sum(&nt, &ct));
        let want = rust(n, cap);
        for (got, what) in [((ei, es), "eager"), ((ti, ts), "traced")] {
            let got = (got.0.to_scalar::<i32>().unwrap(), got.1.to_scalar::<i32>().unwrap());
            assert_eq!(got, want, "{what}: n={n} cap={cap}");
        }
    }
    assert_eq!(odd_sum::tracing_count(), 1);
}

/// An early return on a tensor condition.
#[tf_function]
fn safe_log(x: &Tensor) -> Tensor {
    if x.min(0, false).le(0.0) {
        return Tensor::zeros_like(x);
    }
    let y = x.log();
    y * 2.0
}

#[test]
fn early_return_on_a_tensor_condition() {
    let _g = SWITCH.lock().unwrap();
    for (seed, lo) in [(7, 0.1), (8, -1.0)] {
        let x = rand_f32(seed, &[9], lo, 2.0);
        let (e, t) = eager_and_traced(|| safe_log(&x));
        assert_eq!(bits(&e), bits(&t));
    }
    assert!(f32s(&safe_log(&rand_f32(9, &[4], -1.0, -0.5))).iter().all(|v| *v == 0.0));
}

/// A loop that updates variables (and prints) on every trip, over `tf_range`.
#[tf_function]
fn accumulate(total: &Variable, count: &Variable, n: &Tensor) -> Tensor {
    let mut last = Tensor::scalar(0.0f32);
    for i in tf_range(0, n, 1) {
        let v = i.cast(DType::F32) * 0.5;
        total.assign_add(&v);
        if (&i - i.floordiv(3) * 3).eq(0) {
            count.assign_add(Tensor::scalar(1.0f32));
        }
        tf_print!("step {} total {}", i, total.read());
        last = v;
    }
    last
}

#[test]
fn loops_update_variables_in_order() {
    let _g = SWITCH.lock().unwrap();
    let run = || {
        let (t, c) = (Variable::new(Tensor::scalar(1.0f32), "t"), Variable::new(Tensor::scalar(0.0f32), "c"));
        let last = accumulate(&t, &c, &Tensor::scalar(7i32));
        (last.to_scalar::<f32>().unwrap(), t.read().to_scalar::<f32>().unwrap(), c.read().to_scalar::<f32>().unwrap())
    };
    let (e, t) = eager_and_traced(run);
    assert_eq!(e, t);
    assert_eq!(t, (3.0, 1.0 + 0.5 * 21.0, 3.0));
}

/// Bool conditions stay Rust: non-tensor state, Vec pushes, loops over Rust ranges
/// (unrolled while tracing), `break` out of them, `?`, and `return` anywhere.
#[tf_function]
fn rust_control_flow(x: &Tensor, k: usize) -> Result<Tensor, tensorjit::Error> {
    let mut y = x.clone();
    let mut names = Vec::new();
    let mut n = 0usize;
    for i in 0..10 {
        if i >= k {
            break;
        }
        if i % 2 == 0 {
            names.push(format!("even {i}"));
            continue;
        }
        n += 1;
        y = &y + 1.0;
    }
    while n > 0 {
        n -= 1;
        y = &y * 2.0;
    }
    if names.len() > 100 {
        return Err(tensorjit::Error::Function("too many".into()));
    }
    let _ = Tensor::from_vec(vec![1.0f32], [1])?;
    Ok(y)
}

#[test]
fn bool_conditions_keep_rust_semantics() {
    let x = rand_f32(10, &[3], -1.0, 1.0);
    let y = rust_control_flow(&x, 5).unwrap();
    // i = 1, 3 add 1 → n = 2 → ×4.
    assert_eq!(bits(&y), bits(&((&x + 1.0 + 1.0) * 2.0 * 2.0)));
    assert_eq!(rust_control_flow::tracing_count(), 1);
    rust_control_flow(&x, 2).unwrap();
    assert_eq!(rust_control_flow::tracing_count(), 2, "a new static k retraces");
}

#[tf_function]
fn counts_in_a_tensor_branch(x: &Tensor) -> Tensor {
    let mut hits = 0;
    if x.sum_all().gt(0.0) {
        hits += 1;
    }
    x * hits as f32
}

#[test]
fn a_rust_value_that_differs_between_tensor_branches_is_a_clear_error() {
    let m = panic_message(|| {
        counts_in_a_tensor_branch(&rand_f32(11, &[2], -1.0, 1.0));
    });
    assert!(m.contains("`hits` is not a tensor but gets different values in the two branches"), "{m}");
    assert!(m.contains("autograph.rs:"), "at the user's `if`: {m}");
}

#[tf_function(autograph = false)]
fn no_autograph(x: &Tensor, flip: bool) -> Tensor {
    if flip {
        x.neg()
    } else {
        x.clone()
    }
}

#[test]
fn autograph_can_be_turned_off() {
    let x = rand_f32(12, &[2], -1.0, 1.0);
    assert_eq!(bits(&no_autograph(&x, true)), bits(&x.neg()));
}
