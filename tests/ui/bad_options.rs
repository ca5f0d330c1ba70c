use tensorjit::prelude::*;

#[tf_function(jit = true, autograph = "yes")]
fn step(x: &Tensor) -> Tensor {
    x * 2.0
}

fn main() {}
