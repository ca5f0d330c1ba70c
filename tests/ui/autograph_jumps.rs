use tensorjit::prelude::*;

// `break` under a Tensor condition out of a Rust `for` loop (unrolled while tracing).
#[tf_function]
fn rust_loop_tensor_break(x: &Tensor) -> Tensor {
    let mut y = x.clone();
    for _ in 0..10 {
        if y.sum_all().gt(100.0) {
            break;
        }
        y = &y * 2.0;
    }
    y
}

// `loop` with a tensor `continue`.
#[tf_function]
fn loop_tensor_continue(x: &Tensor) -> Tensor {
    let mut n = 0;
    loop {
        n += 1;
        if n > 3 {
            break;
        }
        if x.sum_all().gt(0.0) {
            continue;
        }
    }
    x.clone()
}

fn main() {}
