//! input_signature (unknown dims) and reduce_retracing: one trace for many batch sizes,
//! results bit-identical to eager, clear errors for calls that do not fit.

mod common;
use common::*;
use tensorjit::prelude::*;

fn bits(t: &Tensor) -> Vec<u32> {
    f32s(t).iter().map(|v| v.to_bits()).collect()
}

fn mlp(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    (x.matmul(w) + b).relu().softmax(-1)
}

#[tf_function(input_signature = [
    TensorSpec::new(DType::F32, &[None, Some(6)]),
    TensorSpec::new(DType::F32, &[Some(6), Some(4)]),
    TensorSpec::new(DType::F32, &[Some(4)]),
])]
fn forward(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    mlp(x, w, b)
}

#[tf_function(reduce_retracing = true)]
fn forward_reduced(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    mlp(x, w, b)
}

#[test]
fn none_batch_dim_traces_once_for_batches_1_to_10() {
    let (w, b) = (rand_f32(1, &[6, 4], -1.0, 1.0), rand_f32(2, &[4], -1.0, 1.0));
    for n in 1..=10 {
        let x = rand_f32(10 + n as u64, &[n, 6], -1.0, 1.0);
        let y = forward(&x, &w, &b);
        assert_eq!(y.dims(), &[n, 4]);
        assert_eq!(bits(&y), bits(&mlp(&x, &w, &b)), "batch {n}");
    }
    assert_eq!(forward::tracing_count(), 1);
    let ir = forward::concrete_functions()[0].ir_text();
    assert!(ir.starts_with("func @forward(%0: f32[?,6], %1: f32[6,4], %2: f32[4]) -> (f32[?,4])"), "{ir}");
    let back = tensorjit::ir::parse(&ir).unwrap();
    assert_eq!(back.to_string(), ir, "unknown dims round-trip through the text form");
}

#[test]
fn reduce_retracing_needs_at_most_two_traces() {
    let (w, b) = (rand_f32(3, &[6, 4], -1.0, 1.0), rand_f32(4, &[4], -1.0, 1.0));
    for n in 1..=10 {
        let x = rand_f32(30 + n as u64, &[n, 6], -1.0, 1.0);
        assert_eq!(bits(&forward_reduced(&x, &w, &b)), bits(&mlp(&x, &w, &b)), "batch {n}");
    }
    assert_eq!(forward_reduced::tracing_count(), 2);
    let sigs: Vec<String> = forward_reduced::concrete_functions().iter().map(|c| c.signature.to_string()).collect();
    assert_eq!(sigs[1], "(Tensor(f32[?,6]), Tensor(f32[6,4]), Tensor(f32[4]))");
}

#[test]
fn calls_that_do_not_fit_the_signature_are_clear_errors() {
    let (w, b) = (rand_f32(5, &[6, 4], -1.0, 1.0), rand_f32(6, &[4], -1.0, 1.0));
    let f = forward::function();
    let e = f.try_call((rand_f32(7, &[3, 5], -1.0, 1.0), w.clone(), b.clone())).err().unwrap();
    assert_eq!(e.to_string(), "forward: x is f32[3,5], the input_signature expects f32[?,6]");
    let e = f.try_call((Tensor::zeros([2, 6], DType::F64), w.clone(), b.clone())).err().unwrap();
    assert_eq!(e.to_string(), "forward: x is f64[2,6], the input_signature expects f32[?,6]");
    let e = f.try_call((Tensor::zeros([6], DType::F32), w, b)).err().unwrap();
    assert!(e.to_string().contains("x is f32[6], the input_signature expects f32[?,6]"), "{e}");
    let msg = panic_message(|| {
        forward(
            &Tensor::zeros([2, 7], DType::F32),
            &Tensor::zeros([6, 4], DType::F32),
            &Tensor::zeros([4], DType::F32),
        );
    });
    assert!(msg.contains("forward: x is f32[2,7], the input_signature expects f32[?,6]"), "{msg}");
}

#[test]
fn training_with_an_unknown_batch_matches_eager_bit_for_bit() {
    let body = dense_tanh_sgd_step;
    let make =
        || (Variable::new(rand_f32(40, &[3, 2], -1.0, 1.0), "w"), Variable::new(Tensor::zeros([2], DType::F32), "b"));
    let (we, be) = make();
    let (wt, bt) = make();
    let (w2, b2) = (wt.clone(), bt.clone());
    let step = function("step", move |(x, y): (Tensor, Tensor)| body(&w2, &b2, &x, &y)).with_input_signature(vec![
        TensorSpec::new(DType::F32, &[None, Some(3)]),
        TensorSpec::new(DType::F32, &[None, Some(2)]),
    ]);
    for (k, n) in [5usize, 8, 1, 8].iter().enumerate() {
        let x = rand_f32(50 + k as u64, &[*n, 3], -1.0, 1.0);
        let y = rand_f32(60 + k as u64, &[*n, 2], -1.0, 1.0);
        assert_eq!(bits(&step.call((x.clone(), y.clone()))), bits(&body(&we, &be, &x, &y)), "batch {n}");
    }
    assert_eq!(bits(&wt.read()), bits(&we.read()));
    assert_eq!(bits(&bt.read()), bits(&be.read()));
    assert_eq!(step.tracing_count(), 1);
}

/// expand_dims, squeeze, keepdims reductions and their gradients, over two unknown
/// dims: each reshape they make is resolved when the function runs, also when an
/// unknown dim is 1 then.
fn ones_inserted(x: &Tensor, w: &Variable) -> Tensor {
    let tape = GradientTape::new();
    let y = (x.expand_dims(1) * w.read()).sum(-1, true).squeeze(&[1]).tanh();
    let g = tape.gradient(&y.sum_all(), &[w]);
    y.sum(-1, false) + g[0].as_ref().unwrap().sum_all()
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None, None, Some(3)])])]
fn ones_inserted_traced(x: &Tensor, w: &Variable) -> Tensor {
    ones_inserted(x, w)
}

#[test]
fn several_unknown_dims_resolve_when_one_of_them_is_1() {
    let w = Variable::new(rand_f32(90, &[3], -1.0, 1.0), "w");
    for (k, dims) in [[2, 5, 3], [1, 5, 3], [2, 1, 3], [1, 1, 3], [4, 2, 3]].into_iter().enumerate() {
        let x = rand_f32(91 + k as u64, &dims, -1.0, 1.0);
        let traced = ones_inserted_traced(&x, &w);
        let eager = ones_inserted(&x, &w);
        assert_eq!(traced.dims(), eager.dims(), "{dims:?}");
        assert_eq!(bits(&traced), bits(&eager), "{dims:?}");
    }
    assert_eq!(ones_inserted_traced::tracing_count(), 1);
}
