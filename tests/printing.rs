//! tf_print! prints on every call, eager or traced; plain println! in a traced body runs
//! only while tracing. Checked on the real stdout of a child process.

mod common;
use common::child_stdout;
use tensorjit::prelude::*;

#[tf_function]
fn noisy(x: &Tensor) -> Tensor {
    println!("RUST side effect");
    let y = x * 2.0;
    tf_print!("TF value {}", y);
    y
}

#[test]
fn tf_print_runs_every_call_println_only_while_tracing() {
    if std::env::var_os("TJ_PRINT_CHILD").is_some() {
        let x = Tensor::from_vec(vec![1.5f32], [1]).unwrap();
        for _ in 0..3 {
            noisy(&x);
        }
        config::run_functions_eagerly(true);
        noisy(&x);
        return;
    }
    let out = child_stdout("tf_print_runs_every_call_println_only_while_tracing", &[("TJ_PRINT_CHILD", "1")]);
    let stdout = out;
    // 3 traced calls (1 trace) + 1 eager call.
    assert_eq!(stdout.matches("RUST side effect").count(), 2, "once while tracing, once eagerly:\n{stdout}");
    assert_eq!(stdout.matches("TF value tensor([3.0], shape=[1], dtype=f32)").count(), 4, "every call:\n{stdout}");
}

#[tf_function]
fn doubled(x: &Tensor) -> Tensor {
    x * 2.0
}

#[test]
fn the_environment_variable_runs_functions_eagerly() {
    if std::env::var_os("TJ_ENV_CHILD").is_some() {
        let y = doubled(&Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap());
        println!("RESULT {:?} TRACES {}", y.to_vec::<f32>().unwrap(), doubled::tracing_count());
        return;
    }
    let run = |eager: &str| {
        child_stdout(
            "the_environment_variable_runs_functions_eagerly",
            &[("TJ_ENV_CHILD", "1"), ("TENSORJIT_RUN_EAGERLY", eager)],
        )
    };
    assert!(run("1").contains("RESULT [2.0, 4.0] TRACES 0"), "TENSORJIT_RUN_EAGERLY=1: no trace");
    assert!(run("0").contains("RESULT [2.0, 4.0] TRACES 1"), "TENSORJIT_RUN_EAGERLY=0: traced");
}

/// Prints on every trip and in one branch of an `if` on a tensor.
#[tf_function]
fn halve_until_small(x: &Tensor) -> Tensor {
    let mut x = x.clone();
    while x.sum_all().gt(1.0) {
        x = &x * 0.5;
        if x.sum_all().lt(2.0) {
            tf_print!("LOOP small {}", x.sum_all());
        } else {
            tf_print!("LOOP big {}", x.sum_all());
        }
    }
    x
}

#[test]
fn prints_in_traced_loops_and_branches_run_as_eagerly() {
    if std::env::var_os("TJ_LOOP_CHILD").is_some() {
        let x = Tensor::from_vec(vec![3.0f32, 2.5], [2]).unwrap();
        halve_until_small(&x);
        println!("TRACED-CALL-DONE");
        halve_until_small(&x);
        println!("SECOND-CALL-DONE");
        config::run_functions_eagerly(true);
        halve_until_small(&x);
        return;
    }
    let out = child_stdout("prints_in_traced_loops_and_branches_run_as_eagerly", &[("TJ_LOOP_CHILD", "1")]);
    let stdout = out;
    let lines = |s: &str| s.lines().filter_map(|l| l.find("LOOP").map(|i| l[i..].to_string())).collect::<Vec<_>>();
    let (first, rest) = stdout.split_once("TRACED-CALL-DONE").expect("child output");
    let (second, eager) = rest.split_once("SECOND-CALL-DONE").expect("child output");
    // 5.5 → 2.75 → 1.375 → 0.6875: three trips, the first "big".
    let want = vec![
        "LOOP big tensor(2.75, shape=[], dtype=f32)",
        "LOOP small tensor(1.375, shape=[], dtype=f32)",
        "LOOP small tensor(0.6875, shape=[], dtype=f32)",
    ];
    assert_eq!(lines(first), want, "{stdout}");
    assert_eq!(lines(second), want, "{stdout}");
    assert_eq!(lines(eager), want, "{stdout}");
}
