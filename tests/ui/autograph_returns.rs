use tensorjit::prelude::*;

// A `return` nested inside a branch (not the last statement of an outermost `if`).
#[tf_function]
fn nested_return(x: &Tensor) -> Tensor {
    let mut y = x.clone();
    if x.sum_all().gt(0.0) {
        if y.sum_all().gt(10.0) {
            return y;
        }
        y = &y * 2.0;
    }
    y
}

// `?` under a Tensor condition.
#[tf_function]
fn try_in_branch(x: &Tensor) -> Result<Tensor, tensorjit::Error> {
    let mut y = x.clone();
    if x.sum_all().gt(0.0) {
        y = Tensor::from_vec(vec![1.0f32], [1])?;
    }
    Ok(y)
}

// A `return` in the body of a loop on a Tensor condition.
#[tf_function]
fn loop_return(x: &Tensor) -> Tensor {
    let mut y = x.clone();
    while y.sum_all().lt(100.0) {
        if y.sum_all().gt(50.0) {
            return y;
        }
        y = &y * 2.0;
    }
    y
}

// A labelled `break` under a Tensor condition.
#[tf_function]
fn labelled(x: &Tensor) -> Tensor {
    let mut y = x.clone();
    'outer: for _ in 0..3 {
        if y.sum_all().gt(0.0) {
            break 'outer;
        }
        y = &y + 1.0;
    }
    y
}

// A `return` inside `for … in tf_range(..)`, always a tensor loop.
#[tf_function]
fn range_return(x: &Tensor, n: &Tensor) -> Tensor {
    let mut y = x.clone();
    for _ in tf_range(0, n, 1) {
        y = &y + 1.0;
        return y;
    }
    y
}

// A condition that is neither a bool nor a Tensor.
#[tf_function]
fn int_condition(x: &Tensor) -> Tensor {
    let n = 3;
    let mut y = x.clone();
    while n {
        y = &y + 1.0;
    }
    y
}

fn main() {}
