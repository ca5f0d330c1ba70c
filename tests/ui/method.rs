use tensorjit::prelude::*;

#[derive(Clone, FunctionArgs)]
struct Dense {
    w: Variable,
}

impl Dense {
    #[tf_function]
    fn call(&mut self, x: &Tensor) -> Tensor {
        x.matmul(&self.w.read())
    }
}

fn main() {}
