use tensorjit::prelude::*;

#[tf_function]
async fn step(x: &Tensor) -> Result<Tensor, tensorjit::Error> {
    Ok(x * 2.0)
}

fn main() {}
