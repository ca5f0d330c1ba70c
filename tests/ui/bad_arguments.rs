use tensorjit::prelude::*;

#[tf_function]
fn step(x: &mut Tensor, (a, b): (Tensor, Tensor), f: impl Fn(i32) -> i32) -> Tensor {
    &a + &b
}

fn main() {}
