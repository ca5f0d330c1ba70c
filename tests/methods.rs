//! #[tf_function] on `&self` methods: each instance traces its own concrete functions
//! (fields keyed by identity), variables are read at call time, and a new instance at a
//! reused address never hits a stale trace.

mod common;
use common::*;
use tensorjit::prelude::*;

#[derive(Clone, FunctionArgs)]
struct Dense {
    kernel: Variable,
    bias: Variable,
    relu: bool,
}

impl Dense {
    fn new(seed: u64, i: usize, o: usize, relu: bool) -> Dense {
        Dense {
            kernel: Variable::new(rand_f32(seed, &[i, o], -1.0, 1.0), "dense/kernel"),
            bias: Variable::new(rand_f32(seed + 1, &[o], -1.0, 1.0), "dense/bias"),
            relu,
        }
    }

    fn eager(&self, x: &Tensor) -> Tensor {
        let y = x.matmul(&self.kernel.read()) + &self.bias;
        if self.relu {
            y.relu()
        } else {
            y
        }
    }

    #[tf_function]
    fn call(&self, x: &Tensor) -> Tensor {
        tf_print!("dense {}", self.bias.read());
        self.eager(x)
    }
}

#[test]
fn each_instance_traces_its_own_functions() {
    let x = rand_f32(1, &[4, 3], -1.0, 1.0);
    let a = Dense::new(10, 3, 2, true);
    let b = Dense::new(20, 3, 2, false);
    assert_eq!(f32s(&a.call(&x)), f32s(&a.eager(&x)));
    assert_eq!(f32s(&b.call(&x)), f32s(&b.eager(&x)));
    assert_eq!(f32s(&a.call(&x)), f32s(&a.eager(&x)));
    let traces = Dense::call_function().tracing_count();
    assert_eq!(traces, 2, "one trace per instance (the only test using Dense::call)");
    // A variable assigned between calls is read at call time.
    a.bias.assign(Tensor::zeros([2], DType::F32));
    assert_eq!(f32s(&a.call(&x)), f32s(&a.eager(&x)));
    assert_eq!(Dense::call_function().tracing_count(), traces);
    let ir = Dense::call_function().concrete_functions()[0].ir_text();
    assert!(ir.contains("variable \"dense/kernel\""), "instance variables are captured resources:\n{ir}");

    // New instances never reuse a dropped instance's trace.
    let x = rand_f32(2, &[2, 3], -1.0, 1.0);
    for seed in 0..20u64 {
        // Each instance lives on the stack at the same address as the previous one.
        let d = Dense::new(100 + 2 * seed, 3, 2, seed % 2 == 0);
        assert_eq!(f32s(&d.call(&x)), f32s(&d.eager(&x)), "instance {seed}");
    }
}
