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
