//! Golden text of what the JIT compiles for W2, W4 and W5 of WORKLOADS.md: the optimised
//! graph and its plan (which nodes fused into which kernel). `TENSORJIT_BLESS=1`
//! rewrites the files in `tests/golden/`.

mod common;
#[path = "../benches/common/mod.rs"]
mod workloads;

use common::golden_file;
use tensorjit::prelude::*;

#[test]
fn w2_is_one_kernel() {
    let f = function("w2", |(x, y): (Tensor, Tensor)| workloads::chain(&x, &y));
    let (x, y) = (workloads::uniform(1, &[64], -2.0, 2.0), workloads::uniform(2, &[64], -2.0, 2.0));
    f.call((x, y));
    let text = f.concrete_functions()[0].compiled_text();
    assert_eq!(text.matches("= kernel").count(), 1, "{text}");
    golden_file("fused_w2.txt", &text);
}

#[test]
fn w4_fuses_bias_and_relu_after_each_matmul() {
    let f = function("w4", |(x, p): (Tensor, Vec<Tensor>)| workloads::mlp_logits(&x, &p).softmax(-1));
    f.call((workloads::uniform(21, &[128, 784], 0.0, 1.0), workloads::mlp_params()));
    let text = f.concrete_functions()[0].compiled_text();
    let plan = text.split("plan:").nth(1).unwrap_or_default();
    assert_eq!(plan.matches(" = matmul ").count(), 3, "{text}");
    assert_eq!(plan.matches(" = kernel").count(), 5, "bias+relu ×2, bias, exp(x − max), division:\n{text}");
    golden_file("fused_w4.txt", &text);
}

#[test]
fn w5_train_step() {
    let vars = workloads::mlp_variables(&workloads::mlp_params());
    let v2 = vars.clone();
    let f = function("w5", move |(x, y): (Tensor, Tensor)| workloads::mlp_train_step(&v2, &x, &y));
    f.call((workloads::uniform(21, &[128, 784], 0.0, 1.0), workloads::labels()));
    let text = f.concrete_functions()[0].compiled_text();
    assert_eq!(text.matches("assign_variable").count(), 2 * 6, "six updates in the graph and the plan:\n{text}");
    golden_file("fused_w5.txt", &text);
}
