use tensorjit::prelude::*;

struct Dense {
    w: Variable,
}

impl Dense {
    #[tf_function]
    fn call(&self, x: &Tensor) -> Tensor {
        x.matmul(&self.w.read())
    }
}

fn main() {}
