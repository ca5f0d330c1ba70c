//! Eager vs traced (interpreter) parity: every op and every gradient, bit for bit.

mod common;
use common::parity::{bits, cases, gradients};
use tensorjit::prelude::*;

#[test]
fn every_op_is_bit_identical_eager_and_traced() {
    for (name, f, inputs) in cases() {
        let eager = f(&inputs);
        let g = function(name, move |xs: Vec<Tensor>| f(&xs));
        let traced = g.call(inputs.clone());
        assert_eq!(bits(&traced), bits(&eager), "{name}");
        assert_eq!(traced.dims(), eager.dims(), "{name}");
        let ir = g.concrete_functions()[0].ir_text();
        assert!(ir.lines().count() > 3, "{name} was traced into a graph:\n{ir}");
    }
}

#[test]
fn every_gradient_is_bit_identical_eager_and_traced() {
    for (name, f, inputs) in cases() {
        let grads = gradients(f, &inputs);
        let eager = grads(&inputs);
        let g = function(name, move |xs: Vec<Tensor>| grads(&xs));
        let traced = g.call(inputs.clone());
        assert_eq!(eager.len(), traced.len());
        for (e, t) in eager.iter().zip(&traced) {
            assert_eq!(bits(t), bits(e), "gradient of {name}");
        }
    }
}
