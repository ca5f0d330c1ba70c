use tensorjit::prelude::*;

#[tf_function]
const fn double(x: &Tensor) -> Tensor {
    x * 2.0
}

fn main() {}
