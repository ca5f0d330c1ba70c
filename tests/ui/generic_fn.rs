use tensorjit::prelude::*;

#[tf_function]
fn apply<F: Fn(&Tensor) -> Tensor>(x: &Tensor, f: F) -> Tensor {
    f(x)
}

fn main() {}
