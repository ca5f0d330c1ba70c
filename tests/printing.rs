//! tf_print! prints on every call, eager or traced; plain println! in a traced body runs
//! only while tracing. Checked on the real stdout of a child process.

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
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["tf_print_runs_every_call_println_only_while_tracing", "--exact", "--nocapture", "--test-threads=1"])
        .env("TJ_PRINT_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
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
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["the_environment_variable_runs_functions_eagerly", "--exact", "--nocapture", "--test-threads=1"])
            .env("TJ_ENV_CHILD", "1")
            .env("TENSORJIT_RUN_EAGERLY", eager)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(run("1").contains("RESULT [2.0, 4.0] TRACES 0"), "TENSORJIT_RUN_EAGERLY=1: no trace");
    assert!(run("0").contains("RESULT [2.0, 4.0] TRACES 1"), "TENSORJIT_RUN_EAGERLY=0: traced");
}
