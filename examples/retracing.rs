//! When does a traced function retrace? Trace counts, the retracing warning, and the
//! bounded cache.
//!
//! `cargo run --release --example retracing`

use tensorjit::prelude::*;

#[tf_function]
fn forward(x: &Tensor, w: &Tensor) -> Tensor {
    println!("  (tracing forward for x: {})", x.type_string()); // plain Rust: runs only while tracing
    x.matmul(w).relu().sum(1, false)
}

#[tf_function(cache_size = 3)]
fn bounded(x: &Tensor) -> Tensor {
    x * 2.0
}

fn main() {
    // Show tensorjit's warnings on stderr.
    tracing_subscriber::fmt().with_writer(std::io::stderr).without_time().init();
    let w = random::glorot_uniform([784, 16], DType::F32, Some(0));

    println!("same shape, new values → one trace:");
    for seed in 0..3 {
        forward(&random::uniform([32, 784], 0.0, 1.0, DType::F32, Some(seed)), &w);
    }
    println!("  tracing_count = {}", forward::tracing_count());

    println!("a new batch size on every call → a trace per call, and a warning:");
    for b in [1usize, 2, 3, 4, 5, 6] {
        forward(&Tensor::zeros([b, 784], DType::F32), &w);
    }
    println!("  tracing_count = {}", forward::tracing_count());
    println!(
        "  signatures: {:?}",
        forward::concrete_functions().iter().map(|c| c.signature.to_string()).collect::<Vec<_>>()
    );

    println!("a bounded cache keeps the 3 most recently used traces:");
    for n in [1usize, 2, 3, 4, 1] {
        bounded(&Tensor::zeros([n], DType::F32));
    }
    println!(
        "  cached = {}, tracing_count = {} (n=1 was evicted by n=4, so it traced again)",
        bounded::concrete_functions().len(),
        bounded::tracing_count()
    );

    println!("the IR of one trace:\n{}", forward::concrete_functions()[0].ir_text());
}
